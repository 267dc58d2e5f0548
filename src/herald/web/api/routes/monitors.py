"""Monitors: seed 000's ``/api/v1/monitoring/*`` and seed 002's ``/api/proactive/monitors``, one model."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import Field, field_validator
from sqlalchemy.ext.asyncio import AsyncSession

from herald.core.errors import ValidationFailed
from herald.core.intent import Priority
from herald.producers.monitors import conditions, service
from herald.producers.monitors.service import MonitorSpec
from herald.storage import datasources as tenantdb
from herald.storage.models import Monitor, MonitorAlert
from herald.web.api.contract import IDEMPOTENT, answers, errors
from herald.web.api.deps import CurrentPrincipal, Cursor, Limit, RuntimeDep
from herald.web.api.idempotency import create_once
from herald.web.api.schemas import (
    AcceptedCount,
    AlertOut,
    MonitorFigures,
    MonitorOut,
    MonitorTestOut,
    Page,
    PresetsOut,
    PriorityName,
    Strict,
    as_utc,
    page,
)

monitoring = APIRouter(prefix="/api/v1/monitoring", tags=["condition monitoring"])
proactive = APIRouter(prefix="/api/proactive/monitors", tags=["proactive monitors"])

SOURCE_KEYS = (
    "url",
    "json_path",
    "query",
    "data_source_id",
    "data_source_url",
    "labels",
    "window_seconds",
    "channel_id",
)


class Lifecycle(Strict):
    platforms: list[dict[str, Any]] = Field(default_factory=list, max_length=20)
    alert_template: str | None = Field(default=None, max_length=10_000)
    check_interval_seconds: int = Field(default=300, ge=10, le=86_400)
    for_seconds: int = Field(default=0, ge=0, le=86_400)
    throttle_seconds: int = Field(default=900, ge=0, le=86_400 * 7)
    priority: PriorityName = "MEDIUM"
    no_data_policy: str = "keep"
    error_policy: str = "keep"
    mute_windows: list[dict[str, Any]] = Field(default_factory=list, max_length=20)
    # What the monitor's agent is asked to do when it fires (seed 002's "Send alert and analyze"); None: notify only.
    action: str | None = Field(default=None, min_length=1, max_length=2000)


class ConditionCreate(Lifecycle):
    """Seed 000's body (source settings such as ``url``/``json_path`` or ``query``/``data_source_url`` at top level).
    Without ``agent_id`` the monitor is the tenant's own: its notices go out as the tenant's messages."""

    agent_id: str | None = Field(default=None, min_length=1, max_length=200)
    name: str = Field(min_length=1, max_length=200)
    condition_type: str = Field(min_length=1, max_length=32)
    threshold_config: dict[str, Any] | None = None
    composite_logic: str | None = None
    composite_conditions: list[dict[str, Any]] | None = None
    url: str | None = None
    json_path: str | None = None
    query: str | None = None
    data_source_id: str | None = Field(
        default=None, description="a registered data source (/api/v1/data-sources)"
    )
    data_source_url: str | None = Field(default=None, description="a database URL; prefer data_source_id")
    labels: dict[str, str] | None = None
    window_seconds: int | None = None
    channel_id: str | None = None

    def condition(self) -> dict[str, Any]:
        payload: dict[str, Any] = {"condition_type": self.condition_type}
        for key in ("threshold_config", "composite_logic", "composite_conditions", *SOURCE_KEYS):
            value = getattr(self, key)
            if value is not None:
                payload[key] = value
        return payload


class PresetApply(Lifecycle):
    agent_id: str | None = Field(default=None, min_length=1, max_length=200)
    preset_name: str = Field(min_length=1, max_length=200)
    name: str | None = Field(default=None, max_length=200)


class TaskMonitor(Strict):
    """Seed 002's body: a free-text condition on pushed metrics."""

    name: str = Field(min_length=1, max_length=200)
    agent_id: str = Field(min_length=1, max_length=200)
    workspace_id: str | None = Field(default=None, max_length=200)
    condition: str = Field(min_length=1, max_length=500)
    action: str | None = Field(default=None, max_length=5000)
    check_interval: int = Field(default=300, ge=10, le=86_400)
    platforms: list[dict[str, Any]] = Field(default_factory=list, max_length=20)
    alert_template: str | None = Field(default=None, max_length=10_000)


class TaskMonitorPatch(Strict):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    condition: str | None = Field(default=None, min_length=1, max_length=500)
    action: str | None = Field(default=None, max_length=5000)
    check_interval: int | None = Field(default=None, ge=10, le=86_400)
    for_seconds: int | None = Field(default=None, ge=0, le=86_400,
                                    description="how long the condition must hold before an alert fires")  # fmt: skip
    throttle_seconds: int | None = Field(default=None, ge=0, le=86_400 * 7,
                                         description="the least time between two notices of one alert")  # fmt: skip


