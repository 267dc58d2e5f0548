"""Fixtures for the presets: Herald's own database on SQLite only, and an empty tenant database on SQLite,
PostgreSQL and MariaDB (reached as in ``tests/integration/test_data_sources.py``: skipped when unreachable
outside CI, failed in CI), registered as a data source through the API."""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path
from typing import Any

import aiomysql
import asyncpg
import httpx
import pytest

from herald.admin.tenants import get_or_create_tenant
from herald.presets import dealership
from herald.runtime import Runtime
from herald.storage.datasources import run_query
from tests.conftest import PG_URL, required_server

MARIADB_HOST = os.environ.get("HERALD_TEST_MARIADB", "127.0.0.1:3306")
_counter = itertools.count()


@pytest.fixture
def database_url(tmp_path: Path, sqlite_template: Path) -> str:
    """Herald's own database: SQLite only (the tenant's database is the one on three backends)."""
    path = tmp_path / "herald.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


def _fail_or_skip(what: str, exc: BaseException) -> None:
    required_server(what, exc)  # fails when CI or HERALD_CI is set


async def _pg_admin(sql: str) -> None:
    conn = await asyncpg.connect(PG_URL, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _maria_admin(sql: str) -> None:
    host, port = MARIADB_HOST.split(":")
    conn = await aiomysql.connect(host=host, port=int(port), user="root", password="", connect_timeout=5)
    try:
        async with conn.cursor() as cur:
            await cur.execute(sql)
        await conn.commit()
    finally:
        conn.close()


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
async def tenant_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database of the tenant's, as the URL a data source is registered with."""
    name = f"dealer_{os.getpid()}_{next(_counter)}"
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'dealer.db'}"
        return
    if request.param == "postgresql":
        try:
            await _pg_admin(f"CREATE DATABASE {name}")
        except (OSError, asyncpg.PostgresError) as exc:
            _fail_or_skip(f"PostgreSQL at {PG_URL}", exc)
        yield f"{PG_URL.rsplit('/', 1)[0]}/{name}"
        await _pg_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        return
    try:
        await _maria_admin(f"CREATE DATABASE {name}")
    except (OSError, aiomysql.Error) as exc:
        _fail_or_skip(f"MariaDB at {MARIADB_HOST}", exc)
    yield f"mysql://root@{MARIADB_HOST}/{name}"
    await _maria_admin(f"DROP DATABASE IF EXISTS {name}")


async def register(client: httpx.AsyncClient, auth: dict[str, str], url: str) -> tuple[str, str]:
    """Register ``url`` as a data source through the API: (its id, its backend)."""
    response = await client.post("/api/v1/data-sources", json={"name": "dealer", "url": url}, headers=auth)
    assert response.status_code == 201, response.text
    return response.json()["id"], response.json()["backend"]


async def audience(
    rt: Runtime, source: str, backend: str, preset: dealership.Preset, today: date
) -> list[dict[str, Any]]:
    """The preset's rows on ``today``, each value as the campaign reads it (a string, or None)."""
    async with rt.sessions.begin() as session:
        tenant = (await get_or_create_tenant(session, "acme")).id
    result = await run_query(rt, tenant, source, preset.sql(backend), {**preset.params, "today": today})
    assert not result.truncated
    assert result.columns == list(preset.columns)
    return [{k: (None if v is None else str(v)) for k, v in row.items()} for row in result.rows]
