"""Monitors: creation (condition, sources, platforms and template validated), presets, pushed values,
pause/resume/snooze, alert history and figures."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from herald.core.errors import Conflict, NotFound, ValidationFailed
from herald.core.ids import new_id
from herald.core.platforms import PLATFORMS, recipient_problem
from herald.core.principal import Principal
from herald.core.timezones import zone_problem
from herald.pipeline import templates
from herald.pipeline.enrolment import require_agent
from herald.pipeline.routing.quiet_hours import QuietHours
from herald.producers.monitors import conditions, engine, sources
from herald.storage.audit import audit_row
from herald.storage.models import AuditEntry, Channel, Contact, DataSource, MetricValue, Monitor, MonitorAlert
from herald.storage.queries import referenced
from herald.storage.types import utcnow

if TYPE_CHECKING:
    from herald.runtime import Runtime

POLICIES = ("ok", "firing", "keep")
TARGET_KEYS = ("platform", "recipient_id", "contact_id")
WINDOW_KEYS = ("start", "end", "timezone")
ALERT_VARIABLES = {"value": 0, "threshold": 0, "monitor_name": "", "state": "", "since": ""}
PRESETS: list[dict[str, Any]] = [
    {"name": "High Inbox Volume", "condition_type": "inbox_volume",
     "threshold_config": {"metric": "unread_count", "operator": ">", "value": 100}, "check_interval_seconds": 300},
    {"name": "Task Backlog Alert", "condition_type": "task_backlog",
     "threshold_config": {"metric": "pending_tasks", "operator": ">=", "value": 50}, "check_interval_seconds": 300},
    {"name": "Delivery Error Rate", "condition_type": "api_metrics",
     "threshold_config": {"metric": "error_rate", "operator": ">", "value": 5, "unit": "%"},
     "check_interval_seconds": 60},
    {"name": "Queue Depth", "condition_type": "api_metrics",
     "threshold_config": {"metric": "queue_depth", "operator": ">", "value": 1000}, "check_interval_seconds": 60},
]  # fmt: skip


@dataclass
class MonitorSpec:
    # None: the tenant's own monitor, whose notices go out as the tenant's messages (like OTP codes): no
    # agent speaks, so no maturity level holds them, and there is no agent to analyse an alert.
    agent_id: str | None
    name: str
    condition: dict[str, Any]
    platforms: list[dict[str, Any]] = field(default_factory=list)
    alert_template: str | None = None
    check_interval_seconds: int = 300
    for_seconds: int = 0
    throttle_seconds: int = 900
    priority: int = 2
    no_data_policy: str = "keep"
    error_policy: str = "keep"
    mute_windows: list[dict[str, Any]] = field(default_factory=list)
    workspace_id: str | None = None
    condition_text: str | None = None
    action: str | None = None


def _plain_strings(item: Any, keys: tuple[str, ...], *, field: str) -> None:
    """``item`` is an object of only ``keys``, each a string (or null): a typo is a 422, not silently kept."""
    if not isinstance(item, dict):
        raise ValidationFailed(f"must be an object with {', '.join(keys)}", field=field)
    for key, value in item.items():
        if key not in keys:
            raise ValidationFailed(f"unknown key; the keys are {', '.join(keys)}", field=f"{field}.{key}")
        if value is not None and not isinstance(value, str):
            raise ValidationFailed("must be a string", field=f"{field}.{key}")


async def _validate_sources(
    rt: Runtime, session: AsyncSession, tenant_id: str, condition: conditions.Condition
) -> None:
    """Each leaf's source settings; a database source must answer, an HTTP source's URL pass the outbound guard,
    a channel named for Herald's own figures be the tenant's."""
    for leaf in conditions.leaves_of(condition):
        where = "condition" if isinstance(condition, conditions.Leaf) else "composite_conditions"
        sources.validate_source(leaf, field=where)
        if leaf.source.get("channel_id") is not None:
            field = "channel_id" if isinstance(condition, conditions.Leaf) else where
            await referenced(session, Channel, tenant_id, leaf.source["channel_id"], "channel", field=field)
        if leaf.condition_type == "database_query" and leaf.source.get("data_source_id") is not None:
            await referenced(session, DataSource, tenant_id, leaf.source["data_source_id"], "data source",
                             field=f"{where}.data_source_id")  # fmt: skip
        elif leaf.condition_type == "database_query":
            await sources.probe(rt, leaf, field=where)
        elif leaf.condition_type == "api_metrics" and leaf.source.get("url"):
            await rt.outbound.validate_url(str(leaf.source["url"]).strip(), field=f"{where}.url")


async def _validate(rt: Runtime, session: AsyncSession, principal: Principal, spec: MonitorSpec) -> None:
    if spec.agent_id is not None:
        await require_agent(rt, session, principal, spec.agent_id)
    elif spec.action:
        raise ValidationFailed(
            "an action is a task for the monitor's agent: give agent_id, or leave action out to only notify",
            field="agent_id",
        )
    await _validate_sources(rt, session, principal.tenant_id, conditions.parse_condition(spec.condition))
    for index, target in enumerate(spec.platforms):
        _plain_strings(target, TARGET_KEYS, field=f"platforms.{index}")
        platform, recipient = target.get("platform"), target.get("recipient_id")
        if target.get("contact_id") is not None:
            await referenced(session, Contact, principal.tenant_id, target["contact_id"], "contact",
                             field=f"platforms.{index}.contact_id")  # fmt: skip
            continue
        if platform not in PLATFORMS or not recipient:
            raise ValidationFailed(
                "each entry needs a known platform and a recipient_id", field=f"platforms.{index}"
            )
        problem = recipient_problem(str(platform), str(recipient))
        if problem:
            raise ValidationFailed(problem, field=f"platforms.{index}.recipient_id")
    if spec.alert_template:
        templates.validate(spec.alert_template, ALERT_VARIABLES, field="alert_template")
    for name in ("no_data_policy", "error_policy"):
        if getattr(spec, name) not in POLICIES:
            raise ValidationFailed(f"must be one of {', '.join(POLICIES)}", field=name)
    for index, window in enumerate(spec.mute_windows):
        _plain_strings(window, WINDOW_KEYS, field=f"mute_windows.{index}")
        zone = zone_problem(window["timezone"]) if window.get("timezone") is not None else None
        if zone:
            raise ValidationFailed(zone, field=f"mute_windows.{index}.timezone")
        try:
            QuietHours(start=window.get("start", ""), end=window.get("end", ""))
        except ValueError as exc:
            raise ValidationFailed(
                f"mute window needs start and end as HH:MM: {exc}", field=f"mute_windows.{index}"
            ) from exc


def _built(principal: Principal, spec: MonitorSpec) -> Monitor:
    """A monitor as ``spec`` describes it, not yet added to any session."""
    now = utcnow()
    return Monitor(
        id=new_id("mon"), tenant_id=principal.tenant_id, agent_id=spec.agent_id, name=spec.name,
        workspace_id=spec.workspace_id, condition=conditions.as_dict(conditions.parse_condition(spec.condition)),
        condition_text=spec.condition_text, action=spec.action, platforms=spec.platforms,
        alert_template=spec.alert_template, check_interval_seconds=spec.check_interval_seconds,
        for_seconds=spec.for_seconds, throttle_seconds=spec.throttle_seconds, priority=spec.priority,
        no_data_policy=spec.no_data_policy, error_policy=spec.error_policy, mute_windows=spec.mute_windows,
        snoozed_until=None, status="active", state="ok", state_since=now, next_check_at=now,
        firing_notified=False, trigger_count=0, created_at=now, updated_at=now,
    )  # fmt: skip


async def create(rt: Runtime, session: AsyncSession, principal: Principal, spec: MonitorSpec) -> Monitor:
    await _validate(rt, session, principal, spec)
    monitor = _built(principal, spec)
    session.add(monitor)
    await session.flush()
    await _audit(session, principal, "monitor.created", monitor.id)
    return monitor


async def _audit(
    session: AsyncSession,
    principal: Principal,
    action: str,
    monitor_id: str,
    detail: dict[str, Any] | None = None,
) -> None:
    await session.execute(
        insert(AuditEntry),
        [audit_row(principal.tenant_id, principal.actor, action, "monitor", monitor_id, detail)],
    )


async def get(session: AsyncSession, tenant_id: str, monitor_id: str) -> Monitor:
    monitor = (
        await session.execute(
            select(Monitor).where(
                Monitor.id == monitor_id, Monitor.tenant_id == tenant_id, Monitor.status != "deleted"
            )
        )
    ).scalar_one_or_none()
    if monitor is None:
        raise NotFound(f"no monitor {monitor_id!r}")
    return monitor


async def list_monitors(
    session: AsyncSession,
    tenant_id: str,
    *,
    status: str | None,
    workspace_id: str | None,
    limit: int,
    cursor: str | None,
) -> list[Monitor]:
    query = select(Monitor).where(Monitor.tenant_id == tenant_id, Monitor.status != "deleted")
    if status is not None:
        query = query.where(Monitor.status == status)
    if workspace_id is not None:
        query = query.where(Monitor.workspace_id == workspace_id)
    if cursor is not None:
        query = query.where(Monitor.id > cursor)
    return list((await session.execute(query.order_by(Monitor.id).limit(limit))).scalars())


async def set_status(session: AsyncSession, principal: Principal, monitor_id: str, status: str) -> Monitor:
    monitor = await get(session, principal.tenant_id, monitor_id)
    wanted_from = {"paused": "active", "active": "paused"}.get(status)
    if wanted_from is not None and monitor.status != wanted_from:
        raise Conflict(f"monitor {monitor_id} is {monitor.status}")
    now = utcnow()
    monitor.status = status
    monitor.updated_at = now
    if status == "active":
        monitor.next_check_at = now
    await _audit(
        session,
        principal,
        f"monitor.{ {'paused': 'paused', 'active': 'resumed'}.get(status, status) }",
        monitor_id,
    )
    return monitor


async def snooze(
    session: AsyncSession, principal: Principal, monitor_id: str, until: datetime | None
) -> Monitor:
    monitor = await get(session, principal.tenant_id, monitor_id)
    monitor.snoozed_until = until
    monitor.updated_at = utcnow()
    await _audit(
        session, principal, "monitor.snoozed", monitor_id, {"until": until.isoformat() if until else None}
    )
    return monitor


def text_condition(text: str) -> dict[str, Any]:
    """Seed 002's free-text condition (``"CPU usage > 80%"``) as a stored condition on the pushed metric."""
    threshold = conditions.parse_condition_text(text)
    return conditions.as_dict(conditions.Leaf("metric", threshold, {}))


