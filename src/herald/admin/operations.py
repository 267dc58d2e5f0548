"""What the operations endpoints read: workers that reported lately (``/health``) and the outbox's depth
(``/metrics``). Neither is tenant data."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from herald.pipeline.outbox import QUEUE_DEPTH
from herald.storage.models import WorkerHeartbeat
from herald.storage.types import utcnow


async def live_workers(session: AsyncSession, within: timedelta) -> int:
    """How many workers sent a heartbeat in the last ``within``; raises when the database does not answer."""
    query = select(func.count()).where(WorkerHeartbeat.last_seen >= utcnow() - within)
    return int((await session.execute(query)).scalar_one())


async def queue_depth(session: AsyncSession) -> dict[str, int]:
    """Messages waiting in the outbox, of every tenant, by status (queued, sending, pending_approval); a status
    with none is absent."""
    return {str(status): int(count) for status, count in await session.execute(QUEUE_DEPTH)}
