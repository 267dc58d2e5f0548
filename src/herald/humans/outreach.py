"""Requests and questions taken to people: created, sent on every approver's channel, escalated, expired.

Each copy is a Herald message through the pipeline (routed, rate-limited, audited, retried) with buttons where
the platform has them; the held message itself never moves until a decision arrives (see
:mod:`herald.humans.decisions`). A held message, or an INTERN's held campaign run (one request for the whole
run, see :mod:`herald.humans.runs`), gets its request from the ``approval outreach`` loop, which finds held
ones without a request: a crash between holding and sending the request loses nothing, and the unique
``message_id`` and ``campaign_run_id`` keep two processes from opening two requests.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import exists, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from herald.core.background import Loop
from herald.core.errors import Forbidden, NotFound, RequestError, ValidationFailed
from herald.core.ids import new_id
from herald.core.intent import Intent, Priority
from herald.core.maturity import MaturityLevel
from herald.core.principal import Principal
from herald.core.status import Status
from herald.humans import directory, links, runs
from herald.pipeline import accept
from herald.pipeline.enrolment import require_agent
from herald.producers.campaigns import model as campaigns
from herald.storage.audit import audit_row, event_row, keep_record
from herald.storage.models import (
    Agent,
    Approver,
    AuditEntry,
    CampaignRun,
    Event,
    HumanDelivery,
    HumanRequest,
    HumanVote,
    Message,
)
from herald.storage.types import utcnow

if TYPE_CHECKING:
    from herald.runtime import Runtime

log = logging.getLogger(__name__)

APPROVAL, QUESTION = "approval", "question"
PENDING, APPROVED, REJECTED, EXPIRED, CANCELLED, ANSWERED = (
    "pending", "approved", "rejected", "expired", "cancelled", "answered",
)  # fmt: skip
BUTTONS = frozenset({"slack", "telegram", "discord", "whatsapp"})  # platforms whose copies carry buttons
SHOWN = 700  # characters of the held message shown in a request (WhatsApp's interactive body holds 1024)
ACTION_PREFIX = "hl"
BATCH = 100


def system(tenant_id: str) -> Principal:
    """Who sends requests: Herald itself for the tenant (the actor ``humans:outreach`` in the audit trail)."""
    return Principal(tenant_id=tenant_id, key_id="outreach", is_admin=False, kind="humans")


def action_value(request_id: str, choice: str) -> str:
    """A button's value: ``hl:<request>:<choice>`` (``a`` approve, ``r`` reject, ``o<n>`` option n)."""
    return f"{ACTION_PREFIX}:{request_id}:{choice}"


@dataclass(frozen=True)
class Target:
    """One copy to send: to whom (an approver, or a question's direct address), where, at which level."""

    approver_id: str | None
    name: str
    address: dict[str, Any]
    level: int


# -- codes ----------------------------------------------------------------------------------------------------


async def new_code(session: AsyncSession, tenant_id: str) -> str:
    """A short number unique among the tenant's open requests, for text replies (``YES 4821``)."""
    taken = set(
        (await session.execute(
            select(HumanRequest.code).where(HumanRequest.tenant_id == tenant_id, HumanRequest.status == PENDING)
        )).scalars()
    )  # fmt: skip
    digits = 4 if len(taken) < 5000 else 6
    while True:
        code = str(secrets.randbelow(9 * 10 ** (digits - 1)) + 10 ** (digits - 1))
        if code not in taken:
            return code


# -- approval requests for held messages ----------------------------------------------------------------------


async def open_pass(rt: Runtime) -> int:
    """One pass of the outreach loop: a request for every held message and held campaign run that has none."""
    async with rt.sessions() as session:
        held = list((await session.execute(
            select(Message.id).where(
                Message.status == Status.PENDING_APPROVAL,
                ~exists().where(HumanRequest.message_id == Message.id),
            ).order_by(Message.created_at).limit(BATCH)
        )).scalars())  # fmt: skip
        held_runs = list((await session.execute(
            select(CampaignRun.id).where(
                CampaignRun.status == campaigns.PENDING_APPROVAL,
                ~exists().where(HumanRequest.campaign_run_id == CampaignRun.id),
            ).order_by(CampaignRun.created_at).limit(BATCH)
        )).scalars())  # fmt: skip
    opened = 0
    for open_one, ids in ((open_approval, held), (open_run_approval, held_runs)):
        for held_id in ids:
            try:
                async with rt.sessions.begin() as session:
                    opened += await open_one(rt, session, held_id)
            except IntegrityError:  # another process opened it first
                continue
    return opened