class ValuePush(Strict):
    name: str = Field(min_length=1, max_length=200)
    value: float
    labels: dict[str, str] = Field(default_factory=dict)
    time: datetime | None = None

    @field_validator("time")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return as_utc(value)


class Snooze(Strict):
    until: datetime | None

    @field_validator("until")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return as_utc(value)


def _masked(leaves: Any) -> Any:
    """Composite leaves as answers show them: a ``data_source_url``'s password masked, as data sources show it."""
    if not isinstance(leaves, list):
        return leaves
    return [_masked_leaf(leaf) for leaf in leaves]


def _masked_leaf(leaf: Any) -> Any:
    if not isinstance(leaf, dict) or not isinstance(leaf.get("data_source_url"), str):
        return leaf
    try:
        shown = tenantdb.mask_url(leaf["data_source_url"])
    except Exception:  # not a URL SQLAlchemy parses: nothing of it is shown
        shown = tenantdb.MASK
    return {**leaf, "data_source_url": shown}


def monitor_out(monitor: Monitor) -> dict[str, Any]:
    condition = conditions.parse_condition(monitor.condition)
    return {
        "id": monitor.id, "name": monitor.name, "agent_id": monitor.agent_id, "workspace_id": monitor.workspace_id,
        "condition_type": monitor.condition.get("condition_type"), "threshold_config": monitor.condition.get("threshold_config"),
        "composite_logic": monitor.condition.get("composite_logic"),
        "composite_conditions": _masked(monitor.condition.get("composite_conditions")),
        "condition": monitor.condition_text or conditions.describe(condition), "action": monitor.action,
        "platforms": monitor.platforms, "alert_template": monitor.alert_template,
        "check_interval_seconds": monitor.check_interval_seconds, "check_interval": monitor.check_interval_seconds,
        "for_seconds": monitor.for_seconds, "throttle_seconds": monitor.throttle_seconds,
        "priority": Priority(monitor.priority).name, "no_data_policy": monitor.no_data_policy,
        "error_policy": monitor.error_policy, "mute_windows": monitor.mute_windows,
        "snoozed_until": monitor.snoozed_until.isoformat() if monitor.snoozed_until else None,
        "status": monitor.status, "is_active": monitor.status == "active", "state": monitor.state,
        "state_since": monitor.state_since.isoformat(), "last_value": monitor.last_value,
        "last_error": monitor.last_error, "trigger_count": monitor.trigger_count,
        "last_check": monitor.last_check_at.isoformat() if monitor.last_check_at else None,
        "last_triggered": monitor.last_notified_at.isoformat() if monitor.last_notified_at else None,
        "next_check_at": monitor.next_check_at.isoformat() if monitor.next_check_at else None,
        "created_at": monitor.created_at.isoformat(),
    }  # fmt: skip


def alert_out(alert: MonitorAlert) -> dict[str, Any]:
    return {
        "id": alert.id, "monitor_id": alert.monitor_id, "kind": alert.kind, "condition_value": alert.condition_value,
        "threshold_value": alert.threshold_value, "alert_message": alert.alert_message,
        "platforms_sent": alert.platforms_sent, "message_ids": alert.message_ids, "status": alert.status,
        "error": alert.error, "answer": alert.answer, "triggered_at": alert.triggered_at.isoformat(),
        "sent_at": alert.sent_at.isoformat() if alert.sent_at else None,
    }  # fmt: skip


def _spec(agent_id: str | None, name: str, condition: dict[str, Any], body: Lifecycle) -> MonitorSpec:
    return MonitorSpec(
        agent_id=agent_id, name=name, condition=condition, platforms=body.platforms,
        alert_template=body.alert_template, check_interval_seconds=body.check_interval_seconds,
        for_seconds=body.for_seconds, throttle_seconds=body.throttle_seconds, priority=int(Priority[body.priority]),
        no_data_policy=body.no_data_policy, error_policy=body.error_policy, mute_windows=body.mute_windows,
        action=body.action,
    )  # fmt: skip


async def _create(
    rt: RuntimeDep, principal: CurrentPrincipal, request: Request, body: Any, spec: MonitorSpec
) -> JSONResponse:
    async def create(session: AsyncSession) -> dict[str, Any]:
        return monitor_out(await service.create(rt, session, principal, spec))

    return await create_once(rt, principal, request, body.model_dump(mode="json"), create)


# -- seed 000 ------------------------------------------------------------------------------------------------


@monitoring.post(
    "/condition/create", status_code=201, **answers(MonitorOut, 201, also=(409,)), openapi_extra=IDEMPOTENT
)
async def create_condition(
    body: ConditionCreate, request: Request, rt: RuntimeDep, principal: CurrentPrincipal
) -> JSONResponse:
    return await _create(
        rt, principal, request, body, _spec(body.agent_id, body.name, body.condition(), body)
    )


@monitoring.get("/presets", **answers(PresetsOut))
async def presets(principal: CurrentPrincipal) -> dict[str, Any]:
    return {"presets": service.PRESETS}


@monitoring.post(
    "/presets/apply", status_code=201, **answers(MonitorOut, 201, also=(409,)), openapi_extra=IDEMPOTENT
)
async def apply_preset(
    body: PresetApply, request: Request, rt: RuntimeDep, principal: CurrentPrincipal
) -> JSONResponse:
    preset = next((p for p in service.PRESETS if p["name"] == body.preset_name), None)
    if preset is None:
        names = ", ".join(p["name"] for p in service.PRESETS)
        raise ValidationFailed(f"no preset {body.preset_name!r}; one of: {names}", field="preset_name")
    condition = {k: preset[k] for k in ("condition_type", "threshold_config")}
    lifecycle = body.model_copy(update={"check_interval_seconds": preset.get("check_interval_seconds", 300)})
    return await _create(
        rt, principal, request, body, _spec(body.agent_id, body.name or preset["name"], condition, lifecycle)
    )


@monitoring.get("/condition/list", **answers(Page[MonitorOut]))
async def list_conditions(
    rt: RuntimeDep,
    principal: CurrentPrincipal,
    status: str | None = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> dict[str, Any]:
    async with rt.sessions() as session:
        rows = await service.list_monitors(
            session, principal.tenant_id, status=status, workspace_id=None, limit=limit, cursor=cursor
        )
    return page([monitor_out(m) for m in rows], limit)


@monitoring.post("/condition/test", **answers(MonitorTestOut))
async def test_unsaved_condition(
    body: ConditionCreate, rt: RuntimeDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    """Evaluate a monitor that is not created yet (the create body), with no side effects and nothing stored:
    checked as a create is, evaluated as ``/condition/{id}/test`` evaluates a saved one."""
    return await service.test_unsaved(rt, principal, _spec(body.agent_id, body.name, body.condition(), body))


@monitoring.post("/condition/{monitor_id}/test", **answers(MonitorTestOut))
async def test_condition(monitor_id: str, rt: RuntimeDep, principal: CurrentPrincipal) -> dict[str, Any]:
    async with rt.sessions() as session:
        monitor = await service.get(session, principal.tenant_id, monitor_id)
    return await service.test_now(rt, monitor)


@monitoring.post("/condition/{monitor_id}/pause", **answers(MonitorOut, also=(409,)))
async def pause_condition(monitor_id: str, rt: RuntimeDep, principal: CurrentPrincipal) -> dict[str, Any]:
    async with rt.sessions.begin() as session:
        return monitor_out(await service.set_status(session, principal, monitor_id, "paused"))


@monitoring.post("/condition/{monitor_id}/resume", **answers(MonitorOut, also=(409,)))
async def resume_condition(monitor_id: str, rt: RuntimeDep, principal: CurrentPrincipal) -> dict[str, Any]:
    async with rt.sessions.begin() as session:
        return monitor_out(await service.set_status(session, principal, monitor_id, "active"))


@monitoring.post("/condition/{monitor_id}/snooze", **answers(MonitorOut, also=(409,)))
async def snooze_condition(
    monitor_id: str, body: Snooze, rt: RuntimeDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    """No notices until ``until`` (null lifts the snooze); checks go on."""
    async with rt.sessions.begin() as session:
        return monitor_out(await service.snooze(session, principal, monitor_id, body.until))


@monitoring.get("/alerts", **answers(Page[AlertOut]))
async def alert_history(
    rt: RuntimeDep,
    principal: CurrentPrincipal,
    monitor_id: str | None = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> dict[str, Any]:
    async with rt.sessions() as session:
        rows = await service.alerts(
            session, principal.tenant_id, monitor_id=monitor_id, limit=limit, cursor=cursor
        )
    return page([alert_out(a) for a in rows], limit)


@monitoring.get("/metrics", **answers(MonitorFigures))
async def monitoring_metrics(rt: RuntimeDep, principal: CurrentPrincipal) -> dict[str, int]:
    async with rt.sessions() as session:
        return await service.figures(session, principal.tenant_id)


@monitoring.post("/values", status_code=201, **answers(AcceptedCount, 201))
async def push_value(
    body: ValuePush | list[ValuePush], rt: RuntimeDep, principal: CurrentPrincipal
) -> dict[str, int]:
    """Push one value (or a list) of a named metric; monitors on that metric read the latest."""
    items = body if isinstance(body, list) else [body]
    async with rt.sessions.begin() as session:
        count = await service.push_values(session, principal.tenant_id, [i.model_dump() for i in items])
    return {"accepted": count}


# -- seed 002 ------------------------------------------------------------------------------------------------


@proactive.post("", status_code=201, **answers(MonitorOut, 201, also=(409,)), openapi_extra=IDEMPOTENT)
async def create_monitor(
    body: TaskMonitor, request: Request, rt: RuntimeDep, principal: CurrentPrincipal
) -> JSONResponse:
    spec = MonitorSpec(
        agent_id=body.agent_id, name=body.name, condition=service.text_condition(body.condition), platforms=body.platforms,
        alert_template=body.alert_template, check_interval_seconds=body.check_interval,
        workspace_id=body.workspace_id, condition_text=body.condition, action=body.action,
    )  # fmt: skip
    return await _create(rt, principal, request, body, spec)


@proactive.get("", **answers(Page[MonitorOut]))
async def list_task_monitors(
    rt: RuntimeDep,
    principal: CurrentPrincipal,
    workspace_id: str | None = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> dict[str, Any]:
    async with rt.sessions() as session:
        rows = await service.list_monitors(
            session, principal.tenant_id, status=None, workspace_id=workspace_id, limit=limit, cursor=cursor
        )
    return page([monitor_out(m) for m in rows], limit)


@proactive.get("/{monitor_id}", **answers(MonitorOut))
async def get_monitor(monitor_id: str, rt: RuntimeDep, principal: CurrentPrincipal) -> dict[str, Any]:
    async with rt.sessions() as session:
        return monitor_out(await service.get(session, principal.tenant_id, monitor_id))


@proactive.patch("/{monitor_id}", **answers(MonitorOut, also=(409,)))
async def update_monitor(
    monitor_id: str, body: TaskMonitorPatch, rt: RuntimeDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    async with rt.sessions.begin() as session:
        monitor = await service.update_task_monitor(
            session, principal.tenant_id, monitor_id, name=body.name, condition_text=body.condition,
            action=body.action, check_interval_seconds=body.check_interval, for_seconds=body.for_seconds,
            throttle_seconds=body.throttle_seconds,
        )  # fmt: skip
        return monitor_out(monitor)


@proactive.delete("/{monitor_id}", status_code=204, responses=errors(409))
async def delete_monitor(monitor_id: str, rt: RuntimeDep, principal: CurrentPrincipal) -> Response:
    async with rt.sessions.begin() as session:
        await service.set_status(session, principal, monitor_id, "deleted")
    return Response(status_code=204)


@proactive.post("/{monitor_id}/pause", **answers(MonitorOut, also=(409,)))
async def pause_monitor(monitor_id: str, rt: RuntimeDep, principal: CurrentPrincipal) -> dict[str, Any]:
    async with rt.sessions.begin() as session:
        return monitor_out(await service.set_status(session, principal, monitor_id, "paused"))


@proactive.post("/{monitor_id}/resume", **answers(MonitorOut, also=(409,)))
async def resume_monitor(monitor_id: str, rt: RuntimeDep, principal: CurrentPrincipal) -> dict[str, Any]:
    async with rt.sessions.begin() as session:
        return monitor_out(await service.set_status(session, principal, monitor_id, "active"))


@proactive.post("/{monitor_id}/check", **answers(MonitorOut, also=(409,)))
async def check_monitor(monitor_id: str, rt: RuntimeDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """Check now and move the lifecycle (alerts included), unlike seed 000's side-effect-free test."""
    return monitor_out(await service.check_now(rt, principal.tenant_id, monitor_id))


@proactive.get("/{monitor_id}/history", **answers(Page[AlertOut]))
async def monitor_history(
    monitor_id: str, rt: RuntimeDep, principal: CurrentPrincipal, limit: Limit = 100, cursor: Cursor = None
) -> dict[str, Any]:
    async with rt.sessions() as session:
        await service.get(session, principal.tenant_id, monitor_id)
        rows = await service.alerts(
            session, principal.tenant_id, monitor_id=monitor_id, limit=limit, cursor=cursor
        )
    return page([alert_out(a) for a in rows], limit)
