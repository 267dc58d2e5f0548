"""What Herald answers, as typed objects: ``report.status``, ``report.channel.platform``, ``page.items[0].id``.

Every answer is a :class:`Record`: its fields are attributes, typed here for a checker to follow (times are
ISO 8601 strings, as sent). For code written against the earlier dict answers a record also reads as a
mapping: ``report["status"]``, ``"error" in item``, ``item.get("error")``, ``dict(record)`` and ``record ==
{...}`` all work, and :meth:`Record.to_dict` gives the JSON back (for ``json.dumps``). A field a newer Herald
adds is kept: it is an attribute and an item, just not declared. Records are read-only.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable, Iterator, Mapping
from typing import Any, ClassVar, Generic, TypeVar, Union

T = TypeVar("T")
R = TypeVar("R", bound="Record")
Convert = Callable[[Any], Any]


def _plain(value: Any) -> Any:
    """``value`` as JSON types: records become dicts, all the way down."""
    if isinstance(value, Record):
        return value.to_dict()
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _converter(hint: Any) -> Convert | None:
    """How to turn the JSON of a field annotated ``hint`` into its typed value; None: keep the JSON as is."""
    if isinstance(hint, type) and issubclass(hint, Record):
        record = hint
        return lambda v: record(v) if isinstance(v, Mapping) else v
    origin = typing.get_origin(hint)
    if origin is list:
        (inner,) = typing.get_args(hint) or (Any,)
        each = _converter(inner)
        if each is None:
            return None
        return lambda v: [each(i) for i in v] if isinstance(v, list) else v
    if origin in (Union, types.UnionType):
        options = [c for c in (_converter(a) for a in typing.get_args(hint) if a is not type(None)) if c]
        return options[0] if len(options) == 1 else None
    return None


class Record:
    """A JSON object from Herald with its fields as attributes (and, for older callers, as items)."""

    _converters: ClassVar[dict[str, Convert] | None] = None

    def __init__(self, data: Mapping[str, Any] | None = None, /, **fields: Any) -> None:
        converters = type(self)._field_converters()
        for name, value in {**(data or {}), **fields}.items():
            convert = converters.get(name)
            object.__setattr__(self, name, value if convert is None or value is None else convert(value))

    @classmethod
    def _field_converters(cls) -> dict[str, Convert]:
        """Converters for the fields whose type is a record (or a list of them), found once per class."""
        if cls.__dict__.get("_converters") is None:
            hints = typing.get_type_hints(cls)
            found = {name: c for name, hint in hints.items() if (c := _converter(hint)) is not None}
            cls._converters = found
        return cls.__dict__["_converters"]  # type: ignore[no-any-return]

    @classmethod
    def from_json(cls: type[R], data: Any) -> R:
        """The record for a decoded JSON object (a TypeError for anything else)."""
        if not isinstance(data, Mapping):
            raise TypeError(f"{cls.__name__}: expected a JSON object, got {type(data).__name__}")
        return cls(data)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object as Herald sent it (records inside become dicts too)."""
        return {k: _plain(v) for k, v in vars(self).items()}

    # -- read as a mapping, for callers of the dict answers ---------------------------------------------------

    def __getitem__(self, name: str) -> Any:
        try:
            return vars(self)[name]
        except KeyError:
            raise KeyError(name) from None

    def __contains__(self, name: object) -> bool:
        return name in vars(self)

    def __iter__(self) -> Iterator[str]:
        return iter(list(vars(self)))

    def __len__(self) -> int:
        return len(vars(self))

    def keys(self) -> list[str]:
        return list(vars(self))

    def get(self, name: str, default: Any = None) -> Any:
        return vars(self).get(name, default)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is read-only")

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Record | Mapping):
            return bool(self.to_dict() == _plain(other))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({shown})"


class Page(Record, Generic[T]):
    """One page of a list; pass ``next_cursor`` as ``cursor`` for the next (None: this was the last)."""

    items: list[T]
    next_cursor: str | None = None

    @staticmethod
    def of(item: Callable[[Any], T]) -> Callable[[Any], Page[T]]:
        """A converter for a page whose items ``item`` converts (a record class, say)."""

        def convert(data: Any) -> Page[T]:
            if not isinstance(data, Mapping):
                raise TypeError(f"Page: expected a JSON object, got {type(data).__name__}")
            return Page({**data, "items": [item(i) for i in data.get("items") or []]})

        return convert


# -- messages -------------------------------------------------------------------------------------------------


class Attempt(Record):
    number: int
    provider: str
    channel_id: str | None
    started_at: str
    duration_ms: float
    outcome: str  # sent, retry, failed, skipped
    provider_message_id: str | None
    error: str | None
    retry_after: float | None


class AttachmentInfo(Record):
    filename: str
    content_type: str
    size: int


