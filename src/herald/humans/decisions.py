"""Decisions and answers: from a button, a text reply, a signed email link or the API, to the held message
and the asking agent.

Every decision is checked against who may give it: a press or a reply counts only from an address the request
was sent to, by the person that address names (its ``user_id``, else the address itself). Refusals are audited.
Votes are unique per approver, so a replayed press or link changes nothing; a rejection settles a request at
once, approvals settle it at the quorum. The settling transaction also moves the held message (through the
pipeline's own approve/reject) or the held campaign run (through the campaigns service, as its API route does)
and, for a question, resumes the LLM run waiting for it. Once it committed, copies on platforms that can edit
a sent message are changed to show the outcome, and an approved campaign run is executed (:func:`after_settled`).
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from herald.core.background import Loop
from herald.core.errors import Conflict, Gone, HeraldError, NotFound, RequestError
from herald.core.ids import new_id
from herald.core.principal import Principal
from herald.core.status import Status
from herald.humans import links, runs
from herald.humans.outreach import (
    ACTION_PREFIX,
    ANSWERED,
    APPROVAL,
    APPROVED,
    CANCELLED,
    EXPIRED,
    PENDING,
    QUESTION,
    REJECTED,
)  # fmt: skip
from herald.pipeline import accept
from herald.producers.callbacks import CallbackFailed, call_agent
from herald.producers.campaigns import model as campaigns
from herald.producers.campaigns import service as campaign_service
from herald.providers.inbound import InboundMessage
from herald.storage.audit import audit_row, event_row
from herald.storage.models import (
    Agent,
    AgentRun,
    AgentRunStep,
    AuditEntry,
    CampaignRun,
    Channel,
    Event,
    HumanDelivery,
    HumanRequest,
    HumanVote,
    Message,
)
from herald.storage.models import InboundMessage as InboundRow
from herald.storage.types import utcnow

if TYPE_CHECKING:
    from herald.runtime import Runtime

log = logging.getLogger(__name__)

APPROVE, REJECT = "approve", "reject"
_YES = {"yes", "y", "approve", "approved", "ok", "okay"}
_NO = {"no", "n", "reject", "rejected", "deny"}
_CODED = re.compile(
    r"^\s*(?:(?P<word>[A-Za-z]+)\s+)?(?P<code>\d{4}|\d{6})\b[\s:.,-]*(?P<rest>.*)$", re.DOTALL
)
NOTIFY_DELAYS = (10.0, 60.0, 300.0, 1800.0)
SETTLE_SECONDS = 10.0


@dataclass
class Outcome:
    """What became of a decision or an answer, and what to tell the person who gave it."""

    status: str  # counted, decided, answered, refused, closed, duplicate
    text: str
    request: HumanRequest | None = None
    settled: bool = False


# -- approvals ------------------------------------------------------------------------------------------------


async def vote(
    rt: Runtime,
    session: AsyncSession,
    request: HumanRequest,
    *,
    voter: str,
    name: str,
    decision: str,
    reason: str | None,
    via: str,
    delivery_id: str | None,
    actor: str,
) -> Outcome:
    """Count one approver's decision; settle the request (and move its message) at a rejection or the quorum."""
    now = utcnow()
    refused = await _unvotable(rt, session, request, now)
    if refused is not None:
        return refused
    insert_ = pg_insert if rt.dialect == "postgresql" else sqlite_insert
    counted = await session.scalar(
        insert_(HumanVote)
        .values(id=new_id("vot"), tenant_id=request.tenant_id, request_id=request.id, voter=voter,
                decision=decision, reason=reason, via=via, delivery_id=delivery_id, created_at=now)
        .on_conflict_do_nothing(index_elements=["request_id", "voter"])
        .returning(HumanVote.id)
    )  # fmt: skip
    if counted is None:
        return Outcome("duplicate", "Your decision was already recorded.", request)
    detail = {"voter": voter, "name": name, "decision": decision, "reason": reason, "via": via,
              "delivery_id": delivery_id}  # fmt: skip
    await _audit(session, request, actor, "approval.vote", detail, now)
    await _mark_answered(session, request.id, delivery_id, now)
    principal = Principal(tenant_id=request.tenant_id, key_id=voter, is_admin=False, kind="approver")
    # With a quorum of one, this vote is the only one that counts: no need to count.
    approvals = (
        [voter] if request.quorum == 1 and decision == APPROVE else await _approvals(session, request.id)
    )
    if decision == APPROVE and len(approvals) < request.quorum:
        return Outcome("counted", f"Approval recorded: {len(approvals)} of {request.quorum}.", request)
    status = REJECTED if decision == REJECT else APPROVED
    deciders = name if decision == REJECT else ", ".join(approvals)
    try:
        async with session.begin_nested():
            if request.message_id is not None:
                if status == APPROVED:
                    await accept.approve(rt, session, principal, request.message_id, deciders)
                else:
                    await accept.reject(session, principal, request.message_id, deciders, reason)
            elif request.campaign_run_id is not None:
                await runs.decide(session, principal, request.campaign_run_id, decision=status, by=deciders,
                                  reason=reason)  # fmt: skip
    except RequestError as exc:  # what it holds moved meanwhile (cancelled, expired, decided in the API)
        await _follow_held(session, request, now)
        return Outcome("closed", f"This request is closed: {exc.detail}", request, settled=True)
    await _settle(session, request, status, deciders, now, detail)
    verb = "Approved" if status == APPROVED else "Rejected"
    return Outcome("decided", f"{verb}. Thank you, {name}.", request, settled=True)


