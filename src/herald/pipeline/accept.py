"""Accepting and deciding on messages: the producer-facing half of the pipeline.

``accept`` runs intent → govern → render → route → outbox in the caller's transaction; the caller commits, so
a 2xx means the message is durable. State changes (approve, reject, cancel) are conditional UPDATEs, so two
humans acting at once cannot both win.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from sqlalchemy import case, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from herald.core import attachments, logs
from herald.core.batching import GroupCommits
from herald.core.errors import Conflict, Forbidden, ValidationFailed
from herald.core.ids import new_id
from herald.core.intent import Intent
from herald.core.maturity import MaturityLevel
from herald.core.principal import Principal
from herald.core.status import CANCELLABLE, Status
from herald.pipeline import digests, escalation, templates
from herald.pipeline.enrolment import require_agent
from herald.pipeline.governance import Decision, decide
from herald.pipeline.routing import planner
from herald.storage import outage
from herald.storage.audit import audit_row, event_row, keep_record
from herald.storage.bulk import insert_rows, table_of
from herald.storage.fingerprint import content_fingerprint
from herald.storage.models import Approval, Attempt, AuditEntry, Event, Message
from herald.storage.queries import owned
from herald.storage.types import utcnow

if TYPE_CHECKING:
    from herald.runtime import Runtime


@dataclass
class Prepared:
    """A message decided on but not yet written: its row, audit entry and event."""

    values: dict[str, Any]
    audit: dict[str, Any]
    event: dict[str, Any]
    wake: bool
    # The digest rule that holds it (status held): :func:`write` joins it to the rule's open batch.
    digest: digests.Rule | None = field(default=None)

    @cached_property
    def message(self) -> Message:
        """Transient: serves the response once the row is written. Made once: an ORM object of 45 columns
        costs tens of microseconds, and each access used to make another."""
        return Message(**self.values)


async def accept(rt: Runtime, session: AsyncSession, principal: Principal, intent: Intent) -> Message:
    """Govern, render, route and store one message. Raises a RequestError naming the field at fault."""
    prepared = await prepare(rt, session, principal, intent)
    await write(rt, session, [prepared])
    logs.bind(
        message_id=prepared.values["id"], agent=prepared.values["agent_id"]
    )  # the request's lines name it
    return prepared.message


async def accept_grouped(rt: Runtime, principal: Principal, intent: Intent) -> Message:
    """:func:`accept` for a request that is a transaction of its own (an API send without an Idempotency-Key).

    The message is prepared first (governance, routing and digests read caches, so usually without a statement;
    an agent registered on first use in development is committed there), then written in a transaction shared with the messages accepted at the same moment
    (group commit): one BEGIN, one INSERT per table, one NOTIFY and one COMMIT for all of them, where each
    request used to pay for its own. Each caller returns only once its own message is committed, so a 201 still
    means stored; a group that fails on one message's row is written again message by message."""
    async with rt.sessions() as session:
        prepared = await prepare(rt, session, principal, intent)
        if session.in_transaction():  # it read, or registered the agent (development): kept either way
            await session.commit()
    await _WRITERS.of(rt).submit(prepared)
    logs.bind(message_id=prepared.values["id"], agent=prepared.values["agent_id"])
    return prepared.message


async def _write_group(rt: Runtime, batch: list[Prepared]) -> None:
    for prepared in batch:  # a second attempt after a rolled-back group joins its digest afresh
        prepared.values["digest_id"] = None
    async with rt.sessions.begin() as session:
        await write(rt, session, batch)


# An outage fails the whole group at once: writing each message alone would only fail again, slower.
_WRITERS: GroupCommits[Runtime, Prepared] = GroupCommits(
    _write_group, alone=lambda exc: not outage.is_outage(exc)
)


async def write(rt: Runtime, session: AsyncSession, batch: list[Prepared]) -> None:
    """Store prepared messages with one INSERT (or COPY) per table; NOTIFY once if any is due now."""
    if not batch:
        return
    await _join_digests(session, [p for p in batch if p.digest is not None])
    await insert_rows(session, table_of(Message), [p.values for p in batch])
    await insert_rows(session, table_of(AuditEntry), [p.audit for p in batch])
    await insert_rows(session, table_of(Event), [p.event for p in batch])
    if any(p.wake for p in batch):
        await notify_workers(rt, session)
    for p in batch:
        rt.metrics.count_message(p.values["status"], p.values["platform"])


