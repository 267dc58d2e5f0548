"""Checking monitors and the alert lifecycle.

A pass claims due monitors (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so processes share the work and none
checks one twice) and moves their next check forward, then evaluates them concurrently, each within a timeout,
outside any transaction, then records the outcomes and alerts in one transaction.

States: ``ok → pending → firing → resolved`` (``for_seconds`` keeps a true condition pending before it fires; a
clear threshold gives hysteresis), plus ``no_data`` and ``error`` handled per monitor (treat as ok, as firing, or
keep the last state). A notice goes out on entering firing, repeats at most once per throttle window while
firing, and a resolved notice follows only a firing notice that was sent. Snoozed monitors send nothing; mute
windows delay notices until the window ends.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from herald.core.background import Loop
from herald.core.errors import RequestError
from herald.core.ids import new_id
from herald.core.intent import Intent, Priority
from herald.core.principal import Principal
from herald.core.status import Status
from herald.pipeline import accept as messages
from herald.pipeline.routing.quiet_hours import QuietHours
from herald.producers.monitors import analysis, conditions, sources
from herald.storage import claims
from herald.storage.audit import event_row
from herald.storage.models import Event, Monitor, MonitorAlert
from herald.storage.types import utcnow

if TYPE_CHECKING:
    from herald.runtime import Runtime

log = logging.getLogger(__name__)
BATCH = 500
DEFAULT_TEMPLATE = "{{monitor_name}} is {{state}}: value {{value}} (threshold {{threshold}}) since {{since}}"


@dataclass
class Outcome:
    """What one check found."""

    monitor_id: str
    evaluation: conditions.Evaluation | None
    error: str | None = None


async def check(rt: Runtime, monitor: Monitor, read_timeout: float) -> conditions.Evaluation:
    """Evaluate a monitor's condition now (reads its sources concurrently, each bounded by ``read_timeout``)."""
    condition = conditions.parse_condition(monitor.condition)
    ctx = sources.SourceContext(tenant_id=monitor.tenant_id, agent_id=monitor.agent_id, timeout=read_timeout)

    async def read(leaf: conditions.Leaf) -> tuple[float | str | None, str | None]:
        return await sources.read(rt, ctx, leaf)

    return await conditions.evaluate(condition, read)


async def run_due(
    rt: Runtime, *, limit: int = BATCH, concurrency: int = 100, read_timeout: float = 10.0
) -> int:
    """Check every monitor due now (one batch); returns how many were checked."""
    now = utcnow()

    def lease(monitor: Monitor) -> None:
        # From the due time, not from now: a check's lag must not push every later check back.
        interval = timedelta(seconds=monitor.check_interval_seconds)
        monitor.next_check_at = max((monitor.next_check_at or now) + interval, now)
        monitor.last_check_at = now

    query = (
        select(Monitor)
        .where(Monitor.status == "active", Monitor.next_check_at <= now)
        .order_by(Monitor.next_check_at)
        .limit(limit)
    )
    async with rt.sessions.begin() as session:
        due = await claims.claim(session, query, lease=lease)
    if not due:
        return 0
    gate = asyncio.Semaphore(concurrency)

    async def one(monitor: Monitor) -> Outcome:
        async with gate:
            try:
                async with asyncio.timeout(read_timeout + 1):
                    return Outcome(monitor.id, await check(rt, monitor, read_timeout))
            except Exception as exc:  # a broken monitor must never stop the loop
                return Outcome(monitor.id, None, f"{type(exc).__name__}: {exc}")

    outcomes = await asyncio.gather(*(one(m) for m in due))
    async with rt.sessions.begin() as session:
        ids = [o.monitor_id for o in outcomes]
        fresh = {
            m.id: m for m in (await session.execute(select(Monitor).where(Monitor.id.in_(ids)))).scalars()
        }
        for outcome in outcomes:
            current = fresh.get(outcome.monitor_id)
            if current is not None and current.status == "active":
                await apply(rt, session, current, outcome, utcnow())
    return len(due)