async def _unvotable(
    rt: Runtime, session: AsyncSession, request: HumanRequest, now: datetime
) -> Outcome | None:
    """Why this request takes no vote now, if it takes none: a question, settled, or expired (settled here)."""
    if request.kind != APPROVAL:
        return Outcome("refused", "This is a question; answer it instead.", request)
    if request.status != PENDING:
        return Outcome("closed", _closed_text(request), request)
    if request.expires_at is not None and request.expires_at <= now:
        await expire(rt, session, request, now)
        return Outcome("closed", "This request has expired.", request, settled=True)
    return None


async def _approvals(session: AsyncSession, request_id: str) -> list[str]:
    """Names of those who approved, first first (the voter's name is in the audit; ids are enough here)."""
    rows = await session.execute(
        select(HumanVote.voter).where(HumanVote.request_id == request_id, HumanVote.decision == APPROVE)
        .order_by(HumanVote.created_at, HumanVote.id)
    )  # fmt: skip
    return list(rows.scalars())


async def _follow_held(session: AsyncSession, request: HumanRequest, now: datetime) -> None:
    """Close a request whose message or campaign run was decided elsewhere with that one's own outcome."""
    if request.campaign_run_id is not None:
        await _follow_run(session, request, now)
        return
    message = await session.get(Message, request.message_id) if request.message_id else None
    ended: dict[str, str] = {Status.REJECTED: REJECTED, Status.EXPIRED: EXPIRED, Status.CANCELLED: CANCELLED}
    status = ended.get(message.status if message else Status.CANCELLED, APPROVED)
    await _settle(session, request, status, message.approved_by if message else None, now, {"followed": True})


async def _follow_run(session: AsyncSession, request: HumanRequest, now: datetime) -> None:
    """A run rejected with no approver expired; one deleted with its campaign cancels the request; a run past
    its decision otherwise was approved."""
    run = await session.get(CampaignRun, request.campaign_run_id)
    if run is None or run.status == campaigns.PENDING_APPROVAL:
        status = CANCELLED
    elif run.status == campaigns.REJECTED:
        status = REJECTED if run.approved_by else EXPIRED
    else:
        status = APPROVED
    await _settle(session, request, status, run.approved_by if run else None, now, {"followed": True})


async def _settle(
    session: AsyncSession,
    request: HumanRequest,
    status: str,
    by: str | None,
    now: datetime,
    detail: dict[str, Any],
) -> None:
    request.status, request.decided_by, request.decided_at, request.updated_at = status, by, now, now
    request.next_check_at = None
    await _tell_agent(session, request, now)
    if request.message_id is None or status in (EXPIRED, CANCELLED):
        data = {"request_id": request.id, "message_id": request.message_id, "agent_id": request.agent_id,
                "campaign_run_id": request.campaign_run_id, "decision": status, "decided_by": by}  # fmt: skip
        await session.execute(insert(Event), [event_row(request.tenant_id, "approval.decided", request.message_id
                                                        or request.id, data, at=now)])  # fmt: skip
    await _audit(
        session, request, "humans:decisions", f"approval.{status}", {"decided_by": by, **detail}, now
    )


async def expire(rt: Runtime, session: AsyncSession, request: HumanRequest, now: datetime) -> HumanRequest:
    """An undecided request at its expiry: the held message expires with it, a held campaign run ends rejected
    (``expired`` in its audit and event, no approver); a question's agent hears so."""
    if request.kind == APPROVAL and request.campaign_run_id is not None:
        return await _expire_run(session, request, now)
    if request.kind == APPROVAL:
        if request.message_id is not None:
            await session.execute(
                update(Message)
                .where(Message.id == request.message_id, Message.status == Status.PENDING_APPROVAL)
                .values(status=Status.EXPIRED, updated_at=now, sealed_content=None)
                .execution_options(synchronize_session=False)
            )
        message = await session.get(Message, request.message_id) if request.message_id else None
        if message is not None and message.status != Status.EXPIRED:
            await _follow_held(session, request, now)
        else:
            await _settle(session, request, EXPIRED, None, now, {})
        return request
    request.status, request.decided_at, request.updated_at, request.next_check_at = EXPIRED, now, now, None
    request.answer = {"status": "expired"}
    await _tell_agent(session, request, now)
    await _event(session, request, "question.expired", {}, now)
    await _audit(session, request, "humans:decisions", "question.expired", {}, now)
    return request


