"""The PostgreSQL pool pings only connections that sat idle: a busy process spends no round trips proving that
the connection it used a moment ago still works, and a connection that died while idle (a restarted server) is
replaced before anyone uses it."""

from __future__ import annotations

import asyncpg
import pytest
from sqlalchemy import text

from herald.storage import engine as engines


@pytest.fixture
def pings(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    dialect = engines.create_engine("postgresql+asyncpg://u@127.0.0.1/x").dialect
    real = type(dialect).do_ping

    def counted(self: object, dbapi_connection: object) -> bool:
        calls.append(1)
        return bool(real(self, dbapi_connection))  # type: ignore[arg-type]

    monkeypatch.setattr(type(dialect), "do_ping", counted)
    return calls


@pytest.mark.postgres_only
async def test_a_connection_in_use_a_moment_ago_is_not_pinged(database_url: str, pings: list[int]) -> None:
    engine = engines.create_engine(database_url.replace("postgresql://", "postgresql+asyncpg://"))
    try:
        for _ in range(5):
            async with engine.begin() as conn:
                assert await conn.scalar(text("SELECT 1")) == 1
        assert pings == []
    finally:
        await engine.dispose()


@pytest.mark.postgres_only
async def test_an_idle_connection_that_died_is_replaced_before_use(
    database_url: str, pings: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = engines.create_engine(database_url.replace("postgresql://", "postgresql+asyncpg://"))
    try:
        async with engine.connect() as conn:
            first = await conn.scalar(text("SELECT pg_backend_pid()"))
        admin = await asyncpg.connect(
            database_url
        )  # the server ends the idle connection (a restart, a proxy)
        try:
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", first)
        finally:
            await admin.close()
        monkeypatch.setattr(engines, "IDLE_PING_SECONDS", 0.0)  # every pooled connection now counts as idle
        async with engine.connect() as conn:
            second = await conn.scalar(text("SELECT pg_backend_pid()"))
        assert second != first
        assert pings
    finally:
        await engine.dispose()