async def open_approval(rt: Runtime, session: AsyncSession, message_id: str) -> int:
    message = await session.get(Message, message_id)
    if message is None or message.status != Status.PENDING_APPROVAL:
        return 0
    policies = await directory.list_policies(session, message.tenant_id)
    policy = directory.matching(policies, message.agent_id, message.priority)
    now = utcnow()
    expires_at = message.expires_at
    if policy is not None and policy.expires_after_seconds:
        expires_at = message.created_at + timedelta(seconds=policy.expires_after_seconds)
        message.expires_at = expires_at  # the worker expires the held message at the policy's time
    escalate = policy.escalate_after_seconds if policy is not None else None
    request = HumanRequest(
        id=new_id("req"), tenant_id=message.tenant_id, kind=APPROVAL, status=PENDING, agent_id=message.agent_id,
        message_id=message.id, policy_id=policy.id if policy else None, text=message.content, options=[],
        quorum=policy.quorum if policy else 1, code=await new_code(session, message.tenant_id),
        approver_ids=list(policy.approver_ids) if policy else [], escalate_after_seconds=escalate,
        escalate_to=list(policy.escalate_to) if policy else [], level=0,
        next_check_at=_next_check(now, escalate, expires_at), expires_at=expires_at, notify_status="none",
        notify_attempts=0, created_at=now, updated_at=now,
    )  # fmt: skip
    session.add(request)
    await session.flush()
    approvers = await directory.approvers_by_id(session, message.tenant_id, request.approver_ids)
    targets = [_target(approvers[i], 0, 0) for i in request.approver_ids if i in approvers]
    await send_copies(rt, session, request, [t for t in targets if t is not None], message=message)
    return 1


async def open_run_approval(rt: Runtime, session: AsyncSession, run_id: str) -> int:
    """One request for a held campaign run, under the tenant's policy for the campaign's agent and priority.

    It expires after the policy's ``expires_after_seconds`` (else ``HERALD_APPROVAL_TTL_SECONDS``, as a held
    message does) counted from when the run was held; the run then ends ``rejected`` (see
    :func:`herald.humans.decisions.expire`)."""
    held = await runs.load(session, run_id)
    if held is None or held.campaign is None or held.run.status != campaigns.PENDING_APPROVAL:
        return 0
    run, campaign = held.run, held.campaign
    policies = await directory.list_policies(session, run.tenant_id)
    policy = directory.matching(policies, campaign.agent_id, campaign.priority)
    now = utcnow()
    since = run.started_at or now
    ttl = policy.expires_after_seconds if policy is not None and policy.expires_after_seconds else None
    expires_at = since + timedelta(seconds=ttl or rt.settings.approval_ttl_seconds)
    escalate = policy.escalate_after_seconds if policy is not None else None
    request = HumanRequest(
        id=new_id("req"), tenant_id=run.tenant_id, kind=APPROVAL, status=PENDING, agent_id=campaign.agent_id,
        campaign_run_id=run.id, policy_id=policy.id if policy else None,
        text=f"Campaign run {campaign.name} ({run.id})", options=[], quorum=policy.quorum if policy else 1,
        code=await new_code(session, run.tenant_id), approver_ids=list(policy.approver_ids) if policy else [],
        escalate_after_seconds=escalate, escalate_to=list(policy.escalate_to) if policy else [], level=0,
        next_check_at=_next_check(now, escalate, expires_at), expires_at=expires_at, notify_status="none",
        notify_attempts=0, created_at=now, updated_at=now,
    )  # fmt: skip
    session.add(request)
    await session.flush()
    detail = {"campaign_id": campaign.id, "campaign_run_id": run.id, "quorum": request.quorum,
              "approver_ids": request.approver_ids, "expires_at": expires_at.isoformat()}  # fmt: skip
    await _record(session, request, "humans:outreach", "approval.requested", detail, now)
    approvers = await directory.approvers_by_id(session, run.tenant_id, request.approver_ids)
    targets = [_target(approvers[i], 0, 0) for i in request.approver_ids if i in approvers]
    await send_copies(rt, session, request, [t for t in targets if t is not None], held_run=held)
    return 1