async def _expire_run(session: AsyncSession, request: HumanRequest, now: datetime) -> HumanRequest:
    assert request.campaign_run_id is not None
    expiry = Principal(tenant_id=request.tenant_id, key_id="decisions", is_admin=False, kind="humans")
    reason = f"expired: nobody decided by {(request.expires_at or now).isoformat()} (request {request.id})"
    try:
        async with session.begin_nested():
            await runs.decide(
                session, expiry, request.campaign_run_id, decision=EXPIRED, by=None, reason=reason
            )
    except RequestError:
        await _follow_held(session, request, now)
    else:
        await _settle(session, request, EXPIRED, None, now, {})
    return request


async def decide_by_api(
    rt: Runtime, session: AsyncSession, principal: Principal, message_id: str, decision: str, approver: str,
    reason: str | None,
) -> Message:  # fmt: skip
    """``POST /approve|reject/{message_id}``: the named approver's vote when the message has a request (so the
    quorum holds and every copy settles), else the decision itself, as before approvers existed."""
    message = await accept.get_message(session, principal.tenant_id, message_id)
    request = await session.scalar(
        select(HumanRequest).where(HumanRequest.message_id == message_id).with_for_update()
    )
    if request is None or request.status != PENDING:
        if decision == APPROVE:
            return await accept.approve(rt, session, principal, message_id, approver)
        return await accept.reject(session, principal, message_id, approver, reason)
    outcome = await vote(rt, session, request, voter=approver, name=approver, decision=decision, reason=reason,
                         via="api", delivery_id=None, actor=principal.actor)  # fmt: skip
    if outcome.status in ("closed", "duplicate", "refused"):
        raise Conflict(f"message {message_id}: {outcome.text}")
    await session.refresh(message)
    return message


async def decide_run_by_api(
    rt: Runtime, session: AsyncSession, principal: Principal, campaign_id: str, run_id: str, decision: str,
    approver: str, reason: str | None,
) -> CampaignRun:  # fmt: skip
    """``POST /campaigns/{id}/runs/{run_id}/approve|reject`` and the dashboard: as for a message, the named
    approver's vote when the run has an open request (the quorum holds and every copy settles), else the
    decision itself through the campaigns service. Call :func:`after_run_decided` once this committed."""
    run = await campaign_service.get_run(session, principal.tenant_id, campaign_id, run_id)
    request = await session.scalar(
        select(HumanRequest).where(HumanRequest.campaign_run_id == run_id).with_for_update()
    )
    if request is None or request.status != PENDING:
        return await campaign_service.record_decision(
            session, principal, campaign_id, run_id, decision=APPROVED if decision == APPROVE else REJECTED,
            approver=approver, reason=reason,
        )  # fmt: skip
    outcome = await vote(rt, session, request, voter=approver, name=approver, decision=decision, reason=reason,
                         via="api", delivery_id=None, actor=principal.actor)  # fmt: skip
    if outcome.status in ("closed", "duplicate", "refused"):
        raise Conflict(f"run {run_id}: {outcome.text}")
    await session.refresh(run)
    return run


async def after_run_decided(rt: Runtime, tenant_id: str, campaign_id: str, run_id: str) -> CampaignRun:
    """After an API or dashboard decision committed: the run's request, if that settled it, shows the outcome on
    its copies; an approved run is executed here (unless a runner took it first). The run as it then is."""
    async with rt.sessions() as session:
        request = await session.scalar(select(HumanRequest).where(HumanRequest.campaign_run_id == run_id))
    if request is not None and request.status != PENDING:
        await settle_copies(rt, request)
    return await campaign_service.execute_approved(rt, tenant_id, campaign_id, run_id)


# -- questions ------------------------------------------------------------------------------------------------


