"""Herald's tools. Each is one small function over a service that already exists; the registry turns its
signature into the schema a model sees, and the pipeline governs whatever it sends."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field

from herald.admin import contacts
from herald.agents.tools.registry import Effect, ToolContext, ToolError, ToolRegistry
from herald.core.errors import NotFound
from herald.core.intent import Intent, Priority
from herald.core.status import Status
from herald.humans import decisions, outreach
from herald.pipeline import accept as messages
from herald.producers.conversations import service as conversations
from herald.producers.monitors import service as monitors
from herald.producers.monitors.service import MonitorSpec
from herald.producers.triggers import service as triggers

TOOLS = ToolRegistry()

PriorityName = Literal["critical", "high", "medium", "low"]
Text = Annotated[str, Field(min_length=1, max_length=10_000)]
Platform = Annotated[
    str | None, Field(default=None, description="slack, telegram, sms, email, ... (with recipient_id)")
]
Recipient = Annotated[str | None, Field(default=None, description="the address on that platform")]
ContactId = Annotated[
    str | None, Field(default=None, description="a contact's id, instead of platform+recipient")
]


async def _send(
    ctx: ToolContext,
    *,
    content: str,
    platform: str | None,
    recipient_id: str | None,
    contact_id: str | None,
    subject: str | None = None,
    priority: PriorityName = "medium",
    send_at: datetime | None = None,
    metadata: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One message through the pipeline as the calling agent: governed, audited, routed like any other."""
    if not contact_id and not (platform and recipient_id):
        raise ToolError("name a contact_id, or a platform and a recipient_id", field="recipient_id")
    intent = Intent(
        agent_id=ctx.agent_id, platform=platform, recipient_id=recipient_id, contact_id=contact_id, content=content,
        subject=subject, priority=Priority[priority.upper()], scheduled_for=send_at,
        governance_metadata={**(metadata or {}), "agent_run": ctx.run_id, "step": ctx.step, "via": ctx.via},
    )  # fmt: skip
    message = await messages.accept(ctx.rt, ctx.session, ctx.principal, intent)  # in invoke's savepoint
    return {"message_id": message.id, "status": message.status,
            "scheduled_for": message.scheduled_for.isoformat() if message.scheduled_for else None}  # fmt: skip


@TOOLS.tool(Effect.SEND)
async def send_message(
    ctx: ToolContext,
    *,
    content: Text,
    platform: Platform = None,
    recipient_id: Recipient = None,
    contact_id: ContactId = None,
    subject: Annotated[str | None, Field(default=None, max_length=500)] = None,
    priority: PriorityName = "medium",
) -> dict[str, Any]:
    """Send a message to a person now, through Herald's governed pipeline. Your maturity level decides whether it
    is sent, held for a human's approval, or refused. Answers the message id and its status."""
    return await _send(ctx, content=content, platform=platform, recipient_id=recipient_id, contact_id=contact_id,
                       subject=subject, priority=priority)  # fmt: skip


@TOOLS.tool(Effect.SEND)
async def schedule_message(
    ctx: ToolContext,
    *,
    content: Text,
    send_at: Annotated[datetime, Field(description="when to send, ISO 8601 with a UTC offset")],
    platform: Platform = None,
    recipient_id: Recipient = None,
    contact_id: ContactId = None,
    priority: PriorityName = "medium",
) -> dict[str, Any]:
    """Schedule a message for later (a follow-up, a reminder). It is governed now and sent at send_at."""
    return await _send(ctx, content=content, platform=platform, recipient_id=recipient_id, contact_id=contact_id,
                       priority=priority, send_at=send_at)  # fmt: skip