def _next_check(now: datetime, escalate_after: int | None, expires_at: datetime | None) -> datetime | None:
    escalation = now + timedelta(seconds=escalate_after) if escalate_after else None
    candidates = [t for t in (escalation, expires_at) if t is not None]
    return min(candidates) if candidates else None


def _target(approver: Approver, level: int, joined: int) -> Target | None:
    """The approver's address for this escalation level: their next channel each time, none once spent."""
    index = level - joined
    if index < 0 or index >= len(approver.addresses):
        return None
    return Target(approver.id, approver.name, approver.addresses[index], level)


# -- questions ------------------------------------------------------------------------------------------------


async def ask(
    rt: Runtime,
    session: AsyncSession,
    principal: Principal,
    *,
    agent_id: str,
    text: str,
    options: list[str],
    approver_ids: list[str],
    direct: dict[str, Any] | None,
    timeout_seconds: int,
    escalate_to: list[str],
    run_id: str | None = None,
    call_id: str | None = None,
) -> HumanRequest:
    """Ask approvers (or one address) a question; the answer goes back to the agent (see decisions.notify).

    A question is the agent speaking, so its level applies: a STUDENT may not ask. To approvers (the people
    who govern the agent) it goes as the tenant's own message; to anyone else it is the agent's message, held
    for approval like any other an INTERN sends."""
    level = await require_agent(rt, session, principal, agent_id)
    agent = await session.get(Agent, (principal.tenant_id, agent_id))
    if principal.agent_id is not None and principal.agent_id != agent_id:
        raise Forbidden(f"this API key speaks only as agent {principal.agent_id!r}", field="agent_id")
    if level is MaturityLevel.STUDENT:
        keep_record(
            session,
            [
                audit_row(
                    principal.tenant_id,
                    principal.actor,
                    "question.blocked",
                    "agent",
                    agent_id,
                    {"text": text[:200]},
                )
            ],
            [
                event_row(
                    principal.tenant_id,
                    "message.blocked",
                    agent_id,
                    {"maturity_level": "STUDENT", "kind": "question"},
                )
            ],
        )
        raise Forbidden(
            f"agent {agent_id!r} is at maturity level STUDENT and may not ask questions", field="agent_id"
        )
    if not approver_ids and direct is None:
        raise ValidationFailed("name approver_ids, or a platform and a recipient_id (or a contact_id)",
                               field="approver_ids")  # fmt: skip
    await directory.check_approvers(session, principal.tenant_id, approver_ids, "approver_ids")
    await directory.check_approvers(session, principal.tenant_id, escalate_to, "escalate_to")
    if direct is not None:
        await directory.check_address(session, principal.tenant_id, direct, field="")
    now = utcnow()
    expires_at = now + timedelta(seconds=timeout_seconds)
    request = HumanRequest(
        id=new_id("qst"), tenant_id=principal.tenant_id, kind=QUESTION, status=PENDING, agent_id=agent_id,
        text=text, options=options, quorum=1, code=await new_code(session, principal.tenant_id),
        approver_ids=approver_ids, direct=direct, escalate_after_seconds=timeout_seconds if escalate_to else None,
        escalate_to=escalate_to, level=0, next_check_at=expires_at, expires_at=expires_at, run_id=run_id,
        call_id=call_id, notify_status="none", notify_attempts=0, created_at=now, updated_at=now,
    )  # fmt: skip
    if escalate_to:  # the first timeout escalates; the question then has the same time again
        expires_at = request.expires_at = now + timedelta(seconds=2 * timeout_seconds)
    session.add(request)
    await session.flush()
    detail = {"agent_id": agent_id, "approver_ids": approver_ids, "direct": direct, "options": options,
              "kind": agent.kind if agent else None, "expires_at": expires_at.isoformat()}  # fmt: skip
    await _record(session, request, principal.actor, "question.asked", detail, now)
    approvers = await directory.approvers_by_id(session, principal.tenant_id, approver_ids)
    targets = [
        t for t in (_target(approvers[i], 0, 0) for i in approver_ids if i in approvers) if t is not None
    ]
    if direct is not None:
        targets.append(Target(None, direct.get("recipient_id") or direct.get("contact_id") or "", direct, 0))
    await send_copies(rt, session, request, targets, principal=principal)
    return request


