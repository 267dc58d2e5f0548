"""Request and response bodies. Requests forbid unknown fields, so a typo is a 422, not silent acceptance."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import (
    AfterValidator,
    AnyHttpUrl,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from herald.agents.settings import LLMSettings
from herald.core import attachments, jsonbody
from herald.core.intent import Priority
from herald.core.maturity import MaturityLevel
from herald.core.platforms import PLATFORMS, recipient_problem
from herald.core.timezones import check_timezone
from herald.pipeline.escalation import MAX_MINUTES as MAX_ESCALATION_MINUTES
from herald.pipeline.routing.quiet_hours import QuietHours


def _upper(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


Level = Annotated[MaturityLevel, BeforeValidator(_upper)]


def _known_priority(value: str) -> str:
    if value not in Priority.__members__:
        raise ValueError(f"must be one of {', '.join(Priority.__members__)}")
    return value


PriorityName = Annotated[str, BeforeValidator(_upper), AfterValidator(_known_priority)]
Identifier = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.:@\-]+$")]


class Strict(BaseModel):
    """A request body: unknown keys, non-finite numbers, NUL characters and values nested deeper than
    :data:`herald.core.jsonbody.MAX_FIELD_DEPTH` are refused (422 naming the field), before anything is written."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, allow_inf_nan=False)

    @field_validator("*", mode="after")
    @classmethod
    def _plain_json(cls, value: Any) -> Any:
        # PostgreSQL text cannot hold NUL, jsonb no NaN; nothing that reads a value later should recurse unboundedly.
        problem = jsonbody.problem(value)
        if problem:
            raise ValueError(problem)
        return value


def as_utc(value: datetime | None) -> datetime | None:
    """Times without an offset are taken as UTC; the far future (year 9000 on) is refused."""
    if value is None:
        return None
    if value.year >= 9000:
        raise ValueError("must be before the year 9000")
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class FallbackStep(Strict):
    platform: str = Field(min_length=1, max_length=32)
    recipient_id: str = Field(min_length=1, max_length=500)


class AttachmentIn(Strict):
    """A file sent with an email message, base64 in the request; answers show its filename, type and size only."""

    filename: str = Field(min_length=1, max_length=attachments.MAX_FILENAME, examples=["receipt.pdf"])
    content_type: str = Field(min_length=3, max_length=255, examples=["application/pdf"])
    content: str = Field(min_length=1, description="the file, base64 (standard alphabet, padded)")

    @field_validator("filename")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        problem = attachments.filename_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("content_type")
    @classmethod
    def _media_type(cls, value: str) -> str:
        problem = attachments.content_type_problem(value)
        if problem:
            raise ValueError(problem)
        return value.lower()

    @field_validator("content")
    @classmethod
    def _base64(cls, value: str) -> str:
        attachments.decode(value)  # ValueError: "must be valid base64"
        return value

    def decoded(self) -> attachments.Attachment:
        return attachments.Attachment(self.filename, self.content_type, attachments.decode(self.content))


class AttachmentOut(BaseModel):
    filename: str
    content_type: str
    size: int = Field(description="bytes, decoded")


class ComposeRequest(Strict):
    """Have the agent's model write the text (``herald.pipeline.content``). With ``enhance`` on, ``content`` is
    the template the model personalises; with it off, the model writes from ``prompt`` and ``content`` is the
    fallback text. Whenever the model fails, ``content`` (rendered) is sent."""

    event_type: str = Field(min_length=1, max_length=100, pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    prompt: str | None = Field(default=None, min_length=1, max_length=20_000,
                               description="the event type's instructions to the model")  # fmt: skip
    enhance: bool = True
    max_length: int | None = Field(default=None, ge=20, le=100_000,
                                   description="at most this many characters of AI text (default: the channel's)")  # fmt: skip
    timeout_seconds: float = Field(default=15.0, gt=0, le=120)

    @model_validator(mode="after")
    def _prompt_to_write(self) -> ComposeRequest:
        if not self.enhance and self.prompt is None:
            raise ValueError(
                "prompt: writing without a template (enhance false) needs the event type's prompt"
            )
        return self


class EscalationRule(Strict):
    """Send the message again, once, on the next channel of the contact's chain if it is not ``unless`` within
    ``after_minutes`` of being sent. ``read`` on a channel that never reports reads waits for ``delivered``."""

    after_minutes: int = Field(
        ge=1, le=MAX_ESCALATION_MINUTES, description="minutes after the message is sent"
    )
    unless: Literal["read", "delivered"] = Field(default="read", description="the receipt that cancels it")


class LinkedMessage(BaseModel):
    id: str
    status: str | None = Field(description="its current status (null if it is gone)")
    platform: str | None


class EscalationOut(BaseModel):
    """A message's escalation rule and where it stands, with the message at the other end of the link."""

    after_minutes: int | None
    unless: str | None
    waits_for: str | None = Field(
        description="the receipt that cancels the escalation on this channel: read where the channel reports "
        "reads, else delivered"
    )
    source: str | None = Field(description="message (the send request) or contact (the contact's default)")
    state: str | None = Field(
        description="waiting, escalated, answered (the receipt came in time), ended (the message was never sent) "
        "or skipped (nowhere to escalate to; see note); null on a message that is itself an escalation"
    )
    due_at: datetime | None = Field(
        description="sent + after_minutes (the earliest possible, until it is sent)"
    )
    note: str | None
    escalated_to: LinkedMessage | None
    escalated_from: LinkedMessage | None


class SendRequest(Strict):
    """``platform`` and ``recipient_id``, or ``contact_id`` (routing then picks the platform by ``priority``)."""

    agent_id: Identifier
    platform: str | None = Field(default=None, min_length=1, max_length=32)
    recipient_id: str | None = Field(default=None, min_length=1, max_length=500)
    contact_id: str | None = Field(default=None, max_length=40)
    fallback: list[FallbackStep] = Field(default_factory=list, max_length=10)
    content: str = Field(min_length=1, max_length=100_000)
    subject: str | None = Field(default=None, max_length=1000)
    scheduled_for: datetime | None = None
    send_now: bool = True
    timezone: str = "UTC"
    template_variables: dict[str, Any] = Field(default_factory=dict)
    governance_metadata: dict[str, Any] = Field(default_factory=dict)
    priority: PriorityName = "MEDIUM"
    channel_id: str | None = Field(default=None, max_length=40)
    attachments: list[AttachmentIn] = Field(
        default_factory=list, max_length=100,
        description="files sent with an email message (email platforms only; count and total size limited by "
        "HERALD_ATTACHMENTS_MAX_COUNT and HERALD_ATTACHMENTS_MAX_BYTES)",
    )  # fmt: skip
    compose: ComposeRequest | None = Field(
        default=None, description="have the agent's LLM personalise content or write it (LLM agents only)"
    )
    escalation: EscalationRule | None = Field(
        default=None,
        description="send it again on the next channel of the contact's chain if no receipt comes in time "
        "(a contact's own default applies when this is absent)",
    )

    _tz = field_validator("timezone")(check_timezone)

    @field_validator("scheduled_for")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return as_utc(value)

    @field_validator("send_now")
    @classmethod
    def _send_now(cls, value: bool, info: ValidationInfo) -> bool:
        # Every accepted message is sent as soon as governance allows; "not now" needs a time.
        if not value and info.data.get("scheduled_for") is None:
            raise ValueError("send_now false needs scheduled_for (or use /schedule)")
        return value


class ScheduleRequest(SendRequest):
    scheduled_for: datetime


class BulkItem(SendRequest):
    """One item of ``POST /api/v1/messages/bulk``: a send request plus its own idempotency key."""

    idempotency_key: str | None = Field(default=None, min_length=1, max_length=200)

    @field_validator("compose")
    @classmethod
    def _not_in_bulk(cls, value: ComposeRequest | None) -> None:
        # A model call per item would hold a bulk request for minutes: compose one message at a time.
        if value is not None:
            raise ValueError("compose is not available in bulk: use /messaging/proactive/send per message")


class ApproveRequest(Strict):
    approver_user_id: str | None = Field(default=None, min_length=1, max_length=200)


class RejectRequest(Strict):
    approver_user_id: str | None = Field(default=None, min_length=1, max_length=200)
    reason: str | None = Field(default=None, max_length=2000)


class AttemptOut(BaseModel):
    number: int
    provider: str
    channel_id: str | None
    started_at: datetime
    duration_ms: float
    outcome: str
    provider_message_id: str | None
    error: str | None
    retry_after: float | None


class MessageOut(BaseModel):
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
    route_reason: dict[str, Any] | None = Field(
        default=None,
        description="why route_plan is in its order when the delivery policy's channel_choice is measured: "
        "mode, order, prior (the table's order), scores (per platform: score, successes, failures, latency_s, "
        "cost), explored, window_hours; null when the order is the fixed table's or was given explicitly",
    )
    cost: float
    run_at: datetime
    subject: str | None
    content: str
    status: str
    priority: str
    scheduled_for: datetime | None
    expires_at: datetime | None
    attempts: int
    max_attempts: int
    last_error: str | None
    provider_message_id: str | None
    approved_by: str | None
    governance_metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    sent_at: datetime | None
    attachments: list[AttachmentOut] = Field(default_factory=list)

    @field_validator("attachments", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        return [] if value is None else value

    content_path: str | None = Field(
        description="how the text was composed: template, ai_enhanced, ai_written or fallback (the model failed "
        "and the template or fallback text was sent); null when the caller gave the text as is"
    )
    ai_model: str | None
    ai_prompt_tokens: int
    ai_completion_tokens: int
    ai_cost: float = Field(description="USD the model's tokens cost (the delivery cost is in cost)")
    digest_id: str | None = Field(
        default=None, description="the digest this message waits in (held) or was sent in (digested)"
    )
    digest_message_id: str | None = Field(
        default=None, description="the digest message that carried this one (status digested)"
    )
    escalation: EscalationOut | None = Field(
        default=None,
        description="the receipt-driven escalation rule and both linked messages, where there is one",
    )


class MessageDetail(MessageOut):
    attempt_log: list[AttemptOut]


class DefaultRecipient(Strict):
    """Where an agent's answers go when what woke it names no recipient: a contact, or a platform address."""

    contact_id: str | None = Field(default=None, min_length=1, max_length=40)
    platform: str | None = Field(default=None, min_length=1, max_length=32)
    recipient_id: str | None = Field(default=None, min_length=1, max_length=500)

    @model_validator(mode="after")
    def _one_address(self) -> DefaultRecipient:
        if self.contact_id is None and not (self.platform and self.recipient_id):
            raise ValueError("give contact_id, or platform and recipient_id")
        if self.platform is not None:
            if self.platform not in PLATFORMS:
                raise ValueError(f"unknown platform {self.platform!r}")
            problem = recipient_problem(self.platform, self.recipient_id or "")
            if problem:
                raise ValueError(f"recipient_id: {problem}")
        return self


AgentKind = Literal["external", "llm"]


class AgentCreate(Strict):
    id: Identifier
    name: str | None = Field(default=None, min_length=1, max_length=200)
    maturity_level: Level
    kind: AgentKind = "external"
    callback_url: AnyHttpUrl | None = None
    llm: LLMSettings | None = None
    # The LLM endpoint's key: write-only, sealed like channel credentials, never answered back.
    api_key: str | None = Field(default=None, min_length=1, max_length=2000, repr=False)
    default_recipient: DefaultRecipient | None = None

    @model_validator(mode="after")
    def _llm_needs_settings(self) -> AgentCreate:
        if self.kind == "llm" and self.llm is None:
            raise ValueError("an agent of kind llm needs llm settings (base_url and model at least)")
        return self


class AgentPatch(Strict):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    maturity_level: Level | None = None
    kind: AgentKind | None = None
    callback_url: AnyHttpUrl | None = None
    rotate_callback_secret: bool = False
    llm: LLMSettings | None = None
    api_key: str | None = Field(default=None, min_length=1, max_length=2000, repr=False)
    default_recipient: DefaultRecipient | None = None


class AgentOut(BaseModel):
    id: str
    name: str
    maturity_level: str
    kind: str = "external"
    callback_url: str | None
    has_callback_secret: bool
    llm: dict[str, Any] | None = None
    has_api_key: bool = False
    default_recipient: dict[str, Any] | None = None
    created_at: datetime
    updated_at: datetime


class AgentWithSecret(AgentOut):
    # Only in the answer that created (or rotated) it: Herald signs callbacks with it (Standard Webhooks).
    callback_secret: str | None = None


class RunCreate(Strict):
    """Wake an agent now with a task (``POST /api/v1/agents/{id}/runs``)."""

    task: str = Field(min_length=1, max_length=20_000)
    context: dict[str, Any] = Field(default_factory=dict)


class RunStepOut(BaseModel):
    seq: int
    kind: str
    payload: dict[str, Any]
    prompt_tokens: int
    completion_tokens: int
    duration_ms: float
    created_at: datetime


class RunOut(BaseModel):
    id: str
    agent_id: str
    woken_by: str
    origin: str
    task: str
    status: str
    steps: int
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    answer: str | None
    error: str | None
    sent_messages: list[str]
    simulated: bool
    started_at: datetime | None
    finished_at: datetime | None
    created_at: datetime


class RunDetail(RunOut):
    step_log: list[RunStepOut]


class ChannelCreate(Strict):
    platform: str = Field(min_length=1, max_length=32)
    provider: str | None = Field(default=None, min_length=1, max_length=32)
    name: str = Field(min_length=1, max_length=200)
    credentials: dict[str, Any] = Field(default_factory=dict)
    base_url: AnyHttpUrl | None = None
    is_default: bool = False
    cost_per_message: float = Field(default=0.0, ge=0, le=1000)
    rate_per_second: float | None = Field(default=None, gt=0, le=100_000)
    recipient_rate_per_second: float | None = Field(default=None, gt=0, le=100_000)


class ChannelPatch(Strict):
    """A change to a channel: only the fields sent change. Platform and provider stay (another is a new channel)."""

    name: str | None = Field(default=None, min_length=1, max_length=200, description="null or absent: kept")
    credentials: dict[str, Any] | None = Field(
        default=None,
        description="only the credentials to change, merged over the stored ones and validated as a whole by "
        "the provider (a key sent as null drops an optional one); write-only, never answered back",
    )
    base_url: AnyHttpUrl | None = Field(default=None, description="null: none (for providers that need none)")
    is_default: bool | None = Field(default=None, description="null or absent: kept")
    cost_per_message: float | None = Field(default=None, ge=0, le=1000, description="null or absent: kept")
    rate_per_second: float | None = Field(
        default=None, gt=0, le=100_000, description="null: the provider's own limit"
    )
    recipient_rate_per_second: float | None = Field(
        default=None, gt=0, le=100_000, description="null: the provider's own limit"
    )

    def changes(self) -> dict[str, Any]:
        """The fields sent, as the service takes them: null keeps a name, a flag, a cost or the credentials, and
        clears a base URL or a rate override."""
        kept_when_null = {"name", "credentials", "is_default", "cost_per_message"}
        sent = self.model_dump(mode="json", include=self.model_fields_set)
        if sent.get("base_url"):
            sent["base_url"] = str(sent["base_url"]).rstrip("/")
        return {k: v for k, v in sent.items() if v is not None or k not in kept_when_null}


class CircuitOut(BaseModel):
    state: str
    consecutive_failures: int
    opened_at: datetime | None
    reopens_at: datetime | None
    last_error: str | None


class ChannelOut(BaseModel):
    id: str
    platform: str
    provider: str
    name: str
    base_url: str | None
    is_default: bool
    credentials_set: list[str]
    cost_per_message: float
    rate_per_second: float | None
    recipient_rate_per_second: float | None
    circuit: CircuitOut
    created_at: datetime


class ChannelTest(Strict):
    recipient_id: str = Field(min_length=1, max_length=500)
    content: str = Field(default="Herald test message", min_length=1, max_length=10_000)
    subject: str | None = Field(default=None, max_length=1000)


class ChannelTestOut(BaseModel):
    ok: bool
    provider: str
    provider_message_id: str | None
    error: str | None
    retryable: bool | None
    retry_after: float | None
    duration_ms: float


class ContactCreate(Strict):
    name: str = Field(min_length=1, max_length=200)
    addresses: dict[str, str] = Field(
        default_factory=dict,
        description="an address per platform or channel: sms, email, telegram, slack ...",
    )
    timezone: str | None = Field(default=None, description="an IANA time zone, such as Europe/Paris")
    quiet_hours: QuietHours | None = None
    opt_outs: list[str] = Field(default_factory=list, description="platforms never to use for this contact")
    channel_order: list[str] | None = Field(
        default=None, description="platforms to try in order (unset: by priority)"
    )
    escalation: EscalationRule | None = Field(
        default=None, description="the default escalation rule of messages sent to this contact (null: none)"
    )

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str | None) -> str | None:
        return None if value is None else check_timezone(value)


class ContactPatch(Strict):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    addresses: dict[str, str] | None = Field(
        default=None, description="an address per platform or channel: sms, email, telegram, slack ..."
    )
    timezone: str | None = Field(default=None, description="an IANA time zone, such as Europe/Paris")
    quiet_hours: QuietHours | None = None
    opt_outs: list[str] | None = Field(default=None, description="platforms never to use for this contact")
    channel_order: list[str] | None = Field(
        default=None, description="platforms to try in order (unset: by priority)"
    )
    escalation: EscalationRule | None = Field(
        default=None, description="the default escalation rule of messages sent to this contact (null: none)"
    )

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str | None) -> str | None:
        return None if value is None else check_timezone(value)


