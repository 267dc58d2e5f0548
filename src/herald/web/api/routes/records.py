"""Read-only records: the audit trail and the dev inbox."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from herald.providers.devinbox import send as devinbox_store
from herald.storage import audit as audit_trail
from herald.web.api.contract import answers
from herald.web.api.deps import CurrentPrincipal, Cursor, Limit, RuntimeDep
from herald.web.api.schemas import AuditOut, DevInboxOut, Page, page

router = APIRouter(prefix="/api/v1", tags=["records"])


@router.get("/audit", **answers(Page[AuditOut]))
async def audit(
    rt: RuntimeDep,
    principal: CurrentPrincipal,
    object_id: str | None = None,
    action: str | None = None,
    needs_review: bool | None = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> dict[str, Any]:
    """The tenant's audit trail, newest first."""
    async with rt.sessions() as session:
        rows = await audit_trail.list_entries(
            session, principal.tenant_id, object_id=object_id, action=action, needs_review=needs_review,
            limit=limit, cursor=cursor,
        )  # fmt: skip
    items = [AuditOut.model_validate(r, from_attributes=True).model_dump(mode="json") for r in rows]
    return page(items, limit)


@router.get("/devinbox", **answers(Page[DevInboxOut]))
async def devinbox(
    rt: RuntimeDep,
    principal: CurrentPrincipal,
    platform: str | None = None,
    recipient_id: str | None = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> dict[str, Any]:
    """What the dev inbox received (what a real provider would have been sent), newest first."""
    async with rt.sessions() as session:
        rows = await devinbox_store.list_received(
            session,
            principal.tenant_id,
            platform=platform,
            recipient_id=recipient_id,
            limit=limit,
            cursor=cursor,
        )
    items = [DevInboxOut.model_validate(r, from_attributes=True).model_dump(mode="json") for r in rows]
    return page(items, limit)