# -- sending copies -------------------------------------------------------------------------------------------


async def send_copies(
    rt: Runtime,
    session: AsyncSession,
    request: HumanRequest,
    targets: list[Target],
    *,
    message: Message | None = None,
    principal: Principal | None = None,
    held_run: runs.HeldRun | None = None,
) -> list[HumanDelivery]:
    """One governed message per target, each recorded as a delivery of the request.

    Copies to approvers are the tenant's own messages (approvers are the governance, not its subject); a
    question to an address that is not an approver speaks as the asking agent, under its maturity level."""
    if message is None and request.message_id:
        message = await session.get(Message, request.message_id)
    if held_run is None and request.campaign_run_id:
        held_run = await runs.load(session, request.campaign_run_id)
    sent: list[HumanDelivery] = []
    prepared: list[accept.Prepared] = []
    for target in targets:
        delivery = HumanDelivery(
            id=new_id("hdl"), tenant_id=request.tenant_id, request_id=request.id, approver_id=target.approver_id,
            approver_name=target.name, platform=str(target.address.get("platform") or ""),
            recipient_id=str(target.address.get("recipient_id") or target.address.get("contact_id") or ""),
            channel_id=target.address.get("channel_id"), user_id=target.address.get("user_id"), level=target.level,
            status="sent", created_at=utcnow(),
        )  # fmt: skip
        speaker = (
            principal if target.approver_id is None and principal is not None else system(request.tenant_id)
        )
        intent = _intent(
            rt, request, delivery, target, message or held_run, as_agent=target.approver_id is None
        )
        try:
            async with session.begin_nested():
                one = await accept.prepare(rt, session, speaker, intent)
        except RequestError as exc:
            if target.approver_id is None:
                raise  # the caller's own question: its 4xx names the field at fault
            await _record(session, request, "humans:outreach", f"{request.kind}.delivery_failed",
                          {"approver_id": target.approver_id, "address": target.address, "error": exc.detail},
                          utcnow())  # fmt: skip
            continue
        delivery.message_id = str(one.values["id"])
        delivery.platform = str(one.values["platform"])
        delivery.recipient_id = str(one.values["recipient_id"])
        delivery.channel_id = one.values["channel_id"] or delivery.channel_id
        prepared.append(one)
        session.add(delivery)
        sent.append(delivery)
    await accept.write(rt, session, prepared)
    if sent:
        await session.execute(insert(AuditEntry), [
            audit_row(request.tenant_id, "humans:outreach", f"{request.kind}.sent", "human_request", request.id,
                      {"delivery_id": d.id, "approver_id": d.approver_id, "platform": d.platform,
                       "recipient_id": d.recipient_id, "message_id": d.message_id, "level": d.level})
            for d in sent
        ])  # fmt: skip
    return sent


def _intent(
    rt: Runtime, request: HumanRequest, delivery: HumanDelivery, target: Target,
    held: Message | runs.HeldRun | None, *, as_agent: bool,
) -> Intent:  # fmt: skip
    platform = delivery.platform
    text, actions = compose(rt, request, delivery, held)
    address = target.address
    what = f"Approval needed: campaign {held.name}" if isinstance(held, runs.HeldRun) else "Approval needed"
    return Intent(
        agent_id=request.agent_id if as_agent else None, platform=address.get("platform"),
        recipient_id=address.get("recipient_id"), contact_id=address.get("contact_id"),
        channel_id=address.get("channel_id"),
        # The text is Herald's own and already final: passed as a variable so nothing in it is a template.
        content="{{ body }}", template_variables={"body": text},
        subject=f"{what if request.kind == APPROVAL else 'Question'} ({request.code})"
        if platform == "email" else None,
        priority=Priority.HIGH, actions=actions if platform in BUTTONS else None,
        governance_metadata={"human_request": request.id, "delivery": delivery.id, "kind": request.kind},
    )  # fmt: skip