async def update_task_monitor(
    session: AsyncSession,
    tenant_id: str,
    monitor_id: str,
    *,
    name: str | None = None,
    condition_text: str | None = None,
    action: str | None = None,
    check_interval_seconds: int | None = None,
    for_seconds: int | None = None,
    throttle_seconds: int | None = None,
) -> Monitor:
    """Seed 002's PATCH: change what is given (None keeps), the condition as free text; ``for_seconds`` (how long
    the condition must hold before an alert fires) and ``throttle_seconds`` (the least time between notices) are
    the hysteresis a noisy monitor needs (herald.learning.suggestions proposes them)."""
    monitor = await get(session, tenant_id, monitor_id)
    if for_seconds is not None:
        monitor.for_seconds = for_seconds
    if throttle_seconds is not None:
        monitor.throttle_seconds = throttle_seconds
    if condition_text is not None:
        monitor.condition = text_condition(condition_text)
        monitor.condition_text = condition_text
    if name is not None:
        monitor.name = name
    if action is not None:
        monitor.action = action
    if check_interval_seconds is not None:
        monitor.check_interval_seconds = check_interval_seconds
    return monitor


async def check_now(rt: Runtime, tenant_id: str, monitor_id: str) -> Monitor:
    """Check at once and move the lifecycle, alerts included (seed 002's check, unlike :func:`test_now`); the
    check's own failure is the monitor's error state. Answers the monitor as it is after the commit."""
    async with rt.sessions() as session:
        monitor = await get(session, tenant_id, monitor_id)
    try:
        outcome = engine.Outcome(monitor.id, await engine.check(rt, monitor, read_timeout=10.0))
    except Exception as exc:
        outcome = engine.Outcome(monitor.id, None, f"{type(exc).__name__}: {exc}")
    async with rt.sessions.begin() as session:
        fresh = await session.get(Monitor, monitor.id)
        if fresh is None:
            raise NotFound(f"no monitor {monitor_id!r}")
        await engine.apply(rt, session, fresh, outcome, utcnow())
    return fresh


async def push_values(session: AsyncSession, tenant_id: str, values: list[dict[str, Any]]) -> int:
    now = utcnow()
    rows = [
        {"id": new_id("mv"), "tenant_id": tenant_id, "name": conditions.normalise_metric(str(v["name"])),
         "value": float(v["value"]), "labels": v.get("labels") or {}, "observed_at": v.get("time") or now}
        for v in values
    ]  # fmt: skip
    if rows:
        await session.execute(insert(MetricValue), rows)
    return len(rows)


async def alerts(
    session: AsyncSession, tenant_id: str, *, monitor_id: str | None, limit: int, cursor: str | None
) -> list[MonitorAlert]:
    query = select(MonitorAlert).where(MonitorAlert.tenant_id == tenant_id)
    if monitor_id is not None:
        query = query.where(MonitorAlert.monitor_id == monitor_id)
    if cursor is not None:
        query = query.where(MonitorAlert.id < cursor)
    return list((await session.execute(query.order_by(MonitorAlert.id.desc()).limit(limit))).scalars())


async def figures(session: AsyncSession, tenant_id: str) -> dict[str, int]:
    since = utcnow() - timedelta(hours=24)
    mine = Monitor.tenant_id == tenant_id
    total = (
        await session.execute(select(func.count()).where(mine, Monitor.status != "deleted"))
    ).scalar_one()
    active = (
        await session.execute(select(func.count()).where(mine, Monitor.status == "active"))
    ).scalar_one()
    theirs = MonitorAlert.tenant_id == tenant_id
    all_alerts = (await session.execute(select(func.count()).where(theirs))).scalar_one()
    pending = (
        await session.execute(
            select(func.count()).where(theirs, MonitorAlert.status.in_(("pending_approval", "muted")))
        )
    ).scalar_one()
    recent = (
        await session.execute(select(func.count()).where(theirs, MonitorAlert.triggered_at >= since))
    ).scalar_one()
    return {"total_monitors": total, "active_monitors": active, "total_alerts": all_alerts,
            "pending_alerts": pending, "alerts_last_24h": recent}  # fmt: skip