@TOOLS.tool(Effect.SEND)
async def cancel_message(
    ctx: ToolContext, *, message_id: Annotated[str, Field(min_length=1)]
) -> dict[str, Any]:
    """Cancel one of your own messages that has not been sent yet (scheduled, queued or awaiting approval)."""
    message = await messages.get_message(ctx.session, ctx.tenant_id, message_id)
    if message.agent_id != ctx.agent_id:
        raise NotFound(f"no message {message_id!r} of yours", field="message_id")
    cancelled = await messages.cancel(ctx.session, ctx.principal, message_id)
    return {"message_id": cancelled.id, "status": cancelled.status}


@TOOLS.tool(Effect.SEND)
async def ask_human(
    ctx: ToolContext,
    *,
    question: Text,
    options: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=75)]] | None,
        Field(
            default=None, max_length=10, description="answers offered as buttons; omit for a free-text answer"
        ),
    ] = None,
    approver_ids: Annotated[
        list[str] | None, Field(default=None, max_length=20, description="ask these approvers (apv_...)")
    ] = None,
    platform: Platform = None,
    recipient_id: Recipient = None,
    contact_id: ContactId = None,
    timeout_minutes: Annotated[int, Field(ge=1, le=7 * 24 * 60)] = 60,
    escalate_to: Annotated[
        list[str] | None,
        Field(default=None, max_length=20, description="approvers asked if nobody answers in time"),
    ] = None,
) -> dict[str, Any]:
    """Ask a person a question and get their answer: approvers (approver_ids), or one address (platform and
    recipient_id, or contact_id). In a run, the run pauses until they answer or the timeout passes, and the
    answer is this tool's result. Over MCP the question's id comes back at once; the answer goes to your
    callback, or read it with get_question."""
    direct = None
    if platform or recipient_id or contact_id:
        if not contact_id and not (platform and recipient_id):
            raise ToolError("name a contact_id, or a platform and a recipient_id", field="recipient_id")
        direct = {k: v for k, v in (("platform", platform), ("recipient_id", recipient_id),
                                    ("contact_id", contact_id)) if v}  # fmt: skip
    waits = ctx.via == "llm" and ctx.run_id is not None
    asked = await outreach.ask(
        ctx.rt, ctx.session, ctx.principal, agent_id=ctx.agent_id, text=question, options=list(options or []),
        approver_ids=list(approver_ids or []), direct=direct, timeout_seconds=timeout_minutes * 60,
        escalate_to=list(escalate_to or []), run_id=ctx.run_id if waits else None,
        call_id=ctx.call_id if waits else None,
    )  # fmt: skip
    return {"question_id": asked.id, "status": asked.status, "code": asked.code,
            "expires_at": asked.expires_at.isoformat() if asked.expires_at else None, "wait": waits}  # fmt: skip


@TOOLS.tool(Effect.READ)
async def get_question(
    ctx: ToolContext, *, question_id: Annotated[str, Field(min_length=1)]
) -> dict[str, Any]:
    """One of your questions: pending, answered (with the answer and who gave it) or expired."""
    found = await outreach.get_question(ctx.session, ctx.tenant_id, question_id)
    if found.agent_id != ctx.agent_id:
        raise NotFound(f"no question {question_id!r} of yours", field="question_id")
    return decisions.result_of(found)


@TOOLS.tool(Effect.READ)
async def lookup_contact(
    ctx: ToolContext,
    *,
    query: Annotated[
        str, Field(min_length=1, max_length=200, description="an id, a name or part of an address")
    ],
) -> dict[str, Any]:
    """Find contacts by id, name or address; answers their addresses, time zone, quiet hours and opt-outs."""
    found = await contacts.find_contacts(ctx.session, ctx.tenant_id, query, limit=10)
    return {"contacts": [
        {"id": c.id, "name": c.name, "addresses": c.addresses, "timezone": c.timezone,
         "quiet_hours": c.quiet_hours, "opt_outs": c.opt_outs}
        for c in found
    ]}  # fmt: skip