def compose(
    rt: Runtime, request: HumanRequest, delivery: HumanDelivery, held: Message | runs.HeldRun | None
) -> tuple[str, list[dict[str, Any]]]:
    """The copy's text and buttons, for its platform: buttons where it has them, a signed link by email, a
    reply with the request's code everywhere."""
    platform = delivery.platform
    lines: list[str] = []
    actions: list[dict[str, Any]] = []
    code = request.code
    if request.kind == APPROVAL and isinstance(held, runs.HeldRun):
        return _compose_run(rt, request, delivery, held), _decision_buttons(request)
    message = held if isinstance(held, Message) else None
    if request.kind == APPROVAL and message is not None:
        level = f" ({message.agent_maturity_level})" if message.agent_maturity_level else ""
        lines += [f"Approval needed [{code}]", f"Agent: {message.agent_id}{level}",
                  f"To: {message.platform} {message.recipient_id}", f"Priority: {Priority(message.priority).name}"]  # fmt: skip
        for key, value in sorted((message.governance_metadata or {}).items()):
            if key in ("confidence", "context", "reason", "category", "risk"):
                lines.append(f"{key.capitalize()}: {str(value)[:200]}")
        if request.quorum > 1:
            lines.append(f"Needs {request.quorum} approvals")
        shown = message.content if len(message.content) <= SHOWN else message.content[: SHOWN - 1] + "…"
        lines += ["", shown, "", _how_to_decide(rt, request, delivery)]
        actions = _decision_buttons(request)
    else:
        lines += [f"Question from {request.agent_id} [{code}]", "", request.text, ""]
        for index, option in enumerate(request.options, start=1):
            actions.append({"value": action_value(request.id, f"o{index}"), "label": option[:75]})
            lines.append(f"{index}. {option}")
        if platform == "email":
            lines.append(f"Answer: {decide_url(rt, request, delivery)}")
        elif request.options:
            lines.append(f"Reply with {code} and the option's number, or answer in a reply to this message.")
        else:
            lines.append(f"Answer in a reply to this message, or with {code} and your answer.")
    return "\n".join(lines).strip(), actions


def _compose_run(rt: Runtime, request: HumanRequest, delivery: HumanDelivery, held: runs.HeldRun) -> str:
    """A held run's copy: the run's preview, whole by email; on chat and SMS as many samples as fit the limit."""
    head = [f"Approval needed [{request.code}]: a campaign run"]
    if request.quorum > 1:
        head.append(f"Needs {request.quorum} approvals")
    tail = ["", _how_to_decide(rt, request, delivery)]
    if delivery.platform == "email":
        return "\n".join([*head, *runs.full_lines(held), *tail])
    for samples in range(runs.SAMPLES, -1, -1):
        text = "\n".join([*head, *runs.preview_lines(held, samples=samples, full=False), *tail])
        if len(text) <= runs.TEXT_LIMIT:
            return text
    return text


def _decision_buttons(request: HumanRequest) -> list[dict[str, Any]]:
    return [{"value": action_value(request.id, "a"), "label": "Approve", "style": "primary"},
            {"value": action_value(request.id, "r"), "label": "Reject", "style": "danger"}]  # fmt: skip


def _how_to_decide(rt: Runtime, request: HumanRequest, delivery: HumanDelivery) -> str:
    """The copy's last line (replaced by the outcome once settled): the signed link by email, else the code."""
    if delivery.platform == "email":
        return f"Approve or reject: {decide_url(rt, request, delivery)}"
    return f"Reply YES {request.code} to approve, or NO {request.code} and a reason to reject."


