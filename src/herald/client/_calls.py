"""Every API call the client makes, written once for both clients.

A spec is a generator: it yields each :class:`Call` it needs, receives the decoded JSON answer, and returns the
result. :class:`~herald.client.Herald` drives specs with a blocking ``httpx.Client`` and
:class:`~herald.client.AsyncHerald` with an ``httpx.AsyncClient``; neither knows any endpoint, and no endpoint
is written twice. Most specs make one call; bulk sends make one per chunk.
"""

from __future__ import annotations

import base64
import typing
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Generic, TypeVar, cast
from urllib.parse import quote

from herald.client._files import chunks, materialise, read_messages_file, to_send_request
from herald.client._types import (
    Agent,
    AgentRun,
    Alert,
    ApprovalPolicy,
    Approver,
    BulkItem,
    BulkResult,
    Campaign,
    CampaignRun,
    DeliveryMetrics,
    DeliveryReport,
    Health,
    HumanRequest,
    Message,
    MessageDetail,
    Monitor,
    OtpCheck,
    OtpVerification,
    Page,
    Record,
    Schedule,
    ScheduleExecution,
    Trigger,
    TriggerFiring,
)

T = TypeVar("T")
MAX_BULK = 10_000
Progress = Callable[[int, int], None]  # (messages answered so far, total)


@dataclass  # neither slots nor frozen: ``Call[X](...)`` sets ``__orig_class__``, which ``_do`` reads
class Call(Generic[T]):
    """One HTTP request; ``T`` is what its JSON answer is (None for 204)."""

    method: str
    path: str
    json: Any = None
    params: dict[str, Any] | None = None
    headers: dict[str, str] | None = None


Flow = Generator[Call[Any], Any, T]


@dataclass(frozen=True, slots=True)
class Defaults:
    """What a client fills in when a call leaves it out."""

    agent_id: str | None = None


def _do(call: Call[T]) -> Flow[T]:
    """Make ``call`` and give its answer as the type the call names (``Call[Message]`` answers a
    :class:`Message`; ``Call[Page[Message]]`` a page of them); anything else is the JSON as decoded."""
    answer = yield call
    return cast(T, _into(getattr(call, "__orig_class__", None))(answer))


def _into(call_type: Any) -> Callable[[Any], Any]:
    """The converter for ``Call[X]``'s answer: ``X.from_json`` for a record, ``Page.of`` for a page of them."""
    (answer_type,) = typing.get_args(call_type) or (None,)
    if isinstance(answer_type, type) and issubclass(answer_type, Record):
        return answer_type.from_json
    if typing.get_origin(answer_type) is Page:
        (item,) = typing.get_args(answer_type)
        if isinstance(item, type) and issubclass(item, Record):
            return Page.of(item.from_json)
    return lambda answer: answer


def _seg(value: str) -> str:
    return quote(value, safe="")


def _json(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes | bytearray):  # file content (an attachment's): base64, as the API takes it
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, Mapping):
        return {k: _json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json(v) for v in value]
    return value


def _body(**fields: Any) -> dict[str, Any]:
    """The fields that were given (None means "leave it to Herald")."""
    return {k: _json(v) for k, v in fields.items() if v is not None}


def _params(**fields: Any) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None}


def _list(values: Sequence[str] | None) -> list[str] | None:
    return None if values is None else list(values)


def _key(idempotency_key: str | None) -> dict[str, str] | None:
    return None if idempotency_key is None else {"Idempotency-Key": idempotency_key}


# -- messages -------------------------------------------------------------------------------------------------


def send_message(
    d: Defaults,
    *,
    content: str,
    platform: str | None = None,
    recipient_id: str | None = None,
    agent_id: str | None = None,
    contact_id: str | None = None,
    subject: str | None = None,
    scheduled_for: datetime | str | None = None,
    timezone: str | None = None,
    template_variables: Mapping[str, Any] | None = None,
    governance_metadata: Mapping[str, Any] | None = None,
    priority: str | None = None,
    channel_id: str | None = None,
    fallback: Sequence[Mapping[str, str]] | None = None,
    idempotency_key: str | None = None,
    attachments: Sequence[Mapping[str, Any]] | None = None,
    escalation: Mapping[str, Any] | None = None,
) -> Flow[Message]:
    """Send one message now (or at ``scheduled_for``), governed by the agent's maturity level.

    Give ``platform`` and ``recipient_id``, or ``contact_id`` (routing then picks the platform by ``priority``).
    With ``idempotency_key`` a retry answers the first message instead of sending another. ``attachments``
    (email only) are ``{"filename", "content_type", "content"}`` with ``content`` as bytes (sent base64 for
    you) or a base64 string. ``escalation`` (``{"after_minutes": 15, "unless": "read"}``) sends it once more on
    the contact's next channel if that receipt has not come in time."""
    body = _body(
        agent_id=agent_id or d.agent_id, platform=platform, recipient_id=recipient_id, contact_id=contact_id,
        content=content, subject=subject, scheduled_for=scheduled_for, timezone=timezone,
        template_variables=template_variables, governance_metadata=governance_metadata, priority=priority,
        channel_id=channel_id, fallback=fallback, attachments=attachments, escalation=escalation,
    )  # fmt: skip
    path = "/api/v1/messaging/proactive/send"
    return (yield from _do(Call[Message]("POST", path, json=body, headers=_key(idempotency_key))))


def get_message(d: Defaults, message_id: str) -> Flow[MessageDetail]:
    """A message with every delivery attempt."""
    return (yield from _do(Call[MessageDetail]("GET", f"/api/v1/messages/{_seg(message_id)}")))


def list_messages(
    d: Defaults,
    *,
    status: str | None = None,
    agent_id: str | None = None,
    platform: str | None = None,
    recipient_id: str | None = None,
    limit: int = 100,
    cursor: str | None = None,
) -> Flow[Page[Message]]:
    """Messages, newest first, filtered by status, agent, platform or recipient."""
    params = _params(
        status=status,
        agent_id=agent_id,
        platform=platform,
        recipient_id=recipient_id,
        limit=limit,
        cursor=cursor,
    )
    return (yield from _do(Call[Page[Message]]("GET", "/api/v1/messaging/proactive/history", params=params)))


def cancel_message(d: Defaults, message_id: str) -> Flow[Message]:
    """Cancel a message still queued or awaiting approval (a ConflictError otherwise)."""
    return (yield from _do(Call[Message]("POST", f"/api/v1/messages/{_seg(message_id)}/cancel")))


def get_delivery_report(d: Defaults, message_id: str) -> Flow[DeliveryReport]:
    """Seed 003's delivery report: status, channel, every attempt, state-change times, cost."""
    return (yield from _do(Call[DeliveryReport]("GET", f"/api/v1/messages/{_seg(message_id)}/report")))


def send_bulk_messages(
    d: Defaults,
    messages: Iterable[Any],
    *,
    agent_id: str | None = None,
    platform: str = "sms",
    chunk_size: int = MAX_BULK,
    progress: Progress | None = None,
) -> Flow[BulkResult]:
    """Send many messages, each judged on its own; the result's ``items`` are in the order given.

    Items are send requests (plus ``idempotency_key``) or seed 003 messages (``phone_number``, ``message_type``,
    ``content``, ``priority``, ``scheduled_for``). They go in requests of ``chunk_size`` (at most 10,000);
    ``progress(done, total)`` is called after each. An item Herald refuses has an ``error`` naming its field;
    the others are accepted regardless."""
    if not 1 <= chunk_size <= MAX_BULK:
        raise ValueError(f"chunk_size must be 1 to {MAX_BULK}")
    items = [
        to_send_request(m, agent_id=agent_id or d.agent_id, platform=platform) for m in materialise(messages)
    ]
    accepted = rejected = replayed = 0
    entries: list[BulkItem] = []
    for offset, chunk in chunks(items, chunk_size):
        part = yield from _do(
            Call[BulkResult]("POST", "/api/v1/messages/bulk", json={"messages": list(chunk)})
        )
        accepted, rejected, replayed = (
            accepted + part.accepted,
            rejected + part.rejected,
            replayed + part.replayed,
        )
        entries.extend(BulkItem({**entry.to_dict(), "index": entry.index + offset}) for entry in part.items)
        if progress is not None:
            progress(offset + len(chunk), len(items))
    return BulkResult(accepted=accepted, rejected=rejected, replayed=replayed, items=entries)


def load_messages_from_json(
    d: Defaults,
    path: str | Path,
    *,
    agent_id: str | None = None,
    platform: str = "sms",
    chunk_size: int = 1_000,
    idempotent: bool = False,
    progress: Progress | None = None,
) -> Flow[BulkResult]:
    """Send every message of a seed 003 JSON file (see :func:`herald.client.read_messages_file`).

    With ``idempotent`` each item's key derives from the file and its position, so sending the file again
    (after a failure part-way, say) replays what was accepted instead of sending it twice."""
    items = read_messages_file(
        path, agent_id=agent_id or d.agent_id, platform=platform, idempotent=idempotent
    )
    return (
        yield from send_bulk_messages(d, items, platform=platform, chunk_size=chunk_size, progress=progress)
    )


# -- approvals ------------------------------------------------------------------------------------------------