async def _join_digests(session: AsyncSession, held: list[Prepared]) -> None:
    """Link each held message to its open batch, in one order of keys for every writer (two bulk sends joining
    the same batches on PostgreSQL lock them alike and never deadlock)."""
    for p in sorted(held, key=lambda p: (p.values["platform"], p.values["recipient_id"])):
        assert p.digest is not None
        p.values["digest_id"] = await digests.join(
            session, p.values["tenant_id"], p.digest, p.values["platform"], p.values["recipient_id"],
            p.values["created_at"],
        )  # fmt: skip


def _route_plan(
    steps: list[planner.Step], content: str, step_texts: dict[str, tuple[str | None, str]]
) -> list[dict[str, Any]]:
    """The stored fallback chain: each step with its own text where the producer rendered one for that
    platform, every text checked against its step's length limit (422 naming the step)."""
    plan = [step.as_dict() for step in steps]
    for index, step in enumerate(steps):
        own = step_texts.get(step.platform) if index > 0 else None
        if own is not None:
            plan[index].update(subject=own[0], content=own[1])
        text = content if own is None else own[1]
        limit = planner.length_limit(step)
        if limit is not None and len(text) > limit:
            raise ValidationFailed(
                f"content is {len(text)} characters; {step.provider} ({step.platform}) takes at most {limit}",
                field="content" if index == 0 else f"fallback.{index - 1}",
            )
    return plan


async def prepare(
    rt: Runtime,
    session: AsyncSession,
    principal: Principal,
    intent: Intent,
    *,
    memo: planner.Memo | None = None,
) -> Prepared:
    """Govern, render and route one message, writing nothing. Raises a RequestError naming the field at fault.

    A batch producer passes one ``memo`` for all its messages so lookups are made once per batch."""
    if principal.agent_id is not None and intent.agent_id != principal.agent_id:
        raise Forbidden(f"this API key speaks only as agent {principal.agent_id!r}", field="agent_id")
    if intent.agent_id is None:
        level, decision = None, Decision.SEND
    else:
        level = await require_agent(rt, session, principal, intent.agent_id)
        decision = _decision(level, intent)
    level_name = None if level is None else level.value
    if decision is Decision.BLOCK:
        assert intent.agent_id is not None
        _record_refusal(session, principal, intent, level_name)
        raise Forbidden(
            f"agent {intent.agent_id!r} is at maturity level STUDENT and may not send proactive messages",
            field="agent_id",
        )

    now = utcnow()
    send_at = intent.scheduled_for or now
    content = intent.content
    if intent.origin is None and not intent.rendered:  # composed content was rendered before the model saw it
        content = templates.render(
            content, intent.template_variables, now=send_at, timezone=intent.timezone, field="content"
        )
    subject = intent.subject
    if subject is not None and not intent.rendered:
        subject = templates.render(
            subject, intent.template_variables, now=send_at, timezone=intent.timezone, field="subject"
        )
    route = await planner.plan(
        rt, session, principal.tenant_id, platform=intent.platform, recipient_id=intent.recipient_id,
        channel_id=intent.channel_id, contact_id=intent.contact_id, priority_name=intent.priority.name,
        fallback=intent.fallback, memo=memo,
    )  # fmt: skip
    plan = _route_plan(route.steps, content, intent.step_texts)
    if intent.attachments:
        _check_attachments(rt, intent, route.steps)
    first = route.steps[0]
    run_at = route.quiet_delay(send_at, intent.priority.name, intent.recipient_timezone)
    held = decision is Decision.REQUIRE_APPROVAL
    values: dict[str, Any] = {
        "id": new_id("msg"),
        "tenant_id": principal.tenant_id,
        "agent_id": intent.agent_id,
        "agent_maturity_level": level_name,
        "platform": first.platform,
        "recipient_id": first.recipient_id,
        "channel_id": first.channel_id,
        "simulated": first.simulated,
        "contact_id": intent.contact_id,
        "route_plan": plan,
        "route_step": 0,
        "route_reason": route.reason,
        "subject": subject,
        "content": content,
        "content_fingerprint": content_fingerprint(content),
        "sealed_content": _sealed(rt, intent),
        "attachments": attachments.describe(intent.attachments) if intent.attachments else None,
        "status": Status.PENDING_APPROVAL if held else Status.QUEUED,
        "priority": int(intent.priority),
        "run_at": run_at,
        "scheduled_for": intent.scheduled_for,
        "expires_at": now + timedelta(seconds=rt.settings.approval_ttl_seconds) if held else None,
        "attempts": 0,
        "max_attempts": rt.settings.max_attempts,
        "governance_metadata": intent.governance_metadata,
        "created_at": now,
        "updated_at": now,
        "cost": 0.0,
        "sent_at": None,
        "approved_by": intent.approval.approver if intent.approval is not None else None,
        "last_error": None,
        "provider_message_id": None,
        "lease_owner": None,
        "lease_expires_at": None,
        "actions": intent.actions,
        "digest_id": None,
        "digest_message_id": None,
        **_origin_values(intent),
        **escalation.columns(intent, route.contact, route.policy, plan, run_at),
    }
    rule = None if held else await digests.match(rt, session, principal.tenant_id, values, now)
    if rule is not None:
        values["status"] = Status.HELD
    detail = _accept_detail(intent, values, decision, level, level_name, rule, send_at, run_at)
    audit = audit_row(
        principal.tenant_id, principal.actor, "message.accepted", "message", values["id"], detail,
        needs_review=decision is Decision.SEND_WITH_REVIEW, at=now,
    )  # fmt: skip
    event_type = "approval.requested" if held else "message.held" if rule is not None else "message.queued"
    event = event_row(principal.tenant_id, event_type, values["id"], detail, at=now)
    return Prepared(values, audit, event, wake=not held and rule is None and run_at <= now, digest=rule)


