"""Delivering events to subscribers, at least once, without slowing message delivery.

Every state change writes an event row in its own transaction. The fan-out reads the events table in id order
(ids are time-ordered) behind a short settle time, so an event whose transaction commits a little late is not
skipped, and creates one delivery per matching subscription (unique per subscription and event). The sender
claims due deliveries (``FOR UPDATE SKIP LOCKED``), POSTs them signed in the Standard Webhooks format with the
event id as ``webhook-id``, and retries on the Standard Webhooks schedule (about a day); 410 disables the
subscription. It runs in its own loop, apart from the message worker.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import httpx
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from herald.core.background import Loop
from herald.core.ids import new_id
from herald.core.netguard import BlockedDestination
from herald.core.security import standard_webhook_signature
from herald.events import feed
from herald.providers.base import parse_retry_after
from herald.storage import claims
from herald.storage.models import Event, EventDelivery, EventSubscription
from herald.storage.types import utcnow

if TYPE_CHECKING:
    from herald.runtime import Runtime

log = logging.getLogger(__name__)
SETTLE = timedelta(seconds=10)
RETRY_SCHEDULE = (5, 300, 1800, 7200, 18_000, 36_000, 50_400, 72_000, 86_400)  # seconds after each failure
CURSOR = "subscriptions"
LEASE = timedelta(minutes=2)  # a delivery being sent is not due again before this


async def fan_out(rt: Runtime, *, limit: int = 2000) -> int:
    """Turn new events into deliveries for matching subscriptions; returns how many events were read."""
    async with rt.sessions.begin() as session:
        batch = await feed.claim(session, rt.dialect, CURSOR, settle=SETTLE, limit=limit)
        events = batch.events
        batch.advance()
        if not events:
            return 0
        tenants = {e.tenant_id for e in events}
        subscriptions = list(
            (
                await session.execute(
                    select(EventSubscription).where(
                        EventSubscription.tenant_id.in_(tenants), EventSubscription.status == "active"
                    )
                )
            ).scalars()
        )
        rows = [
            {
                "id": new_id("dlv"),
                "tenant_id": e.tenant_id,
                "subscription_id": s.id,
                "event_id": e.id,
                "event_type": e.type,
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": e.created_at,
                "created_at": utcnow(),
            }
            for e in events
            for s in subscriptions
            if s.tenant_id == e.tenant_id and (not s.event_types or e.type in s.event_types)
        ]
        if rows:
            insert = pg_insert if rt.dialect == "postgresql" else sqlite_insert
            await session.execute(insert(EventDelivery).values(rows).on_conflict_do_nothing())
    return len(events)


async def send_due(rt: Runtime, *, limit: int = 100) -> int:
    """Send deliveries that are due; returns how many were tried."""
    now = utcnow()
    due = (
        select(EventDelivery.id)
        .where(EventDelivery.status == "pending", EventDelivery.next_attempt_at <= now)
        .order_by(EventDelivery.next_attempt_at)
        .limit(limit)
    )
    async with rt.sessions.begin() as session:
        # Lease them: push the next attempt out so another sender leaves them alone while we try.
        ids = await claims.claim(session, due, lease=claims.Stamp(next_attempt_at=now + LEASE))
    if not ids:
        return 0
    await asyncio.gather(*(_send_one(rt, delivery_id) for delivery_id in ids))
    return len(ids)


async def _send_one(rt: Runtime, delivery_id: str) -> None:
    async with rt.sessions() as session:
        delivery = await session.get(EventDelivery, delivery_id)
        if delivery is None:
            return
        event = await session.get(Event, delivery.event_id)
        subscription = await session.get(EventSubscription, delivery.subscription_id)
    if event is None or subscription is None or subscription.status != "active":
        await _finish(rt, delivery_id, status="failed", error="subscription or event gone")
        return
    secret = str(rt.credentials.open(subscription.secret)["secret"])
    stamp = int(utcnow().timestamp())
    body = json.dumps(
        {"type": event.type, "timestamp": event.created_at.isoformat(),
         "data": {"id": event.subject_id, **event.data}},
        separators=(",", ":"), default=str,
    ).encode()  # fmt: skip
    headers = {
        "content-type": "application/json", "webhook-id": event.id, "webhook-timestamp": str(stamp),
        "webhook-signature": standard_webhook_signature(secret, event.id, stamp, body),
    }  # fmt: skip
    code: int | None = None
    retry_after: float | None = None
    try:
        response = await rt.http.post(subscription.url, content=body, headers=headers, follow_redirects=False)
        code = response.status_code
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        error = None if 200 <= code < 300 else f"HTTP {code}"
    except BlockedDestination as exc:  # permanent: retrying cannot help until the allow-list changes
        await _finish(rt, delivery_id, status="failed", error=str(exc))
        return
    except httpx.HTTPError as exc:
        error = f"unreachable: {type(exc).__name__}"
    if error is None:
        await _finish(rt, delivery_id, status="delivered", code=code)
    elif code == 410:
        await _finish(rt, delivery_id, status="failed", code=code, error="410 Gone: subscription disabled")
        async with rt.sessions.begin() as session:
            await session.execute(
                update(EventSubscription)
                .where(EventSubscription.id == subscription.id)
                .values(status="disabled")
            )
    else:
        await _retry(rt, delivery_id, code, error, retry_after)


async def _finish(
    rt: Runtime, delivery_id: str, *, status: str, code: int | None = None, error: str | None = None
) -> None:
    values: dict[str, Any] = {"status": status, "last_status_code": code, "last_error": error,
                              "attempts": EventDelivery.attempts + 1, "next_attempt_at": None}  # fmt: skip
    if status == "delivered":
        values["delivered_at"] = utcnow()
    async with rt.sessions.begin() as session:
        await session.execute(update(EventDelivery).where(EventDelivery.id == delivery_id).values(**values))


async def _retry(
    rt: Runtime, delivery_id: str, code: int | None, error: str, retry_after: float | None
) -> None:
    async with rt.sessions.begin() as session:
        delivery = await session.get(EventDelivery, delivery_id)
        if delivery is None:
            return
        attempt = delivery.attempts + 1
        delivery.attempts = attempt
        delivery.last_status_code = code
        delivery.last_error = error
        if attempt > len(RETRY_SCHEDULE):
            delivery.status = "failed"
            delivery.next_attempt_at = None
            return
        wait = float(RETRY_SCHEDULE[attempt - 1])
        if retry_after is not None:
            wait = max(wait, min(retry_after, 86_400.0))
        delivery.next_attempt_at = utcnow() + timedelta(seconds=wait)


async def dispatch(rt: Runtime) -> int:
    """One pass: fan new events out to subscriptions, then send what is due; returns how much it did."""
    return await fan_out(rt) + await send_due(rt)


# Any work at all runs the pass again at once: a fan-out makes deliveries that are due now.
LOOPS = (Loop("event deliveries", "scheduler", run_pass=dispatch, interval=1.0, batch=1),)
