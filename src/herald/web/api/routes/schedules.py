"""Schedules: seed 000's ``/api/v1/messaging/schedule`` and seed 002's ``/api/proactive/schedules``, one model."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, field_validator
from sqlalchemy.ext.asyncio import AsyncSession

from herald.core.errors import ValidationFailed
from herald.core.intent import Priority
from herald.core.natural import ScheduleParseError, describe_cron, next_runs, parse_schedule
from herald.core.timezones import check_timezone
from herald.producers.schedules import service
from herald.storage.models import Schedule, ScheduleExecution
from herald.storage.types import utcnow
from herald.web.api.contract import IDEMPOTENT, answers, errors
from herald.web.api.deps import CurrentPrincipal, Cursor, Limit, RuntimeDep
from herald.web.api.idempotency import create_once
from herald.web.api.schemas import (
    DueRunOut,
    Page,
    ParsedSchedule,
    PriorityName,
    ScheduleOut,
    Strict,
    as_utc,
    page,
)

messaging = APIRouter(prefix="/api/v1/messaging/schedule", tags=["scheduled messaging"])
proactive = APIRouter(prefix="/api/proactive/schedules", tags=["proactive schedules"])


class ScheduleCreate(Strict):
    """Seed 000's body; ``run_at`` (or ``scheduled_for``) for one-time schedules given as a time."""

    agent_id: str = Field(min_length=1, max_length=200)
    platform: str | None = Field(default=None, max_length=32)
    recipient_id: str | None = Field(default=None, max_length=500)
    contact_id: str | None = Field(default=None, max_length=40)
    template: str = Field(min_length=1, max_length=100_000)
    subject: str | None = Field(default=None, max_length=1000)
    schedule_type: str | None = None
    cron_expression: str | None = Field(default=None, max_length=200)
    natural_language_schedule: str | None = Field(default=None, max_length=500)
    run_at: datetime | None = None
    scheduled_for: datetime | None = None
    timezone: str = "UTC"
    template_variables: dict[str, Any] = Field(default_factory=dict)
    priority: PriorityName = "MEDIUM"
    misfire_policy: str = "skip"
    misfire_grace_seconds: int = Field(default=300, ge=0, le=86_400 * 7)
    name: str | None = Field(default=None, max_length=200)

    _tz = field_validator("timezone")(check_timezone)

    @field_validator("run_at", "scheduled_for")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return as_utc(value)

    @field_validator("schedule_type")
    @classmethod
    def _type(cls, value: str | None) -> str | None:
        if value is None:
            return None
        normal = value.strip().lower().replace("-", "_").replace(" ", "_")
        if normal not in ("one_time", "recurring"):
            raise ValueError("must be one-time or recurring")
        return normal


class TaskScheduleCreate(Strict):
    """Seed 002's body: an agent task on a cron rule (or natural language)."""

    name: str = Field(min_length=1, max_length=200)
    workspace_id: str | None = Field(default=None, max_length=200)
    agent_id: str = Field(min_length=1, max_length=200)
    task_description: str = Field(min_length=1, max_length=20_000)
    cron_expression: str | None = Field(default=None, max_length=200)
    natural_language_schedule: str | None = Field(default=None, max_length=500)
    timezone: str = "UTC"
    platform: str | None = Field(default=None, max_length=32)
    recipient_id: str | None = Field(default=None, max_length=500)
    misfire_policy: str = "skip"
    misfire_grace_seconds: int = Field(default=300, ge=0, le=86_400 * 7)

    _tz = field_validator("timezone")(check_timezone)


class ScheduleRuleChange(Strict):
    """A recurring schedule's new rule and/or time zone; what is not given stays."""

    cron_expression: str | None = Field(default=None, min_length=1, max_length=200)
    natural_language_schedule: str | None = Field(default=None, min_length=1, max_length=500)
    timezone: str | None = None

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str | None) -> str | None:
        return None if value is None else check_timezone(value)


