"""Reading the events table in order: from a named durable cursor, or (for the API's list and stream) after an
event id the client gives.

Event ids are time-ordered, but a transaction that started earlier can commit later; readers therefore stay a
settle time behind the newest events, so an event whose transaction commits a little late is not skipped. Each
consumer (subscriptions, triggers) keeps its own cursor, claimed with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL
so one process at a time advances it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from herald.storage import claims, sql
from herald.storage.models import Event, EventCursor
from herald.storage.types import utcnow

if TYPE_CHECKING:
    from herald.runtime import Runtime


@dataclass(slots=True)
class Batch:
    """Events after a cursor, and where the cursor goes once they are handled."""

    cursor: EventCursor | None
    events: list[Event]
    upto: str

    def advance(self) -> None:
        if self.cursor is not None:
            self.cursor.last_event_id = self.upto


def horizon_id(settle: timedelta, *, before: datetime | None = None) -> str:
    """The smallest event id created after ``now - settle`` (ids start with their creation time), or after
    ``before`` when that is earlier."""
    cutoff = utcnow() - settle
    if before is not None:
        cutoff = min(cutoff, before)
    return f"evt_{int(cutoff.timestamp() * 1000):012x}"


async def safe_horizon(session: AsyncSession, dialect: str, settle: timedelta) -> str:
    """The id below which every event is committed or never will be: a settle time behind now, and on
    PostgreSQL also behind the oldest open writing transaction (a long bulk insert, say)."""
    oldest = None
    if dialect == "postgresql":
        oldest = (await session.execute(sql.OLDEST_WRITER)).scalar_one_or_none()
        if oldest is not None:
            oldest = oldest - timedelta(seconds=1)  # margin for the clocks of the hosts that build ids
    return horizon_id(settle, before=oldest)


async def claim(
    session: AsyncSession,
    dialect: str,
    name: str,
    *,
    settle: timedelta,
    limit: int,
    types: tuple[str, ...] = (),
) -> Batch:
    """The cursor (locked for this transaction) and the events after it, of ``types`` if given. The cursor is
    ``None`` when another process holds it or it was only just created."""
    held = await claims.claim(session, select(EventCursor).where(EventCursor.name == name))
    cursor = held[0] if held else None
    if cursor is None:
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        await session.execute(
            insert(EventCursor)
            .values(name=name, last_event_id="")
            .on_conflict_do_nothing(index_elements=["name"])
        )
        return Batch(None, [], "")
    horizon = await safe_horizon(session, dialect, settle)
    wanted = select(Event).where(Event.id > cursor.last_event_id, Event.id < horizon)
    if types:
        wanted = wanted.where(Event.type.in_(types))
    events = list((await session.execute(wanted.order_by(Event.id).limit(limit))).scalars())
    # A short page means everything before the horizon is read; skipping to it keeps a filtered reader from
    # rescanning the same unwanted events on every pass.
    upto = events[-1].id if len(events) == limit else max(horizon, cursor.last_event_id)
    return Batch(cursor, events, upto)


Handler = Callable[[list[Event]], Awaitable[None]]


async def consume(
    rt: Runtime, name: str, handle: Handler, *, settle: timedelta, limit: int, types: tuple[str, ...] = ()
) -> int:
    """Hand the next events to ``handle``, then advance the cursor: at least once, in order.

    ``handle`` works in its own sessions. On PostgreSQL the cursor stays locked meanwhile, so concurrent
    consumers skip rather than repeat; SQLite has one writer process, so the cursor is read, handled and moved
    in separate transactions (its single connection cannot be held while ``handle`` writes).
    """
    if rt.dialect == "postgresql":
        async with rt.sessions.begin() as session:
            batch = await claim(session, rt.dialect, name, settle=settle, limit=limit, types=types)
            if batch.events:
                await handle(batch.events)
            batch.advance()
        return len(batch.events)
    async with rt.sessions.begin() as session:
        batch = await claim(session, rt.dialect, name, settle=settle, limit=limit, types=types)
        start = batch.cursor.last_event_id if batch.cursor is not None else None
    if start is None:
        return 0
    if batch.events:
        await handle(batch.events)
    async with rt.sessions.begin() as session:
        await session.execute(
            update(EventCursor)
            .where(EventCursor.name == name, EventCursor.last_event_id == start)
            .values(last_event_id=batch.upto)
        )
    return len(batch.events)


async def tenant_events(
    session: AsyncSession, tenant_id: str, *, after: str | None, types: Collection[str] = (), limit: int
) -> list[Event]:
    """The tenant's events after the event id ``after`` (from the first when None), oldest first, of ``types``
    (all when empty): ``GET /api/v1/events`` and the stream's catch-up after ``Last-Event-ID``."""
    query = select(Event).where(Event.tenant_id == tenant_id, Event.id > (after or ""))
    if types:
        query = query.where(Event.type.in_(types))
    return list((await session.execute(query.order_by(Event.id).limit(limit))).scalars())
