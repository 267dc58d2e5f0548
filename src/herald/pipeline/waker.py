"""Wakes idle workers when work arrives: an in-process event, plus LISTEN/NOTIFY across PostgreSQL processes.

Polling every ``poll_interval_seconds`` remains the fallback, so a lost notification only delays, never loses.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from herald.storage.sessions import after_commit

CHANNEL = "herald_outbox"
INBOUND_CHANNEL = "herald_inbound"  # stored inbound messages waiting for routing
log = logging.getLogger(__name__)


class Waker:
    def __init__(self, channel: str = CHANNEL) -> None:
        self.channel = channel
        self._event = asyncio.Event()
        self._listener: Any = None

    def wake(self) -> None:
        self._event.set()

    async def wait(self, timeout: float, stop: asyncio.Event | None = None) -> None:  # noqa: ASYNC109 - a bounded nap
        """Nap until woken, ``stop`` is set or ``timeout`` passes, whichever comes first."""
        waits = [asyncio.ensure_future(self._event.wait())]
        if stop is not None:
            waits.append(asyncio.ensure_future(stop.wait()))
        try:
            await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pending in waits:
                pending.cancel()
        self._event.clear()

    async def listen(self, async_url: str) -> None:
        """Subscribe to NOTIFY on PostgreSQL; a failure leaves polling in charge."""
        url = make_url(async_url)
        if url.get_backend_name() != "postgresql":
            return
        dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
        try:
            self._listener = await asyncpg.connect(dsn)
            await self._listener.add_listener(self.channel, lambda *_: self._event.set())
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("LISTEN unavailable, polling only: %s", type(exc).__name__)
            self._listener = None

    async def wake_after_commit(self, session: AsyncSession) -> None:
        """Wake this waker's loops once ``session`` commits: NOTIFY for other PostgreSQL processes (delivered at
        commit) and the in-process event through an after-commit hook. Nothing wakes before the work is durable,
        and a rolled-back transaction wakes nobody."""
        if session.get_bind().dialect.name == "postgresql":
            await session.execute(text(f"NOTIFY {self.channel}"))
        after_commit(session, self.wake)

    async def close(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await self._listener.close()
            self._listener = None
