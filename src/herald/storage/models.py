"""Herald's tables. One schema for SQLite and PostgreSQL; every tenant-owned row carries ``tenant_id``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, Integer, LargeBinary, String, Text, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from herald.storage.fingerprint import fingerprint_default
from herald.storage.types import UTCDateTime, utcnow


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON}


def _present(column: str) -> dict[str, Any]:
    """A partial index's options leaving out the rows where ``column`` is NULL (queries compare it with a value)."""
    where = text(f"{column} IS NOT NULL")
    return {"postgresql_where": where, "sqlite_where": where}


class Tenant(Base):
    __tablename__ = "tenants"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    # Priority routing, fallback chains and default quiet hours (see herald.pipeline.routing.policy).
    delivery_policy: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # OTP limits overriding the Twilio Verify defaults (see herald.producers.otp.policy).
    otp_policy: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Days to keep finished messages; None keeps them (see herald.admin.retention).
    message_retention_days: Mapped[int | None] = mapped_column(Integer, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiKey(Base):
    """A tenant's API key; only its SHA-256 is kept (keys are 256-bit random, so a fast hash is enough)."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200), default="")
    is_admin: Mapped[bool] = mapped_column(Boolean, default=True)
    # A key bound to one agent acts as that agent (MCP clients, an agent's own server); None acts for the tenant.
    agent_id: Mapped[str | None] = mapped_column(String(200), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)


class Agent(Base):
    __tablename__ = "agents"

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    maturity_level: Mapped[str] = mapped_column(String(16))
    callback_url: Mapped[str | None] = mapped_column(Text, default=None)
    # Standard Webhooks signing secret for callbacks, sealed like channel credentials; shown once.
    callback_secret: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    # "external" (Herald calls callback_url) or "llm" (Herald runs the agent's tool loop itself).
    kind: Mapped[str] = mapped_column(String(16), default="external", server_default="external")
    # An LLM agent's settings (base_url, model, persona, tools, limits); see herald.agents.settings.
    llm: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    # The LLM endpoint's key, sealed like channel credentials and never shown again.
    llm_api_key: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    # Where an answer that names no recipient goes: {"contact_id": ...} or {"platform": ..., "recipient_id": ...}.
    default_recipient: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Channel(Base):
    """A configured provider connection. ``credentials`` are Fernet-encrypted and never leave the server."""

    __tablename__ = "channels"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    platform: Mapped[str] = mapped_column(String(32))
    provider: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(200))
    credentials: Mapped[bytes] = mapped_column(LargeBinary)
    base_url: Mapped[str | None] = mapped_column(Text, default=None)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    cost_per_message: Mapped[float] = mapped_column(default=0.0)
    # Overrides of the provider's published limits (messages per second); None keeps the provider default.
    rate_per_second: Mapped[float | None] = mapped_column(default=None)
    recipient_rate_per_second: Mapped[float | None] = mapped_column(default=None)
    # A disabled interface sends nothing and answers its webhook with 503 so providers retry later.
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ChannelHealth(Base):
    """The circuit breaker of one channel, shared by every worker."""

    __tablename__ = "channel_health"

    channel_id: Mapped[str] = mapped_column(ForeignKey("channels.id", ondelete="CASCADE"), primary_key=True)
    state: Mapped[str] = mapped_column(String(16), default="closed")
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    opened_at: Mapped[datetime | None] = mapped_column(default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The half-open circuit's one probe: the worker that claimed it, and until when the claim holds (a worker that
    # dies mid-probe frees it then). Cleared when the probe's outcome is recorded.
    probe_owner: Mapped[str | None] = mapped_column(String(200), default=None)
    probe_until: Mapped[datetime | None] = mapped_column(default=None)


class RateBucket(Base):
    """A token bucket (per channel, or per channel and recipient), shared by every worker on the database."""

    __tablename__ = "rate_buckets"

    key: Mapped[str] = mapped_column(String(600), primary_key=True)
    tokens: Mapped[float]
    updated_at: Mapped[datetime]


class Contact(Base):
    """A person: addresses per platform, time zone, quiet hours, opt-outs, own fallback order."""

    __tablename__ = "contacts"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    addresses: Mapped[dict[str, Any]] = mapped_column(default=dict)
    timezone: Mapped[str | None] = mapped_column(String(64), default=None)
    quiet_hours: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    opt_outs: Mapped[list[str]] = mapped_column(JSON, default=list)
    channel_order: Mapped[list[str] | None] = mapped_column(JSON, default=None)
    # The default escalation rule of messages to this contact: {"after_minutes", "unless"} (pipeline.escalation).
    escalation: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Message(Base):
    """One outbound message to one recipient: the outbox row the workers claim."""

    __tablename__ = "messages"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    agent_id: Mapped[str | None] = mapped_column(String(200), default=None)
    agent_maturity_level: Mapped[str | None] = mapped_column(String(16), default=None)
    platform: Mapped[str] = mapped_column(String(32))
    recipient_id: Mapped[str] = mapped_column(String(500))
    channel_id: Mapped[str | None] = mapped_column(String(40), default=None)
    simulated: Mapped[bool] = mapped_column(Boolean, default=False)
    contact_id: Mapped[str | None] = mapped_column(String(40), default=None)
    # A reply in a conversation: where it belongs and how to thread it ({"thread_id", "reply_to", ...}).
    conversation_id: Mapped[str | None] = mapped_column(String(40), default=None)
    reply_context: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    # What must not be stored readable, encrypted for the worker and dropped once the message is finished:
    # {"content": the real text of a redacted message (OTP codes; ``content`` then holds the redacted text),
    #  "attachments": [{"filename", "content_type", "content" (base64)}]}.
    sealed_content: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    # What answers show of the attachments (their content is sealed above): [{"filename", "content_type", "size"}].
    attachments: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, default=None)
    # The fallback chain: [{"platform", "recipient_id", "channel_id", "simulated"}, ...]; route_step is current.
    route_plan: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    route_step: Mapped[int] = mapped_column(Integer, default=0)
    # Why route_plan is in its order when the tenant's channel choice is measured (herald.pipeline.routing.measured):
    # {"mode": "measured", "order", "prior", "scores", "explored", "window_hours"}; null for the fixed table.
    route_reason: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    cost: Mapped[float] = mapped_column(default=0.0)
    subject: Mapped[str | None] = mapped_column(Text, default=None)
    content: Mapped[str] = mapped_column(Text)
    # The content modulo digits as one number (herald.storage.fingerprint), written with the row: repeated sends
    # are grouped on it rather than on the text stripped at every detection.
    content_fingerprint: Mapped[int | None] = mapped_column(BigInteger, default=fingerprint_default)
    status: Mapped[str] = mapped_column(String(20))
    priority: Mapped[int] = mapped_column(Integer, default=5)
    run_at: Mapped[datetime]
    scheduled_for: Mapped[datetime | None] = mapped_column(default=None)
    expires_at: Mapped[datetime | None] = mapped_column(default=None)
    lease_owner: Mapped[str | None] = mapped_column(String(80), default=None)
    lease_expires_at: Mapped[datetime | None] = mapped_column(default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    provider_message_id: Mapped[str | None] = mapped_column(String(500), default=None)
    governance_metadata: Mapped[dict[str, Any]] = mapped_column(default=dict)
    approved_by: Mapped[str | None] = mapped_column(String(200), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(default=None)
    # Buttons shown with the message (an approval request's Approve/Reject): [{"value", "label", "style"}].
    actions: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, default=None)
    # How the text was composed (herald.pipeline.content): template, ai_enhanced, ai_written or fallback; null
    # when the caller gave the text as is. The model's tokens and their cost (USD) are kept beside the delivery
    # cost, also for a fallback (the tokens were spent).
    content_path: Mapped[str | None] = mapped_column(String(16), default=None)
    ai_model: Mapped[str | None] = mapped_column(String(200), default=None)
    ai_prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    ai_completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    ai_cost: Mapped[float] = mapped_column(default=0.0)
    # The digest this message waits in (status held) or was sent in (digested), and the digest message itself
    # once it is written (herald.pipeline.digests).
    digest_id: Mapped[str | None] = mapped_column(String(40), default=None)
    digest_message_id: Mapped[str | None] = mapped_column(String(40), default=None)
    # Receipt-driven escalation (herald.pipeline.escalation): the rule {"after_minutes", "unless", "source"} and,
    # once decided, "waits_for" and "note"; the state (waiting, escalated, answered, ended, skipped); the
    # deadline (a lower bound until the message is sent); and the link both ways. escalated_from_id is unique:
    # the database itself refuses a second escalation of one message.
    escalation: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    escalation_state: Mapped[str | None] = mapped_column(String(16), default=None)
    escalate_at: Mapped[datetime | None] = mapped_column(default=None)
    escalated_to_id: Mapped[str | None] = mapped_column(String(40), default=None)
    escalated_from_id: Mapped[str | None] = mapped_column(String(40), default=None)
    # First delivery receipt, and first read receipt or reply (herald.storage.responses): best-hour patterns.
    delivered_at: Mapped[datetime | None] = mapped_column(default=None)
    responded_at: Mapped[datetime | None] = mapped_column(default=None)

    __table_args__ = (
        # The claim scans due queued rows in priority order; a partial index keeps it small on both backends.
        Index(
            "ix_messages_claim",
            "priority",
            "run_at",
            postgresql_where=text("status = 'queued'"),
            sqlite_where=text("status = 'queued'"),
        ),
        Index(
            "ix_messages_leased",
            "lease_expires_at",
            postgresql_where=text("status = 'sending'"),
            sqlite_where=text("status = 'sending'"),
        ),
        Index(
            "ix_messages_approval_expiry",
            "expires_at",
            postgresql_where=text("status = 'pending_approval'"),
            sqlite_where=text("status = 'pending_approval'"),
        ),
        Index("ix_messages_tenant_status", "tenant_id", "status", "id"),
        Index("ix_messages_tenant_agent", "tenant_id", "agent_id", "id"),
        # These four leave out rows without the value (migration 0030): fewer index entries per write.
        Index("ix_messages_receipt", "channel_id", "provider_message_id", **_present("provider_message_id")),
        Index("ix_messages_conversation", "conversation_id", "id", **_present("conversation_id")),
        # A flush reads its batch's held messages; only messages that were ever held are indexed.
        Index(
            "ix_messages_digest",
            "digest_id",
            postgresql_where=text("digest_id IS NOT NULL"),
            sqlite_where=text("digest_id IS NOT NULL"),
        ),
        Index(
            "ix_messages_escalation_due",
            "escalate_at",
            postgresql_where=text("escalation_state = 'waiting'"),
            sqlite_where=text("escalation_state = 'waiting'"),
        ),
        Index(
            "ux_messages_escalated_from", "escalated_from_id", unique=True, **_present("escalated_from_id")
        ),
        # A reply marks the sends it answers (herald.storage.responses.mark_replies).
        Index("ix_messages_recipient_sent", "channel_id", "recipient_id", "sent_at", **_present("sent_at")),
    )


class Attempt(Base):
    """One try of one message on one channel."""

    __tablename__ = "attempts"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(40))
    message_id: Mapped[str] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), index=True)
    channel_id: Mapped[str | None] = mapped_column(String(40), default=None)
    provider: Mapped[str] = mapped_column(String(32))
    number: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime]
    duration_ms: Mapped[float]
    outcome: Mapped[str] = mapped_column(String(16))
    provider_message_id: Mapped[str | None] = mapped_column(String(500), default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    retry_after: Mapped[float | None] = mapped_column(default=None)

    # Measured routing reads a tenant's recent attempts per channel (herald.pipeline.routing.measured).
    __table_args__ = (Index("ix_attempts_tenant_started", "tenant_id", "started_at"),)


class MessagePart(Base):
    """One delivered part of a message split into several provider messages, per route step.

    Written in the transaction that settles the attempt, so a retry after a later part failed starts at the first
    part not recorded here (see :mod:`herald.pipeline.parts`). Unsplit messages have no rows.
    """

    __tablename__ = "message_parts"

    message_id: Mapped[str] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True)
    route_step: Mapped[int] = mapped_column(Integer, primary_key=True)
    part_index: Mapped[int] = mapped_column(Integer, primary_key=True)  # 0-based, in sending order
    tenant_id: Mapped[str] = mapped_column(String(40))
    channel_id: Mapped[str | None] = mapped_column(String(40), default=None)
    provider: Mapped[str] = mapped_column(String(32))
    provider_message_id: Mapped[str] = mapped_column(String(500))
    attempt: Mapped[int] = mapped_column(Integer)  # the attempt number that delivered it
    sent_at: Mapped[datetime]


class Approval(Base):
    """A human decision on a message held for review."""

    __tablename__ = "approvals"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(40))
    message_id: Mapped[str] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), index=True)
    decision: Mapped[str] = mapped_column(String(16))
    approver: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuditEntry(Base):
    """Append-only: who did what to which object, when. ``needs_review`` flags SUPERVISED sends."""

    __tablename__ = "audit_entries"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(40))
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str] = mapped_column(String(32))
    object_id: Mapped[str] = mapped_column(String(200))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    needs_review: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_audit_tenant_id", "tenant_id", "id"),)


class Event(Base):
    """A fact for subscribers and the dashboard (message.sent, approval.requested, ...)."""

    __tablename__ = "events"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(40))
    type: Mapped[str] = mapped_column(String(64))
    subject_id: Mapped[str] = mapped_column(String(200))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_events_tenant_id", "tenant_id", "id"),)


class DevInboxMessage(Base):
    """What the built-in dev inbox channel received: what a real provider would have been sent."""

    __tablename__ = "devinbox_messages"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(40))
    message_id: Mapped[str] = mapped_column(String(40))
    platform: Mapped[str] = mapped_column(String(32))
    recipient_id: Mapped[str] = mapped_column(String(500))
    subject: Mapped[str | None] = mapped_column(Text, default=None)
    content: Mapped[str] = mapped_column(Text)
    # The attachments as sent: [{"filename", "content_type", "size", "content" (base64)}].
    attachments: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, default=None)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_devinbox_tenant_platform", "tenant_id", "platform", "id"),)


class IdempotencyRecord(Base):
    """The first response to a create request sent with an ``Idempotency-Key``."""

    __tablename__ = "idempotency_keys"

    tenant_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    response: Mapped[dict[str, Any]] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WorkerHeartbeat(Base):
    """Each worker process says it is alive; ``/health`` reads these."""

    __tablename__ = "worker_heartbeats"

    id: Mapped[str] = mapped_column(String(80), primary_key=True)
    hostname: Mapped[str] = mapped_column(String(200))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime]
    last_seen: Mapped[datetime]


class Schedule(Base):
    """A one-time or recurring rule (cron in an IANA zone) that produces messages or agent tasks."""

    __tablename__ = "schedules"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    agent_id: Mapped[str] = mapped_column(String(200))
    name: Mapped[str | None] = mapped_column(String(200), default=None)
    workspace_id: Mapped[str | None] = mapped_column(String(200), default=None)
    # "message": render template and send it; "task": call the agent's callback with task_description.
    kind: Mapped[str] = mapped_column(String(16))
    schedule_type: Mapped[str] = mapped_column(String(16))  # one_time, recurring
    cron_expression: Mapped[str | None] = mapped_column(String(200), default=None)
    natural_language: Mapped[str | None] = mapped_column(Text, default=None)
    timezone: Mapped[str] = mapped_column(String(64))
    platform: Mapped[str | None] = mapped_column(String(32), default=None)
    recipient_id: Mapped[str | None] = mapped_column(String(500), default=None)
    contact_id: Mapped[str | None] = mapped_column(String(40), default=None)
    subject: Mapped[str | None] = mapped_column(Text, default=None)
    template: Mapped[str | None] = mapped_column(Text, default=None)
    template_variables: Mapped[dict[str, Any]] = mapped_column(default=dict)
    task_description: Mapped[str | None] = mapped_column(Text, default=None)
    priority: Mapped[int] = mapped_column(Integer, default=2)
    misfire_policy: Mapped[str] = mapped_column(String(16), default="skip")
    misfire_grace_seconds: Mapped[int] = mapped_column(Integer, default=300)
    status: Mapped[str] = mapped_column(String(16))  # active, paused, completed, cancelled
    next_run: Mapped[datetime | None] = mapped_column(default=None)
    last_run: Mapped[datetime | None] = mapped_column(default=None)
    run_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        # The due check: active schedules by next run; partial so paused and finished ones cost nothing.
        Index(
            "ix_schedules_due",
            "next_run",
            postgresql_where=text("status = 'active'"),
            sqlite_where=text("status = 'active'"),
        ),
        Index("ix_schedules_tenant", "tenant_id", "id"),
    )


class ScheduleExecution(Base):
    """One run of a schedule: when it was due, what happened, which message it produced."""

    __tablename__ = "schedule_executions"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(40))
    schedule_id: Mapped[str] = mapped_column(ForeignKey("schedules.id", ondelete="CASCADE"))
    due_at: Mapped[datetime]
    executed_at: Mapped[datetime]
    outcome: Mapped[str] = mapped_column(String(24))
    message_id: Mapped[str | None] = mapped_column(String(40), default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # The agent's answer, kept whether or not it became a message (an answer is never silently dropped).
    answer: Mapped[str | None] = mapped_column(Text, default=None)

    __table_args__ = (
        Index("ix_executions_tenant", "tenant_id", "id"),
        Index("ix_executions_schedule", "schedule_id", "id"),
        Index("ix_executions_due", "schedule_id", "due_at", unique=True),
    )


class MetricValue(Base):
    """A value pushed by an agent or another system: a short time series per tenant and metric name."""

    __tablename__ = "metric_values"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(200))
    value: Mapped[float]
    labels: Mapped[dict[str, Any]] = mapped_column(default=dict)
    observed_at: Mapped[datetime]

    __table_args__ = (Index("ix_metric_values_lookup", "tenant_id", "name", "observed_at"),)


class Monitor(Base):
    """A condition checked every interval, with an alert lifecycle (ok, pending, firing, resolved)."""

    __tablename__ = "monitors"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    agent_id: Mapped[str | None] = mapped_column(String(200), default=None)  # None: the tenant's own monitor
    name: Mapped[str] = mapped_column(String(200))
    workspace_id: Mapped[str | None] = mapped_column(String(200), default=None)
    condition: Mapped[dict[str, Any]] = mapped_column()
    condition_text: Mapped[str | None] = mapped_column(Text, default=None)
    action: Mapped[str | None] = mapped_column(Text, default=None)
    platforms: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    alert_template: Mapped[str | None] = mapped_column(Text, default=None)
    check_interval_seconds: Mapped[int] = mapped_column(Integer, default=300)
    for_seconds: Mapped[int] = mapped_column(Integer, default=0)
    throttle_seconds: Mapped[int] = mapped_column(Integer, default=900)
    priority: Mapped[int] = mapped_column(Integer, default=2)
    no_data_policy: Mapped[str] = mapped_column(String(16), default="keep")
    error_policy: Mapped[str] = mapped_column(String(16), default="keep")
    mute_windows: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    snoozed_until: Mapped[datetime | None] = mapped_column(default=None)
    status: Mapped[str] = mapped_column(String(16))  # active, paused, deleted
    state: Mapped[str] = mapped_column(String(16))  # ok, pending, firing, resolved, no_data, error
    state_since: Mapped[datetime]
    pending_since: Mapped[datetime | None] = mapped_column(default=None)
    last_value: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    last_check_at: Mapped[datetime | None] = mapped_column(default=None)
    next_check_at: Mapped[datetime | None] = mapped_column(default=None)
    last_notified_at: Mapped[datetime | None] = mapped_column(default=None)
    firing_notified: Mapped[bool] = mapped_column(Boolean, default=False)
    trigger_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        Index(
            "ix_monitors_due",
            "next_check_at",
            postgresql_where=text("status = 'active'"),
            sqlite_where=text("status = 'active'"),
        ),
        Index("ix_monitors_tenant", "tenant_id", "id"),
    )


class MonitorAlert(Base):
    """One alert notice of a monitor (firing, repeat or resolved) and what became of it."""

    __tablename__ = "monitor_alerts"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(40))
    monitor_id: Mapped[str] = mapped_column(ForeignKey("monitors.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))  # firing, repeat, resolved
    condition_value: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    threshold_value: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    alert_message: Mapped[str | None] = mapped_column(Text, default=None)
    platforms_sent: Mapped[list[str]] = mapped_column(JSON, default=list)
    message_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(24))  # sent, queued, pending_approval, muted, failed
    error: Mapped[str | None] = mapped_column(Text, default=None)
    # The monitor's agent's answer to the alert (monitors with an ``action``), kept whether or not it was sent.
    answer: Mapped[str | None] = mapped_column(Text, default=None)
    # Waking the agent with the alert: pending (owed, due at analysis_due_at), done, failed; None: no action.
    analysis_status: Mapped[str | None] = mapped_column(String(16), default=None)
    analysis_due_at: Mapped[datetime | None] = mapped_column(default=None)
    triggered_at: Mapped[datetime]
    sent_at: Mapped[datetime | None] = mapped_column(default=None)

    __table_args__ = (
        Index("ix_monitor_alerts_tenant", "tenant_id", "id"),
        Index("ix_monitor_alerts_monitor", "monitor_id", "id"),
    )


class Trigger(Base):
    """An event source's rule: when fired (manually, by a signed webhook, GitHub, a schedule or a monitor),
    render ``task_template`` with the payload and act (call the agent, or send a message)."""

    __tablename__ = "triggers"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    workspace_id: Mapped[str | None] = mapped_column(String(200), default=None)
    trigger_type: Mapped[str] = mapped_column(String(16))
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    agent_id: Mapped[str] = mapped_column(String(200))
    task_template: Mapped[str] = mapped_column(Text)
    action: Mapped[dict[str, Any]] = mapped_column(default=dict)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    fire_count: Mapped[int] = mapped_column(Integer, default=0)
    last_fired_at: Mapped[datetime | None] = mapped_column(default=None)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_triggers_tenant", "tenant_id", "id"),)


class WebhookEndpoint(Base):
    """An incoming webhook URL (``/api/hooks/{url_path}``) bound to a trigger, with its signing secret."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    workspace_id: Mapped[str | None] = mapped_column(String(200), default=None)
    trigger_id: Mapped[str] = mapped_column(String(40))
    url_path: Mapped[str] = mapped_column(String(64), unique=True)
    secret: Mapped[bytes] = mapped_column(LargeBinary)
    rate_per_minute: Mapped[int] = mapped_column(Integer, default=120)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WebhookDelivery(Base):
    """A ``webhook-id`` already accepted on an endpoint: a repeat is a replay and is refused."""

    __tablename__ = "webhook_deliveries"

    endpoint_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    delivery_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    received_at: Mapped[datetime]


class TriggerFiring(Base):
    """One firing of a trigger: when, from where, a digest of the payload, and what came of it."""

    __tablename__ = "trigger_firings"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(40))
    trigger_id: Mapped[str] = mapped_column(ForeignKey("triggers.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(16))
    payload_digest: Mapped[str] = mapped_column(String(64))
    task: Mapped[str | None] = mapped_column(Text, default=None)
    outcome: Mapped[str] = mapped_column(String(24))
    message_id: Mapped[str | None] = mapped_column(String(40), default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    answer: Mapped[str | None] = mapped_column(Text, default=None)
    fired_at: Mapped[datetime]
    # While the agent call is owed: the payload (sealed) and when a process may take the call over (a lease;
    # a process that died mid-call leaves it to expire). Both are cleared once the call is settled.
    payload: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    next_attempt_at: Mapped[datetime | None] = mapped_column(default=None)

    __table_args__ = (
        Index("ix_trigger_firings_trigger", "trigger_id", "id"),
        Index(
            "ix_trigger_firings_owed",
            "next_attempt_at",
            postgresql_where=text("outcome = 'dispatching'"),
            sqlite_where=text("outcome = 'dispatching'"),
        ),
    )


class EventSubscription(Base):
    """A URL that receives a tenant's events, signed in the Standard Webhooks format."""

    __tablename__ = "event_subscriptions"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(Text)
    event_types: Mapped[list[str]] = mapped_column(JSON, default=list)  # empty: every type
    secret: Mapped[bytes] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(String(16), default="active")  # active, disabled, deleted
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_event_subscriptions_tenant", "tenant_id", "id"),)


class EventDelivery(Base):
    """One event for one subscription: attempts, next try, outcome (the subscription's delivery log)."""

    __tablename__ = "event_deliveries"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(40))
    subscription_id: Mapped[str] = mapped_column(ForeignKey("event_subscriptions.id", ondelete="CASCADE"))
    event_id: Mapped[str] = mapped_column(String(40))
    event_type: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))  # pending, delivered, failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(default=None)
    last_status_code: Mapped[int | None] = mapped_column(Integer, default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(default=None)

    __table_args__ = (
        Index(
            "ix_event_deliveries_due",
            "next_attempt_at",
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
        Index("ix_event_deliveries_subscription", "subscription_id", "id"),
        Index("ix_event_deliveries_once", "subscription_id", "event_id", unique=True),
    )


class EventCursor(Base):
    """How far the event fan-out has read the events table."""

    __tablename__ = "event_cursors"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    last_event_id: Mapped[str] = mapped_column(String(40))


class Conversation(Base):
    """One chat on one interface (a channel and the external user or chat id replies go to)."""

    __tablename__ = "conversations"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    channel_id: Mapped[str] = mapped_column(ForeignKey("channels.id", ondelete="CASCADE"))
    platform: Mapped[str] = mapped_column(String(32))
    external_id: Mapped[str] = mapped_column(String(500))
    # The contact this chat belongs to, when known: its conversations on every platform share one session.
    contact_id: Mapped[str | None] = mapped_column(String(40), default=None)
    sender_name: Mapped[str | None] = mapped_column(String(200), default=None)
    agent_id: Mapped[str | None] = mapped_column(String(200), default=None)
    # The session starts again after an idle time; context is what happened since.
    session_started_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_activity_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        Index("ix_conversations_external", "channel_id", "external_id", unique=True),
        Index("ix_conversations_tenant", "tenant_id", "last_activity_at"),
        Index("ix_conversations_contact", "tenant_id", "contact_id"),
    )


class InboundMessage(Base):
    """A message a person sent on an interface: stored on arrival, then routed to an agent in order."""

    __tablename__ = "inbound_messages"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    channel_id: Mapped[str] = mapped_column(String(40))
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    provider_message_id: Mapped[str] = mapped_column(String(500))
    sender_id: Mapped[str] = mapped_column(String(500))
    sender_name: Mapped[str | None] = mapped_column(String(200), default=None)
    body: Mapped[str] = mapped_column(Text, default="")
    attachments: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    reply_context: Mapped[dict[str, Any]] = mapped_column(default=dict)
    sent_at: Mapped[datetime]
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    # pending -> processing -> routed | replied | unrouted | failed
    status: Mapped[str] = mapped_column(String(16), default="pending")
    agent_id: Mapped[str | None] = mapped_column(String(200), default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    lease_owner: Mapped[str | None] = mapped_column(String(80), default=None)
    lease_expires_at: Mapped[datetime | None] = mapped_column(default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    reply_message_id: Mapped[str | None] = mapped_column(String(40), default=None)
    processed_at: Mapped[datetime | None] = mapped_column(default=None)
    # What an interface read besides the text, for the agent: an email's subject, its attachments' list, a
    # contact form's fields and the intent found in it ({"subject", "form", "intent", ...}); null for chats.
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)

    __table_args__ = (
        # A provider's retried delivery of the same message is stored once.
        Index("ix_inbound_once", "channel_id", "provider_message_id", unique=True),
        Index("ix_inbound_conversation", "conversation_id", "id"),
        # The processor claims a message only when no earlier one of its conversation is open: that check reads
        # this index, whose size is what is open, not every message the conversation ever had.
        Index(
            "ix_inbound_conversation_open",
            "conversation_id",
            "id",
            postgresql_where=text("status IN ('pending', 'processing')"),
            sqlite_where=text("status IN ('pending', 'processing')"),
        ),
        Index(
            "ix_inbound_open",
            "next_attempt_at",
            postgresql_where=text("status IN ('pending', 'processing')"),
            sqlite_where=text("status IN ('pending', 'processing')"),
        ),
        Index("ix_inbound_channel_time", "channel_id", "received_at"),
    )


class RoutingRule(Base):
    """Which agent answers an inbound message; the lowest ``priority`` whose conditions all match wins."""

    __tablename__ = "routing_rules"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    agent_id: Mapped[str] = mapped_column(String(200))
    channel_id: Mapped[str | None] = mapped_column(String(40), default=None)
    pattern: Mapped[str | None] = mapped_column(Text, default=None)
    contact_id: Mapped[str | None] = mapped_column(String(40), default=None)
    priority: Mapped[int] = mapped_column(Integer, default=100)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_routing_rules_tenant", "tenant_id", "priority"),)


class OtpVerification(Base):
    """One verification (Twilio Verify's sense): the code is kept only as an HMAC under a server-side key."""

    __tablename__ = "otp_verifications"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    # HMAC of the normalised recipient: lookups without keeping phone numbers and addresses in this table.
    recipient_key: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str | None] = mapped_column(String(32), default=None)
    code_hash: Mapped[str] = mapped_column(String(64))
    code_length: Mapped[int] = mapped_column(Integer, default=6)
    # pending, approved, canceled, expired, max_attempts_reached
    status: Mapped[str] = mapped_column(String(24), default="pending")
    checks: Mapped[int] = mapped_column(Integer, default=0)
    sends: Mapped[int] = mapped_column(Integer, default=1)
    message_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    locale: Mapped[str | None] = mapped_column(String(16), default=None)
    expires_at: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        Index("ix_otp_recipient", "tenant_id", "recipient_key", "status"),
        Index("ix_otp_expiry", "expires_at"),
    )