@dataclass
class _Reading:
    triggered: bool | None
    value: float | str | None
    trouble: str | None  # "no_data" or "error" when undecided
    error: str | None
    leaves: list[conditions.LeafResult] = field(default_factory=list)


def _reading(outcome: Outcome) -> _Reading:
    ev = outcome.evaluation
    if ev is None:
        return _Reading(None, None, "error", outcome.error)
    trouble = ev.state if ev.triggered is None and ev.state in ("no_data", "error") else None
    if ev.triggered is None and trouble is None:
        trouble = "no_data"
    return _Reading(ev.triggered, ev.value, trouble, ev.error, list(ev.leaves))


async def apply(
    rt: Runtime, session: AsyncSession, monitor: Monitor, outcome: Outcome, now: datetime
) -> None:
    """Move the monitor along its lifecycle and send the notices the move calls for."""
    reading = _reading(outcome)
    monitor.last_error = reading.error
    if reading.value is not None:
        monitor.last_value = {"value": reading.value, "at": now.isoformat()}
    triggered = reading.triggered
    if triggered is None:
        policy = monitor.error_policy if reading.trouble == "error" else monitor.no_data_policy
        if policy == "ok":
            triggered = False
        elif policy == "firing":
            triggered = True
        else:  # keep the last state; show the trouble unless something is firing
            if monitor.state not in ("firing", "pending"):
                _move(monitor, reading.trouble or "no_data", now)
            monitor.updated_at = now
            return
    if triggered:
        await _on_true(rt, session, monitor, reading, now)
    else:
        await _on_false(rt, session, monitor, reading, now)
    monitor.updated_at = now


def _move(monitor: Monitor, state: str, now: datetime) -> None:
    if monitor.state != state:
        monitor.state = state
        monitor.state_since = now


async def _on_true(
    rt: Runtime, session: AsyncSession, monitor: Monitor, reading: _Reading, now: datetime
) -> None:
    if monitor.state != "firing":
        if monitor.for_seconds > 0:
            if monitor.state != "pending" or monitor.pending_since is None:
                monitor.pending_since = now
                _move(monitor, "pending", now)
                return
            if (now - monitor.pending_since).total_seconds() < monitor.for_seconds:
                return
        _move(monitor, "firing", now)
        monitor.pending_since = None
        monitor.firing_notified = False
        monitor.trigger_count += 1
    if not monitor.firing_notified:
        if await _notify(rt, session, monitor, "firing", reading.value, now):
            monitor.firing_notified = True
            monitor.last_notified_at = now
    elif (
        monitor.last_notified_at
        and (now - monitor.last_notified_at).total_seconds() >= monitor.throttle_seconds
        and await _notify(rt, session, monitor, "repeat", reading.value, now)
    ):
        monitor.last_notified_at = now


async def _on_false(
    rt: Runtime, session: AsyncSession, monitor: Monitor, reading: _Reading, now: datetime
) -> None:
    if monitor.state == "firing":
        if not _cleared(monitor, reading):
            return  # hysteresis: not back past the clear threshold yet
        _move(monitor, "resolved", now)
        if monitor.firing_notified:
            await _notify(rt, session, monitor, "resolved", reading.value, now)
        monitor.firing_notified = False
        return
    monitor.pending_since = None
    _move(monitor, "ok", now)


def _cleared(monitor: Monitor, reading: _Reading) -> bool:
    condition = conditions.parse_condition(monitor.condition)
    if isinstance(condition, conditions.Leaf) and isinstance(reading.value, int | float):
        return conditions.is_clear(float(reading.value), condition.threshold)
    return True


def mute_end(monitor: Monitor, now: datetime) -> datetime | None:
    """If ``now`` falls in one of the monitor's mute windows, when that window ends."""
    ends = []
    for window in monitor.mute_windows:
        quiet = QuietHours(start=window["start"], end=window["end"])
        end = quiet.window_end(now, window.get("timezone") or "UTC")
        if end is not None:
            ends.append(end)
    return max(ends) if ends else None


def plain(value: Any) -> Any:
    """Whole floats as ints, so 100.0 reads as 100 in a message."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def threshold_text(monitor: Monitor) -> str:
    condition = conditions.parse_condition(monitor.condition)
    if isinstance(condition, conditions.Leaf):
        unit = condition.threshold.unit or ""
        return f"{plain(condition.threshold.value)}{unit}"
    return conditions.describe(condition)


async def _notify(
    rt: Runtime, session: AsyncSession, monitor: Monitor, kind: str, value: Any, now: datetime
) -> bool:
    """Send a notice to every platform of the monitor; returns False when snoozed (nothing sent)."""
    if monitor.snoozed_until and monitor.snoozed_until > now:
        return False
    held_until = mute_end(monitor, now)
    state = "resolved" if kind == "resolved" else "firing"
    variables = {
        "value": plain(value), "threshold": threshold_text(monitor), "monitor_name": monitor.name, "state": state,
        "since": monitor.state_since.isoformat(),
    }  # fmt: skip
    principal = Principal(tenant_id=monitor.tenant_id, key_id=monitor.id, is_admin=False, kind="monitor")
    prepared: list[messages.Prepared] = []
    errors: list[str] = []
    sent_to: list[str] = []
    for target in monitor.platforms:
        intent = Intent(
            agent_id=monitor.agent_id, platform=target.get("platform"), recipient_id=target.get("recipient_id"),
            contact_id=target.get("contact_id"), content=monitor.alert_template or DEFAULT_TEMPLATE,
            template_variables=variables, priority=Priority(monitor.priority), scheduled_for=held_until,
        )  # fmt: skip
        try:
            prepared.append(await messages.prepare(rt, session, principal, intent))
            sent_to.append(str(target.get("platform") or target.get("contact_id")))
        except RequestError as exc:
            errors.append(f"{target.get('platform')}: {exc.detail}")
    await messages.write(rt, session, prepared)
    # Seed 002's "Send alert and analyze": a monitor with an action wakes its agent with the alert (after commit,
    # by the analysis loop), so a firing is never only a notice, nor silently nothing.
    analyze = bool(monitor.action) and kind != "resolved"
    status = "analyzing" if analyze and not monitor.platforms else _alert_status(prepared, held_until)
    if not monitor.platforms and not analyze:
        errors.append("the monitor has no platforms to notify and no action for its agent")
    await session.execute(
        insert(MonitorAlert),
        [{
            "id": new_id("alr"), "tenant_id": monitor.tenant_id, "monitor_id": monitor.id, "kind": kind,
            "condition_value": {"value": value}, "threshold_value": conditions.as_dict(
                conditions.parse_condition(monitor.condition)
            ).get("threshold_config"),
            "alert_message": str(prepared[0].values["content"]) if prepared else None,
            "platforms_sent": sent_to, "message_ids": [str(p.values["id"]) for p in prepared],
            "status": status, "error": "; ".join(errors) or None, "triggered_at": now,
            "analysis_status": "pending" if analyze else None, "analysis_due_at": now if analyze else None,
            "sent_at": now if prepared and not held_until else None,
        }],
    )  # fmt: skip
    event_type = "alert.resolved" if kind == "resolved" else "alert.firing"
    detail = {"monitor_name": monitor.name, "value": value, "kind": kind, "status": status}
    await session.execute(
        insert(Event), [event_row(monitor.tenant_id, event_type, monitor.id, detail, at=now)]
    )
    return True


def _alert_status(prepared: list[messages.Prepared], held_until: datetime | None) -> str:
    if not prepared:
        return "failed"
    if held_until:
        return "muted"
    if all(p.values["status"] == Status.PENDING_APPROVAL for p in prepared):
        return "pending_approval"
    return "queued"


# A full batch runs the pass again at once; otherwise five times a second, so a check is at most that late.
LOOPS = (
    Loop("monitors", "scheduler", run_pass=run_due, interval=0.2, batch=BATCH),
    Loop("monitor analyses", "scheduler", run_pass=analysis.run_due, interval=0.5, batch=analysis.BATCH),
)