@TOOLS.tool(Effect.READ)
async def read_conversation(
    ctx: ToolContext,
    *,
    conversation_id: Annotated[str, Field(min_length=1)],
    limit: Annotated[int, Field(ge=1, le=100)] = 20,
) -> dict[str, Any]:
    """The latest messages of a conversation, both directions, oldest first."""
    history = await conversations.conversation_messages(
        ctx.session, ctx.tenant_id, conversation_id, limit=limit
    )
    return {"conversation_id": conversation_id, "messages": history}


@TOOLS.tool(Effect.READ)
async def list_pending_approvals(
    ctx: ToolContext, *, limit: Annotated[int, Field(ge=1, le=100)] = 20
) -> dict[str, Any]:
    """Messages waiting for a human's approval (yours and other agents'), newest first."""
    waiting = await messages.list_messages(
        ctx.session, ctx.tenant_id, status=Status.PENDING_APPROVAL, limit=limit
    )
    return {"pending": [
        {"message_id": m.id, "agent_id": m.agent_id, "platform": m.platform, "recipient_id": m.recipient_id,
         "content": m.content, "created_at": m.created_at.isoformat()}
        for m in waiting
    ]}  # fmt: skip


@TOOLS.tool(Effect.ACT)
async def push_metric(
    ctx: ToolContext,
    *,
    name: Annotated[str, Field(min_length=1, max_length=200)],
    value: float,
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Record a metric value; monitors on that metric read the latest value at their next check."""
    count = await monitors.push_values(ctx.session, ctx.tenant_id, [{"name": name, "value": value,
                                                                     "labels": labels or {}}])  # fmt: skip
    return {"accepted": count}


@TOOLS.tool(Effect.ACT)
async def create_monitor(
    ctx: ToolContext,
    *,
    name: Annotated[str, Field(min_length=1, max_length=200)],
    condition: Annotated[str, Field(min_length=1, max_length=500, description='e.g. "CPU usage > 80%"')],
    action: Annotated[str | None, Field(default=None, max_length=2000)] = None,
    check_interval: Annotated[int, Field(ge=10, le=86_400)] = 300,
) -> dict[str, Any]:
    """Create a monitor of yours on a pushed metric; when it fires you are woken with the value and the action."""
    try:
        condition_dict = monitors.text_condition(condition)
    except ValueError as exc:
        raise ToolError(str(exc), field="condition") from None
    spec = MonitorSpec(agent_id=ctx.agent_id, name=name, condition=condition_dict, condition_text=condition,
                       action=action, check_interval_seconds=check_interval)  # fmt: skip
    monitor = await monitors.create(ctx.rt, ctx.session, ctx.principal, spec)
    return {"monitor_id": monitor.id, "status": monitor.status}


@TOOLS.tool(Effect.ACT)
async def pause_monitor(
    ctx: ToolContext, *, monitor_id: Annotated[str, Field(min_length=1)]
) -> dict[str, Any]:
    """Pause one of your monitors (it stops checking until resumed)."""
    monitor = await monitors.get(ctx.session, ctx.tenant_id, monitor_id)
    if monitor.agent_id != ctx.agent_id:
        raise NotFound(f"no monitor {monitor_id!r} of yours", field="monitor_id")
    paused = await monitors.set_status(ctx.session, ctx.principal, monitor_id, "paused")
    return {"monitor_id": paused.id, "status": paused.status}


@TOOLS.tool(Effect.ACT)
async def fire_trigger(
    ctx: ToolContext,
    *,
    trigger_id: Annotated[str, Field(min_length=1)],
    payload: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Fire a trigger with a payload, as its webhook would: its task goes to the trigger's agent."""
    trigger = await triggers.get_trigger(ctx.session, ctx.tenant_id, trigger_id)
    firing = await triggers.fire_in(
        ctx.rt, ctx.session, trigger, payload or {}, source=f"agent:{ctx.agent_id}"
    )
    return {"firing_id": firing.id, "outcome": firing.outcome, "task": firing.task, "error": firing.error}