def _accept_detail(
    intent: Intent,
    values: dict[str, Any],
    decision: Decision,
    level: MaturityLevel | None,
    level_name: str | None,
    rule: digests.Rule | None,
    send_at: datetime,
    run_at: datetime,
) -> dict[str, Any]:
    """What the ``message.accepted`` audit entry and the first event say about how the message was taken."""
    detail: dict[str, Any] = {
        "decision": decision.value,
        "maturity_level": level_name,
        "status": values["status"],
    }
    if run_at > send_at:
        detail["quiet_hours_until"] = run_at.isoformat()
    if intent.origin is not None:
        detail["content_path"] = intent.origin.path
    if rule is not None:
        detail["digest_rule_id"] = rule.id
    if intent.escalated_from is not None:
        detail["escalated_from"] = intent.escalated_from
    if values["escalation"] is not None:
        detail["escalation"] = values["escalation"]
    if intent.approval is not None and level is not None and decide(level) is Decision.REQUIRE_APPROVAL:
        detail["approved_as_part_of"] = intent.approval.reference
        detail["approver"] = intent.approval.approver
    return detail


def _decision(level: MaturityLevel, intent: Intent) -> Decision:
    """The tier's decision, except that a message a human already approved as part of a whole (an INTERN's
    campaign run) is not held again: it is queued, and its audit entry names that approval."""
    decision = decide(level)
    if decision is Decision.REQUIRE_APPROVAL and intent.approval is not None:
        return Decision.SEND
    return decision


def _check_attachments(rt: Runtime, intent: Intent, steps: list[planner.Step]) -> None:
    """Attachments go by email only (on every step of the route, fallbacks included), within the count and
    total size the settings allow; a 422 naming ``attachments`` otherwise."""
    settings = rt.settings
    count = len(intent.attachments)
    if count > settings.attachments_max_count:
        raise ValidationFailed(
            f"{count} attachments; at most {settings.attachments_max_count} per message", field="attachments"
        )
    total = sum(a.size for a in intent.attachments)
    if total > settings.attachments_max_bytes:
        raise ValidationFailed(
            f"the attachments are {total} bytes together; at most {settings.attachments_max_bytes}",
            field="attachments",
        )
    for step in steps:
        if not planner.takes_attachments(step):
            raise ValidationFailed(
                f"attachments are sent by email only; the route goes by {step.platform} ({step.provider})",
                field="attachments",
            )


