"""Event subscriptions: ``/api/v1/event-subscriptions`` and each one's delivery log."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import AnyHttpUrl, Field
from sqlalchemy.ext.asyncio import AsyncSession

from herald.api.deps import CurrentPrincipal, Cursor, Limit, RuntimeDep
from herald.api.idempotency import create_once
from herald.api.schemas import Strict, page
from herald.events import subscriptions
from herald.storage.models import EventDelivery, EventSubscription

router = APIRouter(prefix="/api/v1/event-subscriptions", tags=["events"])


class SubscriptionCreate(Strict):
    url: AnyHttpUrl
    event_types: list[str] = Field(default_factory=list, max_length=50)


def subscription_out(row: EventSubscription, secret: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"id": row.id, "url": row.url, "event_types": row.event_types, "status": row.status,
                            "created_at": row.created_at.isoformat()}  # fmt: skip
    if secret is not None:
        body["secret"] = secret
    return body


def delivery_out(row: EventDelivery) -> dict[str, Any]:
    return {
        "id": row.id, "event_id": row.event_id, "event_type": row.event_type, "status": row.status,
        "attempts": row.attempts, "last_status_code": row.last_status_code, "last_error": row.last_error,
        "next_attempt_at": row.next_attempt_at.isoformat() if row.next_attempt_at else None,
        "delivered_at": row.delivered_at.isoformat() if row.delivered_at else None,
    }  # fmt: skip


@router.post("", status_code=201)
async def create(
    body: SubscriptionCreate, request: Request, rt: RuntimeDep, principal: CurrentPrincipal
) -> JSONResponse:
    """Subscribe a URL to event types (none: all); the signing secret is in this answer only."""

    async def make(session: AsyncSession) -> dict[str, Any]:
        row, secret = await subscriptions.create(
            rt, session, principal, url=str(body.url), event_types=body.event_types
        )
        return subscription_out(row, secret)

    return await create_once(rt, principal, request, body.model_dump(mode="json"), make)


@router.get("")
async def list_subscriptions(
    rt: RuntimeDep, principal: CurrentPrincipal, limit: Limit = 100, cursor: Cursor = None
) -> dict[str, Any]:
    async with rt.sessions() as session:
        rows = await subscriptions.list_all(session, principal.tenant_id, limit=limit, cursor=cursor)
    return page([subscription_out(r) for r in rows], limit)


@router.delete("/{subscription_id}", status_code=204)
async def delete(subscription_id: str, rt: RuntimeDep, principal: CurrentPrincipal) -> Response:
    async with rt.sessions.begin() as session:
        await subscriptions.delete(session, principal, subscription_id)
    return Response(status_code=204)


@router.get("/{subscription_id}/deliveries")
async def deliveries(
    subscription_id: str,
    rt: RuntimeDep,
    principal: CurrentPrincipal,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> dict[str, Any]:
    async with rt.sessions() as session:
        rows = await subscriptions.deliveries(
            session, principal.tenant_id, subscription_id, limit=limit, cursor=cursor
        )
    return page([delivery_out(r) for r in rows], limit)
