"""What Herald answers, as TypedDicts: the JSON as it arrives (times are ISO 8601 strings), with types a checker
can follow. Plain dicts at run time, so a field a newer Herald adds is kept, not dropped."""

from __future__ import annotations

from typing import Any, Generic, NotRequired, TypedDict, TypeVar

T = TypeVar("T")


class Page(TypedDict, Generic[T]):
    """One page of a list; pass ``next_cursor`` as ``cursor`` for the next (None: this was the last)."""

    items: list[T]
    next_cursor: str | None


# -- messages -------------------------------------------------------------------------------------------------


class Attempt(TypedDict):
    number: int
    provider: str
    channel_id: str | None
    started_at: str
    duration_ms: float
    outcome: str  # sent, retry, failed, skipped
    provider_message_id: str | None
    error: str | None
    retry_after: float | None


class Message(TypedDict):
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
    cost: float
    run_at: str
    subject: str | None
    content: str
    status: (
        str  # pending_approval, queued, sending, sent, delivered, read, failed, rejected, cancelled, expired
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


class MessageDetail(Message):
    attempt_log: list[Attempt]


class BulkError(TypedDict):
    status: int
    field: str | None
    detail: str
    errors: NotRequired[list[dict[str, Any]]]


class BulkItem(TypedDict):
    """One item's fate: ``id`` and ``status`` (new), ``id`` and ``replayed`` (key seen before), or ``error``."""

    index: int
    id: NotRequired[str]
    status: NotRequired[str]
    replayed: NotRequired[bool]
    error: NotRequired[BulkError]


class BulkResult(TypedDict):
    accepted: int  # replays included
    rejected: int
    replayed: int
    items: list[BulkItem]


class ReportChannel(TypedDict):
    platform: str
    channel_id: str | None
    provider: str | None
    recipient_id: str
    simulated: bool
    route_step: int
    fallback_used: bool


class ReportAttempt(TypedDict):
    number: int
    time: str
    provider: str
    channel_id: str | None
    outcome: str
    provider_message_id: str | None
    error: str | None
    retry_after: float | None
    duration_ms: float


class ReportPart(TypedDict):
    route_step: int
    index: int
    provider: str
    channel_id: str | None
    provider_message_id: str
    attempt: int
    sent_at: str


class ReportTimestamps(TypedDict):
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


class DeliveryReport(TypedDict):
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


class ChannelFigures(TypedDict):
    channel_id: str | None
    platform: str
    sent: int
    failed: int
    success_rate: float | None
    cost: float


class DeliveryMetrics(TypedDict):
    since: str
    sent: int
    failed: int
    success_rate: float | None
    cost: float
    channels: list[ChannelFigures]


# -- agents, schedules, monitors, triggers -----------------------------------------------------------------------


class Agent(TypedDict):
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
    callback_secret: NotRequired[str | None]


class AgentRun(TypedDict):
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
    step_log: NotRequired[list[dict[str, Any]]]


class Schedule(TypedDict):
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


class ScheduleExecution(TypedDict):
    id: str
    schedule_id: str
    due_at: str
    executed_at: str
    outcome: str
    message_id: str | None
    error: str | None


class Monitor(TypedDict):
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


class Alert(TypedDict):
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


class Trigger(TypedDict):
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


class TriggerFiring(TypedDict):
    id: str
    trigger_id: str
    source: str
    payload_digest: str
    task: str | None
    outcome: str
    message_id: str | None
    error: str | None
    fired_at: str
