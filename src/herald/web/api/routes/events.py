"""Events: subscriptions (``/api/v1/event-subscriptions``) with their delivery logs, the event list and the
live stream (``/api/v1/events``, ``/api/v1/events/stream``)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import AnyHttpUrl, Field
from sqlalchemy.ext.asyncio import AsyncSession

from herald.events import feed, subscriptions
from herald.events.bus import BusEvent
from herald.storage.models import EventDelivery, EventSubscription
from herald.web.api.contract import IDEMPOTENT, answers
from herald.web.api.deps import CurrentPrincipal, Cursor, Limit, RuntimeDep
from herald.web.api.idempotency import create_once
from herald.web.api.schemas import EventDeliveryOut, EventOut, Page, Strict, SubscriptionOut, page

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


@router.post("", status_code=201, **answers(SubscriptionOut, 201, also=(409,)), openapi_extra=IDEMPOTENT)
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


@router.get("", **answers(Page[SubscriptionOut]))
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


@router.get("/{subscription_id}/deliveries", **answers(Page[EventDeliveryOut]))
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


stream = APIRouter(prefix="/api/v1/events", tags=["events"])
KEEPALIVE_SECONDS = 15.0


@stream.get("", **answers(Page[EventOut]))
async def list_events(
    rt: RuntimeDep,
    principal: CurrentPrincipal,
    limit: Limit = 100,
    after: Annotated[str | None, Query(max_length=64, description="an event id: events after it")] = None,
    types: Annotated[str | None, Query(max_length=1000, description="comma-separated event types")] = None,
) -> dict[str, Any]:
    """The tenant's events, oldest first, after an event id: the same record subscriptions and the stream use."""
    async with rt.sessions() as session:
        rows = await feed.tenant_events(
            session, principal.tenant_id, after=after, types=_types(types), limit=limit
        )
    return {"items": [{"id": r.id, **BusEvent.of(r).body()} for r in rows],
            "next_cursor": rows[-1].id if len(rows) == limit else None}  # fmt: skip


@stream.get(
    "/stream",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "server-sent events",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        }
    },
)
async def stream_events(
    request: Request,
    rt: RuntimeDep,
    principal: CurrentPrincipal,
    types: Annotated[str | None, Query(max_length=1000, description="comma-separated event types")] = None,
    last_event_id: Annotated[str | None, Header(max_length=64)] = None,
) -> StreamingResponse:
    """Server-sent events as they happen; ``Last-Event-ID`` resumes after a reconnect without a gap."""
    wanted = _types(types)

    async def body() -> AsyncIterator[str]:
        async with rt.bus.subscribe(tenant_id=principal.tenant_id, types=wanted) as subscription:
            seen = last_event_id or ""
            while last_event_id:  # catch up from the table, page by page
                async with rt.sessions() as session:
                    missed = await feed.tenant_events(
                        session, principal.tenant_id, after=seen, types=wanted, limit=1000
                    )
                for row in missed:
                    seen = row.id
                    yield _sse(BusEvent.of(row))
                if len(missed) < 1000:
                    break
            yield ": connected\n\n"
            while not await request.is_disconnected():
                if subscription.dropped:
                    # This client fell behind and lost events: end the stream, so it reconnects with
                    # Last-Event-ID and catches up from the table instead of silently missing them.
                    yield ": fell behind; reconnect with Last-Event-ID\n\n"
                    return
                try:
                    event = await asyncio.wait_for(subscription.queue.get(), KEEPALIVE_SECONDS)
                except TimeoutError:
                    yield ": keepalive\n\n"
                    continue
                if event.id > seen:
                    yield _sse(event)

    headers = {"cache-control": "no-cache", "x-accel-buffering": "no"}
    return StreamingResponse(body(), media_type="text/event-stream", headers=headers)


def _types(types: str | None) -> frozenset[str]:
    return frozenset(t.strip() for t in (types or "").split(",") if t.strip())


def _sse(event: BusEvent) -> str:
    return f"id: {event.id}\nevent: {event.type}\ndata: {json.dumps(event.body(), default=str)}\n\n"