async def answer(
    session: AsyncSession,
    request: HumanRequest,
    *,
    text: str,
    option: int | None,
    by: str,
    via: str,
    delivery_id: str | None,
    actor: str,
) -> Outcome:
    now = utcnow()
    if request.kind != QUESTION:
        return Outcome("refused", "This is an approval request; approve or reject it.", request)
    if request.status != PENDING:
        return Outcome("closed", _closed_text(request), request)
    if option is not None:
        if not 1 <= option <= len(request.options):
            return Outcome("refused", f"There is no option {option}.", request)
        text = request.options[option - 1]
    result = {"status": "answered", "text": text, "option": option, "answered_by": by, "via": via,
              "answered_at": now.isoformat()}  # fmt: skip
    settled = await session.execute(
        update(HumanRequest)
        .where(HumanRequest.id == request.id, HumanRequest.status == PENDING)
        .values(status=ANSWERED, answer=result, decided_by=by, decided_at=now, updated_at=now, next_check_at=None)
        .execution_options(synchronize_session=False)
    )  # fmt: skip
    if getattr(settled, "rowcount", 0) == 0:
        return Outcome("closed", "This question was already answered.", request)
    request.status, request.answer, request.decided_by, request.decided_at = ANSWERED, result, by, now
    await _mark_answered(session, request.id, delivery_id, now)
    await _tell_agent(session, request, now)
    await _event(session, request, "question.answered", {"answer": text, "option": option, "answered_by": by,
                                                         "via": via}, now)  # fmt: skip
    await _audit(session, request, actor, "question.answered", {"by": by, "via": via, "delivery_id": delivery_id,
                                                                "option": option}, now)  # fmt: skip
    return Outcome("answered", "Thank you, your answer was passed on.", request, settled=True)


def result_of(request: HumanRequest) -> dict[str, Any]:
    """What the asking agent is told: the answer, or that nobody answered in time."""
    return {"question_id": request.id, "question": request.text, "status": request.status,
            **{k: v for k, v in (request.answer or {}).items() if k != "status"}}  # fmt: skip


# -- telling the agent ----------------------------------------------------------------------------------------


async def _tell_agent(session: AsyncSession, request: HumanRequest, now: datetime) -> None:
    """A waiting LLM run resumes with the outcome as its tool result (in this transaction, so exactly once);
    an external agent gets a signed callback from the notify loop."""
    if request.run_id is not None and request.kind == QUESTION:
        await _resume(session, request, now)
        return
    agent = await session.get(Agent, (request.tenant_id, request.agent_id)) if request.agent_id else None
    if agent is not None and agent.kind == "external" and agent.callback_url:
        request.notify_status, request.notify_due_at = "pending", now


async def _resume(session: AsyncSession, request: HumanRequest, now: datetime) -> None:
    run = await session.get(AgentRun, request.run_id, with_for_update=True)
    if run is None or run.status != "waiting":
        return
    seq = run.steps + 1
    session.add(AgentRunStep(
        run_id=run.id, seq=seq, tenant_id=run.tenant_id, kind="tool", prompt_tokens=0, completion_tokens=0,
        payload={"call_id": request.call_id, "name": "ask_human", "arguments": "", "result": result_of(request),
                 "outcome": "ok"}, duration_ms=0.0, created_at=now,
    ))  # fmt: skip
    waited_since = run.context.get("waiting_since")
    waited = float(run.context.get("waited_seconds") or 0.0)
    if isinstance(waited_since, str):
        waited += (now - datetime.fromisoformat(waited_since)).total_seconds()
    context = {k: v for k, v in run.context.items() if k != "waiting_since"} | {"waited_seconds": waited}
    run.steps, run.status, run.context, run.updated_at = seq, "queued", context, now
    await session.execute(insert(Event), [event_row(run.tenant_id, "agent.run.resumed", run.id,
                                                    {"agent_id": run.agent_id, "question_id": request.id}, at=now)])  # fmt: skip


async def notify_pass(rt: Runtime) -> int:
    """One pass of the notify loop: signed callbacks to external agents whose request or question settled."""
    now = utcnow()
    async with rt.sessions() as session:
        due = list((await session.execute(
            select(HumanRequest).where(HumanRequest.notify_status == "pending", HumanRequest.notify_due_at <= now)
            .order_by(HumanRequest.notify_due_at).limit(50)
        )).scalars())  # fmt: skip
        agents = {r.id: await session.get(Agent, (r.tenant_id, r.agent_id)) for r in due if r.agent_id}
    await asyncio.gather(*(_notify(rt, r, agents.get(r.id)) for r in due))
    return len(due)


