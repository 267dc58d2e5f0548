"""The tenant's API keys: listed (never the key or its hash) and revoked, by admin keys only."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel

from herald.admin import keys as service
from herald.core.errors import Forbidden
from herald.core.principal import Principal
from herald.storage.models import ApiKey
from herald.web.api.contract import answers, errors
from herald.web.api.deps import CurrentPrincipal, Cursor, Limit, RuntimeDep
from herald.web.api.schemas import Page, page

router = APIRouter(prefix="/api/v1/keys", tags=["keys"])
log = logging.getLogger(__name__)


class ApiKeyOut(BaseModel):
    """What is known of a key after it was shown once: its id, label and first characters, never the key."""

    id: str
    name: str
    prefix: str
    is_admin: bool
    agent_id: str | None
    created_at: datetime
    revoked_at: datetime | None


def key_out(row: ApiKey) -> dict[str, Any]:
    return ApiKeyOut.model_validate(row, from_attributes=True).model_dump(mode="json")


def _require_admin(principal: Principal, what: str) -> None:
    if not principal.is_admin:
        raise Forbidden(f"{what} needs an admin API key")


@router.get("", **answers(Page[ApiKeyOut], also=(403,)))
async def list_keys(
    rt: RuntimeDep, principal: CurrentPrincipal, limit: Limit = 100, cursor: Cursor = None
) -> dict[str, Any]:
    _require_admin(principal, "listing API keys")
    async with rt.sessions() as session:
        rows = await service.list_keys(session, principal.tenant_id, limit=limit, cursor=cursor)
    return page([key_out(r) for r in rows], limit)


@router.delete("/{key_id}", status_code=204, responses=errors(403, 409))
async def revoke_key(key_id: str, rt: RuntimeDep, principal: CurrentPrincipal) -> Response:
    """Revoke a key of this tenant: it stops working in every process within a second (at once in this one).
    The tenant's last admin key is refused (409); a key may revoke itself otherwise. Revoking a revoked key
    changes nothing (204 again)."""
    _require_admin(principal, "revoking an API key")
    async with rt.sessions.begin() as session:
        _, revoked = await service.revoke_key(
            session, key_id, tenant_id=principal.tenant_id, actor=principal.actor
        )
    rt.key_cache.forget(key_id)
    if revoked and key_id == principal.key_id:
        log.warning("API key %s of tenant %s revoked itself", key_id, principal.tenant_id)
    return Response(status_code=204)
