"""The in-process event bus: Herald's events, as they happen, for whatever in this process watches them.

Every process writes its events to the events table in the transaction that caused them, so the table is the
one ordered record. The bus tails it (only while someone listens) and hands each event to the subscribers in
this process: the event stream API and the dashboard's live pages. A slow subscriber loses its oldest events
(it is told how many) instead of holding the others up; a reconnecting client catches up from the table.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from herald.events.feed import horizon_id
from herald.storage.models import Event

log = logging.getLogger(__name__)
SETTLE = timedelta(milliseconds=500)


@dataclass(frozen=True, slots=True)
class BusEvent:
    id: str
    tenant_id: str
    type: str
    subject_id: str
    data: dict[str, Any]
    created_at: str

    @classmethod
    def of(cls, row: Event) -> BusEvent:
        return cls(
            row.id, row.tenant_id, row.type, row.subject_id, dict(row.data), row.created_at.isoformat()
        )

    def body(self) -> dict[str, Any]:
        """The same shape subscribers' webhooks receive."""
        return {"type": self.type, "timestamp": self.created_at, "data": {"id": self.subject_id, **self.data}}


@dataclass(eq=False)
class Subscription:
    """One listener: its filter and its queue."""

    tenant_id: str | None
    types: frozenset[str]
    queue: asyncio.Queue[BusEvent] = field(default_factory=lambda: asyncio.Queue(1000))
    dropped: int = 0

    def wants(self, event: BusEvent) -> bool:
        return (self.tenant_id in (None, event.tenant_id)) and (not self.types or event.type in self.types)

    def offer(self, event: BusEvent) -> None:
        if self.queue.full():
            self.queue.get_nowait()
            self.dropped += 1
        self.queue.put_nowait(event)


class EventBus:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, interval: float = 0.25) -> None:
        self._sessions = sessions
        self._interval = interval
        self._subscribers: set[Subscription] = set()
        self._tail: asyncio.Task[None] | None = None

    @contextlib.asynccontextmanager
    async def subscribe(
        self, *, tenant_id: str | None, types: frozenset[str] = frozenset()
    ) -> AsyncIterator[Subscription]:
        """Listen while inside the block; the bus tails the table only while somebody listens."""
        subscription = Subscription(tenant_id, types)
        self._subscribers.add(subscription)
        if self._tail is None or self._tail.done():
            start = await self._newest()
            self._tail = asyncio.create_task(self._follow(start))
        try:
            yield subscription
        finally:
            self._subscribers.discard(subscription)

    def publish(self, event: BusEvent) -> None:
        for subscription in list(self._subscribers):
            if subscription.wants(event):
                subscription.offer(event)

    async def close(self) -> None:
        self._subscribers.clear()
        if self._tail is not None:
            self._tail.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._tail

    async def _newest(self) -> str:
        async with self._sessions() as session:
            newest = await session.execute(select(Event.id).order_by(Event.id.desc()).limit(1))
            return newest.scalar_one_or_none() or ""

    async def _follow(self, last: str) -> None:
        while self._subscribers:
            try:
                async with self._sessions() as session:
                    rows = list(
                        (
                            await session.execute(
                                select(Event)
                                .where(Event.id > last, Event.id < horizon_id(SETTLE))
                                .order_by(Event.id)
                                .limit(2000)
                            )
                        ).scalars()
                    )
            except Exception:
                log.exception("event bus: reading events failed; trying again shortly")
                rows = []
            for row in rows:
                self.publish(BusEvent.of(row))
            if rows:
                last = rows[-1].id
            if len(rows) < 2000:
                await asyncio.sleep(self._interval)
