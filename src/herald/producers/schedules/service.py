"""Schedules: creation (cron or natural language, validated), pause/resume/cancel, and running what is due.

Running is one transaction per batch: due schedules are claimed with ``FOR UPDATE SKIP LOCKED`` (SQLite: the
writer lock), each produces its message through the pipeline (governance included) or its agent task, an
execution is recorded (unique per schedule and due time, so no run fires twice), and ``next_run`` advances, all
before commit. Any number of scheduler processes can share one PostgreSQL.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from herald.core.errors import Conflict, NotFound, RequestError, ValidationFailed
from herald.core.ids import new_id
from herald.core.intent import Intent, Priority
from herald.core.natural import ScheduleParseError, next_runs, parse_schedule, validate_cron
from herald.core.platforms import PLATFORMS, recipient_problem
from herald.core.principal import Principal
from herald.core.timezones import zone_problem
from herald.pipeline import accept as messages
from herald.pipeline import templates
from herald.pipeline.enrolment import require_agent
from herald.producers import callbacks
from herald.storage import claims
from herald.storage.audit import audit_row, event_row
from herald.storage.models import Agent, AuditEntry, Contact, Event, Schedule, ScheduleExecution
from herald.storage.queries import owned, referenced
from herald.storage.types import utcnow

if TYPE_CHECKING:
    from herald.runtime import Runtime

ACTIVE, PAUSED, COMPLETED, CANCELLED = "active", "paused", "completed", "cancelled"
ONE_TIME, RECURRING = "one_time", "recurring"


@dataclass
class ScheduleSpec:
    """A schedule as asked for; :func:`create` validates it."""

    agent_id: str
    kind: str = "message"  # or "task"
    schedule_type: str | None = None  # one_time or recurring; inferred from the rule when omitted
    cron_expression: str | None = None
    natural_language: str | None = None
    run_at: datetime | None = None
    timezone: str = "UTC"
    platform: str | None = None
    recipient_id: str | None = None
    contact_id: str | None = None
    subject: str | None = None
    template: str | None = None
    template_variables: dict[str, Any] = field(default_factory=dict)
    task_description: str | None = None
    priority: Priority = Priority.MEDIUM
    misfire_policy: str = "skip"
    misfire_grace_seconds: int = 300
    name: str | None = None
    workspace_id: str | None = None


@dataclass
class RunCounts:
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    tasks: list[str] = field(default_factory=list)  # execution ids whose agent callback is still to be made

    def add(self, other: RunCounts) -> None:
        self.sent += other.sent
        self.failed += other.failed
        self.skipped += other.skipped
        self.tasks += other.tasks


def first_run(cron: str, timezone: str, after: datetime) -> datetime:
    return next_runs(cron, timezone=timezone, after=after, count=1)[0]


def _rule(spec: ScheduleSpec, now: datetime) -> tuple[str, str | None, datetime]:
    """(schedule_type, cron, first run) from the spec's cron, natural language or run_at."""
    cron = spec.cron_expression
    run_at = spec.run_at
    kind = spec.schedule_type
    if spec.natural_language:
        try:
            parsed = parse_schedule(spec.natural_language, timezone=spec.timezone, now=now)
        except ScheduleParseError as exc:
            raise ValidationFailed(str(exc), field="natural_language_schedule") from exc
        if parsed.kind == RECURRING:
            cron = parsed.cron_expression
        else:
            run_at = parsed.run_at
        if kind is not None and kind != parsed.kind:
            raise ValidationFailed(
                f"{spec.natural_language!r} is a {parsed.kind.replace('_', '-')} schedule, not {kind.replace('_', '-')}",
                field="schedule_type",
            )
        kind = parsed.kind
    if kind is None:
        kind = RECURRING if cron else ONE_TIME
    if kind == RECURRING:
        if not cron:
            raise ValidationFailed("a recurring schedule needs cron_expression or natural_language_schedule",
                                   field="cron_expression")  # fmt: skip
        try:
            validate_cron(cron)
        except ValueError as exc:
            raise ValidationFailed(str(exc), field="cron_expression") from exc
        return kind, cron, first_run(cron, spec.timezone, now)
    if run_at is None:
        raise ValidationFailed("a one-time schedule needs run_at (or natural language such as 'tomorrow at 3pm')",
                               field="run_at")  # fmt: skip
    if run_at <= now:
        raise ValidationFailed(f"run_at {run_at.isoformat()} is in the past", field="run_at")
    return kind, None, run_at


