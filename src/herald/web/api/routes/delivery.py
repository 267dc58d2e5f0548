"""The tenant's delivery policy and delivery figures per channel (seed 003's metrics)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from pydantic import ValidationError

from herald.core.errors import ValidationFailed
from herald.pipeline import report
from herald.pipeline.routing import planner
from herald.pipeline.routing.policy import DeliveryPolicy
from herald.web.api.contract import answers
from herald.web.api.deps import CurrentPrincipal, RuntimeDep
from herald.web.api.schemas import DeliveryFiguresOut

router = APIRouter(prefix="/api/v1", tags=["delivery"])


@router.get("/delivery-policy", response_model=DeliveryPolicy)
async def get_policy(rt: RuntimeDep, principal: CurrentPrincipal) -> dict[str, Any]:
    async with rt.sessions() as session:
        policy = await planner.stored_policy(session, principal.tenant_id)
    return policy.model_dump(mode="json")


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
        await planner.set_policy(session, principal.tenant_id, policy)
    rt.lookups.clear()
    return policy.model_dump(mode="json")


@router.get("/metrics/delivery", **answers(DeliveryFiguresOut))
async def delivery_metrics(
    rt: RuntimeDep, principal: CurrentPrincipal, hours: int = Query(24, ge=1, le=24 * 90)
) -> dict[str, Any]:
    """Sent, failed, success rate and cost per channel over the last ``hours``, and ``queue``: the messages
    waiting now (queued, sending, pending_approval)."""
    async with rt.sessions() as session:
        return await report.delivery_figures(session, principal.tenant_id, hours=hours)