async def _notify(rt: Runtime, request: HumanRequest, agent: Agent | None) -> None:
    if request.kind == QUESTION:
        event_type = "question.answered" if request.status == ANSWERED else "question.expired"
        data = result_of(request)
    else:
        event_type = "approval.decided"
        data = {"request_id": request.id, "message_id": request.message_id,
                "campaign_run_id": request.campaign_run_id, "decision": request.status,
                "decided_by": request.decided_by}  # fmt: skip
    try:
        await call_agent(rt, agent, event_type, data, message_id=f"{request.id}.{request.status}")
    except CallbackFailed as exc:
        attempts = request.notify_attempts + 1
        spent = attempts > len(NOTIFY_DELAYS)
        values: dict[str, Any] = {
            "notify_attempts": attempts,
            "notify_status": "failed" if spent else "pending",
        }
        if not spent:
            values["notify_due_at"] = utcnow() + timedelta(seconds=NOTIFY_DELAYS[attempts - 1])
        log.info("telling agent %s about %s failed: %s", request.agent_id, request.id, exc)
    else:
        values = {"notify_status": "done", "notify_attempts": request.notify_attempts + 1}
    async with rt.sessions.begin() as session:
        await session.execute(update(HumanRequest).where(HumanRequest.id == request.id,
                                                         HumanRequest.notify_status == "pending").values(**values))  # fmt: skip


# -- inbound: button presses and text replies -----------------------------------------------------------------


@dataclass(frozen=True)
class Reading:
    """What an inbound message says to a request: which one, and the decision or answer in it."""

    request_id: str | None = None
    code: str | None = None
    decision: str | None = None
    option: int | None = None
    text: str = ""
    by_button: bool = False


def read(row: InboundRow) -> Reading | None:
    """A button press (``hl:<request>:<choice>``) or a coded reply (``YES 4821``, ``NO 4821 reason``,
    ``4821 2``); None when the message says nothing to a request by itself."""
    action = (row.reply_context or {}).get("action")
    if isinstance(action, str) and action.startswith(f"{ACTION_PREFIX}:"):
        return _read_button(action)
    match = _CODED.match(row.body or "")
    return _read_coded(match) if match is not None else None


def _read_button(action: str) -> Reading | None:
    parts = action.split(":")
    choice = parts[2] if len(parts) == 3 else ""
    if choice in ("a", "r"):
        return Reading(request_id=parts[1], decision=APPROVE if choice == "a" else REJECT, by_button=True)
    if choice.startswith("o") and choice[1:].isdigit():
        return Reading(request_id=parts[1], option=int(choice[1:]), by_button=True)
    return None


def _read_coded(match: re.Match[str]) -> Reading | None:
    word = (match["word"] or "").lower()
    rest = match["rest"].strip()
    decision = APPROVE if word in _YES else REJECT if word in _NO else None
    if decision is not None:
        return Reading(code=match["code"], decision=decision, text=rest)
    if word:
        return None
    return Reading(code=match["code"], option=int(rest) if rest.isdigit() else None, text=rest)


def is_press(message: InboundMessage) -> bool:
    """A press of one of Herald's own buttons (an approval's Approve or Reject, a question's option)."""
    return message.action is not None and message.action.startswith(f"{ACTION_PREFIX}:")


def could_answer(row: InboundRow, platform: str) -> bool:
    """Whether a message may speak to a request at all, from what it carries: a press of Herald's button, a
    code, a reply to some message, or an SMS (which cannot thread, so a number's next message may answer)."""
    return read(row) is not None or bool((row.reply_context or {}).get("in_reply_to")) or platform == "sms"


