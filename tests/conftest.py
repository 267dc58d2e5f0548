"""Shared fixtures: every integration test runs on SQLite and on PostgreSQL, each test on a fresh database
cloned from a migrated template (a file copy on SQLite, CREATE DATABASE ... TEMPLATE on PostgreSQL).

PostgreSQL comes from ``HERALD_TEST_POSTGRES_URL`` (default: the local server). When ``CI`` or ``HERALD_CI`` is
set and the server is unreachable the PostgreSQL tests fail; elsewhere they are skipped with the reason
(:func:`required_server`, which the MariaDB tests of data sources use too).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import shutil
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

import asyncpg
import httpx
import pytest
import uvicorn

from herald.admin.tenants import create_api_key, get_or_create_tenant
from herald.core.config import Settings, load_settings
from herald.core.maturity import MaturityLevel
from herald.pipeline.worker import Worker
from herald.runtime import Runtime
from herald.storage.engine import create_engine
from herald.storage.migrate import upgrade
from herald.web.api.app import create_app

PG_URL = os.environ.get("HERALD_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
SECRET = "test-secret-key-that-is-long-enough-0123456789"
_counter = itertools.count()


async def _migrate(url: str) -> None:
    engine = create_engine(url)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()


def in_ci() -> bool:
    """CI must never skip a real server silently: ``CI`` (set by most CI systems and by ``.ci/run``) or
    ``HERALD_CI``."""
    return any(os.environ.get(name, "").lower() not in ("", "0", "false") for name in ("CI", "HERALD_CI"))


def required_server(what: str, exc: BaseException) -> NoReturn:
    """A test server is unreachable: fail in CI, skip elsewhere, with the reason either way."""
    if in_ci():
        pytest.fail(f"{what} is required in CI and unreachable: {exc}")
    pytest.skip(f"{what} unreachable: {exc}")


def _pg_base() -> str:
    return PG_URL.rsplit("/", 1)[0]


async def _pg_admin(sql: str) -> None:
    conn = await asyncpg.connect(PG_URL, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tpl") / "template.db"
    asyncio.run(_migrate(f"sqlite+aiosqlite:///{path}"))
    return path


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    name = f"herald_tpl_{os.getpid()}"
    try:
        asyncio.run(_pg_admin(f"DROP DATABASE IF EXISTS {name}"))
        asyncio.run(_pg_admin(f"CREATE DATABASE {name}"))
    except (OSError, asyncpg.PostgresError) as exc:
        required_server(f"PostgreSQL at {PG_URL}", exc)
    asyncio.run(_migrate(f"{_pg_base().replace('postgresql://', 'postgresql+asyncpg://')}/{name}"))
    yield name
    asyncio.run(_pg_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated database for one test, as a plain URL (the form users configure)."""
    if request.param == "sqlite":
        if "postgres_only" in request.keywords:
            pytest.skip("PostgreSQL-only test (needs concurrent writers or LISTEN/NOTIFY)")
        path = tmp_path / "herald.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    template = request.getfixturevalue("pg_template")
    name = f"herald_t_{os.getpid()}_{next(_counter)}"
    asyncio.run(_pg_admin(f"CREATE DATABASE {name} TEMPLATE {template}"))
    yield f"{_pg_base()}/{name}"
    asyncio.run(_pg_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


@pytest.fixture
def backend(database_url: str) -> str:
    return "postgresql" if database_url.startswith("postgresql") else "sqlite"


def make_settings(database_url: str, tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "env": "development",
        "secret_key": SECRET,
        "data_dir": tmp_path / "var",
        "retry_base_seconds": 0.0,
        "poll_interval_seconds": 0.05,
    }
    values.update(overrides)
    return load_settings(**values)


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """Override in a test module to change settings for its tests."""
    return {}


@pytest.fixture
async def rt(database_url: str, tmp_path: Path, settings_overrides: dict[str, Any]) -> AsyncIterator[Runtime]:
    runtime = Runtime(make_settings(database_url, tmp_path, **settings_overrides))
    yield runtime
    await runtime.close()


@pytest.fixture
async def client(rt: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(rt.settings, runtime=rt, run_worker=False)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://herald.test") as c:
        yield c


async def new_tenant(rt: Runtime, name: str) -> dict[str, str]:
    async with rt.sessions.begin() as session:
        tenant = await get_or_create_tenant(session, name)
        key = await create_api_key(session, tenant)
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
async def auth(rt: Runtime) -> dict[str, str]:
    """Headers carrying an API key of tenant "acme"."""
    return await new_tenant(rt, "acme")


@contextlib.asynccontextmanager
async def served(app: Any) -> AsyncIterator[str]:
    """``app`` served by uvicorn on 127.0.0.1 and a free port, lifespan included; yields its base URL."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


def in_production(rt: Runtime) -> None:
    """Run the rest of the test as production: e.g. an unknown agent is a 422 there, where development
    registers it on first use (herald.pipeline.enrolment)."""
    rt.settings = rt.settings.model_copy(update={"env": "production"})


@pytest.fixture
def worker(rt: Runtime) -> Worker:
    return Worker(rt, worker_id="test-worker")


async def make_agent(
    client: httpx.AsyncClient, headers: dict[str, str], agent_id: str, level: MaturityLevel | str
) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/agents", json={"id": agent_id, "maturity_level": str(level)}, headers=headers
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def use_transport(rt: Runtime, handler: Callable[[httpx.Request], httpx.Response]) -> list[httpx.Request]:
    """Point the runtime's HTTP client at ``handler``; return the list of requests it receives."""
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)

    rt.http = httpx.AsyncClient(transport=httpx.MockTransport(record))
    return seen


WEBHOOK_SECRET = "whsec_dGVzdC13ZWJob29rLXNlY3JldC0xMjM0NTY3ODkw"


async def webhook_channel(
    client: httpx.AsyncClient, headers: dict[str, str], platform: str = "slack", **extra: Any
) -> dict[str, Any]:
    """A default channel for ``platform`` using the generic signed webhook provider."""
    body = {
        "platform": platform, "provider": "webhook", "name": f"{platform} relay", "is_default": True,
        "credentials": {"url": f"https://relay.example/{platform}", "secret": WEBHOOK_SECRET}, **extra,
    }  # fmt: skip
    response = await client.post("/api/v1/channels", json=body, headers=headers)
    assert response.status_code == 201, response.text
    channel: dict[str, Any] = response.json()
    return channel


def send_body(agent_id: str = "agent_123", **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "agent_id": agent_id,
        "platform": "slack",
        "recipient_id": "C12345",
        "content": "Hello! I have important updates.",
        "send_now": True,
    }
    body.update(overrides)
    return body


@pytest.fixture(scope="session")
def dovecot() -> Iterator[Any]:
    """A real IMAP server (tests/support/dovecot.py) for the session; each test adds its own account. Skipped
    when dovecot is not installed, failed under CI (``.ci/run`` installs it)."""
    from tests.support import dovecot as harness

    try:
        server = harness.start()
    except harness.DovecotMissing as exc:
        required_server("dovecot (apt-get install dovecot-imapd)", exc)
    yield server
    server.stop()
