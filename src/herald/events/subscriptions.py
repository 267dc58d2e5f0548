"""Event subscriptions: create (secret shown once), list, delete, and the delivery log."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from herald.core.errors import NotFound, ValidationFailed
from herald.core.ids import new_id
from herald.core.principal import Principal
from herald.core.security import new_webhook_secret
from herald.storage.audit import audit_row
from herald.storage.models import AuditEntry, EventDelivery, EventSubscription
from herald.storage.types import utcnow

if TYPE_CHECKING:
    from herald.runtime import Runtime

EVENT_TYPES = frozenset({
    "message.queued", "message.sent", "message.delivered", "message.read", "message.failed", "message.fallback",
    "message.escalated",
    "message.approved", "message.rejected", "message.cancelled", "message.expired", "approval.requested",
    "approval.decided", "approval.escalated", "question.asked", "question.answered", "question.expired",
    "alert.firing", "alert.resolved", "schedule.executed", "trigger.fired",
    "otp.sent", "otp.approved", "otp.canceled", "otp.expired", "otp.max_attempts_reached",
    "campaign.run.pending_approval", "campaign.run.approved", "campaign.run.rejected", "campaign.run.expired",
    "campaign.run.completed", "campaign.run.failed",
    "message.held", "message.digested",
})  # fmt: skip


async def create(
    rt: Runtime, session: AsyncSession, principal: Principal, *, url: str, event_types: list[str]
) -> tuple[EventSubscription, str]:
    unknown = sorted(set(event_types) - EVENT_TYPES)
    if unknown:
        raise ValidationFailed(
            f"unknown event types {', '.join(unknown)}; known: {', '.join(sorted(EVENT_TYPES))}",
            field="event_types",
        )
    await rt.outbound.validate_url(url, field="url")
    secret = new_webhook_secret()
    subscription = EventSubscription(
        id=new_id("sub"), tenant_id=principal.tenant_id, url=url, event_types=sorted(set(event_types)),
        secret=rt.credentials.seal({"secret": secret}), status="active", created_at=utcnow(),
    )  # fmt: skip
    session.add(subscription)
    await session.flush()
    await session.execute(
        insert(AuditEntry),
        [
            audit_row(
                principal.tenant_id, principal.actor, "subscription.created", "subscription", subscription.id
            )
        ],
    )
    return subscription, secret


async def get(session: AsyncSession, tenant_id: str, subscription_id: str) -> EventSubscription:
    row = (
        await session.execute(
            select(EventSubscription).where(
                EventSubscription.id == subscription_id,
                EventSubscription.tenant_id == tenant_id,
                EventSubscription.status != "deleted",
            )
        )
    ).scalar_one_or_none()
    if row is None:
        raise NotFound(f"no event subscription {subscription_id!r}")
    return row


async def list_all(
    session: AsyncSession, tenant_id: str, *, limit: int, cursor: str | None
) -> list[EventSubscription]:
    query = select(EventSubscription).where(
        EventSubscription.tenant_id == tenant_id, EventSubscription.status != "deleted"
    )
    if cursor is not None:
        query = query.where(EventSubscription.id > cursor)
    return list((await session.execute(query.order_by(EventSubscription.id).limit(limit))).scalars())


async def delete(session: AsyncSession, principal: Principal, subscription_id: str) -> None:
    row = await get(session, principal.tenant_id, subscription_id)
    row.status = "deleted"
    await session.execute(
        insert(AuditEntry),
        [
            audit_row(
                principal.tenant_id, principal.actor, "subscription.deleted", "subscription", subscription_id
            )
        ],
    )


async def deliveries(
    session: AsyncSession, tenant_id: str, subscription_id: str, *, limit: int, cursor: str | None
) -> list[EventDelivery]:
    await get(session, tenant_id, subscription_id)
    query = select(EventDelivery).where(EventDelivery.subscription_id == subscription_id)
    if cursor is not None:
        query = query.where(EventDelivery.id < cursor)
    return list((await session.execute(query.order_by(EventDelivery.id.desc()).limit(limit))).scalars())
