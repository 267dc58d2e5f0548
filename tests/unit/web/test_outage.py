"""A database outage answers 503 with Retry-After, never 500; other errors of the same types stay 500."""

from __future__ import annotations

import errno
from pathlib import Path

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import exc as sa

from herald.runtime import Runtime
from herald.storage.outage import is_outage
from herald.web.api import problems
from herald.web.api.app import create_app
from tests.conftest import make_settings
from tests.faults.cluster import free_port


class _Orig(Exception):
    pass


def _invalidated() -> sa.DBAPIError:
    return sa.DBAPIError("SELECT 1", {}, _Orig("connection was closed in the middle of operation"), connection_invalidated=True)  # fmt: skip


OUTAGES = [
    ConnectionRefusedError(errno.ECONNREFUSED, "Connect call failed"),
    ConnectionResetError(errno.ECONNRESET, "reset by peer"),
    OSError(errno.EHOSTUNREACH, "no route"),
    asyncpg.CannotConnectNowError("the database system is starting up"),
    asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
    asyncpg.AdminShutdownError("terminating connection due to administrator command"),
    sa.OperationalError("SELECT 1", {}, _Orig("server closed the connection unexpectedly")),
    sa.InterfaceError("SELECT 1", {}, _Orig("connection is closed")),
    _invalidated(),
    sa.TimeoutError("QueuePool limit of size 10 overflow 10 reached"),
]
NOT_OUTAGES = [
    FileNotFoundError(errno.ENOENT, "no such file"),
    sa.IntegrityError("INSERT", {}, _Orig("duplicate key")),
    sa.DBAPIError("SELECT 1", {}, _Orig("syntax error"), connection_invalidated=False),
    ValueError("a bug"),
]


@pytest.mark.parametrize("error", OUTAGES, ids=lambda e: type(e).__name__)
def test_outages_are_recognised(error: Exception) -> None:
    assert is_outage(error)
    wrapped = RuntimeError("while doing something")
    wrapped.__cause__ = error
    assert is_outage(wrapped)


@pytest.mark.parametrize("error", NOT_OUTAGES, ids=lambda e: type(e).__name__)
def test_other_errors_are_not_outages(error: Exception) -> None:
    assert not is_outage(error)


def _app(error: Exception) -> FastAPI:
    app = FastAPI()
    problems.install(app)

    @app.get("/boom")
    async def boom() -> None:
        raise error

    return app


@pytest.mark.parametrize("error", OUTAGES, ids=lambda e: type(e).__name__)
async def test_an_outage_answers_503_with_retry_after(error: Exception) -> None:
    transport = httpx.ASGITransport(app=_app(error))
    async with httpx.AsyncClient(transport=transport, base_url="http://h") as client:
        r = await client.get("/boom")
    assert r.status_code == 503
    assert int(r.headers["retry-after"]) >= 1
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["status"] == 503


@pytest.mark.parametrize("error", NOT_OUTAGES, ids=lambda e: type(e).__name__)
async def test_other_errors_stay_500(error: Exception) -> None:
    transport = httpx.ASGITransport(app=_app(error), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://h") as client:
        r = await client.get("/boom")
    assert r.status_code == 500


async def test_an_unreachable_database_answers_503(tmp_path: Path) -> None:
    """The real app on a PostgreSQL that refuses connections (nothing listens on the port)."""
    rt = Runtime(make_settings(f"postgresql://postgres@127.0.0.1:{free_port()}/herald", tmp_path))
    try:
        app = create_app(rt.settings, runtime=rt, run_worker=False)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://h") as client:
            r = await client.get(
                "/api/v1/messages/msg_1", headers={"authorization": "Bearer hk_unknown_key_123"}
            )
            send = await client.post(
                "/api/v1/messaging/proactive/send",
                json={"agent_id": "a", "platform": "slack", "recipient_id": "C1", "content": "hi"},
                headers={"authorization": "Bearer hk_unknown_key_123"},
            )
    finally:
        await rt.close()
    assert (r.status_code, send.status_code) == (503, 503), (r.text, send.text)
    assert r.headers["retry-after"] == send.headers["retry-after"]
