"""Read-only records: the audit trail and the dev inbox."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlalchemy import select

from herald.api.deps import CurrentPrincipal, Cursor, Limit, RuntimeDep
from herald.api.schemas import AuditOut, DevInboxOut, page
from herald.storage.models import AuditEntry, DevInboxMessage

router = APIRouter(prefix="/api/v1", tags=["records"])


@router.get("/audit")
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
    query = select(AuditEntry).where(AuditEntry.tenant_id == principal.tenant_id)
    if object_id is not None:
        query = query.where(AuditEntry.object_id == object_id)
    if action is not None:
        query = query.where(AuditEntry.action == action)
    if needs_review is not None:
        query = query.where(AuditEntry.needs_review == needs_review)
    if cursor is not None:
        query = query.where(AuditEntry.id < cursor)
    async with rt.sessions() as session:
        rows = (await session.execute(query.order_by(AuditEntry.id.desc()).limit(limit))).scalars().all()
    items = [AuditOut.model_validate(r, from_attributes=True).model_dump(mode="json") for r in rows]
    return page(items, limit)


@router.get("/devinbox")
async def devinbox(
    rt: RuntimeDep,
    principal: CurrentPrincipal,
    platform: str | None = None,
    recipient_id: str | None = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> dict[str, Any]:
    """What the dev inbox received (what a real provider would have been sent), newest first."""
    query = select(DevInboxMessage).where(DevInboxMessage.tenant_id == principal.tenant_id)
    if platform is not None:
        query = query.where(DevInboxMessage.platform == platform)
    if recipient_id is not None:
        query = query.where(DevInboxMessage.recipient_id == recipient_id)
    if cursor is not None:
        query = query.where(DevInboxMessage.id < cursor)
    async with rt.sessions() as session:
        rows = (await session.execute(query.order_by(DevInboxMessage.id.desc()).limit(limit))).scalars().all()
    items = [DevInboxOut.model_validate(r, from_attributes=True).model_dump(mode="json") for r in rows]
    return page(items, limit)
