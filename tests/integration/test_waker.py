"""The LISTEN connection of a waker survives losing its connection (a server restart terminates it)."""

from __future__ import annotations

import asyncio
import time

import asyncpg
import pytest

from herald.pipeline.waker import Waker
from herald.runtime import Runtime


@pytest.mark.postgres_only
async def test_listen_reconnects_after_its_connection_is_terminated(rt: Runtime, database_url: str) -> None:
    waker = Waker("herald_test_waker")
    await waker.listen(rt.settings.async_database_url)
    try:
        assert waker.connections == 1
        admin = await asyncpg.connect(database_url)
        try:
            pid = waker._listener.get_server_pid()
            await admin.execute("SELECT pg_terminate_backend($1)", pid)
            deadline = time.monotonic() + 10
            while waker.connections < 2 and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            assert waker.connections == 2, "the LISTEN connection was not made again"
            waker._event.clear()
            await admin.execute("NOTIFY herald_test_waker")
            started = time.monotonic()
            await waker.wait(5.0)
            assert time.monotonic() - started < 2.0, "a NOTIFY after the reconnection did not wake"
        finally:
            await admin.close()
    finally:
        await waker.close()
