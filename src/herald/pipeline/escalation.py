"""Receipt-driven escalation: a message not ``read`` (or not ``delivered``) within N minutes of being sent goes
out once more, on the next channel of the contact's chain, and the two messages point at each other.

The rule comes with the send request (``escalation``) or from the contact's default. It is checked when the
message is accepted: a message with nowhere to escalate to is a 422 naming ``escalation`` (a contact's default
simply does not apply to it). ``unless: read`` on a channel that never reports reads waits for ``delivered``
instead, since waiting for a receipt that cannot come would escalate every message.

The deadline (``escalate_at``) starts as the earliest time the message could be due (accepted + N) and is moved
to sent + N once the message is sent: a message held for approval or quiet hours is not escalated before it
even left. The pass (a scheduler loop) takes due rows one transaction each, locked with ``SKIP LOCKED`` on
PostgreSQL (one writer at a time on SQLite), and in that transaction either closes the rule (the receipt came:
``answered``; the message failed or never went: ``ended``), or accepts the escalated message through the normal
pipeline (governance included) and links both ways. The unique index on ``escalated_from_id`` makes a second
escalation of one message impossible even if two passes raced past the lock.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from herald.core.background import Loop
from herald.core.errors import HeraldError, ValidationFailed
from herald.core.intent import EscalationRule, Intent, PriorApproval, Priority
from herald.core.principal import Principal
from herald.core.status import Status
from herald.pipeline.routing import planner
from herald.providers import provider_class
from herald.storage import claims
from herald.storage.audit import audit_row, event_row
from herald.storage.models import AuditEntry, Contact, Event, Message
from herald.storage.types import utcnow

if TYPE_CHECKING:
    from herald.pipeline.routing.policy import DeliveryPolicy
    from herald.runtime import Runtime

log = logging.getLogger(__name__)

UNLESS = ("read", "delivered")
MAX_MINUTES = 7 * 24 * 60
WAITING, ESCALATED, ANSWERED, ENDED, SKIPPED = "waiting", "escalated", "answered", "ended", "skipped"
BATCH = 100
ACTOR_KIND = "escalation"
# States a message waits for a receipt in (read ends the wait); states it will never be sent from.
_RECEIPTED = (Status.SENT, Status.DELIVERED, Status.READ)
_NEVER_SENT = (Status.FAILED, Status.REJECTED, Status.CANCELLED, Status.EXPIRED)


@dataclass(frozen=True, slots=True)
class Hop:
    """Where an escalated message goes: a platform and the recipient's address on it."""

    platform: str
    recipient_id: str


def rule_problem(value: Any) -> tuple[str, str] | None:
    """(message, field) when a stored-shape rule ``{"after_minutes", "unless"}`` is invalid, else None."""
    if not isinstance(value, dict):
        return "must be an object with after_minutes and unless", "escalation"
    minutes = value.get("after_minutes")
    if not isinstance(minutes, int) or isinstance(minutes, bool) or not 1 <= minutes <= MAX_MINUTES:
        return f"must be a whole number of minutes from 1 to {MAX_MINUTES}", "escalation.after_minutes"
    if value.get("unless", "read") not in UNLESS:
        return f"must be one of: {', '.join(UNLESS)}", "escalation.unless"
    return None


def hops(
    plan: list[dict[str, Any]], step: int, contact: Contact | None, policy: DeliveryPolicy, priority: str
) -> list[Hop]:
    """The escalation chain of a message on ``plan[step]``: the later steps of its own route on other platforms,
    then the contact's chain (its ``channel_order``, else the tenant's route for the priority) after the current
    platform, where the contact has an address and has not opted out. First is where it escalates to."""
    current = plan[step]["platform"] if 0 <= step < len(plan) else None
    found: dict[str, Hop] = {}
    for later in plan[step + 1 :]:
        if later["platform"] != current:
            found.setdefault(later["platform"], Hop(later["platform"], str(later["recipient_id"])))
    if contact is not None:
        order = contact.channel_order or policy.priority_routes.get(priority, [])
        after = order[order.index(current) + 1 :] if current in order else order
        for name in after:
            address = contact.addresses.get(name)
            if address and name != current:
                found.setdefault(name, Hop(name, str(address)))
        return [hop for hop in found.values() if hop.platform not in contact.opt_outs]
    return list(found.values())


def waits_for(unless: str, step: dict[str, Any] | None) -> str:
    """The receipt that cancels the escalation on this route step: ``read`` only where its provider reports
    reads on its platform (the dev inbox reports nothing), else ``delivered``."""
    if unless != "read" or step is None or step.get("simulated"):
        return "delivered"
    adapter = provider_class(str(step.get("provider")))
    return "read" if adapter is not None and step.get("platform") in adapter.read_receipts else "delivered"