class Humans:
    """What the conversations processor asks before routing an inbound message to an agent: whether it is a
    decision or an answer (then it is taken here, and acknowledged where the platform expects it)."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self._after: set[asyncio.Task[None]] = set()

    async def take(self, row: InboundRow, platform: str) -> str | None:
        """The inbound row's outcome when it was for a request (``decided``, ``answered``, ``refused``, ...),
        None when it is an ordinary message for the conversation's agent."""
        if not could_answer(row, platform):
            return None  # most messages: nothing to look up
        outcome, channel = await self._take(row)
        if outcome is None:
            return None
        self._follow_up(row, channel, outcome)
        return outcome.status

    async def take_presses(self, channel: Channel, presses: list[InboundMessage]) -> list[Outcome]:
        """Button presses on Herald's own requests, decided as they arrive, before the webhook is answered.

        A press is a decision, not a message for an agent: it is committed (the vote, the held message moved)
        before the provider hears 2xx, so nothing is lost, and it waits behind no one's conversation. A
        provider's retry of a press finds the vote already counted and changes nothing."""
        outcomes = []
        for press in presses:
            row = InboundRow(
                id=new_id("inb"), tenant_id=channel.tenant_id, channel_id=channel.id, sender_id=press.sender_id,
                body=press.text, reply_context={"action": press.action, "reply_token": press.reply_token},
            )  # fmt: skip
            outcome, found = await self._take(row, channel)
            if outcome is not None:
                self._follow_up(row, found, outcome)
                outcomes.append(outcome)
        return outcomes

    def _follow_up(self, row: InboundRow, channel: Channel | None, outcome: Outcome) -> None:
        # The decision is committed; telling the platform (the press acknowledged, the copies changed) is best
        # effort and off the decision's path, so a slow provider API never holds up the next decision.
        task = asyncio.create_task(self._tell_platforms(row, channel, outcome))
        self._after.add(task)
        task.add_done_callback(self._after.discard)

    async def idle(self) -> None:
        """Wait until the platforms have been told of every decision taken so far (tests, shutdown)."""
        while self._after:
            await asyncio.gather(*self._after, return_exceptions=True)

    async def _tell_platforms(self, row: InboundRow, channel: Channel | None, outcome: Outcome) -> None:
        try:
            token = (row.reply_context or {}).get("reply_token")
            if channel is not None and token and (row.reply_context or {}).get("action"):
                await _acknowledge(self.rt, channel, str(token), outcome.text)
            if outcome.settled and outcome.request is not None:
                await after_settled(self.rt, outcome.request)
        except Exception:
            log.exception(
                "telling the platforms about request %s failed", outcome.request and outcome.request.id
            )

    async def _take(
        self, row: InboundRow, known: Channel | None = None
    ) -> tuple[Outcome | None, Channel | None]:
        reading = read(row)
        async with self.rt.sessions.begin() as session:
            channel = known or await session.get(Channel, row.channel_id)
            if channel is None:
                return None, None
            request, delivery = await _find(session, row, channel, reading)
            if request is None:
                return None, channel
            if reading is None:  # a plain reply to a question's copy: the whole text is the answer
                reading = Reading(text=row.body or "")
            if delivery is None:
                await _audit(session, request, f"sender:{row.sender_id}", f"{request.kind}.refused",
                             {"reason": "not an approver of this request", "sender_id": row.sender_id,
                              "channel_id": channel.id, "inbound_id": row.id}, utcnow())  # fmt: skip
                if not reading.by_button:
                    return None, channel  # a coded text from someone else is theirs to say: routed as usual
                return Outcome("refused", "You are not an approver of this request.", request), channel
            via, actor = channel.platform, f"approver:{delivery.approver_id or delivery.recipient_id}"
            if request.kind == APPROVAL:
                if reading.decision is None:
                    return Outcome(
                        "refused", f"Reply YES {request.code} or NO {request.code}.", request
                    ), channel
                outcome = await vote(self.rt, session, request, voter=delivery.approver_id or delivery.recipient_id,
                                     name=delivery.approver_name, decision=reading.decision,
                                     reason=reading.text or None, via=via, delivery_id=delivery.id, actor=actor)  # fmt: skip
            else:
                text = reading.text
                outcome = await answer(session, request, text=text, option=reading.option, by=delivery.approver_name,
                                       via=via, delivery_id=delivery.id, actor=actor)  # fmt: skip
            return outcome, channel


async def _find(
    session: AsyncSession, row: InboundRow, channel: Channel, reading: Reading | None
) -> tuple[HumanRequest | None, HumanDelivery | None]:
    """The open (or just settled) request the message speaks to, and the sender's copy of it, if they have one."""
    request: HumanRequest | None = None
    if reading is not None and reading.request_id is not None:
        # Locked: two approvers deciding at once must see each other's vote, or a quorum could never be met.
        request = await session.get(HumanRequest, reading.request_id, with_for_update=True)
        if request is not None and request.tenant_id != row.tenant_id:
            request = None
    elif reading is not None and reading.code is not None:
        request = await session.scalar(
            select(HumanRequest).where(HumanRequest.tenant_id == row.tenant_id, HumanRequest.code == reading.code,
                                       HumanRequest.status == PENDING).with_for_update()
        )  # fmt: skip
    else:
        request = await _replied_question(session, row, channel)
    if request is None:
        return None, None
    deliveries = (await session.execute(
        select(HumanDelivery).where(HumanDelivery.request_id == request.id).order_by(HumanDelivery.created_at)
    )).scalars()  # fmt: skip
    mine = [d for d in deliveries if _sent_to(d, channel, row.sender_id)]
    return request, (mine[-1] if mine else None)


async def _replied_question(session: AsyncSession, row: InboundRow, channel: Channel) -> HumanRequest | None:
    """A question whose copy this message replies to (threaded or quoted); by SMS, which has no threads, the
    open question last sent to this number on this channel."""
    in_reply_to = (row.reply_context or {}).get("in_reply_to")
    query = (
        select(HumanRequest)
        .join(HumanDelivery, HumanDelivery.request_id == HumanRequest.id)
        .where(HumanRequest.tenant_id == row.tenant_id, HumanRequest.kind == QUESTION)
    )
    if isinstance(in_reply_to, str) and in_reply_to:
        ids = {in_reply_to, in_reply_to.rsplit(":", 1)[-1]}
        query = query.join(Message, Message.id == HumanDelivery.message_id).where(
            Message.channel_id == channel.id, Message.provider_message_id.in_(ids)
        )
        return (await session.execute(query.limit(1))).scalar_one_or_none()
    if channel.platform != "sms":
        return None
    query = query.where(HumanRequest.status == PENDING, HumanDelivery.platform == "sms",
                        HumanDelivery.recipient_id == row.sender_id).order_by(HumanDelivery.created_at.desc())  # fmt: skip
    return (await session.execute(query.limit(1))).scalar_one_or_none()