class ContactOut(BaseModel):
    id: str
    name: str
    addresses: dict[str, str]
    timezone: str | None
    quiet_hours: dict[str, Any] | None
    opt_outs: list[str]
    channel_order: list[str] | None
    escalation: dict[str, Any] | None = Field(
        description="the default escalation rule: after_minutes, unless"
    )
    created_at: datetime
    updated_at: datetime


class AuditOut(BaseModel):
    id: str
    actor: str
    action: str
    object_type: str
    object_id: str
    detail: dict[str, Any]
    needs_review: bool
    created_at: datetime


class DevInboxAttachment(AttachmentOut):
    content: str = Field(description="the file as sent, base64")


class DevInboxOut(BaseModel):
    id: str
    message_id: str
    platform: str
    recipient_id: str
    subject: str | None
    content: str
    received_at: datetime
    attachments: list[DevInboxAttachment] = Field(default_factory=list)

    @field_validator("attachments", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        return [] if value is None else value


def page(items: list[Any], limit: int, cursor_of: str = "id") -> dict[str, Any]:
    """``{"items": [...], "next_cursor": ...}``; the cursor is present only when another page may exist."""
    next_cursor = items[-1][cursor_of] if len(items) == limit and items else None
    return {"items": items, "next_cursor": next_cursor}


# -- humans in the loop ---------------------------------------------------------------------------------------


class ApproverAddress(Strict):
    """Where an approver is reached; ``user_id`` names the person when ``recipient_id`` is a shared channel."""

    platform: str = Field(min_length=1, max_length=32)
    recipient_id: str = Field(min_length=1, max_length=500)
    channel_id: str | None = Field(default=None, max_length=40)
    user_id: str | None = Field(default=None, min_length=1, max_length=500)

    @field_validator("platform")
    @classmethod
    def _platform(cls, value: str) -> str:
        if value not in PLATFORMS:
            raise ValueError(f"unknown platform {value!r}; one of: {', '.join(sorted(PLATFORMS))}")
        return value

    @field_validator("recipient_id")
    @classmethod
    def _recipient(cls, value: str, info: ValidationInfo) -> str:
        problem = recipient_problem(str(info.data.get("platform") or ""), value)
        if problem:
            raise ValueError(problem)
        return value


class ApproverCreate(Strict):
    name: str = Field(min_length=1, max_length=200)
    addresses: list[ApproverAddress] = Field(min_length=1, max_length=10)


class ApproverPatch(Strict):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    addresses: list[ApproverAddress] | None = Field(default=None, min_length=1, max_length=10)


class ApproverOut(BaseModel):
    id: str
    name: str
    addresses: list[dict[str, Any]]
    created_at: datetime
    updated_at: datetime


class ApprovalPolicyCreate(Strict):
    """Which held messages (by agent and priority; empty: any) go to which approvers, and the rules."""

    name: str = Field(min_length=1, max_length=200)
    position: int | None = Field(default=None, ge=0, le=10_000)
    agent_ids: list[str] = Field(default_factory=list, max_length=100)
    priorities: list[PriorityName] = Field(default_factory=list, max_length=4)
    approver_ids: list[str] = Field(min_length=1, max_length=20)
    quorum: int = Field(default=1, ge=1, le=20)
    escalate_after_seconds: int | None = Field(default=None, ge=10, le=30 * 86_400)
    escalate_to: list[str] = Field(default_factory=list, max_length=20)
    expires_after_seconds: int | None = Field(default=None, ge=60, le=30 * 86_400)


class ApprovalPolicyPatch(Strict):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    position: int | None = Field(default=None, ge=0, le=10_000)
    agent_ids: list[str] | None = Field(default=None, max_length=100)
    priorities: list[PriorityName] | None = Field(default=None, max_length=4)
    approver_ids: list[str] | None = Field(default=None, min_length=1, max_length=20)
    quorum: int | None = Field(default=None, ge=1, le=20)
    escalate_after_seconds: int | None = Field(default=None, ge=10, le=30 * 86_400)
    escalate_to: list[str] | None = Field(default=None, max_length=20)
    expires_after_seconds: int | None = Field(default=None, ge=60, le=30 * 86_400)


class ApprovalPolicyOut(BaseModel):
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
    created_at: datetime


class QuestionCreate(Strict):
    """A question from an agent to approvers (``approver_ids``) or to one address (``platform`` and
    ``recipient_id``, or ``contact_id``); ``options`` are offered as buttons."""

    agent_id: Identifier
    question: str = Field(min_length=1, max_length=10_000)
    options: list[Annotated[str, Field(min_length=1, max_length=75)]] = Field(
        default_factory=list, max_length=10
    )
    approver_ids: list[str] = Field(default_factory=list, max_length=20)
    platform: str | None = Field(default=None, min_length=1, max_length=32)
    recipient_id: str | None = Field(default=None, min_length=1, max_length=500)
    contact_id: str | None = Field(default=None, max_length=40)
    channel_id: str | None = Field(default=None, max_length=40)
    timeout_seconds: int = Field(default=3600, ge=10, le=30 * 86_400)
    escalate_to: list[str] = Field(default_factory=list, max_length=20)


class HumanDeliveryOut(BaseModel):
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


class HumanRequestOut(BaseModel):
    """An approval request (``kind`` approval, for ``message_id`` or a whole ``campaign_run_id``) or a question
    (``kind`` question)."""

    id: str
    kind: str
    status: str
    agent_id: str | None
    message_id: str | None
    campaign_run_id: str | None
    policy_id: str | None
    text: str
    options: list[str]
    answer: dict[str, Any] | None
    quorum: int
    code: str
    level: int
    expires_at: datetime | None
    decided_by: str | None
    decided_at: datetime | None
    created_at: datetime
    deliveries: list[HumanDeliveryOut]
    votes: list[dict[str, Any]]


T = TypeVar("T")


# -- answers built as plain JSON by the routes (documented with herald.web.api.contract.answers) ----------------


class Page(BaseModel, Generic[T]):
    """A page of a list: ``next_cursor`` is given back as ``cursor`` for the next page; null on the last."""

    items: list[T]
    next_cursor: str | None


class Items(BaseModel, Generic[T]):
    """A whole (short) list, unpaged."""

    items: list[T]


class HealthOut(BaseModel):
    status: str = Field(description="ok; else why not (the answer is then a 503)")
    database: str
    workers: int


class BulkError(BaseModel):
    status: int
    field: str | None
    detail: str
    errors: list[dict[str, Any]] | None = None


class BulkItemOut(BaseModel):
    """One item's outcome: ``id`` and ``status``; ``id`` and ``replayed``; or ``error``."""

    index: int
    id: str | None = None
    status: str | None = None
    replayed: bool | None = None
    error: BulkError | None = None


class BulkOut(BaseModel):
    accepted: int
    rejected: int
    replayed: int
    items: list[BulkItemOut]


class ReportChannel(BaseModel):
    platform: str
    channel_id: str | None
    provider: str | None
    recipient_id: str
    simulated: bool
    route_step: int
    fallback_used: bool


class ReportAttempt(BaseModel):
    number: int
    time: datetime
    provider: str
    channel_id: str | None
    outcome: str
    provider_message_id: str | None
    error: str | None
    retry_after: float | None
    duration_ms: float


class ReportPart(BaseModel):
    """One provider message of a message split into several."""

    route_step: int
    index: int
    provider: str
    channel_id: str | None
    provider_message_id: str | None
    attempt: int
    sent_at: datetime


class ReportTimes(BaseModel):
    """When the message changed state (null: not yet, or never)."""

    created_at: datetime
    scheduled_for: datetime | None
    approved_at: datetime | None
    rejected_at: datetime | None
    sent_at: datetime | None
    delivered_at: datetime | None
    read_at: datetime | None
    failed_at: datetime | None
    cancelled_at: datetime | None
    expired_at: datetime | None
    updated_at: datetime


class ReportContent(BaseModel):
    """How the text was composed: ``path`` null when the caller gave it as is; the model's tokens and cost (USD)."""

    path: str | None
    model: str | None
    prompt_tokens: int
    completion_tokens: int
    cost: float


class ReportOut(BaseModel):
    """Seed 003's delivery report of one message."""

    message_id: str
    status: str
    agent_id: str | None
    channel: ReportChannel
    attempt_count: int
    attempts: list[ReportAttempt]
    parts: list[ReportPart]
    timestamps: ReportTimes
    approved_by: str | None
    provider_message_id: str | None
    last_error: str | None
    cost: float
    content: ReportContent


class ChannelFigures(BaseModel):
    channel_id: str | None
    platform: str
    sent: int
    failed: int
    success_rate: float | None
    cost: float


class QueueDepth(BaseModel):
    """Messages waiting now, by status (seed 003's ``queue_size`` is ``queued`` plus ``sending``)."""

    queued: int
    sending: int
    pending_approval: int
    held: int = Field(default=0, description="waiting in a digest (herald digest rules)")


class DeliveryFiguresOut(BaseModel):
    since: datetime
    sent: int
    failed: int
    success_rate: float | None
    cost: float
    channels: list[ChannelFigures]
    queue: QueueDepth


class MailboxStateOut(BaseModel):
    """How following the mailbox goes."""

    last_poll_at: datetime | None = Field(description="when the mailbox was last checked for new mail")
    last_error: str | None = Field(
        description="the last failure (connection, login, folder), cleared by success"
    )
    last_error_at: datetime | None
    messages_today: int = Field(description="messages taken since midnight UTC")
    uidvalidity: int | None = Field(description="the folder's UIDVALIDITY; null before the first connection")
    last_uid: int = Field(description="every UID up to this one has been taken or deliberately left alone")
    mode: Literal["idle", "poll"] = Field(description="idle (IMAP IDLE, woken on new mail) or poll")
    following: bool = Field(description="a Herald process holds the mailbox's lease and follows it")


class MailboxOut(BaseModel):
    """An email interface's inbound mailbox. The password or OAuth2 token is never shown."""

    id: str
    channel_id: str
    host: str
    port: int
    security: Literal["tls", "starttls", "none"]
    username: str
    auth: Literal["password", "oauth2"] = Field(description="password (LOGIN) or oauth2 (XOAUTH2)")
    folder: str
    poll_interval_seconds: int
    idle: bool
    after_processing: Literal["flag", "move"]
    move_to: str | None
    created_at: datetime
    updated_at: datetime
    state: MailboxStateOut


class InterfaceOut(BaseModel):
    id: str
    name: str
    platform: str
    provider: str
    enabled: bool
    circuit: str
    last_error: str | None
    last_inbound_at: datetime | None
    last_outbound_at: datetime | None
    inbound_last_hour: int
    sent_last_hour: int
    webhook_path: str
    mailbox: MailboxOut | None = Field(
        default=None, description="the inbound IMAP mailbox of an email interface, when it has one"
    )


class CallbackOut(BaseModel):
    """A provider callback taken: receipts found and applied, and (for inbound traffic) messages stored."""

    received: int
    updated: int
    messages: int | None = None


class ScheduleOut(BaseModel):
    id: str
    name: str | None
    agent_id: str | None
    workspace_id: str | None
    kind: str
    schedule_type: str
    cron_expression: str | None
    natural_language_schedule: str | None
    description: str | None
    timezone: str
    platform: str | None
    recipient_id: str | None
    contact_id: str | None
    template: str | None
    template_variables: dict[str, Any] | None
    task_description: str | None
    priority: str
    misfire_policy: str
    misfire_grace_seconds: int
    status: str
    active: bool
    is_active: bool
    next_run: datetime | None
    last_run: datetime | None
    run_count: int
    next_runs: list[datetime]
    created_at: datetime
    updated_at: datetime


class ParsedSchedule(BaseModel):
    """What a natural-language schedule means: ``cron_expression`` and ``next_runs`` when it recurs, else
    ``run_at``."""

    schedule: str
    timezone: str
    description: str
    schedule_type: Literal["recurring", "one_time"]
    cron_expression: str | None = None
    next_runs: list[datetime] | None = None
    run_at: datetime | None = None


class DueRunOut(BaseModel):
    sent: int
    failed: int
    skipped: int


class MonitorOut(BaseModel):
    id: str
    name: str
    agent_id: str | None
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
    snoozed_until: datetime | None
    status: str
    is_active: bool
    state: str
    state_since: datetime
    last_value: dict[str, Any] | None
    last_error: str | None
    trigger_count: int
    last_check: datetime | None
    last_triggered: datetime | None
    next_check_at: datetime | None
    created_at: datetime


class AlertOut(BaseModel):
    id: str
    monitor_id: str
    kind: str
    condition_value: dict[str, Any] | None
    threshold_value: dict[str, Any] | None
    alert_message: str | None
    platforms_sent: list[str]
    message_ids: list[str]
    status: str
    error: str | None
    answer: str | None
    triggered_at: datetime
    sent_at: datetime | None


class MonitorTestOut(BaseModel):
    """An evaluation without side effects."""

    monitor_id: str
    monitor_name: str
    condition_type: str | None
    triggered: bool
    state: str
    current_value: Any
    threshold: Any
    error: str | None
    timestamp: datetime


class PresetOut(BaseModel):
    name: str
    condition_type: str
    threshold_config: dict[str, Any]
    check_interval_seconds: int


class PresetsOut(BaseModel):
    presets: list[PresetOut]


class MonitorFigures(BaseModel):
    total_monitors: int
    active_monitors: int
    total_alerts: int
    pending_alerts: int
    alerts_last_24h: int


class AcceptedCount(BaseModel):
    accepted: int


class TriggerOut(BaseModel):
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
    last_fired_at: datetime | None
    created_at: datetime


class WebhookOut(BaseModel):
    """``secret`` is in the answers that made it (create, regenerate) only."""

    id: str
    name: str
    workspace_id: str | None
    trigger_id: str
    url_path: str
    webhook_url: str
    created_at: datetime
    secret: str | None = None


class HookReceipt(BaseModel):
    """An incoming webhook taken: fired (``firing_id``, ``outcome``) or not (``reason``)."""

    accepted: bool
    firing_id: str | None = None
    outcome: str | None = None
    reason: str | None = None


class SubscriptionOut(BaseModel):
    """``secret`` (the signing secret) is in the creating answer only."""

    id: str
    url: str
    event_types: list[str]
    status: str
    created_at: datetime
    secret: str | None = None


class EventDeliveryOut(BaseModel):
    id: str
    event_id: str
    event_type: str
    status: str
    attempts: int
    last_status_code: int | None
    last_error: str | None
    next_attempt_at: datetime | None
    delivered_at: datetime | None


class EventOut(BaseModel):
    """An event as subscribers' webhooks receive it, with its id (the cursor of the list)."""

    id: str
    type: str
    timestamp: datetime
    data: dict[str, Any]


class RuleOut(BaseModel):
    id: str
    agent_id: str
    channel_id: str | None
    pattern: str | None
    contact_id: str | None
    priority: int
    created_at: datetime


class ConversationOut(BaseModel):
    id: str
    channel_id: str
    platform: str
    external_id: str
    contact_id: str | None
    sender_name: str | None
    agent_id: str | None
    session_started_at: datetime
    last_activity_at: datetime
    created_at: datetime


class ConversationDetail(ConversationOut):
    session: dict[str, Any] = Field(description="the current session: its id, start, contact and history")


class ReplyOut(BaseModel):
    message_id: str
    status: str
    conversation_id: str
    agent_id: str
    platform: str
    recipient_id: str


class ConversationEntry(BaseModel):
    """One message of a conversation: ``inbound`` (what a person sent) or ``outbound`` (what an agent answered)."""

    direction: Literal["inbound", "outbound"]
    id: str
    text: str | None
    at: datetime
    conversation_id: str | None
    status: str
    agent_id: str | None
    sender_id: str | None = None
    sender_name: str | None = None
    attachments: list[Any] | None = None
    error: str | None = None
    reply_message_id: str | None = None
    platform: str | None = None
