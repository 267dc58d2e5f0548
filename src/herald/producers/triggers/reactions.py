"""Schedule and monitor triggers: fire when a schedule runs, or when a monitor's alert fires or resolves.

They follow the events table through their own durable cursor, so a trigger reacts to what every scheduler
and monitor process does, survives restarts, and never holds up the run or the alert that caused it. A firing
records the event's id in its payload digest, so an event handed over twice (at least once) fires once.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, tuple_

from herald.core.background import Loop
from herald.events import feed
from herald.producers.triggers import service
from herald.storage.models import Event, Trigger, TriggerFiring

if TYPE_CHECKING:
    from herald.runtime import Runtime

log = logging.getLogger(__name__)
CURSOR = "triggers"
SETTLE = timedelta(seconds=10)  # as the subscription fan-out: events of slow transactions commit late
SOURCES = {"alert.firing": "monitor", "alert.resolved": "monitor", "schedule.executed": "schedule"}
ALERT_STATES = ("firing", "resolved")


def matches(trigger: Trigger, event: Event) -> bool:
    """Whether ``event`` fires ``trigger`` (its type, the schedule or monitor it names, the alert states)."""
    if trigger.trigger_type != SOURCES.get(event.type) or event.created_at < trigger.created_at:
        return False
    config = trigger.config
    if trigger.trigger_type == "monitor":
        if config.get("monitor_id") not in (None, event.subject_id):
            return False
        return event.type.removeprefix("alert.") in (config.get("states") or ["firing"])
    return config.get("schedule_id") in (None, event.subject_id)


def payload_of(event: Event) -> dict[str, Any]:
    """What the task template sees: the event's data plus which schedule or monitor it came from."""
    subject = "monitor_id" if event.type.startswith("alert.") else "schedule_id"
    return {**event.data, "event": event.type, "event_id": event.id, subject: event.subject_id,
            "at": event.created_at.isoformat()}  # fmt: skip


async def react(rt: Runtime, *, limit: int = 500) -> int:
    """Fire the triggers that new schedule runs and alerts call for; returns how many events were read."""

    async def handle(events: list[Event]) -> None:
        await _fire_for(rt, events)

    return await feed.consume(rt, CURSOR, handle, settle=SETTLE, limit=limit, types=tuple(SOURCES))


async def _fire_for(rt: Runtime, events: list[Event]) -> None:
    async with rt.sessions() as session:
        triggers = list(
            (
                await session.execute(
                    select(Trigger).where(
                        Trigger.tenant_id.in_({e.tenant_id for e in events}),
                        Trigger.trigger_type.in_(("monitor", "schedule")),
                        Trigger.is_active.is_(True),
                        Trigger.deleted.is_(False),
                    )
                )
            ).scalars()
        )
        work = [
            (trigger, payload, service.digest(payload))
            for event in events
            for trigger in triggers
            if trigger.tenant_id == event.tenant_id and matches(trigger, event)
            for payload in (payload_of(event),)
        ]
        if not work:
            return
        found = (
            await session.execute(
                select(TriggerFiring.trigger_id, TriggerFiring.payload_digest).where(
                    tuple_(TriggerFiring.trigger_id, TriggerFiring.payload_digest).in_(
                        [(t.id, d) for t, _, d in work]
                    )
                )
            )
        ).all()
        done = {(trigger_id, digest) for trigger_id, digest in found}
    for trigger, payload, digest in work:
        if (trigger.id, digest) not in done:
            await service.fire(rt, trigger, payload, source=trigger.trigger_type, call_now=False)


async def run_pass(rt: Runtime) -> int:
    """One pass: react to new events, then make agent calls a dead process left owed; returns how many."""
    return await react(rt) + await service.recover(rt)


# Any work at all runs the pass again at once; otherwise twice a second.
LOOPS = (Loop("trigger reactions", "scheduler", run_pass=run_pass, interval=0.5, batch=1),)