def columns(
    intent: Intent,
    contact: Contact | None,
    policy: DeliveryPolicy,
    plan: list[dict[str, Any]],
    run_at: datetime,
) -> dict[str, Any]:
    """The escalation columns of a message being accepted. The request's rule must be usable (a 422 naming
    ``escalation`` otherwise); a contact's default applies only where it can. An escalated message carries no
    rule: a message escalates once."""
    values: dict[str, Any] = {"escalation": None, "escalation_state": None, "escalate_at": None,
                              "escalated_to_id": None, "escalated_from_id": intent.escalated_from}  # fmt: skip
    if intent.escalated_from is not None:
        return values
    rule, source = intent.escalation, "message"
    if (
        rule is None
        and contact is not None
        and contact.escalation
        and rule_problem(contact.escalation) is None
    ):
        rule, source = EscalationRule(**contact.escalation), "contact"
    if rule is None:
        return values
    problem = _unusable(intent, hops(plan, 0, contact, policy, intent.priority.name))
    if problem is not None:
        if source == "message":
            raise ValidationFailed(problem, field="escalation")
        return values
    values.update(
        escalation={"after_minutes": rule.after_minutes, "unless": rule.unless, "source": source},
        escalation_state=WAITING,
        escalate_at=run_at + timedelta(minutes=rule.after_minutes),
    )
    return values


def _unusable(intent: Intent, chain: list[Hop]) -> str | None:
    if intent.attachments:
        return "a message with attachments cannot escalate: attachments are dropped once it is sent"
    if intent.sealed is not None:
        return "a message with sealed content cannot escalate: its text is dropped once it is sent"
    if not chain:
        return ("no next channel to escalate to: give a contact_id with an address on another platform "
                "(its channel_order or the priority route), or a fallback step")  # fmt: skip
    return None


# -- the pass ---------------------------------------------------------------------------------------------------


async def run_escalations(rt: Runtime, *, now: datetime | None = None, limit: int = BATCH) -> int:
    """One pass: close the rules of messages that will never be sent, then settle each due waiting message in
    its own transaction (answered, deadline moved to sent + N, escalated, or skipped). Returns how many were
    due, so a full batch runs again at once."""
    now = now or utcnow()
    async with rt.sessions.begin() as session:
        await session.execute(
            update(Message)
            .where(Message.escalation_state == WAITING, Message.escalate_at <= now,
                   Message.status.in_(_NEVER_SENT))
            .values(escalation_state=ENDED)
            .execution_options(synchronize_session=False)
        )  # fmt: skip
        due = (
            select(Message.id)
            .where(Message.escalation_state == WAITING, Message.escalate_at <= now,
                   Message.status.in_(_RECEIPTED))
            .order_by(Message.escalate_at)
            .limit(limit)
        )  # fmt: skip
        ids = list((await session.execute(due)).scalars())
    for message_id in ids:
        try:
            await settle(rt, message_id, now)
        except (
            IntegrityError
        ):  # the unique escalated_from_id: another pass escalated it first, and that is all
            log.info("message %s was escalated by another pass", message_id)
    return len(ids)


async def settle(rt: Runtime, message_id: str, now: datetime) -> str | None:
    """Settle one due message in one transaction; returns its new state (None: not due, or another process
    holds it). The row is locked until the commit, so no other pass decides on it meanwhile."""
    async with rt.sessions.begin() as session:
        query = select(Message).where(
            Message.id == message_id, Message.escalation_state == WAITING, Message.escalate_at <= now,
            Message.status.in_(_RECEIPTED),
        )  # fmt: skip
        found = await claims.claim(session, query.limit(1))
        if not found:
            return None
        message = found[0]
        rule = dict(message.escalation or {})
        step = (
            message.route_plan[message.route_step] if message.route_step < len(message.route_plan) else None
        )
        rule["waits_for"] = waits_for(str(rule.get("unless", "read")), step)
        if message.status == Status.READ or (
            message.status == Status.DELIVERED and rule["waits_for"] == "delivered"
        ):
            message.escalation, message.escalation_state = rule, ANSWERED
            return ANSWERED
        deadline = (message.sent_at or now) + timedelta(minutes=int(rule.get("after_minutes", 0)))
        if deadline > now:
            message.escalate_at = deadline  # it left later than it was accepted: wait N minutes from then
            return None
        return await _escalate(rt, session, message, rule, now)