async def test_unsaved(rt: Runtime, principal: Principal, spec: MonitorSpec) -> dict[str, Any]:
    """Evaluate a monitor before it is created ("Test now" on a form): checked as :func:`create` checks it, then
    evaluated as :func:`test_now` evaluates a saved one, and never stored (its ``monitor_id`` is empty)."""
    async with rt.sessions() as session:
        await _validate(rt, session, principal, spec)
    monitor = _built(principal, spec)
    monitor.id = ""
    return await test_now(rt, monitor)


async def test_now(rt: Runtime, monitor: Monitor) -> dict[str, Any]:
    """Evaluate without changing the monitor's state (seed 000's test)."""
    evaluation = await engine.check(rt, monitor, read_timeout=10.0)
    condition = conditions.parse_condition(monitor.condition)
    threshold = (
        conditions.as_dict(condition).get("threshold_config")
        if isinstance(condition, conditions.Leaf)
        else conditions.describe(condition)
    )
    return {
        "monitor_id": monitor.id, "monitor_name": monitor.name, "condition_type": monitor.condition.get("condition_type"),
        "triggered": bool(evaluation.triggered), "state": evaluation.state, "current_value": evaluation.value,
        "threshold": threshold, "error": evaluation.error, "timestamp": utcnow().isoformat(),
    }  # fmt: skip
