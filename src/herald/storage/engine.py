"""Engine and session factory for either backend, with SQLite tuned for one writer at a time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine


def create_engine(async_url: str, *, pool_size: int = 10) -> AsyncEngine:
    """Create the async engine. On SQLite every transaction starts with BEGIN IMMEDIATE.

    SQLite upgrades a deferred reader to a writer only if nobody else writes meanwhile, and fails at once
    otherwise; taking the write lock at BEGIN lets ``busy_timeout`` queue writers instead.
    """
    url = make_url(async_url)
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(async_url, url.database)
    return create_async_engine(
        async_url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True, pool_recycle=1800
    )


def _sqlite_engine(async_url: str, database: str | None) -> AsyncEngine:
    if database and database != ":memory:":
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    # One connection: SQLite has one writer anyway, and queueing in the pool is fairer and faster than
    # SQLite's busy-wait with growing sleeps. (Other processes still wait through busy_timeout.)
    engine = create_async_engine(
        async_url, connect_args={"timeout": 30}, pool_size=1, max_overflow=0, pool_timeout=60
    )

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine
