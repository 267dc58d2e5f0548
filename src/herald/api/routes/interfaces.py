"""Provider callbacks per channel: ``/api/v1/interfaces/{channel_id}/webhook``.

No tenant API key here: each provider proves itself with its own signature, checked over the raw body before
anything is stored. For now this carries delivery receipts (Twilio status callbacks, WhatsApp statuses); inbound
conversations arrive on the same URL later.
"""

from __future__ import annotations

import hmac
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse
from sqlalchemy import select

from herald.api.deps import RuntimeDep
from herald.errors import ContentTooLarge, Forbidden, NotFound
from herald.receipts import CallbackRequest, Parser, apply, email, meta, twilio
from herald.runtime import Runtime
from herald.storage.models import Channel

router = APIRouter(prefix="/api/v1/interfaces", tags=["provider callbacks"])

PARSERS: dict[str, Parser] = {
    "twilio": twilio.parse,
    "whatsapp_cloud": meta.parse,
    "sendgrid": email.parse_sendgrid,
    "resend": email.parse_resend,
}
MAX_BODY = 1024 * 1024


async def _channel(rt: Runtime, channel_id: str) -> tuple[Channel, dict[str, Any]]:
    async with rt.sessions() as session:
        row = (await session.execute(select(Channel).where(Channel.id == channel_id))).scalar_one_or_none()
    if row is None:
        raise NotFound(f"no channel {channel_id!r}")
    return row, rt.credentials.open(row.credentials)


def _public_url(rt: Runtime, request: Request) -> str:
    """The URL the provider called: behind a proxy, HERALD_PUBLIC_URL supplies scheme and host."""
    if rt.settings.public_url:
        query = f"?{request.url.query}" if request.url.query else ""
        return rt.settings.public_url.rstrip("/") + request.url.path + query
    return str(request.url)


@router.get("/{channel_id}/webhook", response_class=PlainTextResponse)
async def handshake(channel_id: str, request: Request, rt: RuntimeDep) -> str:
    """Meta's subscription check: echo ``hub.challenge`` when ``hub.verify_token`` matches the channel's."""
    _, credentials = await _channel(rt, channel_id)
    params = request.query_params
    expected = str(credentials.get("verify_token") or "")
    given = params.get("hub.verify_token", "")
    if params.get("hub.mode") != "subscribe" or not expected or not hmac.compare_digest(expected, given):
        raise Forbidden("hub.verify_token does not match")
    return params.get("hub.challenge", "")


@router.post("/{channel_id}/webhook")
async def callback(channel_id: str, request: Request, rt: RuntimeDep) -> dict[str, int]:
    row, credentials = await _channel(rt, channel_id)
    parser = PARSERS.get(row.provider)
    if parser is None:
        raise NotFound(f"channel {channel_id} ({row.provider}) takes no callbacks")
    body = await request.body()
    if len(body) > MAX_BODY:
        raise ContentTooLarge(f"body is over {MAX_BODY} bytes")
    form: dict[str, str] = {}
    if "application/x-www-form-urlencoded" in request.headers.get("content-type", ""):
        form = dict(parse_qsl(body.decode(errors="replace"), keep_blank_values=True))
    incoming = CallbackRequest(
        url=_public_url(rt, request),
        body=body,
        headers={k.lower(): v for k, v in request.headers.items()},
        form=form,
    )
    receipts = await parser(credentials, incoming)
    async with rt.sessions.begin() as session:
        updated = await apply(session, row.tenant_id, row.id, receipts)
    return {"received": len(receipts), "updated": updated}