def list_pending_approvals(
    d: Defaults, *, agent_id: str | None = None, limit: int = 100, cursor: str | None = None
) -> Flow[Page[Message]]:
    """Messages awaiting a human decision, newest first."""
    params = _params(agent_id=agent_id, limit=limit, cursor=cursor)
    return (yield from _do(Call[Page[Message]]("GET", "/api/v1/messaging/proactive/queue", params=params)))


def approve_message(d: Defaults, message_id: str, *, approver_user_id: str | None = None) -> Flow[Message]:
    """Approve a held message; it is then queued for delivery."""
    path = f"/api/v1/messaging/proactive/approve/{_seg(message_id)}"
    return (yield from _do(Call[Message]("POST", path, json=_body(approver_user_id=approver_user_id))))


def reject_message(
    d: Defaults, message_id: str, *, approver_user_id: str | None = None, reason: str | None = None
) -> Flow[Message]:
    """Reject a held message; it is never sent."""
    path = f"/api/v1/messaging/proactive/reject/{_seg(message_id)}"
    body = _body(approver_user_id=approver_user_id, reason=reason)
    return (yield from _do(Call[Message]("POST", path, json=body)))


# -- humans in the loop: approvers, approval policies, approval requests, questions -------------------------

_APPROVERS = "/api/v1/approvers"
_POLICIES = "/api/v1/approval-policies"
_REQUESTS = "/api/v1/approval-requests"
_QUESTIONS = "/api/v1/questions"


def create_approver(d: Defaults, name: str, addresses: Sequence[Mapping[str, str]]) -> Flow[Approver]:
    """A person who decides on held messages and answers questions; ``addresses`` (``platform``,
    ``recipient_id``, optional ``channel_id`` and ``user_id``) in escalation order. Needs an admin key."""
    body = {"name": name, "addresses": _json(list(addresses))}
    return (yield from _do(Call[Approver]("POST", _APPROVERS, json=body)))


def list_approvers(d: Defaults) -> Flow[Page[Approver]]:
    return (yield from _do(Call[Page[Approver]]("GET", _APPROVERS)))


def get_approver(d: Defaults, approver_id: str) -> Flow[Approver]:
    return (yield from _do(Call[Approver]("GET", f"{_APPROVERS}/{_seg(approver_id)}")))


def update_approver(
    d: Defaults,
    approver_id: str,
    *,
    name: str | None = None,
    addresses: Sequence[Mapping[str, str]] | None = None,
) -> Flow[Approver]:
    """Change what is given; ``addresses`` replaces the list."""
    body = _body(name=name, addresses=None if addresses is None else list(addresses))
    return (yield from _do(Call[Approver]("PATCH", f"{_APPROVERS}/{_seg(approver_id)}", json=body)))


def delete_approver(d: Defaults, approver_id: str) -> Flow[None]:
    return (yield from _do(Call[None]("DELETE", f"{_APPROVERS}/{_seg(approver_id)}")))


def create_approval_policy(
    d: Defaults,
    name: str,
    approver_ids: Sequence[str],
    *,
    agent_ids: Sequence[str] | None = None,
    priorities: Sequence[str] | None = None,
    quorum: int | None = None,
    position: int | None = None,
    escalate_after_seconds: int | None = None,
    escalate_to: Sequence[str] | None = None,
    expires_after_seconds: int | None = None,
) -> Flow[ApprovalPolicy]:
    """Send held messages of these agents and priorities (none given: any) to these approvers; the first
    matching policy by ``position`` applies. Needs an admin key."""
    body = _body(
        name=name, approver_ids=list(approver_ids), agent_ids=_list(agent_ids), priorities=_list(priorities),
        quorum=quorum, position=position, escalate_after_seconds=escalate_after_seconds,
        escalate_to=_list(escalate_to), expires_after_seconds=expires_after_seconds,
    )  # fmt: skip
    return (yield from _do(Call[ApprovalPolicy]("POST", _POLICIES, json=body)))


def list_approval_policies(d: Defaults) -> Flow[Page[ApprovalPolicy]]:
    return (yield from _do(Call[Page[ApprovalPolicy]]("GET", _POLICIES)))


def get_approval_policy(d: Defaults, policy_id: str) -> Flow[ApprovalPolicy]:
    return (yield from _do(Call[ApprovalPolicy]("GET", f"{_POLICIES}/{_seg(policy_id)}")))


def update_approval_policy(d: Defaults, policy_id: str, /, **changes: Any) -> Flow[ApprovalPolicy]:
    """Change the fields given (those of :func:`create_approval_policy`); None clears an optional one."""
    path = f"{_POLICIES}/{_seg(policy_id)}"
    return (yield from _do(Call[ApprovalPolicy]("PATCH", path, json=_json(changes))))


def delete_approval_policy(d: Defaults, policy_id: str) -> Flow[None]:
    return (yield from _do(Call[None]("DELETE", f"{_POLICIES}/{_seg(policy_id)}")))


def list_approval_requests(
    d: Defaults,
    *,
    kind: str | None = None,
    status: str | None = None,
    limit: int = 100,
    cursor: str | None = None,
) -> Flow[Page[HumanRequest]]:
    """Approval requests and questions (``kind`` approval or question), newest first, with where each copy went
    and who answered."""
    params = _params(kind=kind, status=status, limit=limit, cursor=cursor)
    return (yield from _do(Call[Page[HumanRequest]]("GET", _REQUESTS, params=params)))


def get_approval_request(d: Defaults, request_id: str) -> Flow[HumanRequest]:
    return (yield from _do(Call[HumanRequest]("GET", f"{_REQUESTS}/{_seg(request_id)}")))


def approve_request(
    d: Defaults, request_id: str, *, approver_user_id: str | None = None
) -> Flow[HumanRequest]:
    """Approve the message an approval request holds; answers the request as it now stands."""
    held = yield from _held_message(request_id)
    yield from approve_message(d, held, approver_user_id=approver_user_id)
    return (yield from get_approval_request(d, request_id))


def reject_request(
    d: Defaults, request_id: str, *, approver_user_id: str | None = None, reason: str | None = None
) -> Flow[HumanRequest]:
    """Reject the message an approval request holds; answers the request as it now stands."""
    held = yield from _held_message(request_id)
    yield from reject_message(d, held, approver_user_id=approver_user_id, reason=reason)
    return (yield from get_approval_request(d, request_id))


def _held_message(request_id: str) -> Flow[str]:
    """The message an approval request is about; a question has none to decide (a ValueError)."""
    request = yield from _do(Call[HumanRequest]("GET", f"{_REQUESTS}/{_seg(request_id)}"))
    if request.kind != "approval" or request.message_id is None:
        raise ValueError(f"{request_id} is a {request.kind}, not an approval request: answer it instead")
    return request.message_id


def ask(
    d: Defaults,
    question: str,
    *,
    agent_id: str | None = None,
    options: Sequence[str] | None = None,
    approver_ids: Sequence[str] | None = None,
    platform: str | None = None,
    recipient_id: str | None = None,
    contact_id: str | None = None,
    channel_id: str | None = None,
    timeout_seconds: int | None = None,
    escalate_to: Sequence[str] | None = None,
    idempotency_key: str | None = None,
) -> Flow[HumanRequest]:
    """An agent asks people a question: approvers (``approver_ids``) or one address (``platform`` and
    ``recipient_id``, or ``contact_id``); ``options`` are offered as buttons. Follow it with
    :func:`get_question`; the answer also goes to the agent's callback."""
    body = _body(
        agent_id=agent_id or d.agent_id, question=question, options=_list(options),
        approver_ids=_list(approver_ids), platform=platform, recipient_id=recipient_id, contact_id=contact_id,
        channel_id=channel_id, timeout_seconds=timeout_seconds, escalate_to=_list(escalate_to),
    )  # fmt: skip
    return (yield from _do(Call[HumanRequest]("POST", _QUESTIONS, json=body, headers=_key(idempotency_key))))


def get_question(d: Defaults, question_id: str) -> Flow[HumanRequest]:
    """A question with its ``status`` and, once answered, its ``answer``."""
    return (yield from _do(Call[HumanRequest]("GET", f"{_QUESTIONS}/{_seg(question_id)}")))


def list_questions(
    d: Defaults, *, status: str | None = None, limit: int = 100, cursor: str | None = None
) -> Flow[Page[HumanRequest]]:
    params = _params(status=status, limit=limit, cursor=cursor)
    return (yield from _do(Call[Page[HumanRequest]]("GET", _QUESTIONS, params=params)))


# -- schedules ------------------------------------------------------------------------------------------------

_SCHEDULES = "/api/v1/messaging/schedule"


def create_schedule(
    d: Defaults,
    *,
    template: str,
    agent_id: str | None = None,
    platform: str | None = None,
    recipient_id: str | None = None,
    contact_id: str | None = None,
    cron_expression: str | None = None,
    natural_language_schedule: str | None = None,
    run_at: datetime | str | None = None,
    schedule_type: str | None = None,
    timezone: str | None = None,
    template_variables: Mapping[str, Any] | None = None,
    subject: str | None = None,
    priority: str | None = None,
    misfire_policy: str | None = None,
    name: str | None = None,
    idempotency_key: str | None = None,
) -> Flow[Schedule]:
    """A one-time (``run_at`` or natural language) or recurring (cron or natural language) message."""
    body = _body(
        agent_id=agent_id or d.agent_id, template=template, platform=platform, recipient_id=recipient_id,
        contact_id=contact_id, cron_expression=cron_expression, natural_language_schedule=natural_language_schedule,
        run_at=run_at, schedule_type=schedule_type, timezone=timezone, template_variables=template_variables,
        subject=subject, priority=priority, misfire_policy=misfire_policy, name=name,
    )  # fmt: skip
    return (
        yield from _do(
            Call[Schedule]("POST", f"{_SCHEDULES}/create", json=body, headers=_key(idempotency_key))
        )
    )


def list_schedules(
    d: Defaults,
    *,
    agent_id: str | None = None,
    active: bool | None = None,
    limit: int = 100,
    cursor: str | None = None,
) -> Flow[Page[Schedule]]:
    params = _params(agent_id=agent_id, active=active, limit=limit, cursor=cursor)
    return (yield from _do(Call[Page[Schedule]]("GET", f"{_SCHEDULES}/list", params=params)))


def get_schedule(d: Defaults, schedule_id: str) -> Flow[Schedule]:
    return (yield from _do(Call[Schedule]("GET", f"{_SCHEDULES}/{_seg(schedule_id)}")))


def pause_schedule(d: Defaults, schedule_id: str) -> Flow[Schedule]:
    return (yield from _do(Call[Schedule]("POST", f"{_SCHEDULES}/{_seg(schedule_id)}/pause")))


def resume_schedule(d: Defaults, schedule_id: str) -> Flow[Schedule]:
    """Resume from now on; runs missed while paused are not replayed."""
    return (yield from _do(Call[Schedule]("POST", f"{_SCHEDULES}/{_seg(schedule_id)}/resume")))


def delete_schedule(d: Defaults, schedule_id: str) -> Flow[Schedule]:
    """Cancel a schedule for good; answers it as it ends."""
    return (yield from _do(Call[Schedule]("DELETE", f"{_SCHEDULES}/{_seg(schedule_id)}")))


def schedule_executions(
    d: Defaults, *, schedule_id: str | None = None, limit: int = 100, cursor: str | None = None
) -> Flow[Page[ScheduleExecution]]:
    """What each run did, newest first."""
    params = _params(schedule_id=schedule_id, limit=limit, cursor=cursor)
    path = f"{_SCHEDULES}/history/executions"
    return (yield from _do(Call[Page[ScheduleExecution]]("GET", path, params=params)))


def parse_schedule(d: Defaults, text: str, *, timezone: str | None = None) -> Flow[dict[str, Any]]:
    """What a natural-language schedule means: cron (or run_at), in words, and its next runs."""
    body = _body(schedule=text, timezone=timezone)
    return (yield from _do(Call[dict[str, Any]]("POST", f"{_SCHEDULES}/parse-nl", json=body)))


# -- campaigns ------------------------------------------------------------------------------------------------

_CAMPAIGNS = "/api/v1/campaigns"


def create_campaign(
    d: Defaults,
    /,
    *,
    name: str,
    data_source_id: str,
    schedule: str,
    event_type: str,
    channels: Sequence[Mapping[str, str]],
    agent_id: str | None = None,
    audience_query: str | None = None,
    queue: Mapping[str, Any] | None = None,
    idempotency_key: str | None = None,
    **options: Any,
) -> Flow[Campaign]:
    """A campaign over the tenant's own data; ``options`` are the other fields of the body (``timezone``,
    ``locale``, ``query_params``, ``timezone_column``, ``variables``, ``dedupe_key``, ``dedupe_period``,
    ``priority``, ``compose``, ``enabled``)."""
    body = _body(
        name=name, agent_id=agent_id or d.agent_id, data_source_id=data_source_id, schedule=schedule,
        event_type=event_type, channels=list(channels), audience_query=audience_query, queue=queue, **options,
    )  # fmt: skip
    return (yield from _do(Call[Campaign]("POST", _CAMPAIGNS, json=body, headers=_key(idempotency_key))))


def list_campaigns(d: Defaults, *, limit: int = 100, cursor: str | None = None) -> Flow[Page[Campaign]]:
    params = _params(limit=limit, cursor=cursor)
    return (yield from _do(Call[Page[Campaign]]("GET", _CAMPAIGNS, params=params)))


def get_campaign(d: Defaults, campaign_id: str) -> Flow[Campaign]:
    return (yield from _do(Call[Campaign]("GET", f"{_CAMPAIGNS}/{_seg(campaign_id)}")))


def update_campaign(d: Defaults, campaign_id: str, /, **changes: Any) -> Flow[Campaign]:
    """Change any fields of the body (``None`` clears one that may be empty, such as ``compose``)."""
    body = {k: _json(v) for k, v in changes.items()}
    return (yield from _do(Call[Campaign]("PATCH", f"{_CAMPAIGNS}/{_seg(campaign_id)}", json=body)))


def delete_campaign(d: Defaults, campaign_id: str) -> Flow[None]:
    return (yield from _do(Call[None]("DELETE", f"{_CAMPAIGNS}/{_seg(campaign_id)}")))


def pause_campaign(d: Defaults, campaign_id: str) -> Flow[Campaign]:
    return (yield from _do(Call[Campaign]("POST", f"{_CAMPAIGNS}/{_seg(campaign_id)}/pause")))


def resume_campaign(d: Defaults, campaign_id: str) -> Flow[Campaign]:
    """Resume from now on; runs missed while paused are not replayed."""
    return (yield from _do(Call[Campaign]("POST", f"{_CAMPAIGNS}/{_seg(campaign_id)}/resume")))


def run_campaign(d: Defaults, campaign_id: str) -> Flow[CampaignRun]:
    """Run now, outside the schedule: the finished run, or the run held for approval (INTERN)."""
    return (yield from _do(Call[CampaignRun]("POST", f"{_CAMPAIGNS}/{_seg(campaign_id)}/run")))


def preview_campaign(d: Defaults, campaign_id: str, *, sample: int | None = None) -> Flow[dict[str, Any]]:
    """The audience size and a sample of rendered messages; sends nothing."""
    path = f"{_CAMPAIGNS}/{_seg(campaign_id)}/preview"
    return (yield from _do(Call[dict[str, Any]]("POST", path, json=_body(sample=sample))))


def campaign_runs(
    d: Defaults, campaign_id: str, *, limit: int = 100, cursor: str | None = None
) -> Flow[Page[CampaignRun]]:
    """The campaign's runs, newest first."""
    params = _params(limit=limit, cursor=cursor)
    path = f"{_CAMPAIGNS}/{_seg(campaign_id)}/runs"
    return (yield from _do(Call[Page[CampaignRun]]("GET", path, params=params)))


def get_campaign_run(d: Defaults, campaign_id: str, run_id: str) -> Flow[CampaignRun]:
    path = f"{_CAMPAIGNS}/{_seg(campaign_id)}/runs/{_seg(run_id)}"
    return (yield from _do(Call[CampaignRun]("GET", path)))


def approve_campaign_run(
    d: Defaults,
    campaign_id: str,
    run_id: str,
    *,
    approver_user_id: str | None = None,
    reason: str | None = None,
) -> Flow[CampaignRun]:
    """Approve an INTERN's whole run: its messages are created at once."""
    path = f"{_CAMPAIGNS}/{_seg(campaign_id)}/runs/{_seg(run_id)}/approve"
    body = _body(approver_user_id=approver_user_id, reason=reason)
    return (yield from _do(Call[CampaignRun]("POST", path, json=body)))


def reject_campaign_run(
    d: Defaults,
    campaign_id: str,
    run_id: str,
    *,
    approver_user_id: str | None = None,
    reason: str | None = None,
) -> Flow[CampaignRun]:
    """Reject an INTERN's run: nothing of it is sent."""
    path = f"{_CAMPAIGNS}/{_seg(campaign_id)}/runs/{_seg(run_id)}/reject"
    body = _body(approver_user_id=approver_user_id, reason=reason)
    return (yield from _do(Call[CampaignRun]("POST", path, json=body)))


# -- monitors -------------------------------------------------------------------------------------------------

_MONITORING = "/api/v1/monitoring"


def create_monitor(
    d: Defaults,
    *,
    name: str,
    condition_type: str,
    agent_id: str | None = None,
    threshold_config: Mapping[str, Any] | None = None,
    platforms: Sequence[Mapping[str, Any]] | None = None,
    alert_template: str | None = None,
    check_interval_seconds: int | None = None,
    priority: str | None = None,
    options: Mapping[str, Any] | None = None,
    idempotency_key: str | None = None,
) -> Flow[Monitor]:
    """A condition checked every ``check_interval_seconds``; ``options`` carries the rest of seed 000's body
    (``url``, ``json_path``, ``query``, ``for_seconds``, ``throttle_seconds``, ``composite_conditions``...)."""
    body = {
        **_body(
            agent_id=agent_id or d.agent_id, name=name, condition_type=condition_type,
            threshold_config=threshold_config, platforms=platforms, alert_template=alert_template,
            check_interval_seconds=check_interval_seconds, priority=priority,
        ),
        **_body(**(options or {})),
    }  # fmt: skip
    path = f"{_MONITORING}/condition/create"
    return (yield from _do(Call[Monitor]("POST", path, json=body, headers=_key(idempotency_key))))


