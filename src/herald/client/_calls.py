"""Every API call the client makes, written once for both clients.

A spec is a generator: it yields each :class:`Call` it needs, receives the decoded JSON answer, and returns the
result. :class:`~herald.client.Herald` drives specs with a blocking ``httpx.Client`` and
:class:`~herald.client.AsyncHerald` with an ``httpx.AsyncClient``; neither knows any endpoint, and no endpoint
is written twice. Most specs make one call; bulk sends make one per chunk.
"""

from __future__ import annotations

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
    BulkResult,
    DeliveryMetrics,
    DeliveryReport,
    Message,
    MessageDetail,
    Monitor,
    Page,
    Schedule,
    ScheduleExecution,
    Trigger,
    TriggerFiring,
)

T = TypeVar("T")
MAX_BULK = 10_000
Progress = Callable[[int, int], None]  # (messages answered so far, total)


@dataclass(frozen=True)  # no slots: ``Call[X](...)`` sets ``__orig_class__``, which slots would refuse
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
    return cast(T, (yield call))


def _seg(value: str) -> str:
    return quote(value, safe="")


def _json(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
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
) -> Flow[Message]:
    """Send one message now (or at ``scheduled_for``), governed by the agent's maturity level.

    Give ``platform`` and ``recipient_id``, or ``contact_id`` (routing then picks the platform by ``priority``).
    With ``idempotency_key`` a retry answers the first message instead of sending another."""
    body = _body(
        agent_id=agent_id or d.agent_id, platform=platform, recipient_id=recipient_id, contact_id=contact_id,
        content=content, subject=subject, scheduled_for=scheduled_for, timezone=timezone,
        template_variables=template_variables, governance_metadata=governance_metadata, priority=priority,
        channel_id=channel_id, fallback=fallback,
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
    result: BulkResult = {"accepted": 0, "rejected": 0, "replayed": 0, "items": []}
    for offset, chunk in chunks(items, chunk_size):
        part = yield from _do(
            Call[BulkResult]("POST", "/api/v1/messages/bulk", json={"messages": list(chunk)})
        )
        result["accepted"] += part["accepted"]
        result["rejected"] += part["rejected"]
        result["replayed"] += part["replayed"]
        result["items"].extend({**entry, "index": entry["index"] + offset} for entry in part["items"])
        if progress is not None:
            progress(offset + len(chunk), len(items))
    return result


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
    code_length: int | None = None,
    locale: str | None = None,
    template: str | None = None,
    idempotency_key: str | None = None,
) -> Flow[dict[str, Any]]:
    """Send a one-time code to ``recipient`` (a phone number or address); Herald keeps only its hash."""
    body = _body(
        recipient=recipient, channel=channel, priority=priority, code_length=code_length, locale=locale,
        template=template,
    )  # fmt: skip
    return (
        yield from _do(
            Call[dict[str, Any]]("POST", "/api/v1/otp/send", json=body, headers=_key(idempotency_key))
        )
    )


def verify_otp(d: Defaults, recipient: str, code: str) -> Flow[dict[str, Any]]:
    """Check a code ``recipient`` was sent."""
    body = {"recipient": recipient, "code": code}
    return (yield from _do(Call[dict[str, Any]]("POST", "/api/v1/otp/verify", json=body)))


def get_metrics(d: Defaults, *, hours: int = 24) -> Flow[DeliveryMetrics]:
    """Sent, failed, success rate and cost, overall and per channel, over the last ``hours``."""
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


def health(d: Defaults) -> Flow[dict[str, Any]]:
    """Herald's own health (database, workers); needs no API key."""
    return (yield from _do(Call[dict[str, Any]]("GET", "/health")))