class ParseRequest(Strict):
    schedule: str = Field(min_length=1, max_length=500)
    timezone: str = "UTC"
    from_: datetime | None = Field(default=None, alias="from")

    _tz = field_validator("timezone")(check_timezone)

    @field_validator("from_")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return as_utc(value)


class ExecutionOut(BaseModel):
    id: str
    schedule_id: str
    due_at: datetime
    executed_at: datetime
    outcome: str
    message_id: str | None
    error: str | None
    answer: str | None = None  # the agent's answer, kept whether or not it became a message


class ScheduleRun(BaseModel):
    """A schedule run now, outside its rule: the schedule and the run's record."""

    schedule: ScheduleOut
    execution: ExecutionOut


def schedule_out(schedule: Schedule) -> dict[str, Any]:
    upcoming: list[str] = []
    description = None
    if schedule.cron_expression:
        description = describe_cron(schedule.cron_expression)
        if schedule.status == service.ACTIVE:
            upcoming = [
                t.isoformat()
                for t in next_runs(
                    schedule.cron_expression, timezone=schedule.timezone, after=utcnow(), count=5
                )
            ]
    elif schedule.next_run:
        description = f"Once at {schedule.next_run.isoformat()}"
    return {
        "id": schedule.id, "name": schedule.name, "agent_id": schedule.agent_id, "workspace_id": schedule.workspace_id,
        "kind": schedule.kind, "schedule_type": schedule.schedule_type, "cron_expression": schedule.cron_expression,
        "natural_language_schedule": schedule.natural_language, "description": description,
        "timezone": schedule.timezone, "platform": schedule.platform, "recipient_id": schedule.recipient_id,
        "contact_id": schedule.contact_id, "template": schedule.template,
        "template_variables": schedule.template_variables, "task_description": schedule.task_description,
        "priority": Priority(schedule.priority).name, "misfire_policy": schedule.misfire_policy,
        "misfire_grace_seconds": schedule.misfire_grace_seconds, "status": schedule.status,
        "active": schedule.status == service.ACTIVE, "is_active": schedule.status == service.ACTIVE,
        "next_run": schedule.next_run.isoformat() if schedule.next_run else None,
        "last_run": schedule.last_run.isoformat() if schedule.last_run else None,
        "run_count": schedule.run_count, "next_runs": upcoming,
        "created_at": schedule.created_at.isoformat(), "updated_at": schedule.updated_at.isoformat(),
    }  # fmt: skip


def execution_out(execution: ScheduleExecution) -> dict[str, Any]:
    return ExecutionOut.model_validate(execution, from_attributes=True).model_dump(mode="json")


# -- seed 000 ------------------------------------------------------------------------------------------------


@messaging.post(
    "/create", status_code=201, **answers(ScheduleOut, 201, also=(409,)), openapi_extra=IDEMPOTENT
)
async def create_schedule(
    body: ScheduleCreate, request: Request, rt: RuntimeDep, principal: CurrentPrincipal
) -> JSONResponse:
    """A one-time or recurring message: cron or natural language, in an IANA time zone."""
    if body.cron_expression and body.natural_language_schedule:
        raise ValidationFailed(
            "give cron_expression or natural_language_schedule, not both", field="cron_expression"
        )
    spec = service.ScheduleSpec(
        agent_id=body.agent_id, kind="message", schedule_type=body.schedule_type,
        cron_expression=body.cron_expression, natural_language=body.natural_language_schedule,
        run_at=body.run_at or body.scheduled_for, timezone=body.timezone, platform=body.platform,
        recipient_id=body.recipient_id, contact_id=body.contact_id, subject=body.subject, template=body.template,
        template_variables=body.template_variables, priority=Priority[body.priority],
        misfire_policy=body.misfire_policy, misfire_grace_seconds=body.misfire_grace_seconds, name=body.name,
    )  # fmt: skip

    async def create(session: AsyncSession) -> dict[str, Any]:
        return schedule_out(await service.create(rt, session, principal, spec))

    return await create_once(rt, principal, request, body.model_dump(mode="json"), create)