def list_monitors(
    d: Defaults, *, status: str | None = None, limit: int = 100, cursor: str | None = None
) -> Flow[Page[Monitor]]:
    params = _params(status=status, limit=limit, cursor=cursor)
    return (yield from _do(Call[Page[Monitor]]("GET", f"{_MONITORING}/condition/list", params=params)))


def pause_monitor(d: Defaults, monitor_id: str) -> Flow[Monitor]:
    return (yield from _do(Call[Monitor]("POST", f"{_MONITORING}/condition/{_seg(monitor_id)}/pause")))


def resume_monitor(d: Defaults, monitor_id: str) -> Flow[Monitor]:
    return (yield from _do(Call[Monitor]("POST", f"{_MONITORING}/condition/{_seg(monitor_id)}/resume")))


def test_monitor(d: Defaults, monitor_id: str) -> Flow[dict[str, Any]]:
    """Evaluate the condition now without changing the monitor's state."""
    path = f"{_MONITORING}/condition/{_seg(monitor_id)}/test"
    return (yield from _do(Call[dict[str, Any]]("POST", path)))


def list_alerts(
    d: Defaults, *, monitor_id: str | None = None, limit: int = 100, cursor: str | None = None
) -> Flow[Page[Alert]]:
    """Alert history, newest first."""
    params = _params(monitor_id=monitor_id, limit=limit, cursor=cursor)
    return (yield from _do(Call[Page[Alert]]("GET", f"{_MONITORING}/alerts", params=params)))


def push_metric(
    d: Defaults,
    name: str,
    value: float,
    *,
    labels: Mapping[str, str] | None = None,
    time: datetime | str | None = None,
) -> Flow[dict[str, int]]:
    """Push a value of a named metric; monitors on that metric read the latest."""
    body = _body(name=name, value=value, labels=labels, time=time)
    return (yield from _do(Call[dict[str, int]]("POST", f"{_MONITORING}/values", json=body)))


# -- triggers -------------------------------------------------------------------------------------------------

_TRIGGERS = "/api/proactive/triggers"


def create_trigger(
    d: Defaults,
    *,
    name: str,
    trigger_type: str,
    task_template: str,
    agent_id: str | None = None,
    config: Mapping[str, Any] | None = None,
    action: Mapping[str, Any] | None = None,
    workspace_id: str | None = None,
    idempotency_key: str | None = None,
) -> Flow[Trigger]:
    """Seed 002's trigger: an event source and what the agent is asked to do when it fires."""
    body = _body(
        name=name, trigger_type=trigger_type, task_template=task_template, agent_id=agent_id or d.agent_id,
        config=config, action=action, workspace_id=workspace_id,
    )  # fmt: skip
    return (yield from _do(Call[Trigger]("POST", _TRIGGERS, json=body, headers=_key(idempotency_key))))


def list_triggers(d: Defaults, *, limit: int = 100, cursor: str | None = None) -> Flow[Page[Trigger]]:
    params = _params(limit=limit, cursor=cursor)
    return (yield from _do(Call[Page[Trigger]]("GET", _TRIGGERS, params=params)))


def delete_trigger(d: Defaults, trigger_id: str) -> Flow[None]:
    return (yield from _do(Call[None]("DELETE", f"{_TRIGGERS}/{_seg(trigger_id)}")))


def fire_trigger(
    d: Defaults, trigger_id: str, payload: Mapping[str, Any] | None = None
) -> Flow[TriggerFiring]:
    """Fire by hand with a payload; answers the recorded firing."""
    body = {"payload": _json(payload or {})}
    return (yield from _do(Call[TriggerFiring]("POST", f"{_TRIGGERS}/{_seg(trigger_id)}/fire", json=body)))


def trigger_history(
    d: Defaults, trigger_id: str, *, limit: int = 100, cursor: str | None = None
) -> Flow[Page[TriggerFiring]]:
    params = _params(limit=limit, cursor=cursor)
    path = f"{_TRIGGERS}/{_seg(trigger_id)}/history"
    return (yield from _do(Call[Page[TriggerFiring]]("GET", path, params=params)))


# -- OTP, metrics, agents, health -----------------------------------------------------------------------------