async def create(rt: Runtime, session: AsyncSession, principal: Principal, spec: ScheduleSpec) -> Schedule:
    now = utcnow()
    await require_agent(rt, session, principal, spec.agent_id)
    zone = zone_problem(spec.timezone)
    if zone:
        raise ValidationFailed(zone, field="timezone")
    if spec.misfire_policy not in ("skip", "run_once"):
        raise ValidationFailed("must be skip or run_once", field="misfire_policy")
    if spec.kind == "message":
        _check_message(spec)
        if spec.contact_id is not None:
            await referenced(
                session, Contact, principal.tenant_id, spec.contact_id, "contact", field="contact_id"
            )
    elif not spec.task_description:
        raise ValidationFailed("a task schedule needs task_description", field="task_description")
    schedule_type, cron, next_run = _rule(spec, now)
    schedule = Schedule(
        id=new_id("sch"), tenant_id=principal.tenant_id, agent_id=spec.agent_id, name=spec.name,
        workspace_id=spec.workspace_id, kind=spec.kind, schedule_type=schedule_type, cron_expression=cron,
        natural_language=spec.natural_language, timezone=spec.timezone, platform=spec.platform,
        recipient_id=spec.recipient_id, contact_id=spec.contact_id, subject=spec.subject, template=spec.template,
        template_variables=spec.template_variables, task_description=spec.task_description,
        priority=int(spec.priority), misfire_policy=spec.misfire_policy,
        misfire_grace_seconds=spec.misfire_grace_seconds, status=ACTIVE, next_run=next_run, last_run=None,
        run_count=0, created_at=now, updated_at=now,
    )  # fmt: skip
    session.add(schedule)
    await session.flush()
    await _audit(session, principal, "schedule.created", schedule.id, {"next_run": next_run.isoformat()})
    return schedule


def _check_message(spec: ScheduleSpec) -> None:
    if not spec.template:
        raise ValidationFailed("a message schedule needs template", field="template")
    templates.validate(spec.template, spec.template_variables, field="template")
    if spec.contact_id is None:
        if not spec.platform or not spec.recipient_id:
            missing = "platform" if not spec.platform else "recipient_id"
            raise ValidationFailed("give platform and recipient_id, or contact_id", field=missing)
        if spec.platform not in PLATFORMS:
            raise ValidationFailed(f"unknown platform {spec.platform!r}", field="platform")
        problem = recipient_problem(spec.platform, spec.recipient_id)
        if problem:
            raise ValidationFailed(problem, field="recipient_id")


async def _audit(
    session: AsyncSession,
    principal: Principal,
    action: str,
    schedule_id: str,
    detail: dict[str, Any] | None = None,
) -> None:
    await session.execute(
        insert(AuditEntry),
        [audit_row(principal.tenant_id, principal.actor, action, "schedule", schedule_id, detail)],
    )


async def get(session: AsyncSession, tenant_id: str, schedule_id: str) -> Schedule:
    return await owned(session, Schedule, tenant_id, schedule_id, "schedule")


async def list_schedules(
    session: AsyncSession,
    tenant_id: str,
    *,
    agent_id: str | None = None,
    active: bool | None = None,
    kind: str | None = None,
    workspace_id: str | None = None,
    limit: int = 100,
    cursor: str | None = None,
) -> list[Schedule]:
    """The tenant's schedules that are not cancelled, by id after ``cursor``; every filter is part of the query,
    so a page is ``limit`` matches and paging reaches all of them."""
    query = select(Schedule).where(Schedule.tenant_id == tenant_id, Schedule.status != CANCELLED)
    if agent_id is not None:
        query = query.where(Schedule.agent_id == agent_id)
    if active is not None:
        query = query.where(Schedule.status == ACTIVE) if active else query.where(Schedule.status != ACTIVE)
    if kind is not None:
        query = query.where(Schedule.kind == kind)
    if workspace_id is not None:
        query = query.where(Schedule.workspace_id == workspace_id)
    if cursor is not None:
        query = query.where(Schedule.id > cursor)
    return list((await session.execute(query.order_by(Schedule.id).limit(limit))).scalars())


async def pause(session: AsyncSession, principal: Principal, schedule_id: str) -> Schedule:
    schedule = await get(session, principal.tenant_id, schedule_id)
    if schedule.status != ACTIVE:
        raise Conflict(f"schedule {schedule_id} is {schedule.status}; only an active schedule can be paused")
    schedule.status = PAUSED
    schedule.updated_at = utcnow()
    await _audit(session, principal, "schedule.paused", schedule_id)
    return schedule