def _same(a: str, b: str) -> bool:
    """Addresses compared as people write them: ``+15551234567`` and ``15551234567`` are one number."""
    return a.lstrip("+@").lower() == b.lstrip("+@").lower()


def _sent_to(delivery: HumanDelivery, channel: Channel, sender_id: str) -> bool:
    if delivery.platform != channel.platform:
        return False
    if delivery.channel_id is not None and delivery.channel_id != channel.id:
        return False
    return _same(delivery.user_id or delivery.recipient_id, sender_id)


# -- settling every copy ---------------------------------------------------------------------------------------


async def after_settled(rt: Runtime, request: HumanRequest) -> None:
    """What follows a settled request once its transaction committed: the copies show the outcome, and an
    approved campaign run is executed (claimed first, so a runner loop polling meanwhile cannot run it twice;
    a crash before this leaves the run queued for that loop)."""
    await settle_copies(rt, request)
    if request.campaign_run_id is not None and request.status == APPROVED:
        async with rt.sessions() as session:
            run = await session.get(CampaignRun, request.campaign_run_id)
        if run is not None:
            await campaign_service.execute_approved(rt, run.tenant_id, run.campaign_id, run.id)


async def settle_copies(rt: Runtime, request: HumanRequest) -> int:
    """Show the outcome on every copy whose platform can change a sent message (Slack, Telegram, Discord);
    best effort, after the decision committed: a copy left with live buttons only refuses later presses."""
    async with rt.sessions() as session:
        rows = (await session.execute(
            select(HumanDelivery, Message).join(Message, Message.id == HumanDelivery.message_id)
            .where(HumanDelivery.request_id == request.id, HumanDelivery.settled_at.is_(None),
                   Message.provider_message_id.is_not(None), Message.channel_id.is_not(None))
        )).all()  # fmt: skip
    text = outcome_line(request)
    settled: list[str] = []
    for delivery, message in rows:
        try:
            channel = await rt.channel(str(message.channel_id))
            if not channel.can_update:
                continue
            body = message.content.rsplit("\n", 1)[0] if "\n" in message.content else message.content
            async with asyncio.timeout(SETTLE_SECONDS):
                await channel.update_sent(
                    message.recipient_id, str(message.provider_message_id), f"{body}\n{text}"
                )
            settled.append(delivery.id)
        except (HeraldError, TimeoutError, NotImplementedError) as exc:
            log.info("request %s: copy %s not updated: %s", request.id, delivery.id, exc)
    if settled:
        async with rt.sessions.begin() as session:
            await session.execute(update(HumanDelivery).where(HumanDelivery.id.in_(settled))
                                  .values(settled_at=utcnow(), status="settled"))  # fmt: skip
    return len(settled)


def outcome_line(request: HumanRequest) -> str:
    by = f" by {request.decided_by}" if request.decided_by else ""
    if request.kind == QUESTION:
        if request.status == ANSWERED:
            return f"Answered{by}: {(request.answer or {}).get('text', '')}"
        return "Nobody answered in time."
    return {APPROVED: f"Approved{by}.", REJECTED: f"Rejected{by}.", EXPIRED: "Expired undecided.",
            CANCELLED: "Cancelled."}.get(request.status, request.status)  # fmt: skip


async def _acknowledge(rt: Runtime, row: Channel, token: str, text: str) -> None:
    try:
        channel = await rt.channel(row.id)
        async with asyncio.timeout(SETTLE_SECONDS):
            await channel.acknowledge(token, text)
    except (HeraldError, TimeoutError) as exc:
        log.info("a button press on %s was not acknowledged: %s", row.id, exc)


def _closed_text(request: HumanRequest) -> str:
    return f"This request is already settled: {outcome_line(request)}"


# -- records --------------------------------------------------------------------------------------------------


async def _mark_answered(
    session: AsyncSession, request_id: str, delivery_id: str | None, now: datetime
) -> None:
    if delivery_id is not None:
        await session.execute(update(HumanDelivery).where(HumanDelivery.id == delivery_id,
                                                          HumanDelivery.request_id == request_id)
                              .values(status="answered", answered_at=now))  # fmt: skip