def decide_url(rt: Runtime, request: HumanRequest, delivery: HumanDelivery) -> str:
    expires = request.expires_at or (utcnow() + timedelta(seconds=rt.settings.approval_ttl_seconds))
    token = links.sign(rt.settings.secret_key, delivery.id, expires.timestamp())
    base = (rt.settings.public_url or "http://localhost:8000").rstrip("/")
    return f"{base}/approvals/links/{token}"


# -- escalation and expiry ------------------------------------------------------------------------------------


async def escalate_pass(rt: Runtime) -> int:
    """One pass of the escalation loop: every open request whose check time has come escalates or expires."""
    now = utcnow()
    async with rt.sessions() as session:
        due = list((await session.execute(
            select(HumanRequest.id).where(HumanRequest.status == PENDING, HumanRequest.next_check_at <= now)
            .order_by(HumanRequest.next_check_at).limit(BATCH)
        )).scalars())  # fmt: skip
    from herald.humans import decisions  # the two modules call each other; decisions settles what expires

    done = 0
    for request_id in due:
        async with rt.sessions.begin() as session:
            request = await session.get(HumanRequest, request_id)
            if request is None or request.status != PENDING or request.next_check_at is None:
                continue
            if request.next_check_at > now:
                continue
            if request.expires_at is not None and request.expires_at <= now:
                settled = await decisions.expire(rt, session, request, now)
            else:
                settled = None
                await escalate(rt, session, request, now)
        if settled is not None:
            await decisions.after_settled(rt, settled)
        done += 1
    return done


async def escalate(
    rt: Runtime, session: AsyncSession, request: HumanRequest, now: datetime
) -> list[HumanDelivery]:
    """The next level: each original approver on their next address, ``escalate_to`` joining on their first."""
    level = request.level + 1
    moved = await session.execute(
        update(HumanRequest)
        .where(HumanRequest.id == request.id, HumanRequest.level == request.level, HumanRequest.status == PENDING)
        .values(level=level, updated_at=now,
                next_check_at=_next_check(now, request.escalate_after_seconds, request.expires_at))
        .execution_options(synchronize_session=False)
    )  # fmt: skip
    if getattr(moved, "rowcount", 0) == 0:
        return []  # another process escalated it
    voted = await _voters(session, request.id)
    ids = [*request.approver_ids, *[i for i in request.escalate_to if i not in request.approver_ids]]
    approvers = await directory.approvers_by_id(session, request.tenant_id, ids)
    targets = []
    for approver_id in ids:
        approver = approvers.get(approver_id)
        if approver is None or approver_id in voted:
            continue
        joined = 0 if approver_id in request.approver_ids else 1
        target = _target(approver, level, joined)
        if target is not None:
            targets.append(target)
    request.level = level
    sent = await send_copies(rt, session, request, targets)
    await _record(session, request, "humans:outreach", f"{request.kind}.escalated",
                  {"level": level, "to": [{"approver_id": d.approver_id, "platform": d.platform} for d in sent]},
                  now)  # fmt: skip
    return sent


async def _voters(session: AsyncSession, request_id: str) -> set[str]:
    rows = await session.execute(select(HumanVote.voter).where(HumanVote.request_id == request_id))
    return set(rows.scalars())


async def _record(
    session: AsyncSession,
    request: HumanRequest,
    actor: str,
    action: str,
    detail: dict[str, Any],
    now: datetime,
) -> None:
    """An audit entry and an event for the request (approval.escalated, question.asked, ...)."""
    await session.execute(
        insert(AuditEntry),
        [audit_row(request.tenant_id, actor, action, "human_request", request.id, detail, at=now)],
    )
    event_type = action if action.split(".", 1)[1] in ("escalated", "asked", "requested") else None
    if event_type is not None:
        data = {
            "request_id": request.id,
            "message_id": request.message_id,
            "campaign_run_id": request.campaign_run_id,
            "agent_id": request.agent_id,
            **detail,
        }
        await session.execute(
            insert(Event), [event_row(request.tenant_id, event_type, request.id, data, at=now)]
        )


async def open_loop(rt: Runtime) -> int:
    return await open_pass(rt)