async def resume(session: AsyncSession, principal: Principal, schedule_id: str) -> Schedule:
    """Resume from now on: runs missed while paused are not replayed."""
    schedule = await get(session, principal.tenant_id, schedule_id)
    if schedule.status != PAUSED:
        raise Conflict(f"schedule {schedule_id} is {schedule.status}; only a paused schedule can be resumed")
    now = utcnow()
    if schedule.schedule_type == RECURRING:
        assert schedule.cron_expression is not None
        schedule.next_run = first_run(schedule.cron_expression, schedule.timezone, now)
    elif schedule.next_run is None or schedule.next_run <= now:
        raise Conflict(f"one-time schedule {schedule_id} was due while paused; create a new one")
    schedule.status = ACTIVE
    schedule.updated_at = now
    await _audit(
        session, principal, "schedule.resumed", schedule_id, {"next_run": schedule.next_run.isoformat()}
    )
    return schedule


async def reschedule(
    session: AsyncSession,
    principal: Principal,
    schedule_id: str,
    *,
    cron_expression: str | None = None,
    timezone: str | None = None,
) -> Schedule:
    """Move a recurring schedule to another rule or time zone (None keeps that part); the next run follows.

    Only a recurring schedule that is still active or paused has a rule to change: a one-time one is re-created
    instead, a finished or cancelled one is a 409."""
    schedule = await get(session, principal.tenant_id, schedule_id)
    if schedule.schedule_type != RECURRING:
        raise Conflict(f"schedule {schedule_id} is one-time; only a recurring schedule's rule can change")
    if schedule.status not in (ACTIVE, PAUSED):
        raise Conflict(f"schedule {schedule_id} is {schedule.status}")
    zone = timezone if timezone is not None else schedule.timezone
    problem = zone_problem(zone)
    if problem:
        raise ValidationFailed(problem, field="timezone")
    cron = cron_expression if cron_expression is not None else schedule.cron_expression
    assert cron is not None
    try:
        validate_cron(cron)
    except ValueError as exc:
        raise ValidationFailed(str(exc), field="cron_expression") from exc
    now = utcnow()
    before = {"cron_expression": schedule.cron_expression, "timezone": schedule.timezone}
    schedule.cron_expression, schedule.timezone, schedule.updated_at = cron, zone, now
    if cron_expression is not None:
        schedule.natural_language = None  # the rule is the cron now, not the words it was first given as
    if schedule.status == ACTIVE:
        schedule.next_run = first_run(cron, zone, now)
    detail = {"before": before, "cron_expression": cron, "timezone": zone}
    await _audit(session, principal, "schedule.rescheduled", schedule_id, detail)
    return schedule


async def cancel(session: AsyncSession, principal: Principal, schedule_id: str) -> Schedule:
    schedule = await get(session, principal.tenant_id, schedule_id)
    if schedule.status == CANCELLED:
        raise Conflict(f"schedule {schedule_id} is already cancelled")
    schedule.status = CANCELLED
    schedule.next_run = None
    schedule.updated_at = utcnow()
    await _audit(session, principal, "schedule.cancelled", schedule_id)
    return schedule


async def executions(
    session: AsyncSession, tenant_id: str, *, schedule_id: str | None, limit: int, cursor: str | None
) -> list[ScheduleExecution]:
    query = select(ScheduleExecution).where(ScheduleExecution.tenant_id == tenant_id)
    if schedule_id is not None:
        query = query.where(ScheduleExecution.schedule_id == schedule_id)
    if cursor is not None:
        query = query.where(ScheduleExecution.id < cursor)
    return list((await session.execute(query.order_by(ScheduleExecution.id.desc()).limit(limit))).scalars())


# -- running --------------------------------------------------------------------------------------------------


@dataclass
class _RunBatch:
    """Rows one pass over due schedules writes, each table in one statement."""

    now: datetime
    counts: RunCounts = field(default_factory=RunCounts)
    prepared: list[messages.Prepared] = field(default_factory=list)
    executions: list[dict[str, Any]] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)
    audits: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)

    async def write(self, rt: Runtime, session: AsyncSession) -> None:
        await messages.write(rt, session, self.prepared)
        if self.executions:
            await session.execute(insert(ScheduleExecution), self.executions)
        if self.updates:
            table = Schedule.__table__
            assert isinstance(table, Table)
            conn = await session.connection()
            await conn.execute(
                update(table)
                .where(table.c.id == bindparam("b_id"))
                .values(next_run=bindparam("b_next"), status=bindparam("b_status"), last_run=bindparam("b_last"),
                        run_count=bindparam("b_count"), updated_at=bindparam("b_last")),
                self.updates,
            )  # fmt: skip
        if self.audits:
            await session.execute(insert(AuditEntry), self.audits)
        if self.events:
            await session.execute(insert(Event), self.events)