@messaging.post("/parse-nl", **answers(ParsedSchedule))
async def parse_nl(body: ParseRequest, principal: CurrentPrincipal) -> dict[str, Any]:
    """What a natural-language schedule means: its cron (or one-time ``run_at``), in words, and the next 5 runs."""
    start = body.from_ or utcnow()
    try:
        parsed = parse_schedule(body.schedule, timezone=body.timezone, now=start)
    except ScheduleParseError as exc:
        raise ValidationFailed(str(exc), field="schedule") from exc
    answer: dict[str, Any] = {
        "schedule": body.schedule,
        "timezone": body.timezone,
        "description": parsed.description,
    }
    if parsed.cron_expression:
        runs = next_runs(parsed.cron_expression, timezone=body.timezone, after=start, count=5)
        answer.update(schedule_type="recurring", cron_expression=parsed.cron_expression,
                      next_runs=[t.isoformat() for t in runs])  # fmt: skip
    else:
        assert parsed.run_at is not None
        answer.update(schedule_type="one_time", run_at=parsed.run_at.isoformat())
    return answer


@messaging.get("/list", **answers(Page[ScheduleOut]))
async def list_schedules(
    rt: RuntimeDep,
    principal: CurrentPrincipal,
    agent_id: str | None = None,
    active: bool | None = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> dict[str, Any]:
    async with rt.sessions() as session:
        rows = await service.list_schedules(
            session, principal.tenant_id, agent_id=agent_id, active=active, limit=limit, cursor=cursor
        )
    return page([schedule_out(s) for s in rows], limit)


@messaging.get("/history/executions", **answers(Page[ExecutionOut]))
async def execution_history(
    rt: RuntimeDep,
    principal: CurrentPrincipal,
    schedule_id: str | None = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> dict[str, Any]:
    async with rt.sessions() as session:
        rows = await service.executions(
            session, principal.tenant_id, schedule_id=schedule_id, limit=limit, cursor=cursor
        )
    return page([execution_out(e) for e in rows], limit)


@messaging.post("/_execute-due", **answers(DueRunOut))
async def execute_due(rt: RuntimeDep, principal: CurrentPrincipal) -> dict[str, int]:
    """Run this tenant's due schedules now (the scheduler does this every second on its own)."""
    counts = await service.run_due(rt, tenant_id=principal.tenant_id, limit=10_000)
    return {"sent": counts.sent, "failed": counts.failed, "skipped": counts.skipped}


@messaging.get("/{schedule_id}", **answers(ScheduleOut))
async def get_schedule(schedule_id: str, rt: RuntimeDep, principal: CurrentPrincipal) -> dict[str, Any]:
    async with rt.sessions() as session:
        return schedule_out(await service.get(session, principal.tenant_id, schedule_id))


@messaging.patch("/{schedule_id}", **answers(ScheduleOut, also=(409,)))
async def change_rule(
    schedule_id: str, body: ScheduleRuleChange, rt: RuntimeDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    """Move a recurring schedule to another rule (cron or natural language) or time zone; the next run follows."""
    cron = body.cron_expression
    if body.natural_language_schedule is not None:
        if cron is not None:
            raise ValidationFailed(
                "give cron_expression or natural_language_schedule, not both", field="cron_expression"
            )
        cron = _recurring_cron(body.natural_language_schedule, body.timezone or "UTC")
    async with rt.sessions.begin() as session:
        schedule = await service.reschedule(
            session, principal, schedule_id, cron_expression=cron, timezone=body.timezone
        )
        return schedule_out(schedule)


def _recurring_cron(text: str, timezone: str) -> str:
    """The cron of a recurring natural-language rule; a one-time phrase is a 422 (a rule change keeps recurring)."""
    try:
        parsed = parse_schedule(text, timezone=timezone, now=utcnow())
    except ScheduleParseError as exc:
        raise ValidationFailed(str(exc), field="natural_language_schedule") from exc
    if not parsed.cron_expression:
        raise ValidationFailed(f"{text!r} is a one-time schedule, not a recurring rule",
                               field="natural_language_schedule")  # fmt: skip
    return parsed.cron_expression


@messaging.post("/{schedule_id}/pause", **answers(ScheduleOut, also=(409,)))
async def pause(schedule_id: str, rt: RuntimeDep, principal: CurrentPrincipal) -> dict[str, Any]:
    async with rt.sessions.begin() as session:
        return schedule_out(await service.pause(session, principal, schedule_id))


@messaging.post("/{schedule_id}/resume", **answers(ScheduleOut, also=(409,)))
async def resume(schedule_id: str, rt: RuntimeDep, principal: CurrentPrincipal) -> dict[str, Any]:
    async with rt.sessions.begin() as session:
        return schedule_out(await service.resume(session, principal, schedule_id))


@messaging.delete("/{schedule_id}", **answers(ScheduleOut, also=(409,)))
async def cancel(schedule_id: str, rt: RuntimeDep, principal: CurrentPrincipal) -> dict[str, Any]:
    async with rt.sessions.begin() as session:
        return schedule_out(await service.cancel(session, principal, schedule_id))


# -- seed 002 ------------------------------------------------------------------------------------------------


@proactive.post("", status_code=201, **answers(ScheduleOut, 201, also=(409,)), openapi_extra=IDEMPOTENT)
async def create_task_schedule(
    body: TaskScheduleCreate, request: Request, rt: RuntimeDep, principal: CurrentPrincipal
) -> JSONResponse:
    """An agent task on a schedule: when due, the agent's callback gets the task (signed)."""
    spec = service.ScheduleSpec(
        agent_id=body.agent_id, kind="task", schedule_type="recurring", cron_expression=body.cron_expression,
        natural_language=body.natural_language_schedule, timezone=body.timezone, platform=body.platform,
        recipient_id=body.recipient_id, task_description=body.task_description, name=body.name,
        workspace_id=body.workspace_id, misfire_policy=body.misfire_policy,
        misfire_grace_seconds=body.misfire_grace_seconds,
    )  # fmt: skip

    async def create(session: AsyncSession) -> dict[str, Any]:
        return schedule_out(await service.create(rt, session, principal, spec))

    return await create_once(rt, principal, request, body.model_dump(mode="json"), create)


@proactive.get("", **answers(Page[ScheduleOut]))
async def list_task_schedules(
    rt: RuntimeDep,
    principal: CurrentPrincipal,
    workspace_id: Annotated[str | None, Query(max_length=200)] = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> dict[str, Any]:
    async with rt.sessions() as session:
        rows = await service.list_schedules(
            session, principal.tenant_id, kind="task", workspace_id=workspace_id, limit=limit, cursor=cursor
        )
    return page([schedule_out(s) for s in rows], limit)


@proactive.delete("/{schedule_id}", status_code=204, responses=errors(409))
async def delete_task_schedule(schedule_id: str, rt: RuntimeDep, principal: CurrentPrincipal) -> Response:
    async with rt.sessions.begin() as session:
        await service.cancel(session, principal, schedule_id)
    return Response(status_code=204)


@proactive.post("/{schedule_id}/run", **answers(ScheduleRun, also=(409,)))
async def run_task_schedule(schedule_id: str, rt: RuntimeDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """Run now, outside the rule; the next scheduled run stays as it was."""
    schedule, execution = await service.run_now(rt, principal, schedule_id)
    return {"schedule": schedule_out(schedule), "execution": execution_out(execution)}


@proactive.post("/{schedule_id}/pause", **answers(ScheduleOut, also=(409,)))
async def pause_task_schedule(
    schedule_id: str, rt: RuntimeDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    async with rt.sessions.begin() as session:
        return schedule_out(await service.pause(session, principal, schedule_id))


@proactive.post("/{schedule_id}/resume", **answers(ScheduleOut, also=(409,)))
async def resume_task_schedule(
    schedule_id: str, rt: RuntimeDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    async with rt.sessions.begin() as session:
        return schedule_out(await service.resume(session, principal, schedule_id))