def _sealed(rt: Runtime, intent: Intent) -> bytes | None:
    """The sealed payload: the real text of a redacted message and the attachments' content. It is the one
    thing every path that finishes a message drops (sent, failed, rejected, cancelled, expired)."""
    payload: dict[str, Any] = {}
    if intent.sealed is not None:
        payload["content"] = intent.sealed
    if intent.attachments:
        payload["attachments"] = attachments.to_sealed(intent.attachments)
    return rt.credentials.seal(payload) if payload else None


def _origin_values(intent: Intent) -> dict[str, Any]:
    """The columns that say how the text was composed (all defaults for text given as is)."""
    origin = intent.origin
    if origin is None:
        return {"content_path": None, "ai_model": None, "ai_prompt_tokens": 0, "ai_completion_tokens": 0,
                "ai_cost": 0.0}  # fmt: skip
    return {
        "content_path": origin.path, "ai_model": origin.model, "ai_prompt_tokens": origin.prompt_tokens,
        "ai_completion_tokens": origin.completion_tokens, "ai_cost": origin.cost,
    }  # fmt: skip


def _record_refusal(
    session: AsyncSession, principal: Principal, intent: Intent, level_name: str | None
) -> None:
    """A refused message is still a decision on record: its audit entry and event are kept whether or not the
    producer's transaction commits, so no producer can forget them."""
    assert intent.agent_id is not None
    detail = {
        "maturity_level": level_name,
        "platform": intent.platform,
        "recipient_id": intent.recipient_id,
        "contact_id": intent.contact_id,
        "producer": principal.kind,
    }
    now = utcnow()
    keep_record(
        session,
        [
            audit_row(
                principal.tenant_id,
                principal.actor,
                "message.blocked",
                "agent",
                intent.agent_id,
                detail,
                at=now,
            )
        ],
        [event_row(principal.tenant_id, "message.blocked", intent.agent_id, detail, at=now)],
    )


async def notify_workers(rt: Runtime, session: AsyncSession) -> None:
    """Wake delivery workers once this transaction commits: NOTIFY reaches other PostgreSQL processes (it is
    delivered at commit), and the in-process waker is registered to run after the commit. Producers never
    wake workers themselves."""
    await rt.waker.wake_after_commit(session)


async def get_message(session: AsyncSession, tenant_id: str, message_id: str) -> Message:
    return await owned(session, Message, tenant_id, message_id, "message")


async def attempts_of(session: AsyncSession, message_id: str) -> list[Attempt]:
    query = select(Attempt).where(Attempt.message_id == message_id).order_by(Attempt.started_at, Attempt.id)
    return list((await session.execute(query)).scalars())


async def list_messages(
    session: AsyncSession,
    tenant_id: str,
    *,
    status: str | None = None,
    agent_id: str | None = None,
    platform: str | None = None,
    recipient_id: str | None = None,
    limit: int = 100,
    cursor: str | None = None,
) -> list[Message]:
    """Newest first; ``cursor`` is the id of the last message of the previous page."""
    query = select(Message).where(Message.tenant_id == tenant_id)
    if status is not None:
        query = query.where(Message.status == status)
    if agent_id is not None:
        query = query.where(Message.agent_id == agent_id)
    if platform is not None:
        query = query.where(Message.platform == platform)
    if recipient_id is not None:
        query = query.where(Message.recipient_id == recipient_id)
    if cursor is not None:
        query = query.where(Message.id < cursor)
    return list((await session.execute(query.order_by(Message.id.desc()).limit(limit))).scalars())