async def run_due(rt: Runtime, *, tenant_id: str | None = None, limit: int = 200) -> RunCounts:
    """Run every schedule due now (one batch of at most ``limit``); returns what happened."""
    batch = _RunBatch(utcnow())
    async with rt.sessions.begin() as session:
        query = (
            select(Schedule)
            .where(Schedule.status == ACTIVE, Schedule.next_run <= batch.now)
            .order_by(Schedule.next_run)
            .limit(limit)
        )
        if tenant_id is not None:
            query = query.where(Schedule.tenant_id == tenant_id)
        # No lease: each runs in this transaction, and its next run moves on before the locks are released.
        for schedule in await claims.claim(session, query):
            await _run_one(rt, session, schedule, batch, advance=True)
        await batch.write(rt, session)
    if batch.counts.tasks:
        await dispatch_tasks(rt, batch.counts.tasks)
    return batch.counts


async def run_now(rt: Runtime, principal: Principal, schedule_id: str) -> tuple[Schedule, ScheduleExecution]:
    """Run a schedule at once, outside its rule (its next run stays as it was)."""
    batch = _RunBatch(utcnow())
    async with rt.sessions.begin() as session:
        query = select(Schedule).where(Schedule.id == schedule_id, Schedule.tenant_id == principal.tenant_id)
        if rt.dialect == "postgresql":
            query = query.with_for_update()
        schedule = (await session.execute(query)).scalar_one_or_none()
        if schedule is None:
            raise NotFound(f"no schedule {schedule_id!r}")
        if schedule.status == CANCELLED:
            raise Conflict(f"schedule {schedule_id} is cancelled")
        await _run_one(rt, session, schedule, batch, advance=False)
        await batch.write(rt, session)
        execution_id = batch.executions[0]["id"]
    if batch.counts.tasks:
        await dispatch_tasks(rt, batch.counts.tasks)
    async with rt.sessions() as session:
        execution = await session.get(ScheduleExecution, execution_id)
        fresh = await session.get(Schedule, schedule_id)
    assert execution is not None
    assert fresh is not None
    return fresh, execution


async def _run_one(
    rt: Runtime, session: AsyncSession, schedule: Schedule, batch: _RunBatch, *, advance: bool
) -> None:
    now = batch.now
    due = now if not advance else schedule.next_run or now
    late = (now - due).total_seconds()
    outcome, message_id, error = "skipped", None, None
    if advance and late > schedule.misfire_grace_seconds and schedule.misfire_policy == "skip":
        outcome, error = "missed", f"missed by {late:.0f}s (grace {schedule.misfire_grace_seconds}s): skipped"
        batch.counts.skipped += 1
    elif schedule.kind == "task":
        outcome = "dispatching"
    else:
        outcome, message_id, error = await _produce_message(rt, session, schedule, due, batch)
        if error is None:
            batch.counts.sent += 1
        else:
            batch.counts.failed += 1
    execution_id = new_id("exe")
    batch.executions.append({
        "id": execution_id, "tenant_id": schedule.tenant_id, "schedule_id": schedule.id, "due_at": due,
        "executed_at": now, "outcome": outcome, "message_id": message_id, "error": error,
        "detail": {"late_seconds": round(late, 3)},
    })  # fmt: skip
    if outcome == "dispatching":
        batch.counts.tasks.append(execution_id)
    next_run, status = schedule.next_run, schedule.status
    if advance:
        if schedule.schedule_type == RECURRING:
            assert schedule.cron_expression is not None
            # From now, not from the due time: whatever was missed is not replayed.
            next_run = first_run(schedule.cron_expression, schedule.timezone, max(now, due))
        else:
            next_run, status = None, COMPLETED
    batch.updates.append({"b_id": schedule.id, "b_next": next_run, "b_status": status, "b_last": now,
                          "b_count": schedule.run_count + 1})  # fmt: skip
    detail = {"outcome": outcome, "message_id": message_id, "due_at": due.isoformat()}
    batch.audits.append(
        audit_row(schedule.tenant_id, f"schedule:{schedule.id}", "schedule.executed", "schedule", schedule.id,
                  detail, at=now)
    )  # fmt: skip
    batch.events.append(event_row(schedule.tenant_id, "schedule.executed", schedule.id, detail, at=now))


