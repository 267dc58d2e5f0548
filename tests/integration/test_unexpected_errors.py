"""An exception no handler knows: a 500 problem (RFC 9457), the traceback logged, the connection kept open."""

from __future__ import annotations

import logging

import httpx
import pytest

from herald.runtime import Runtime
from herald.web.api.app import create_app
from tests.conftest import served


def local_port(response: httpx.Response) -> int:
    """The client's port of the connection that carried ``response``."""
    port: int = response.extensions["network_stream"].get_extra_info("client_addr")[1]
    return port


async def test_an_unexpected_error_is_a_problem_and_keeps_the_connection(
    rt: Runtime, auth: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(rt.settings, runtime=rt, run_worker=False)

    @app.get("/test-only/boom")
    async def boom() -> None:
        raise RuntimeError("a bug")

    async with served(app) as base, httpx.AsyncClient(base_url=base) as client:
        first = await client.get("/api/v1/contacts", headers=auth)
        assert first.status_code == 200, first.text
        with caplog.at_level(logging.ERROR):
            failed = await client.get("/test-only/boom")
        assert failed.status_code == 500
        assert failed.headers["content-type"] == "application/problem+json"
        assert failed.json() == {"type": "about:blank", "title": "Internal server error", "status": 500,
                                 "detail": "an unexpected error occurred", "instance": "/test-only/boom"}  # fmt: skip
        assert failed.headers.get("connection", "").lower() != "close"
        assert any(r.exc_info and "a bug" in str(r.exc_info[1]) for r in caplog.records)
        after = await client.get("/api/v1/contacts", headers=auth)
        assert after.status_code == 200, after.text
        assert local_port(first) == local_port(failed) == local_port(after)