class Message(Record):
    id: str
    agent_id: str | None
    agent_maturity_level: str | None
    platform: str
    recipient_id: str
    channel_id: str | None
    simulated: bool
    contact_id: str | None
    route_plan: list[dict[str, Any]]
    route_step: int
    route_reason: dict[str, Any] | None  # why the channels are in this order (measured channel choice)
    cost: float
    run_at: str
    subject: str | None
    content: str
    status: (
        str  # pending_approval, queued, held, sending, sent, delivered, read, failed, rejected, cancelled,
        # expired, digested
    )
    priority: str
    scheduled_for: str | None
    expires_at: str | None
    attempts: int
    max_attempts: int
    last_error: str | None
    provider_message_id: str | None
    approved_by: str | None
    governance_metadata: dict[str, Any]
    created_at: str
    updated_at: str
    sent_at: str | None
    attachments: list[AttachmentInfo]
    digest_id: str | None  # the digest it waits in (held) or was sent in (digested)
    digest_message_id: str | None
    # The receipt-driven escalation: rule, waits_for, state, due_at, note, escalated_to / escalated_from
    # ({"id", "status", "platform"}); None when the message has neither rule nor link.
    escalation: dict[str, Any] | None = None


class MessageDetail(Message):
    attempt_log: list[Attempt]


class BulkError(Record):
    status: int
    field: str | None
    detail: str
    errors: list[dict[str, Any]] | None = None


class BulkItem(Record):
    """One item's fate: ``id`` and ``status`` (new), ``id`` and ``replayed`` (key seen before), or ``error``."""

    index: int
    id: str | None = None
    status: str | None = None
    replayed: bool | None = None
    error: BulkError | None = None


class BulkResult(Record):
    accepted: int  # replays included
    rejected: int
    replayed: int
    items: list[BulkItem]


class ReportChannel(Record):
    platform: str
    channel_id: str | None
    provider: str | None
    recipient_id: str
    simulated: bool
    route_step: int
    fallback_used: bool


class ReportAttempt(Record):
    number: int
    time: str
    provider: str
    channel_id: str | None
    outcome: str
    provider_message_id: str | None
    error: str | None
    retry_after: float | None
    duration_ms: float


class ReportPart(Record):
    route_step: int
    index: int
    provider: str
    channel_id: str | None
    provider_message_id: str
    attempt: int
    sent_at: str


class ReportTimestamps(Record):
    created_at: str
    scheduled_for: str | None
    approved_at: str | None
    rejected_at: str | None
    sent_at: str | None
    delivered_at: str | None
    read_at: str | None
    failed_at: str | None
    cancelled_at: str | None
    expired_at: str | None
    updated_at: str


class DeliveryReport(Record):
    message_id: str
    status: str
    agent_id: str | None
    channel: ReportChannel
    attempt_count: int
    attempts: list[ReportAttempt]
    parts: list[ReportPart]
    timestamps: ReportTimestamps
    approved_by: str | None
    provider_message_id: str | None
    last_error: str | None
    cost: float


class ChannelFigures(Record):
    channel_id: str | None
    platform: str
    sent: int
    failed: int
    success_rate: float | None
    cost: float


class DeliveryMetrics(Record):
    since: str
    sent: int
    failed: int
    success_rate: float | None
    cost: float
    channels: list[ChannelFigures]
    queue: QueueDepth | None = None  # absent from a Herald older than this client


class QueueDepth(Record):
    """The tenant's messages waiting now: queued (due or scheduled), being sent, awaiting approval."""

    queued: int
    sending: int
    pending_approval: int


# -- agents, schedules, monitors, triggers -----------------------------------------------------------------------


class Agent(Record):
    id: str
    name: str
    maturity_level: str
    kind: str
    callback_url: str | None
    has_callback_secret: bool
    llm: dict[str, Any] | None
    has_api_key: bool
    default_recipient: dict[str, Any] | None
    created_at: str
    updated_at: str
    callback_secret: str | None = None


class AgentRun(Record):
    id: str
    agent_id: str
    woken_by: str
    origin: str
    task: str
    status: str  # queued, running, completed, failed, step_limit, token_limit, timed_out
    steps: int
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    answer: str | None
    error: str | None
    sent_messages: list[str]
    simulated: bool
    started_at: str | None
    finished_at: str | None
    created_at: str
    step_log: list[dict[str, Any]] | None = None


class Campaign(Record):
    id: str
    name: str
    agent_id: str
    data_source_id: str
    audience_query: str | None
    query_params: dict[str, Any]
    queue: dict[str, Any] | None
    queue_position: Any
    schedule: str
    cron_expression: str | None
    description: str | None
    timezone: str
    event_type: str
    locale: str
    channels: list[dict[str, Any]]
    timezone_column: str | None
    variables: dict[str, Any]
    dedupe_key: list[str]
    dedupe_period: str
    priority: str
    compose: dict[str, Any] | None
    enabled: bool
    status: str  # active or paused
    next_run: str | None
    next_runs: list[str]
    last_run: str | None
    created_at: str
    updated_at: str


class CampaignRun(Record):
    id: str
    campaign_id: str
    trigger: str  # schedule or manual
    status: str  # queued, running, pending_approval, completed, failed, rejected, skipped
    due_at: str
    started_at: str | None
    finished_at: str | None
    audience: int
    created: int
    deduped: int
    opted_out: int
    quiet_hours: int
    failed: int
    failures: list[dict[str, Any]]
    preview: dict[str, Any] | None
    approved_by: str | None
    decided_at: str | None
    reason: str | None
    error: str | None


class Schedule(Record):
    id: str
    name: str | None
    agent_id: str
    workspace_id: str | None
    kind: str  # message or task
    schedule_type: str  # one_time or recurring
    cron_expression: str | None
    natural_language_schedule: str | None
    description: str | None
    timezone: str
    platform: str | None
    recipient_id: str | None
    contact_id: str | None
    template: str | None
    template_variables: dict[str, Any]
    task_description: str | None
    priority: str
    misfire_policy: str
    misfire_grace_seconds: int
    status: str  # active, paused, completed, cancelled
    active: bool
    is_active: bool
    next_run: str | None
    last_run: str | None
    run_count: int
    next_runs: list[str]
    created_at: str
    updated_at: str


class ScheduleExecution(Record):
    id: str
    schedule_id: str
    due_at: str
    executed_at: str
    outcome: str
    message_id: str | None
    error: str | None


class Monitor(Record):
    id: str
    name: str
    agent_id: str
    workspace_id: str | None
    condition_type: str | None
    threshold_config: dict[str, Any] | None
    composite_logic: str | None
    composite_conditions: list[dict[str, Any]] | None
    condition: str
    action: str | None
    platforms: list[dict[str, Any]]
    alert_template: str | None
    check_interval_seconds: int
    check_interval: int
    for_seconds: int
    throttle_seconds: int
    priority: str
    no_data_policy: str
    error_policy: str
    mute_windows: list[dict[str, Any]]
    snoozed_until: str | None
    status: str
    is_active: bool
    state: str
    state_since: str
    last_value: Any
    last_error: str | None
    trigger_count: int
    last_check: str | None
    last_triggered: str | None
    next_check_at: str | None
    created_at: str


class Alert(Record):
    id: str
    monitor_id: str
    kind: str
    condition_value: Any
    threshold_value: Any
    alert_message: str | None
    platforms_sent: list[Any]
    message_ids: list[str]
    status: str
    error: str | None
    triggered_at: str
    sent_at: str | None


class Trigger(Record):
    id: str
    name: str
    workspace_id: str | None
    trigger_type: str
    config: dict[str, Any]
    agent_id: str
    task_template: str
    action: dict[str, Any]
    is_active: bool
    fire_count: int
    last_fired_at: str | None
    created_at: str


class TriggerFiring(Record):
    id: str
    trigger_id: str
    source: str
    payload_digest: str
    task: str | None
    outcome: str
    message_id: str | None
    error: str | None
    fired_at: str


# -- OTP ------------------------------------------------------------------------------------------------------


class OtpVerification(Record):
    """A code sent (Twilio Verify's model); the code itself is never in an answer."""

    id: str
    status: str  # pending, approved, canceled, expired, max_attempts_reached
    channel: str | None
    code_length: int
    locale: str | None
    sends: int
    checks: int
    message_ids: list[str]
    expires_at: str
    created_at: str
    updated_at: str


class OtpCheck(OtpVerification):
    valid: bool


# -- humans in the loop ---------------------------------------------------------------------------------------


class Approver(Record):
    id: str
    name: str
    addresses: list[dict[str, Any]]  # platform, recipient_id, channel_id, user_id; in escalation order
    created_at: str
    updated_at: str


class ApprovalPolicy(Record):
    id: str
    name: str
    position: int
    agent_ids: list[str]
    priorities: list[str]
    approver_ids: list[str]
    quorum: int
    escalate_after_seconds: int | None
    escalate_to: list[str]
    expires_after_seconds: int | None
    created_at: str


class HumanDelivery(Record):
    """One copy of a request sent to a person, and what became of it."""

    id: str
    approver_id: str | None
    approver_name: str
    platform: str
    recipient_id: str
    channel_id: str | None
    message_id: str | None
    message_status: str | None
    level: int
    seen: bool
    answered_at: str | None
    status: str


class HumanRequest(Record):
    """An approval request (``kind`` approval, for ``message_id``) or a question (``kind`` question)."""

    id: str
    kind: str
    status: str
    agent_id: str | None
    message_id: str | None
    policy_id: str | None
    text: str
    options: list[str]
    answer: dict[str, Any] | None
    quorum: int
    code: str
    level: int
    expires_at: str | None
    decided_by: str | None
    decided_at: str | None
    created_at: str
    deliveries: list[HumanDelivery]
    votes: list[dict[str, Any]]


ApprovalRequest = HumanRequest
Question = HumanRequest


class Health(Record):
    status: str
    database: str
    workers: int
