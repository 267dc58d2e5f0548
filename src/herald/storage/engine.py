"""Engine and session factory for either backend, with SQLite tuned for one writer at a time."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

_ORJSON_OPTIONS = orjson.OPT_NON_STR_KEYS  # {1: x} is stored as {"1": x}, as the standard library does


def dumps(value: Any) -> str:
    """JSON columns' encoder: orjson, several times faster than ``json.dumps`` on the rows every message writes
    (its route, audit detail and event payload), with the standard library for what orjson refuses (integers
    past 64 bits), so every value stored before is stored the same way now."""
    try:
        return orjson.dumps(value, option=_ORJSON_OPTIONS).decode()
    except TypeError:
        return json.dumps(value)


def loads(text: str | bytes) -> Any:
    """JSON columns' decoder, orjson first for the same reason; the standard library reads what it refuses."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


IDLE_PING_SECONDS = 5.0
"""A pooled PostgreSQL connection idle at least this long is pinged before it is handed out."""


def create_engine(async_url: str, *, pool_size: int = 10) -> AsyncEngine:
    """Create the async engine. On SQLite every transaction starts with BEGIN IMMEDIATE.

    SQLite upgrades a deferred reader to a writer only if nobody else writes meanwhile, and fails at once
    otherwise; taking the write lock at BEGIN lets ``busy_timeout`` queue writers instead.
    """
    url = make_url(async_url)
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(async_url, url.database)
    engine = create_async_engine(
        async_url, pool_size=pool_size, max_overflow=pool_size, pool_recycle=1800,
        json_serializer=dumps, json_deserializer=loads,
    )  # fmt: skip
    _ping_when_idle(engine)
    return engine


def _ping_when_idle(engine: AsyncEngine) -> None:
    """Ping a pooled connection before handing it out only when it sat idle for ``IDLE_PING_SECONDS``.

    SQLAlchemy's ``pool_pre_ping`` pings at every checkout, and the asyncpg dialect's ping is three round trips
    (BEGIN, an empty query, ROLLBACK, for pgbouncer's transaction mode): a single send's whole transaction is
    six. A connection handed back a moment ago is as good as the work it just did; one that sat idle (a
    restarted or failed-over server, a proxy's idle timeout) is checked, and replaced when dead. A connection that
    dies while busy is caught by the dialect's disconnect handling, which also retires every connection the pool
    made before it, so a restart costs each in-flight transaction one failure (a 503 to an API client), no more."""

    @event.listens_for(engine.sync_engine, "checkin")
    def _checked_in(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < IDLE_PING_SECONDS:
            return  # new, or in use a moment ago
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            raise DisconnectionError("the pooled connection did not answer its ping") from exc


def _sqlite_engine(async_url: str, database: str | None) -> AsyncEngine:
    if database and database != ":memory:":
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    # One connection: SQLite has one writer anyway, and queueing in the pool is fairer and faster than
    # SQLite's busy-wait with growing sleeps. (Other processes still wait through busy_timeout.)
    engine = create_async_engine(
        async_url, connect_args={"timeout": 30}, pool_size=1, max_overflow=0, pool_timeout=60,
        json_serializer=dumps, json_deserializer=loads,
    )  # fmt: skip

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
