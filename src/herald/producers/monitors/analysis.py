"""Waking a monitor's agent with its alert (seed 002's ``"action": "Send alert and analyze"``).

An alert of a monitor with an ``action`` is stored owing an analysis. This loop claims owed analyses (leased,
so a process that dies mid-call leaves the analysis to another), wakes the agent with the condition, the value
and the action text, and sends its answer to the monitor's platforms, or to the agent's default recipient when the
monitor has none; with neither, the answer is kept on the alert, which ends ``answered``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update

from herald.core.errors import RequestError
from herald.core.intent import Intent, Priority
from herald.core.principal import Principal
from herald.core.status import Status
from herald.pipeline import accept as messages
from herald.producers import callbacks
from herald.producers.monitors import conditions
from herald.storage import claims
from herald.storage.models import Agent, Monitor, MonitorAlert
from herald.storage.types import utcnow

if TYPE_CHECKING:
    from herald.runtime import Runtime

BATCH = 10
LEASE = timedelta(minutes=5)  # longer than an agent run's default timeout; an expired lease is taken again


async def run_due(rt: Runtime, *, limit: int = BATCH) -> int:
    """Claim owed analyses and make them; returns how many were claimed."""
    now = utcnow()
    async with rt.sessions.begin() as session:
        alert_ids = await claims.claim(
            session,
            select(MonitorAlert.id)
            .where(MonitorAlert.analysis_status == "pending", MonitorAlert.analysis_due_at <= now)
            .order_by(MonitorAlert.analysis_due_at)
            .limit(limit),
            lease=claims.Stamp(analysis_due_at=now + LEASE),
        )
    for alert_id in alert_ids:
        await analyze(rt, alert_id)
    return len(alert_ids)


async def analyze(rt: Runtime, alert_id: str) -> None:
    async with rt.sessions() as session:
        alert = await session.get(MonitorAlert, alert_id)
        monitor = await session.get(Monitor, alert.monitor_id) if alert else None
        agent = await session.get(Agent, (monitor.tenant_id, monitor.agent_id)) if monitor else None
    if alert is None or monitor is None:
        return
    data = _alert_data(monitor, alert)
    try:
        answer = await rt.agents.ask(agent, "monitor.alert", data, origin=f"monitor_alert:{alert.id}",
                                     message_id=alert.id, task=_task(monitor, alert))  # fmt: skip
    except callbacks.CallbackFailed as exc:
        await _settle(rt, alert, analysis="failed", error=str(exc))
        return
    await _deliver(rt, monitor, alert, answer)


def _alert_data(monitor: Monitor, alert: MonitorAlert) -> dict[str, Any]:
    return {
        "monitor_id": monitor.id, "alert_id": alert.id, "name": monitor.name, "workspace_id": monitor.workspace_id,
        "condition": monitor.condition_text or conditions.describe(conditions.parse_condition(monitor.condition)),
        "value": (alert.condition_value or {}).get("value"), "threshold": alert.threshold_value,
        "action": monitor.action, "kind": alert.kind, "triggered_at": alert.triggered_at.isoformat(),
    }  # fmt: skip


def _task(monitor: Monitor, alert: MonitorAlert) -> str:
    parsed = conditions.parse_condition(monitor.condition)
    condition = monitor.condition_text or conditions.describe(parsed)
    value = (alert.condition_value or {}).get("value")
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # 93, not 93.0, as a person wrote it
    unit = parsed.threshold.unit or "" if isinstance(parsed, conditions.Leaf) else ""
    return f"{monitor.action}\n\nMonitor {monitor.name!r} is firing: {condition} (value now {value}{unit})."


async def _deliver(rt: Runtime, monitor: Monitor, alert: MonitorAlert, answer: callbacks.AgentAnswer) -> None:
    targets = monitor.platforms or ([answer.default_target] if answer.default_target else [])
    if answer.content is None or not targets:
        await _settle(rt, alert, analysis="done", answer=answer.answer,
                      status="answered" if alert.status == "analyzing" else None)  # fmt: skip
        return
    principal = Principal(tenant_id=monitor.tenant_id, key_id=monitor.id, is_admin=False, kind="monitor")
    ids, errors = list(alert.message_ids), []
    statuses: list[str] = []
    async with rt.sessions.begin() as session:
        for target in targets:
            intent = Intent(
                agent_id=monitor.agent_id, platform=target.get("platform"), recipient_id=target.get("recipient_id"),
                contact_id=target.get("contact_id"), content=answer.content, priority=Priority(monitor.priority),
                governance_metadata={"monitor_alert": alert.id, **answer.metadata},
            )  # fmt: skip
            try:
                async with session.begin_nested():
                    message = await messages.accept(rt, session, principal, intent)
            except RequestError as exc:
                errors.append(f"{target.get('platform') or target.get('contact_id')}: {exc.detail}")
            else:
                ids.append(message.id)
                statuses.append(message.status)
        status = None
        if alert.status == "analyzing":
            status = "pending_approval" if statuses and all(s == Status.PENDING_APPROVAL for s in statuses) else (
                "queued" if statuses else "failed")  # fmt: skip
        await session.execute(
            update(MonitorAlert).where(MonitorAlert.id == alert.id).values(
                analysis_status="done", analysis_due_at=None, answer=answer.answer, message_ids=ids,
                error="; ".join(filter(None, [alert.error, *errors])) or None,
                **({"status": status} if status else {}),
            )
        )  # fmt: skip


async def _settle(
    rt: Runtime,
    alert: MonitorAlert,
    *,
    analysis: str,
    answer: str | None = None,
    error: str | None = None,
    status: str | None = None,
) -> None:
    values: dict[str, Any] = {"analysis_status": analysis, "analysis_due_at": None, "answer": answer}
    if error:
        values["error"] = "; ".join(filter(None, [alert.error, f"agent: {error}"]))
        if alert.status == "analyzing":
            values["status"] = "failed"
    if status:
        values["status"] = status
    async with rt.sessions.begin() as session:
        await session.execute(update(MonitorAlert).where(MonitorAlert.id == alert.id).values(**values))