LOOPS = (
    Loop("approval outreach", "scheduler", run_pass=open_loop, interval=1.0, batch=BATCH),
    Loop("approval escalation", "scheduler", run_pass=escalate_pass, interval=1.0, batch=BATCH),
)


async def get_question(session: AsyncSession, tenant_id: str, question_id: str) -> HumanRequest:
    request = await session.get(HumanRequest, question_id)
    if request is None or request.tenant_id != tenant_id or request.kind != QUESTION:
        raise NotFound(f"no question {question_id!r}", field="question_id")
    return request


async def get_request(session: AsyncSession, tenant_id: str, request_id: str) -> HumanRequest:
    request = await session.get(HumanRequest, request_id)
    if request is None or request.tenant_id != tenant_id:
        raise NotFound(f"no request {request_id!r}")
    return request


async def list_requests(
    session: AsyncSession,
    tenant_id: str,
    *,
    kind: str | None,
    status: str | None,
    limit: int,
    cursor: str | None,
) -> list[HumanRequest]:
    """Newest first; ``cursor`` is the id of the last request of the previous page."""
    query = select(HumanRequest).where(HumanRequest.tenant_id == tenant_id)
    if kind is not None:
        query = query.where(HumanRequest.kind == kind)
    if status is not None:
        query = query.where(HumanRequest.status == status)
    if cursor is not None:
        query = query.where(HumanRequest.id < cursor)
    return list((await session.execute(query.order_by(HumanRequest.id.desc()).limit(limit))).scalars())


async def deliveries_of(session: AsyncSession, request_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Each request's copies: where each went, its delivery status (seen means read, where the provider tells),
    and whether it was answered."""
    found: dict[str, list[dict[str, Any]]] = {i: [] for i in request_ids}
    if not request_ids:
        return found
    rows = await session.execute(
        select(HumanDelivery, Message.status).outerjoin(Message, Message.id == HumanDelivery.message_id)
        .where(HumanDelivery.request_id.in_(request_ids)).order_by(HumanDelivery.created_at, HumanDelivery.id)
    )  # fmt: skip
    for delivery, message_status in rows.all():
        found[delivery.request_id].append({
            "id": delivery.id, "approver_id": delivery.approver_id, "approver_name": delivery.approver_name,
            "platform": delivery.platform, "recipient_id": delivery.recipient_id, "channel_id": delivery.channel_id,
            "message_id": delivery.message_id, "message_status": message_status, "level": delivery.level,
            "seen": message_status == Status.READ or delivery.answered_at is not None,
            "answered_at": delivery.answered_at.isoformat() if delivery.answered_at else None,
            "status": delivery.status,
        })  # fmt: skip
    return found


async def votes_of(session: AsyncSession, request_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    votes: dict[str, list[dict[str, Any]]] = {i: [] for i in request_ids}
    if request_ids:
        found = await session.execute(
            select(HumanVote)
            .where(HumanVote.request_id.in_(request_ids))
            .order_by(HumanVote.created_at, HumanVote.id)
        )
        for v in found.scalars():
            votes[v.request_id].append({"voter": v.voter, "decision": v.decision, "reason": v.reason, "via": v.via,
                                        "at": v.created_at.isoformat()})  # fmt: skip
    return votes


async def requests_for_messages(session: AsyncSession, message_ids: list[str]) -> dict[str, dict[str, Any]]:
    """The approval request of each held message (the dashboard's cards): its code, quorum, approvals so far,
    and where each copy went and who has seen or answered it."""
    if not message_ids:
        return {}
    rows = list(
        (
            await session.execute(select(HumanRequest).where(HumanRequest.message_id.in_(message_ids)))
        ).scalars()
    )
    copies = await deliveries_of(session, [r.id for r in rows])
    votes = await votes_of(session, [r.id for r in rows])
    return {
        str(r.message_id): {"id": r.id, "code": r.code, "quorum": r.quorum, "level": r.level,
                            "approvals": sum(1 for v in votes[r.id] if v["decision"] == "approve"),
                            "deliveries": copies[r.id]}
        for r in rows
    }  # fmt: skip