class OtpSend(Base):
    """One code sent to a recipient: the send limit counts these in a sliding window."""

    __tablename__ = "otp_sends"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    recipient_key: Mapped[str] = mapped_column(String(64))
    verification_id: Mapped[str] = mapped_column(String(40))
    sent_at: Mapped[datetime]

    __table_args__ = (Index("ix_otp_sends_window", "tenant_id", "recipient_key", "sent_at"),)


class AgentRun(Base):
    """One run of an agent: woken by a producer or the API, its steps committed as they happen.

    ``origin`` names what woke it (``schedule_execution:<id>``, ``trigger_firing:<id>``, ``inbound:<id>``,
    ``monitor_alert:<id>``, ``api:<id>``), unique per tenant, so a producer that retries after a crash finds the
    run it started instead of starting another. A run being worked holds a lease; an expired lease is resumed by
    any process from the last committed step.
    """

    __tablename__ = "agent_runs"
    __table_args__ = (
        Index("ux_agent_runs_origin", "tenant_id", "origin", unique=True),
        Index("ix_agent_runs_agent", "tenant_id", "agent_id", "created_at"),
        Index("ix_agent_runs_due", "status", "lease_until"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    agent_id: Mapped[str] = mapped_column(String(200))
    origin: Mapped[str] = mapped_column(String(120))
    woken_by: Mapped[str] = mapped_column(String(24))  # api, schedule, trigger, monitor, inbound
    task: Mapped[str] = mapped_column(Text)
    context: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # queued, running, completed, failed, step_limit, token_limit, timed_out
    status: Mapped[str] = mapped_column(String(16))
    steps: Mapped[int] = mapped_column(Integer, default=0)
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    answer: Mapped[str | None] = mapped_column(Text, default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    # Whether the run sent a message itself (then its final text is kept, not sent again by the producer).
    sent_messages: Mapped[list[str]] = mapped_column(JSON, default=list)
    simulated: Mapped[bool] = mapped_column(Boolean, default=False)
    lease_owner: Mapped[str | None] = mapped_column(String(80), default=None)
    lease_until: Mapped[datetime | None] = mapped_column(default=None)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class AgentRunStep(Base):
    """One committed step of a run: the model's answer, or one tool call with its result.

    A tool's effects and its step are written in one transaction, so a step on record is a tool call that
    happened, and a resumed run never repeats it.
    """

    __tablename__ = "agent_run_steps"

    run_id: Mapped[str] = mapped_column(ForeignKey("agent_runs.id", ondelete="CASCADE"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(16))  # model, tool
    # model: {"content", "tool_calls": [{"id", "name", "arguments"}]}; tool: {"call_id", "name", "arguments",
    # "result" | "error"}
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    duration_ms: Mapped[float] = mapped_column(default=0.0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Approver(Base):
    """A person who decides on held messages and answers agents' questions, and where to reach them.

    ``addresses`` are tried in order as a request escalates: ``[{"platform", "recipient_id", "channel_id"?,
    "user_id"?}]``. A decision sent from an address counts only if its sender is ``user_id`` (a person in a
    shared Slack channel) or, without one, the address itself (a DM, a phone number).
    """

    __tablename__ = "approvers"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    addresses: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApprovalPolicy(Base):
    """Which held messages go to which approvers, how many must approve, when to escalate and to expire.

    The first policy (by ``position``) matching the message's agent and priority applies; empty ``agent_ids``
    or ``priorities`` match any. A message no policy matches waits on the dashboard and the API, as before.
    """

    __tablename__ = "approval_policies"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    position: Mapped[int] = mapped_column(Integer, default=0)
    agent_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    priorities: Mapped[list[str]] = mapped_column(JSON, default=list)
    approver_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    quorum: Mapped[int] = mapped_column(Integer, default=1)
    escalate_after_seconds: Mapped[int | None] = mapped_column(Integer, default=None)
    escalate_to: Mapped[list[str]] = mapped_column(JSON, default=list)
    expires_after_seconds: Mapped[int | None] = mapped_column(Integer, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class HumanRequest(Base):
    """An approval request for a held message or a held campaign run (one of ``message_id`` and
    ``campaign_run_id``), or an agent's question to a person.

    ``code`` is the short number a text reply names (``YES 4821``); it is unique among the tenant's open
    requests. ``notify_status`` tracks telling the agent the outcome (its signed callback, or its waiting run).
    """

    __tablename__ = "human_requests"
    __table_args__ = (
        Index("ix_human_requests_open", "status", "next_check_at"),
        Index("ix_human_requests_code", "tenant_id", "code", "status"),
        Index("ux_human_requests_message", "message_id", unique=True),
        Index("ux_human_requests_campaign_run", "campaign_run_id", unique=True),
        Index("ix_human_requests_notify", "notify_status", "notify_due_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))  # approval, question
    # approval: pending -> approved | rejected | expired | cancelled; question: pending -> answered | expired
    status: Mapped[str] = mapped_column(String(16))
    agent_id: Mapped[str | None] = mapped_column(String(200), default=None)
    message_id: Mapped[str | None] = mapped_column(String(40), default=None)
    # A campaign run held as a whole (no foreign key, like message_id: a deleted campaign leaves the request,
    # which then settles as cancelled).
    campaign_run_id: Mapped[str | None] = mapped_column(String(40), default=None)
    policy_id: Mapped[str | None] = mapped_column(String(40), default=None)
    text: Mapped[str] = mapped_column(Text, default="")
    options: Mapped[list[str]] = mapped_column(JSON, default=list)
    answer: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    quorum: Mapped[int] = mapped_column(Integer, default=1)
    code: Mapped[str] = mapped_column(String(8))
    approver_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    direct: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)  # a question to one address
    escalate_after_seconds: Mapped[int | None] = mapped_column(Integer, default=None)
    escalate_to: Mapped[list[str]] = mapped_column(JSON, default=list)
    level: Mapped[int] = mapped_column(Integer, default=0)
    next_check_at: Mapped[datetime | None] = mapped_column(default=None)
    expires_at: Mapped[datetime | None] = mapped_column(default=None)
    run_id: Mapped[str | None] = mapped_column(String(40), default=None)  # an LLM run waiting for the answer
    call_id: Mapped[str | None] = mapped_column(String(120), default=None)
    notify_status: Mapped[str] = mapped_column(String(16), default="none")  # none, pending, done, failed
    notify_due_at: Mapped[datetime | None] = mapped_column(default=None)
    notify_attempts: Mapped[int] = mapped_column(Integer, default=0)
    decided_by: Mapped[str | None] = mapped_column(String(200), default=None)
    decided_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class HumanDelivery(Base):
    """One copy of a request sent to one approver on one address: the Herald message that carries it, and
    whether the person has seen or answered it."""

    __tablename__ = "human_deliveries"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(40))
    request_id: Mapped[str] = mapped_column(ForeignKey("human_requests.id", ondelete="CASCADE"), index=True)
    approver_id: Mapped[str | None] = mapped_column(String(40), default=None)
    approver_name: Mapped[str] = mapped_column(String(200))
    platform: Mapped[str] = mapped_column(String(32))
    recipient_id: Mapped[str] = mapped_column(String(500))
    channel_id: Mapped[str | None] = mapped_column(String(40), default=None)
    user_id: Mapped[str | None] = mapped_column(String(500), default=None)
    message_id: Mapped[str | None] = mapped_column(String(40), default=None, index=True)
    level: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default="sent")  # sent, answered, settled
    answered_at: Mapped[datetime | None] = mapped_column(default=None)
    settled_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class HumanVote(Base):
    """One person's decision on a request; a request is approved when ``quorum`` people approve it."""

    __tablename__ = "human_votes"
    __table_args__ = (Index("ux_human_votes_voter", "request_id", "voter", unique=True),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(40))
    request_id: Mapped[str] = mapped_column(ForeignKey("human_requests.id", ondelete="CASCADE"))
    voter: Mapped[str] = mapped_column(String(200))  # the approver's id, or the API caller's name
    decision: Mapped[str] = mapped_column(String(16))  # approve, reject
    reason: Mapped[str | None] = mapped_column(Text, default=None)
    via: Mapped[str] = mapped_column(String(32))  # slack, telegram, ..., email, api, dashboard
    delivery_id: Mapped[str | None] = mapped_column(String(40), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TemplateOverride(Base):
    """A tenant's own template for one (event type, channel, locale): it wins over the default Herald ships
    (herald.pipeline.library), or stands alone for an event type of the tenant's own."""

    __tablename__ = "template_overrides"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    event_type: Mapped[str] = mapped_column(String(50))
    channel: Mapped[str] = mapped_column(String(16))
    locale: Mapped[str] = mapped_column(String(35))
    subject: Mapped[str | None] = mapped_column(Text, default=None)
    body: Mapped[str] = mapped_column(Text)
    # The names subject and body read (built-ins aside): what a caller must supply to render it.
    variables: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        Index("ux_template_overrides_key", "tenant_id", "event_type", "channel", "locale", unique=True),
    )


class DataSource(Base):
    """A tenant's own database Herald reads (campaign audiences, monitor queries), registered by URL.

    ``credentials`` holds the whole URL sealed (Fernet, like channel credentials): passwords and any secret in
    its query string never leave the server. ``display_url`` is the same URL with those masked, for answers.
    ``updated_at`` versions the row, so every process drops its cached engine when the source changes."""

    __tablename__ = "data_sources"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    backend: Mapped[str] = mapped_column(String(16))  # postgresql | mysql | sqlite
    display_url: Mapped[str] = mapped_column(Text)
    credentials: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Campaign(Base):
    """A producer over a tenant's own data: an audience query (or an external queue table) on a data source,
    run on a schedule, one library template per channel, a channel policy and a dedupe key
    (herald.producers.campaigns). ``status`` is active or paused; ``next_run`` is null once a one-time
    campaign has run."""

    __tablename__ = "campaigns"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    agent_id: Mapped[str] = mapped_column(String(200))
    data_source_id: Mapped[str] = mapped_column(String(40))
    audience_query: Mapped[str | None] = mapped_column(Text, default=None)
    query_params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # {"table", "cursor", "start_after"} when the campaign follows a table instead of running a query.
    queue: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    # The last cursor value taken from the queue table ({"value": ...} keeps its type); null before the first.
    queue_position: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    schedule: Mapped[str] = mapped_column(String(500))  # as given: cron or natural language
    cron_expression: Mapped[str | None] = mapped_column(String(200), default=None)  # null: one-time
    timezone: Mapped[str] = mapped_column(String(64))
    event_type: Mapped[str] = mapped_column(String(50))
    locale: Mapped[str] = mapped_column(String(35))
    channels: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    timezone_column: Mapped[str | None] = mapped_column(String(200), default=None)
    variables: Mapped[dict[str, Any]] = mapped_column(default=dict)
    dedupe_key: Mapped[list[str]] = mapped_column(JSON, default=list)
    dedupe_period: Mapped[str] = mapped_column(String(8), default="ever")
    priority: Mapped[int] = mapped_column(Integer, default=2)
    compose: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    status: Mapped[str] = mapped_column(String(16))  # active, paused
    next_run: Mapped[datetime | None] = mapped_column(default=None)
    last_run: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        Index(
            "ix_campaigns_due",
            "next_run",
            postgresql_where=text("status = 'active'"),
            sqlite_where=text("status = 'active'"),
        ),
        Index("ix_campaigns_tenant", "tenant_id", "id"),
    )


class CampaignRun(Base):
    """One run of a campaign: what it found and what became of it. ``queued`` runs wait for the runner,
    ``running`` ones are leased (``lease_expires_at``; an expired lease is resumed), ``pending_approval`` ones
    hold a stored ``preview`` until a human approves or rejects the whole run."""

    __tablename__ = "campaign_runs"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(40))
    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    trigger: Mapped[str] = mapped_column(String(16))  # schedule, manual
    status: Mapped[str] = mapped_column(String(20))
    due_at: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    lease_expires_at: Mapped[datetime | None] = mapped_column(default=None)
    audience: Mapped[int] = mapped_column(Integer, default=0)
    created: Mapped[int] = mapped_column(Integer, default=0)  # messages created
    deduped: Mapped[int] = mapped_column(Integer, default=0)
    opted_out: Mapped[int] = mapped_column(Integer, default=0)
    quiet_hours: Mapped[int] = mapped_column(Integer, default=0)  # created, but delayed past quiet hours
    failed: Mapped[int] = mapped_column(Integer, default=0)  # rows that could not become messages
    failures: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)  # a short sample of reasons
    preview: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    approved_by: Mapped[str | None] = mapped_column(String(200), default=None)
    decided_at: Mapped[datetime | None] = mapped_column(default=None)
    reason: Mapped[str | None] = mapped_column(Text, default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)

    __table_args__ = (
        Index("ix_campaign_runs_campaign", "campaign_id", "id"),
        Index("ix_campaign_runs_due", "campaign_id", "due_at", unique=True),
        Index(
            "ix_campaign_runs_work",
            "lease_expires_at",
            postgresql_where=text("status IN ('queued', 'running')"),
            sqlite_where=text("status IN ('queued', 'running')"),
        ),
    )


class CampaignDelivery(Base):
    """The dedupe ledger: one row per (campaign, period, key value) that became a message, written in the
    transaction that writes the message, so a crash can neither send twice nor lose one."""

    __tablename__ = "campaign_deliveries"

    tenant_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True)
    period: Mapped[str] = mapped_column(
        String(16), primary_key=True
    )  # ever, 2026, 2026-03, 2026-W11, 2026-03-14
    dedupe_value: Mapped[str] = mapped_column(String(500), primary_key=True)
    run_id: Mapped[str] = mapped_column(String(40))
    message_id: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Mailbox(Base):
    """An email interface's inbound IMAP mailbox (herald.producers.email.mailbox), one per channel.

    ``credentials`` holds the password or the OAuth2 bearer sealed like channel credentials. The position is
    ``uidvalidity`` and ``last_uid``: every UID up to ``last_uid`` is recorded in ``mailbox_messages`` (taken or
    deliberately left alone), so a restart resumes after it. One process follows a mailbox at a time: it holds
    the lease (``lease_owner`` until ``lease_until``) and renews it while following."""

    __tablename__ = "mailboxes"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    channel_id: Mapped[str] = mapped_column(ForeignKey("channels.id", ondelete="CASCADE"), unique=True)
    host: Mapped[str] = mapped_column(String(255))
    port: Mapped[int] = mapped_column(Integer)
    security: Mapped[str] = mapped_column(String(16))  # tls | starttls | none
    username: Mapped[str] = mapped_column(String(320))
    auth: Mapped[str] = mapped_column(String(16))  # password | oauth2
    credentials: Mapped[bytes] = mapped_column(LargeBinary)
    folder: Mapped[str] = mapped_column(String(200))
    poll_interval_seconds: Mapped[int] = mapped_column(Integer)
    idle: Mapped[bool] = mapped_column(Boolean, default=True)
    after_processing: Mapped[str] = mapped_column(String(8))  # flag | move
    move_to: Mapped[str | None] = mapped_column(String(200), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Versions the settings: a follower that sees it change reconnects with the new ones.
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    uidvalidity: Mapped[int | None] = mapped_column(BigInteger, default=None)
    last_uid: Mapped[int] = mapped_column(BigInteger, default=0)
    mode: Mapped[str | None] = mapped_column(String(8), default=None)  # idle | poll, once connected
    last_poll_at: Mapped[datetime | None] = mapped_column(default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    last_error_at: Mapped[datetime | None] = mapped_column(default=None)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(80), default=None)
    lease_until: Mapped[datetime | None] = mapped_column(default=None)

    __table_args__ = (
        Index("ix_mailboxes_tenant", "tenant_id", "id"),
        Index("ix_mailboxes_lease", "lease_until"),
    )


class MailboxMessage(Base):
    """One message of a followed mailbox, recorded before it is fetched: the unique (mailbox, UIDVALIDITY, UID)
    key lets only one process take it. ``pending`` (recorded, not yet handed over; retried), ``received``
    (handed to intake; ``inbound_id`` is the stored inbound message, null when intake suppressed it or had it
    already), ``done`` (flagged or moved on the server too), ``skipped`` (found again by its Message-ID after a
    UIDVALIDITY change), ``stale`` (its UIDVALIDITY is gone before it was handed over)."""

    __tablename__ = "mailbox_messages"

    mailbox_id: Mapped[str] = mapped_column(ForeignKey("mailboxes.id", ondelete="CASCADE"), primary_key=True)
    uidvalidity: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    uid: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    tenant_id: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    message_id: Mapped[str | None] = mapped_column(String(500), default=None)
    inbound_id: Mapped[str | None] = mapped_column(String(40), default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    # A pending row is the taker's until then; after it, the mailbox's follower retries it.
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column(default=None)

    __table_args__ = (
        Index(
            "ix_mailbox_messages_open",
            "mailbox_id",
            "next_attempt_at",
            postgresql_where=text("status IN ('pending', 'received')"),
            sqlite_where=text("status IN ('pending', 'received')"),
        ),
        Index("ix_mailbox_messages_message_id", "mailbox_id", "message_id"),
        Index("ix_mailbox_messages_created", "mailbox_id", "created_at"),
    )


class EmailForm(Base):
    """How to read one website's contact-form notification emails (herald.producers.email.forms): which emails
    (``senders``: addresses or @domains, and/or ``subject_contains``), the labels of their fields, and per
    intent an auto-response and a routing target. ``agent_id`` speaks the auto-responses (its maturity governs
    them); ``classifier_agent_id`` names an LLM agent whose model classifies the intent, keyword rules otherwise
    and as its fallback. ``channel_id`` null: the form applies to every email interface of the tenant."""

    __tablename__ = "email_forms"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    channel_id: Mapped[str | None] = mapped_column(String(40), default=None)
    agent_id: Mapped[str] = mapped_column(String(200))
    senders: Mapped[list[str]] = mapped_column(JSON, default=list)
    subject_contains: Mapped[str | None] = mapped_column(String(200), default=None)
    fields: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # intent -> {"auto_response": {"event_type"} | {"subject", "body"} | None, "route_to": agent id | None}
    intents: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    keywords: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    classifier_agent_id: Mapped[str | None] = mapped_column(String(200), default=None)
    # Constant template variables for the auto-responses (dealership_name, dealership_phone, ...).
    variables: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_email_forms_tenant", "tenant_id", "id"),)


class Suggestion(Base):
    """A change Herald proposes from a pattern in the tenant's history (herald.learning.suggestions).

    ``key`` is the pattern's key: at most one ``open`` suggestion per tenant and key (refreshed in place when the
    pattern is found again); a ``dismissed`` one with ``dismissed_until`` ahead keeps that key from being
    suggested again until then. ``change`` is the exact change accepting it makes: action, object, id, and the
    equivalent API call (method, path, body). ``pattern`` keeps the pattern it came from (summary, facts,
    evidence) so the suggestion explains itself after the pattern is gone."""

    __tablename__ = "suggestions"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(300))
    kind: Mapped[str] = mapped_column(String(32))
    pattern_kind: Mapped[str] = mapped_column(String(32))
    agent_id: Mapped[str | None] = mapped_column(String(200), default=None)
    status: Mapped[str] = mapped_column(String(16), default="open")  # open, accepted, dismissed, stale
    title: Mapped[str] = mapped_column(String(500))
    explanation: Mapped[str] = mapped_column(Text)
    # "template", or "llm:<model>" when the suggestion's LLM agent rewrote the template's explanation.
    explained_by: Mapped[str] = mapped_column(String(200), default="template")
    confidence: Mapped[float] = mapped_column(default=0.0)
    change: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    pattern: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    accepted_by: Mapped[str | None] = mapped_column(String(200), default=None)
    accepted_at: Mapped[datetime | None] = mapped_column(default=None)
    result_id: Mapped[str | None] = mapped_column(String(200), default=None)
    dismissed_by: Mapped[str | None] = mapped_column(String(200), default=None)
    dismissed_at: Mapped[datetime | None] = mapped_column(default=None)
    dismissed_until: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        Index("ix_suggestions_tenant_status", "tenant_id", "status", "id"),
        Index(
            "uq_suggestions_open_key",
            "tenant_id",
            "key",
            unique=True,
            postgresql_where=text("status = 'open'"),
            sqlite_where=text("status = 'open'"),
        ),
        Index("ix_suggestions_tenant_key", "tenant_id", "key", "dismissed_until"),
    )


class SuggestionRefresh(Base):
    """When each tenant's suggestions are next recomputed: the scheduler claims due rows (``FOR UPDATE SKIP
    LOCKED``) and moves ``next_run_at`` ahead in the claim, so several schedulers never refresh one tenant at once."""

    __tablename__ = "suggestion_refreshes"

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    next_run_at: Mapped[datetime] = mapped_column(index=True)
    last_run_at: Mapped[datetime | None] = mapped_column(default=None)


class DigestRule(Base):
    """Which messages wait to be sent together (herald.pipeline.digests): those of ``agent_id`` / ``platform`` /
    ``recipient_id`` / ``message_type`` (``governance_metadata.message_type``), each null for any. They are held
    for ``window_seconds`` from the first, or until ``max_messages`` wait, then sent as one message rendered
    from ``subject`` and ``body`` (sandboxed Jinja over ``messages``)."""

    __tablename__ = "digest_rules"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    agent_id: Mapped[str | None] = mapped_column(String(200), default=None)
    platform: Mapped[str | None] = mapped_column(String(32), default=None)
    recipient_id: Mapped[str | None] = mapped_column(String(500), default=None)
    message_type: Mapped[str | None] = mapped_column(String(100), default=None)
    window_seconds: Mapped[int] = mapped_column(Integer)
    max_messages: Mapped[int | None] = mapped_column(Integer, default=None)
    subject: Mapped[str | None] = mapped_column(Text, default=None)
    body: Mapped[str] = mapped_column(Text)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_digest_rules_tenant", "tenant_id", "id"),)


class Digest(Base):
    """One batch of held messages for one (rule, platform, recipient): ``open`` while messages join, ``full``
    once ``max_messages`` joined (due at once), ``sent`` once the digest message ``message_id`` is written
    (``closed`` when every held message was cancelled first). At most one is open per key (a partial unique
    index), so concurrent senders join the same batch with one upsert."""

    __tablename__ = "digests"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    rule_id: Mapped[str] = mapped_column(String(40))
    platform: Mapped[str] = mapped_column(String(32))
    recipient_id: Mapped[str] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(16))
    count: Mapped[int] = mapped_column(Integer, default=0)
    max_messages: Mapped[int | None] = mapped_column(Integer, default=None)
    opened_at: Mapped[datetime]
    due_at: Mapped[datetime]
    closed_at: Mapped[datetime | None] = mapped_column(default=None)
    message_id: Mapped[str | None] = mapped_column(String(40), default=None)

    __table_args__ = (
        Index(
            "ux_digests_open",
            "rule_id",
            "platform",
            "recipient_id",
            unique=True,
            postgresql_where=text("status = 'open'"),
            sqlite_where=text("status = 'open'"),
        ),
        Index(
            "ix_digests_due",
            "due_at",
            postgresql_where=text("status IN ('open', 'full')"),
            sqlite_where=text("status IN ('open', 'full')"),
        ),
        Index("ix_digests_tenant", "tenant_id", "id"),
    )