async def _transition(
    session: AsyncSession, tenant_id: str, message_id: str, allowed: frozenset[str], values: dict[str, Any]
) -> Message:
    """Move a message to a new state only if it is still in an allowed one; else 404 or 409."""
    result = await session.execute(
        update(Message)
        .where(Message.id == message_id, Message.tenant_id == tenant_id, Message.status.in_(allowed))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if getattr(result, "rowcount", 0) == 0:
        current = await get_message(session, tenant_id, message_id)
        raise Conflict(
            f"message {message_id} is {current.status}; this needs one of: {', '.join(sorted(allowed))}"
        )
    message = await get_message(session, tenant_id, message_id)
    await session.refresh(message)
    return message


async def approve(
    rt: Runtime, session: AsyncSession, principal: Principal, message_id: str, approver: str
) -> Message:
    """Queue a held message: one conditional UPDATE ... RETURNING (it is on the path of every decision an
    approver makes); when no row moved, 404 or a 409 saying why (expired, or already decided)."""
    now = utcnow()
    moved = await session.execute(
        update(Message)
        .where(Message.id == message_id, Message.tenant_id == principal.tenant_id,
               Message.status == Status.PENDING_APPROVAL, or_(Message.expires_at.is_(None), Message.expires_at > now))
        .values(status=Status.QUEUED, approved_by=approver, expires_at=None, updated_at=now,
                run_at=case((Message.scheduled_for > now, Message.scheduled_for), else_=now))
        .returning(Message)
        .execution_options(synchronize_session=False, populate_existing=True)
    )  # fmt: skip
    message = moved.scalar_one_or_none()
    if message is None:
        current = await get_message(session, principal.tenant_id, message_id)
        if current.status == Status.PENDING_APPROVAL and current.expires_at and current.expires_at <= now:
            raise Conflict(
                f"message {message_id} expired awaiting approval at {current.expires_at.isoformat()}"
            )
        raise Conflict(
            f"message {message_id} is {current.status}; this needs one of: {Status.PENDING_APPROVAL}"
        )
    await _record_decision(session, principal, message, "approved", approver, None, now)
    if await _hold_approved(rt, session, message, now):
        return message
    if message.run_at <= now:
        await notify_workers(rt, session)
    return message


async def _hold_approved(rt: Runtime, session: AsyncSession, message: Message, now: datetime) -> bool:
    """An approved message that a digest rule matches joins its digest now (never before a human approved
    it): held instead of queued. True if it was."""
    values = {column: getattr(message, column) for column in _DIGEST_COLUMNS}
    rule = await digests.match(rt, session, message.tenant_id, values, now)
    if rule is None:
        return False
    message.digest_id = await digests.join(
        session, message.tenant_id, rule, message.platform, message.recipient_id, now
    )
    message.status = Status.HELD
    detail = {"digest_rule_id": rule.id, "digest_id": message.digest_id}
    await session.execute(
        insert(Event), [event_row(message.tenant_id, "message.held", message.id, detail, at=now)]
    )
    await session.flush()
    return True


_DIGEST_COLUMNS = ("agent_id", "platform", "recipient_id", "priority", "scheduled_for", "attachments", "actions",
                   "sealed_content", "governance_metadata")  # fmt: skip


async def reject(
    session: AsyncSession, principal: Principal, message_id: str, approver: str, reason: str | None
) -> Message:
    now = utcnow()
    message = await _transition(
        session, principal.tenant_id, message_id, frozenset({Status.PENDING_APPROVAL}),
        {"status": Status.REJECTED, "approved_by": approver, "last_error": reason, "updated_at": now,
         "sealed_content": None},
    )  # fmt: skip
    await _record_decision(session, principal, message, "rejected", approver, reason, now)
    return message


async def cancel(session: AsyncSession, principal: Principal, message_id: str) -> Message:
    now = utcnow()
    message = await _transition(
        session,
        principal.tenant_id,
        message_id,
        CANCELLABLE,
        {"status": Status.CANCELLED, "updated_at": now, "sealed_content": None},
    )
    await session.execute(
        insert(AuditEntry),
        [audit_row(principal.tenant_id, principal.actor, "message.cancelled", "message", message_id, at=now)],
    )
    await session.execute(
        insert(Event), [event_row(principal.tenant_id, "message.cancelled", message_id, at=now)]
    )
    return message


async def _record_decision(
    session: AsyncSession,
    principal: Principal,
    message: Message,
    decision: str,
    approver: str,
    reason: str | None,
    now: datetime,
) -> None:
    await session.execute(
        insert(Approval).values(id=new_id("apr"), tenant_id=principal.tenant_id, message_id=message.id,
                                decision=decision, approver=approver, reason=reason, created_at=now)
    )  # fmt: skip
    detail = {"approver": approver, "reason": reason}
    await session.execute(
        insert(AuditEntry),
        [
            audit_row(
                principal.tenant_id,
                principal.actor,
                f"message.{decision}",
                "message",
                message.id,
                detail,
                at=now,
            )
        ],
    )
    await session.execute(
        insert(Event),
        [
            event_row(principal.tenant_id, f"message.{decision}", message.id, detail, at=now),
            event_row(
                principal.tenant_id, "approval.decided", message.id, {**detail, "decision": decision}, at=now
            ),
        ],
    )
