"""The tenant's retention period for finished messages (the retention job in herald.admin.retention applies it)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import Field

from herald.admin import retention
from herald.core.errors import Forbidden
from herald.web.api.contract import errors
from herald.web.api.deps import CurrentPrincipal, RuntimeDep
from herald.web.api.schemas import Strict

router = APIRouter(prefix="/api/v1", tags=["retention"])


class RetentionPolicy(Strict):
    message_retention_days: int | None = Field(
        default=None, ge=1, le=36_500, description="days to keep finished messages; null keeps them"
    )


@router.get("/retention-policy", response_model=RetentionPolicy)
async def get_retention(rt: RuntimeDep, principal: CurrentPrincipal) -> dict[str, Any]:
    async with rt.sessions() as session:
        days = await retention.retention_days(session, principal.tenant_id)
    return {"message_retention_days": days}


@router.put("/retention-policy", response_model=RetentionPolicy, responses=errors(403))
async def put_retention(body: RetentionPolicy, rt: RuntimeDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """Finished messages (with their attempts, approvals and dev inbox copies) older than this are deleted by
    the retention job; audit entries and events are kept. Admin keys only: it deletes history."""
    if not principal.is_admin:
        raise Forbidden("changing the retention period needs an admin API key")
    async with rt.sessions.begin() as session:
        await retention.set_retention_days(session, principal.tenant_id, body.message_retention_days)
    return body.model_dump(mode="json")