async def _audit(
    session: AsyncSession,
    request: HumanRequest,
    actor: str,
    action: str,
    detail: dict[str, Any],
    now: datetime,
) -> None:
    await session.execute(
        insert(AuditEntry),
        [audit_row(request.tenant_id, actor, action, "human_request", request.id, detail, at=now)],
    )


async def _event(
    session: AsyncSession, request: HumanRequest, type_: str, detail: dict[str, Any], now: datetime
) -> None:
    data = {"question_id": request.id, "agent_id": request.agent_id, "question": request.text, **detail}
    await session.execute(insert(Event), [event_row(request.tenant_id, type_, request.id, data, at=now)])


async def count_open(session: AsyncSession, tenant_id: str) -> int:
    return int(await session.scalar(select(func.count()).select_from(HumanRequest).where(
        HumanRequest.tenant_id == tenant_id, HumanRequest.status == PENDING)) or 0)  # fmt: skip


LOOPS = (Loop("agent notices", "scheduler", run_pass=notify_pass, interval=1.0, batch=50),)


# -- the API's and the email page's entry points --------------------------------------------------------------


async def settle_after(rt: Runtime, message_id: str) -> None:
    """After an API or dashboard decision: if it settled the message's request, its copies show it too."""
    async with rt.sessions() as session:
        request = await session.scalar(select(HumanRequest).where(HumanRequest.message_id == message_id))
    if request is not None and request.status != PENDING:
        await settle_copies(rt, request)


@dataclass(frozen=True)
class Linked:
    """What an email link names: the request, the approver's copy, and the text the page shows."""

    request: HumanRequest
    delivery: HumanDelivery
    shown: str

    @property
    def open(self) -> bool:
        return self.request.status == PENDING and self.delivery.answered_at is None


async def linked(rt: Runtime, token: str) -> Linked:
    """The link's request; Unauthorized for a forged or stale link, NotFound or Gone when it names nothing."""
    delivery_id = links.verify(rt.settings.secret_key, token)
    async with rt.sessions() as session:
        delivery = await session.get(HumanDelivery, delivery_id)
        request = await session.get(HumanRequest, delivery.request_id) if delivery else None
        if delivery is None or request is None or delivery.platform != "email":
            raise NotFound("this link names nothing that exists")
        if request.expires_at is not None and request.expires_at <= utcnow() and request.status == PENDING:
            raise Gone("this request has expired")
        message = await session.get(Message, request.message_id) if request.message_id else None
        held = await runs.load(session, request.campaign_run_id) if request.campaign_run_id else None
    if request.kind == QUESTION:
        shown = f"{request.agent_id} asks:\n\n{request.text}"
    elif held is not None:
        shown = "\n".join(runs.full_lines(held))
    elif message is None:
        shown = request.text
    else:
        shown = (f"Agent: {message.agent_id} ({message.agent_maturity_level})\nTo: {message.platform} "
                 f"{message.recipient_id}\n\n{message.content}")  # fmt: skip
    return Linked(request, delivery, shown)


async def by_link(
    rt: Runtime, token: str, *, decision: str | None, reason: str | None, text: str, option: int | None
) -> Outcome:
    """The email page's POST: one decision or answer per link, from the approver the link was sent to."""
    found = await linked(rt, token)
    delivery = found.delivery
    voter, actor = (
        delivery.approver_id or delivery.recipient_id,
        f"approver:{delivery.approver_id or delivery.recipient_id}",
    )
    async with rt.sessions.begin() as session:
        request = await session.get(HumanRequest, found.request.id, with_for_update=True)
        fresh = await session.get(HumanDelivery, delivery.id)
        if request is None or fresh is None or fresh.answered_at is not None:
            return Outcome("duplicate", "This link has already been used.", request)
        if request.kind == APPROVAL:
            if decision not in (APPROVE, REJECT):
                return Outcome("refused", "Choose approve or reject.", request)
            outcome = await vote(rt, session, request, voter=voter, name=delivery.approver_name, decision=decision,
                                 reason=reason, via="email", delivery_id=delivery.id, actor=actor)  # fmt: skip
        elif option is None and not text:
            return Outcome("refused", "Write an answer or choose an option.", request)
        else:
            outcome = await answer(session, request, text=text, option=option, by=delivery.approver_name,
                                   via="email", delivery_id=delivery.id, actor=actor)  # fmt: skip
    if outcome.settled and outcome.request is not None:
        await after_settled(rt, outcome.request)
    return outcome


def humans(rt: Runtime) -> Humans:
    """The runtime's :class:`Humans` (``rt.humans``), typed as itself."""
    taker = rt.humans
    assert isinstance(taker, Humans)
    return taker
