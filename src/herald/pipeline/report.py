"""A message's delivery report (seed 003's ``get_delivery_report``): status, the channel it went by, every attempt,
the parts of a split message as each was delivered, the times it changed state, and its cost, in one answer; and the
tenant's delivery figures per channel (seed 003's metrics: sent, failed, success rate, cost) with the queue waiting.

The times come from where each fact is recorded: the message row (created, sent), its approvals (approved,
rejected), and its events (delivered and read from receipts, failed, cancelled, expired). Events carry time-ordered
ids, so the event lookup starts at the message's creation time on the ``(tenant_id, id)`` index instead of
scanning the tenant's whole history.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from herald.core.status import Status
from herald.pipeline import accept as service
from herald.storage.models import Approval, Attempt, Event, Message, MessagePart
from herald.storage.types import utcnow

# Event type -> the timestamp it sets (first occurrence wins).
_EVENT_TIMES = {
    "message.delivered": "delivered_at",
    "message.read": "read_at",
    "message.failed": "failed_at",
    "message.cancelled": "cancelled_at",
    "message.expired": "expired_at",
}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _attempt(a: Attempt) -> dict[str, Any]:
    return {
        "number": a.number, "time": a.started_at.isoformat(), "provider": a.provider, "channel_id": a.channel_id,
        "outcome": a.outcome, "provider_message_id": a.provider_message_id, "error": a.error,
        "retry_after": a.retry_after, "duration_ms": a.duration_ms,
    }  # fmt: skip


def _part(p: MessagePart) -> dict[str, Any]:
    return {
        "route_step": p.route_step, "index": p.part_index, "provider": p.provider, "channel_id": p.channel_id,
        "provider_message_id": p.provider_message_id, "attempt": p.attempt, "sent_at": p.sent_at.isoformat(),
    }  # fmt: skip


def _event_floor(created_at: datetime) -> str:
    """The smallest event id that can have been made at or after ``created_at`` (see :func:`herald.core.ids.new_id`)."""
    return f"evt_{int(created_at.timestamp() * 1000) - 1000:012x}"


async def delivery_report(session: AsyncSession, tenant_id: str, message_id: str) -> dict[str, Any]:
    """The report of one of the tenant's messages; another tenant's id is a 404 like an unknown one."""
    message = await service.get_message(session, tenant_id, message_id)
    attempts = await service.attempts_of(session, message.id)
    # Empty unless the message was split into several provider messages (see herald.pipeline.parts).
    parts = (
        await session.execute(
            select(MessagePart)
            .where(MessagePart.message_id == message.id)
            .order_by(MessagePart.route_step, MessagePart.part_index)
        )
    ).scalars()
    approvals = (
        await session.execute(
            select(Approval.decision, Approval.approver, Approval.created_at)
            .where(Approval.message_id == message.id, Approval.tenant_id == tenant_id)
            .order_by(Approval.created_at)
        )
    ).all()
    events = (
        await session.execute(
            select(Event.type, Event.created_at)
            .where(
                Event.tenant_id == tenant_id,
                Event.id >= _event_floor(message.created_at),
                Event.subject_id == message.id,
                Event.type.in_(_EVENT_TIMES),
            )
            .order_by(Event.id)
        )
    ).all()
    times: dict[str, str | None] = dict.fromkeys(_EVENT_TIMES.values())
    for type_, at in events:
        key = _EVENT_TIMES[type_]
        times[key] = times[key] or _iso(at)
    decided = {decision: at for decision, _, at in approvals}
    step = message.route_plan[message.route_step] if message.route_step < len(message.route_plan) else {}
    return {
        "message_id": message.id,
        "status": message.status,
        "agent_id": message.agent_id,
        "channel": {
            "platform": message.platform,
            "channel_id": message.channel_id,
            "provider": step.get("provider"),
            "recipient_id": message.recipient_id,
            "simulated": message.simulated,
            "route_step": message.route_step,
            "fallback_used": message.route_step > 0,
        },
        "attempt_count": len(attempts),
        "attempts": [_attempt(a) for a in attempts],
        "parts": [_part(p) for p in parts],
        "timestamps": {
            "created_at": _iso(message.created_at),
            "scheduled_for": _iso(message.scheduled_for),
            "approved_at": _iso(decided.get("approved")),
            "rejected_at": _iso(decided.get("rejected")),
            "sent_at": _iso(message.sent_at),
            **times,
            "updated_at": _iso(message.updated_at),
        },
        "approved_by": message.approved_by,
        "provider_message_id": message.provider_message_id,
        "last_error": message.last_error,
        "cost": message.cost,
        "content": {
            "path": message.content_path,
            "model": message.ai_model,
            "prompt_tokens": message.ai_prompt_tokens,
            "completion_tokens": message.ai_completion_tokens,
            "cost": message.ai_cost,
        },
    }


async def delivery_figures(
    session: AsyncSession, tenant_id: str, *, hours: int, now: datetime | None = None
) -> dict[str, Any]:
    """Sent, failed, success rate and cost over the last ``hours``, in total and per channel (and platform):
    ``GET /api/v1/metrics/delivery`` and the dashboard's overview show the same figures."""
    since = (now or utcnow()) - timedelta(hours=hours)
    delivered = Message.status.in_((Status.SENT, Status.DELIVERED, Status.READ))
    query = (
        select(
            Message.channel_id,
            Message.platform,
            func.sum(case((delivered, 1), else_=0)),
            func.sum(case((Message.status == Status.FAILED, 1), else_=0)),
            func.sum(Message.cost),
        )
        .where(Message.tenant_id == tenant_id, Message.created_at >= since)
        .group_by(Message.channel_id, Message.platform)
    )
    channels = []
    for channel_id, platform, sent_sum, failed_sum, cost in (await session.execute(query)).all():
        sent, failed = int(sent_sum or 0), int(failed_sum or 0)
        done = sent + failed
        channels.append({
            "channel_id": channel_id, "platform": platform, "sent": sent, "failed": failed,
            "success_rate": round(sent / done, 4) if done else None, "cost": round(float(cost or 0), 6),
        })  # fmt: skip
    total_sent = sum(c["sent"] for c in channels)
    total_failed = sum(c["failed"] for c in channels)
    finished = total_sent + total_failed
    return {
        "since": since.isoformat(),
        "sent": total_sent,
        "failed": total_failed,
        "success_rate": round(total_sent / finished, 4) if finished else None,
        "cost": round(sum(c["cost"] for c in channels), 6),
        "channels": channels,
        "queue": await queue_depth(session, tenant_id),
    }


_WAITING = (Status.QUEUED, Status.SENDING, Status.PENDING_APPROVAL, Status.HELD)


async def queue_depth(session: AsyncSession, tenant_id: str) -> dict[str, int]:
    """The tenant's messages waiting now, by status (seed 003's ``queue_size``): queued (due or scheduled), being
    sent, awaiting approval, and held in a digest; every status is present, zero when none waits."""
    query = (
        select(Message.status, func.count())
        .where(Message.tenant_id == tenant_id, Message.status.in_(_WAITING))
        .group_by(Message.status)
    )
    depth = {str(status): 0 for status in _WAITING}
    depth.update({str(status): int(count) for status, count in (await session.execute(query)).all()})
    return depth
