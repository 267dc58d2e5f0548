"""The tenant's delivery policy and delivery figures per channel (seed 003's metrics)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Query
from pydantic import ValidationError
from sqlalchemy import case, func, select

from herald.api.deps import CurrentPrincipal, RuntimeDep
from herald.errors import NotFound, ValidationFailed
from herald.routing.policy import DeliveryPolicy, load_policy
from herald.storage.models import Message, Tenant
from herald.storage.types import utcnow

router = APIRouter(prefix="/api/v1", tags=["delivery"])


@router.get("/delivery-policy", response_model=DeliveryPolicy)
async def get_policy(rt: RuntimeDep, principal: CurrentPrincipal) -> dict[str, Any]:
    async with rt.sessions() as session:
        tenant = await session.get(Tenant, principal.tenant_id)
    return load_policy(tenant.delivery_policy if tenant else None).model_dump(mode="json")


@router.put("/delivery-policy", response_model=DeliveryPolicy)
async def put_policy(body: dict[str, Any], rt: RuntimeDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """Replace the policy: ``priority_routes`` (priority to platforms in order), ``quiet_hours``, ``timezone``."""
    try:
        policy = DeliveryPolicy.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "body"
        raise ValidationFailed(str(first["msg"]).removeprefix("Value error, "), field=field) from exc
    async with rt.sessions.begin() as session:
        tenant = await session.get(Tenant, principal.tenant_id)
        if tenant is None:
            raise NotFound("no such tenant")
        tenant.delivery_policy = policy.model_dump(mode="json")
    rt.lookups.clear()
    return policy.model_dump(mode="json")


@router.get("/metrics/delivery")
async def delivery_metrics(
    rt: RuntimeDep, principal: CurrentPrincipal, hours: int = Query(24, ge=1, le=24 * 90)
) -> dict[str, Any]:
    """Sent, failed, success rate and cost per channel over the last ``hours``."""
    since = utcnow() - timedelta(hours=hours)
    delivered = Message.status.in_(("sent", "delivered", "read"))
    query = (
        select(
            Message.channel_id,
            Message.platform,
            func.sum(case((delivered, 1), else_=0)),
            func.sum(case((Message.status == "failed", 1), else_=0)),
            func.sum(Message.cost),
        )
        .where(Message.tenant_id == principal.tenant_id, Message.created_at >= since)
        .group_by(Message.channel_id, Message.platform)
    )
    async with rt.sessions() as session:
        rows = (await session.execute(query)).all()
    channels = []
    for channel_id, platform, sent_sum, failed_sum, cost in rows:
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
    }