async def _produce_message(
    rt: Runtime, session: AsyncSession, schedule: Schedule, due: datetime, batch: _RunBatch
) -> tuple[str, str | None, str | None]:
    """(outcome, message id, error): the schedule's message through the pipeline, governance included."""
    principal = Principal(tenant_id=schedule.tenant_id, key_id=schedule.id, is_admin=False, kind="schedule")
    intent = Intent(
        agent_id=schedule.agent_id, platform=schedule.platform, recipient_id=schedule.recipient_id,
        content=schedule.template or "", subject=schedule.subject, scheduled_for=due, timezone=schedule.timezone,
        template_variables=schedule.template_variables, priority=Priority(schedule.priority),
        contact_id=schedule.contact_id,
    )  # fmt: skip
    try:
        prepared = await messages.prepare(rt, session, principal, intent)
    except RequestError as exc:
        return "failed", None, f"{exc.field + ': ' if exc.field else ''}{exc.detail}"
    batch.prepared.append(prepared)
    return str(prepared.values["status"]), str(prepared.values["id"]), None


def due_check_query(now: datetime, limit: int = 200) -> Any:
    """The indexed due-check (for benchmarks and EXPLAIN)."""
    return (
        select(Schedule.id)
        .where(Schedule.status == ACTIVE, Schedule.next_run <= now)
        .order_by(Schedule.next_run)
        .limit(limit)
    )


async def dispatch_tasks(rt: Runtime, execution_ids: list[str]) -> None:
    """Call each task execution's agent (after the claiming transaction committed) and record the answer.

    The agent gets ``schedule.task`` signed in the Standard Webhooks format; if it answers with
    ``{"message": {"content": ...}}`` (or ``{"reply": "..."}``), that message goes through the pipeline under the
    agent's governance to the schedule's recipient.
    """
    for execution_id in execution_ids:
        await _dispatch_one(rt, execution_id)


async def _dispatch_one(rt: Runtime, execution_id: str) -> None:
    async with rt.sessions() as session:
        execution = await session.get(ScheduleExecution, execution_id)
        if execution is None:
            return
        schedule = await session.get(Schedule, execution.schedule_id)
        agent = await session.get(Agent, (execution.tenant_id, schedule.agent_id)) if schedule else None
    if schedule is None:
        return
    payload = {
        "schedule_id": schedule.id, "execution_id": execution_id, "agent_id": schedule.agent_id,
        "workspace_id": schedule.workspace_id, "name": schedule.name, "task": schedule.task_description,
        "due_at": execution.due_at.isoformat(),
    }  # fmt: skip
    outcome, error, message_id, kept = "completed", None, None, None
    try:
        answer = await rt.agents.ask(agent, "schedule.task", payload, origin=f"schedule_execution:{execution_id}",
                                     message_id=execution_id, task=schedule.task_description or schedule.name or "")  # fmt: skip
    except callbacks.CallbackFailed as exc:
        outcome, error, answer = "callback_failed", str(exc), None
    if answer is not None:
        kept = answer.answer
        if answer.content is not None:
            outcome, message_id, error = await _answer_message(rt, schedule, answer)
    async with rt.sessions.begin() as session:
        await session.execute(
            update(ScheduleExecution)
            .where(ScheduleExecution.id == execution_id)
            .values(outcome=outcome, error=error, message_id=message_id, answer=kept)
        )


async def _answer_message(
    rt: Runtime, schedule: Schedule, answer: callbacks.AgentAnswer
) -> tuple[str, str | None, str | None]:
    """Send the agent's answer to the schedule's recipient, else to the agent's default recipient; with neither,
    the execution is ``answered`` and the answer kept on it."""
    target = (
        {
            "platform": schedule.platform,
            "recipient_id": schedule.recipient_id,
            "contact_id": schedule.contact_id,
        }
        if schedule.platform or schedule.contact_id
        else answer.default_target
    )
    if not target:
        return "answered", None, None
    principal = Principal(tenant_id=schedule.tenant_id, key_id=schedule.id, is_admin=False, kind="schedule")
    intent = Intent(
        agent_id=schedule.agent_id, platform=target.get("platform"), recipient_id=target.get("recipient_id"),
        content=str(answer.content), timezone=schedule.timezone, priority=Priority(schedule.priority),
        contact_id=target.get("contact_id"), governance_metadata=dict(answer.metadata),
    )  # fmt: skip
    try:
        async with rt.sessions.begin() as session:
            message = await messages.accept(rt, session, principal, intent)
    except RequestError as exc:
        return "failed", None, f"{exc.field + ': ' if exc.field else ''}{exc.detail}"
    return message.status, message.id, None