async def _escalate(
    rt: Runtime, session: AsyncSession, message: Message, rule: dict[str, Any], now: datetime
) -> str:
    """Accept the escalated message through the pipeline and link both ways, in the caller's transaction; when
    the pipeline refuses it (the contact opted out since, the agent was demoted), the rule is closed as
    ``skipped`` with the reason, audited, and nothing is sent."""
    from herald.pipeline import accept  # accept stores the rule with columns() above

    principal = Principal(tenant_id=message.tenant_id, key_id=message.id, is_admin=False, kind=ACTOR_KIND)
    contact = None
    if message.contact_id is not None:
        contact = await session.get(Contact, message.contact_id)
    policy = await planner.tenant_policy(rt, session, message.tenant_id)
    priority = _priority(message.priority)
    chain = hops(message.route_plan, message.route_step, contact, policy, priority.name)
    try:
        if not chain:
            raise _NoChannel("no next channel to escalate to (the contact opted out or lost its addresses)")
        prepared = await accept.prepare(rt, session, principal, _intent(message, contact, chain, priority))
    except HeraldError as exc:
        message.escalation, message.escalation_state = {**rule, "note": str(exc)}, SKIPPED
        detail = {"reason": str(exc), **rule}
        session.add(AuditEntry(**audit_row(message.tenant_id, principal.actor, "message.escalation_skipped",
                                           "message", message.id, detail, at=now)))  # fmt: skip
        return SKIPPED
    target = prepared.values["id"]
    message.escalation, message.escalation_state, message.escalated_to_id = rule, ESCALATED, target
    await accept.write(rt, session, [prepared])
    detail = {"escalated_to": target, "platform": prepared.values["platform"], "from_platform": message.platform,
              "status": message.status, **rule}  # fmt: skip
    await session.execute(insert(AuditEntry), [
        audit_row(message.tenant_id, principal.actor, "message.escalated", "message", message.id, detail, at=now)
    ])  # fmt: skip
    await session.execute(
        insert(Event), [event_row(message.tenant_id, "message.escalated", message.id, detail, at=now)]
    )
    log.info("message %s escalated to %s on %s", message.id, target, prepared.values["platform"])
    return ESCALATED


class _NoChannel(HeraldError):
    """The message's chain has no channel left to escalate to."""


def _priority(value: int) -> Priority:
    try:
        return Priority(value)
    except ValueError:
        return Priority.MEDIUM


def _intent(message: Message, contact: Contact | None, chain: list[Hop], priority: Priority) -> Intent:
    """The escalated message: the same agent, text and priority, on the first hop, the rest of the chain as its
    fallback. A human's approval of the original carries over (the escalated message is not held again, and
    its audit entry names that approval); otherwise the agent's tier decides as for any message."""
    hop, rest = chain[0], chain[1:]
    on_contact = contact is not None and bool(contact.addresses.get(hop.platform))
    approval = None
    if message.approved_by is not None:
        approval = PriorApproval(approver=message.approved_by, reference=f"message:{message.id}")
    return Intent(
        agent_id=message.agent_id, platform=hop.platform, recipient_id=hop.recipient_id,
        content=message.content, subject=message.subject, governance_metadata=dict(message.governance_metadata),
        priority=priority, contact_id=message.contact_id if on_contact else None,
        fallback=[(h.platform, h.recipient_id) for h in rest], actions=message.actions, approval=approval,
        escalated_from=message.id, rendered=True,
    )  # fmt: skip


# -- what answers show ---------------------------------------------------------------------------------------------


async def linked(session: AsyncSession, tenant_id: str, messages: Iterable[Message]) -> dict[str, Message]:
    """The messages ``messages`` escalated to or from, by id, in one query: an answer shows both ends."""
    ids = {i for m in messages for i in (m.escalated_to_id, m.escalated_from_id) if i is not None}
    if not ids:
        return {}
    rows = await session.execute(select(Message).where(Message.tenant_id == tenant_id, Message.id.in_(ids)))
    return {m.id: m for m in rows.scalars()}


def view(message: Message, others: dict[str, Message] | None = None) -> dict[str, Any] | None:
    """The ``escalation`` of a message answer: the rule, the receipt it waits for, its deadline, its state and
    both linked messages with their current status; None for a message with neither rule nor link."""
    if message.escalation is None and message.escalated_from_id is None:
        return None
    rule = message.escalation or {}
    step = message.route_plan[message.route_step] if message.route_step < len(message.route_plan) else None
    minutes = rule.get("after_minutes")
    due = None
    if minutes is not None:
        due = (message.sent_at + timedelta(minutes=int(minutes))) if message.sent_at else message.escalate_at
    return {
        "after_minutes": minutes,
        "unless": rule.get("unless"),
        "waits_for": rule.get("waits_for") or (waits_for(str(rule["unless"]), step) if rule else None),
        "source": rule.get("source"),
        "state": message.escalation_state,
        "due_at": due,
        "note": rule.get("note"),
        "escalated_to": _link(message.escalated_to_id, others),
        "escalated_from": _link(message.escalated_from_id, others),
    }


def _link(message_id: str | None, others: dict[str, Message] | None) -> dict[str, Any] | None:
    if message_id is None:
        return None
    other = (others or {}).get(message_id)
    return {
        "id": message_id,
        "status": None if other is None else other.status,
        "platform": None if other is None else other.platform,
    }


LOOPS = (Loop("receipt escalations", "scheduler", run_pass=run_escalations, interval=5.0, batch=BATCH),)
