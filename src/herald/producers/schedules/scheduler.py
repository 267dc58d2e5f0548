"""The scheduler's loops: run due schedules, and re-dispatch agent tasks whose dispatcher died."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select

from herald.core.background import Loop
from herald.producers.schedules import service
from herald.storage import claims
from herald.storage.models import ScheduleExecution
from herald.storage.types import utcnow

if TYPE_CHECKING:
    from herald.runtime import Runtime

log = logging.getLogger(__name__)
STUCK_AFTER = timedelta(minutes=5)
BATCH = 500
STUCK_BATCH = 50


async def run_schedules(rt: Runtime) -> int:
    """One pass: run a batch of due schedules; returns how many ran (sent, failed, skipped or dispatched)."""
    counts = await service.run_due(rt, limit=BATCH)
    return counts.sent + counts.failed + counts.skipped + len(counts.tasks)


async def redispatch_stuck(rt: Runtime) -> int:
    """Agent tasks claimed by a process that died before calling the agent: call them now (at-least-once).
    Returns how many."""
    now = utcnow()
    async with rt.sessions.begin() as session:
        # Stamped now: stuck again only after another STUCK_AFTER, if this process dies as well.
        ids = await claims.claim(
            session,
            select(ScheduleExecution.id)
            .where(
                ScheduleExecution.outcome == "dispatching", ScheduleExecution.executed_at < now - STUCK_AFTER
            )
            .limit(STUCK_BATCH),
            lease=claims.Stamp(executed_at=now),
        )
    if ids:
        await service.dispatch_tasks(rt, ids)
    return len(ids)


LOOPS = (
    Loop("schedules", "scheduler", run_pass=run_schedules, interval=1.0, batch=BATCH),
    # Apart from the schedules, so agents that answer slowly never hold up a due schedule.
    Loop("stuck agent tasks", "scheduler", run_pass=redispatch_stuck, interval=1.0, batch=STUCK_BATCH),
)
