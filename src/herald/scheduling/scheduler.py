"""The scheduler loop: run due schedules, and re-dispatch agent tasks whose dispatcher died."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

from sqlalchemy import select, update

from herald.runtime import Runtime
from herald.scheduling import service
from herald.storage.models import ScheduleExecution
from herald.storage.types import utcnow

log = logging.getLogger(__name__)
STUCK_AFTER = timedelta(minutes=5)


class Scheduler:
    def __init__(self, rt: Runtime, interval: float = 1.0, batch: int = 500) -> None:
        self.rt = rt
        self.interval = interval
        self.batch = batch

    async def run(self, stop: asyncio.Event) -> None:
        log.info("scheduler started")
        while not stop.is_set():
            try:
                counts = await service.run_due(self.rt, limit=self.batch)
                await self.redispatch_stuck()
            except Exception:
                log.exception("scheduler: a pass failed; trying again shortly")
                counts = service.RunCounts()
            if counts.sent + counts.failed + counts.skipped + len(counts.tasks) >= self.batch:
                continue  # more are due right now
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.interval)
        log.info("scheduler stopped")

    async def redispatch_stuck(self) -> None:
        """Agent tasks claimed by a process that died before calling the agent: call it now (at-least-once)."""
        now = utcnow()
        async with self.rt.sessions.begin() as session:
            query = (
                select(ScheduleExecution.id)
                .where(
                    ScheduleExecution.outcome == "dispatching",
                    ScheduleExecution.executed_at < now - STUCK_AFTER,
                )
                .limit(50)
            )
            if self.rt.dialect == "postgresql":
                query = query.with_for_update(skip_locked=True)
            ids = list((await session.execute(query)).scalars())
            if ids:
                await session.execute(
                    update(ScheduleExecution).where(ScheduleExecution.id.in_(ids)).values(executed_at=now)
                )
        if ids:
            await service.dispatch_tasks(self.rt, ids)
