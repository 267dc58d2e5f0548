"""Wakes idle workers when work arrives: an in-process event, plus LISTEN/NOTIFY across PostgreSQL processes.

Polling every ``poll_interval_seconds`` remains the fallback, so a lost notification only delays, never loses.
The LISTEN connection is kept by a task of its own: when the server restarts (or the connection drops) it
reconnects, with backoff, and wakes the loops once, since notifications sent meanwhile were lost.
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
_RECONNECT_FIRST = 0.2  # seconds before the first reconnection attempt, doubling up to the cap
_RECONNECT_CAP = 5.0
_CHECK_SECONDS = 5.0  # how often a quiet connection is checked (a dropped one usually reports itself at once)


class Waker:
    def __init__(self, channel: str = CHANNEL) -> None:
        self.channel = channel
        self._event = asyncio.Event()
        self._listener: Any = None
        self._keeper: asyncio.Task[None] | None = None
        self._lost = asyncio.Event()
        self.connections = 0  # LISTEN connections made (tests see reconnections here)

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
        """Subscribe to NOTIFY on PostgreSQL, and keep the subscription through restarts. Returns once the
        first attempt is made; while there is no connection, polling is in charge."""
        url = make_url(async_url)
        if url.get_backend_name() != "postgresql" or self._keeper is not None:
            return
        dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
        if not await self._connect(dsn):
            log.warning("LISTEN %s unavailable; polling until it reconnects", self.channel)
        self._keeper = asyncio.create_task(self._keep(dsn))

    async def _connect(self, dsn: str) -> bool:
        self._lost.clear()
        try:
            listener = await asyncpg.connect(dsn, timeout=10)
            listener.add_termination_listener(lambda *_: self._lost.set())
            await listener.add_listener(self.channel, lambda *_: self._event.set())
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.debug("LISTEN %s: cannot connect (%s)", self.channel, type(exc).__name__)
            self._listener = None
            return False
        self._listener = listener
        self.connections += 1
        return True

    async def _keep(self, dsn: str) -> None:
        """Reconnect the LISTEN connection whenever it is lost; wake the loops after each reconnection."""
        wait = _RECONNECT_FIRST
        while True:
            if self._listener is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._lost.wait(), _CHECK_SECONDS)
                if not self._lost.is_set() and not self._listener.is_closed():
                    continue
                log.warning("LISTEN %s: connection lost; reconnecting", self.channel)
                with contextlib.suppress(Exception):
                    self._listener.terminate()
                self._listener = None
                wait = _RECONNECT_FIRST
            await asyncio.sleep(wait)
            if await self._connect(dsn):
                log.info("LISTEN %s: reconnected", self.channel)
                self.wake()  # notifications sent while it was down were lost
            else:
                wait = min(wait * 2, _RECONNECT_CAP)

    async def wake_after_commit(self, session: AsyncSession) -> None:
        """Wake this waker's loops once ``session`` commits: NOTIFY for other PostgreSQL processes (delivered at
        commit) and the in-process event through an after-commit hook. Nothing wakes before the work is durable,
        and a rolled-back transaction wakes nobody."""
        if session.get_bind().dialect.name == "postgresql":
            await session.execute(text(f"NOTIFY {self.channel}"))
        after_commit(session, self.wake)

    async def close(self) -> None:
        if self._keeper is not None:
            self._keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keeper
            self._keeper = None
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await self._listener.close()
            self._listener = None