def send_otp(
    d: Defaults,
    recipient: str,
    *,
    channel: str | None = None,
    priority: str | None = None,
    agent_id: str | None = None,
    code_length: int | None = None,
    locale: str | None = None,
    template: str | None = None,
    idempotency_key: str | None = None,
) -> Flow[OtpVerification]:
    """Send a one-time code to ``recipient`` (a phone number, an address or a contact id); Herald keeps only its
    hash. Without ``agent_id`` the code is the tenant's own (the client's default agent is not used: an agent
    would put the code under its governance)."""
    body = _body(
        recipient=recipient, channel=channel, priority=priority, agent_id=agent_id, code_length=code_length,
        locale=locale, template=template,
    )  # fmt: skip
    call = Call[OtpVerification]("POST", "/api/v1/otp/send", json=body, headers=_key(idempotency_key))
    return (yield from _do(call))


def verify_otp(d: Defaults, recipient: str, code: str) -> Flow[OtpCheck]:
    """Check a code ``recipient`` was sent: ``valid``, and ``status`` (approved, pending, max_attempts_reached).
    No code pending for ``recipient`` is a NotFoundError."""
    body = {"recipient": recipient, "code": code}
    return (yield from _do(Call[OtpCheck]("POST", "/api/v1/otp/verify", json=body)))


def get_otp(d: Defaults, verification_id: str) -> Flow[OtpVerification]:
    return (yield from _do(Call[OtpVerification]("GET", f"/api/v1/otp/{_seg(verification_id)}")))


def cancel_otp(d: Defaults, verification_id: str) -> Flow[OtpVerification]:
    """Cancel a pending code; checking it afterwards fails."""
    return (yield from _do(Call[OtpVerification]("POST", f"/api/v1/otp/{_seg(verification_id)}/cancel")))


def get_metrics(d: Defaults, *, hours: int = 24) -> Flow[DeliveryMetrics]:
    """Sent, failed, success rate and cost, overall and per channel, over the last ``hours``; and ``queue``, the
    messages waiting now."""
    params = {"hours": hours}
    return (yield from _do(Call[DeliveryMetrics]("GET", "/api/v1/metrics/delivery", params=params)))


def create_agent(
    d: Defaults,
    agent_id: str,
    maturity_level: str,
    *,
    name: str | None = None,
    callback_url: str | None = None,
    kind: str | None = None,
    llm: dict[str, Any] | None = None,
    api_key: str | None = None,
    default_recipient: dict[str, str] | None = None,
    idempotency_key: str | None = None,
) -> Flow[Agent]:
    """Register an agent; with ``callback_url`` the answer holds its callback secret, shown once. ``kind="llm"``
    with ``llm`` settings (``base_url``, ``model``, ...) and ``api_key`` makes Herald run it itself."""
    body = _body(id=agent_id, maturity_level=maturity_level, name=name, callback_url=callback_url, kind=kind, llm=llm,
                 api_key=api_key, default_recipient=default_recipient)  # fmt: skip
    return (yield from _do(Call[Agent]("POST", "/api/v1/agents", json=body, headers=_key(idempotency_key))))


def get_agent(d: Defaults, agent_id: str) -> Flow[Agent]:
    return (yield from _do(Call[Agent]("GET", f"/api/v1/agents/{_seg(agent_id)}")))


def list_agents(d: Defaults, *, limit: int = 100, cursor: str | None = None) -> Flow[Page[Agent]]:
    params = _params(limit=limit, cursor=cursor)
    return (yield from _do(Call[Page[Agent]]("GET", "/api/v1/agents", params=params)))


def start_run(
    d: Defaults, agent_id: str, task: str, *, context: dict[str, Any] | None = None
) -> Flow[AgentRun]:
    """Wake an agent now with ``task``; the run is queued (follow it with :func:`get_run`)."""
    body = _body(task=task, context=context)
    return (yield from _do(Call[AgentRun]("POST", f"/api/v1/agents/{_seg(agent_id)}/runs", json=body)))


def get_run(d: Defaults, agent_id: str, run_id: str) -> Flow[AgentRun]:
    """One run with its ``step_log``: model answers, tool calls and results, tokens."""
    return (yield from _do(Call[AgentRun]("GET", f"/api/v1/agents/{_seg(agent_id)}/runs/{_seg(run_id)}")))


def list_runs(
    d: Defaults, agent_id: str, *, status: str | None = None, limit: int = 100, cursor: str | None = None
) -> Flow[Page[AgentRun]]:
    params = _params(status=status, limit=limit, cursor=cursor)
    return (
        yield from _do(Call[Page[AgentRun]]("GET", f"/api/v1/agents/{_seg(agent_id)}/runs", params=params))
    )


def health(d: Defaults) -> Flow[Health]:
    """Herald's own health (database, workers); needs no API key. Unhealthy is a ServerError (503)."""
    return (yield from _do(Call[Health]("GET", "/health")))
