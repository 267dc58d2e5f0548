"""Interfaces: each channel's provider callbacks (``/api/v1/interfaces/{channel_id}/webhook``), status, and
enable/disable.

The webhook takes no tenant API key: each provider proves itself with its own signature, checked over the raw
body before anything is stored. It carries inbound messages (see :mod:`herald.producers.conversations`) and delivery
receipts (Twilio status callbacks, WhatsApp statuses, email events).
"""

from __future__ import annotations

import hmac
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request, Response
from fastapi.responses import PlainTextResponse

from herald.core.errors import Forbidden, NotFound, Unavailable
from herald.core.principal import Principal
from herald.humans import decisions
from herald.producers.conversations import service as conversations
from herald.producers.email import mailbox as mailboxes
from herald.providers import inbound_adapter, receipts_parser
from herald.providers.inbound import Reply
from herald.providers.receipts import CallbackRequest, apply
from herald.runtime import Runtime
from herald.web.api.contract import answers, errors
from herald.web.api.deps import CurrentPrincipal, RuntimeDep, read_capped
from herald.web.api.schemas import CallbackOut, InterfaceOut, Items

router = APIRouter(prefix="/api/v1/interfaces", tags=["provider callbacks"])

MAX_BODY = 1024 * 1024


def _public_url(rt: Runtime, request: Request) -> str:
    """The URL the provider called: behind a proxy, HERALD_PUBLIC_URL supplies scheme and host."""
    if rt.settings.public_url:
        query = f"?{request.url.query}" if request.url.query else ""
        return rt.settings.public_url.rstrip("/") + request.url.path + query
    return str(request.url)


@router.get("/{channel_id}/webhook", response_class=PlainTextResponse, responses=errors(403))
async def handshake(channel_id: str, request: Request, rt: RuntimeDep) -> str:
    """Meta's subscription check: echo ``hub.challenge`` when ``hub.verify_token`` matches the channel's."""
    _, credentials = await conversations.webhook_interface(rt, channel_id)
    params = request.query_params
    expected = str(credentials.get("verify_token") or "")
    given = params.get("hub.verify_token", "")
    matches = hmac.compare_digest(expected.encode(), given.encode())
    if params.get("hub.mode") != "subscribe" or not expected or not matches:
        raise Forbidden("hub.verify_token does not match")
    return params.get("hub.challenge", "")


@router.post("/{channel_id}/webhook", **answers(CallbackOut, also=(401, 413, 503)))
async def callback(channel_id: str, request: Request, rt: RuntimeDep) -> Any:
    """A provider's call: inbound messages (stored, then answered at once; routing follows in the background)
    and delivery receipts. A disabled interface answers 503 so the provider delivers again later."""
    row, credentials = await conversations.webhook_interface(rt, channel_id)
    adapter, parser = inbound_adapter(row.provider), receipts_parser(row.provider)
    if adapter is None and parser is None:
        raise NotFound(f"channel {channel_id} ({row.provider}) takes no callbacks")
    if not row.enabled:
        raise Unavailable(f"interface {channel_id} is disabled")
    body = await read_capped(request, MAX_BODY)
    form: dict[str, str] = {}
    if "application/x-www-form-urlencoded" in request.headers.get("content-type", ""):
        form = dict(parse_qsl(body.decode(errors="replace"), keep_blank_values=True))
    incoming = CallbackRequest(
        url=_public_url(rt, request),
        body=body,
        headers={k.lower(): v for k, v in request.headers.items()},
        form=form,
    )
    stored, parsed, ack = 0, 0, None
    if adapter is not None:
        result = adapter.receive(credentials, incoming)
        if isinstance(result, Reply):
            return Response(result.body, status_code=result.status, media_type=result.media_type)
        presses = [m for m in result if decisions.is_press(m)]
        if presses:  # decisions on Herald's own requests: taken now, never queued behind a conversation
            await decisions.humans(rt).take_presses(row, presses)
        rest = [m for m in result if not decisions.is_press(m)]
        parsed, stored = len(result), await conversations.store(rt, row, rest) + len(presses)
        ack = adapter.ack_for(result)
    updated, receipts = 0, []
    if parser is not None:
        receipts = await parser(credentials, incoming)
        if receipts:
            async with rt.sessions.begin() as session:
                updated = await apply(session, row.tenant_id, row.id, receipts)
    if parsed and ack is not None:
        return Response(ack.body, status_code=ack.status, media_type=ack.media_type)
    answer = {"received": len(receipts), "updated": updated}
    if parsed:
        answer["messages"] = stored
    return answer


@router.get("", **answers(Items[InterfaceOut]))
async def list_interfaces(rt: RuntimeDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """Every channel with its state: enabled, circuit, last traffic each way, throughput in the last hour, and an
    email interface's mailbox (last poll, last error, messages today)."""
    async with rt.sessions() as session:
        rows = await conversations.list_interfaces(session, principal.tenant_id)
        items = await conversations.interface_status(session, rows)
        boxes = await mailboxes.views_for_channels(session, [r.id for r in rows])
    return {"items": [item | {"mailbox": boxes.get(item["id"])} for item in items]}


@router.post("/{channel_id}/enable", **answers(InterfaceOut))
async def enable(channel_id: str, rt: RuntimeDep, principal: CurrentPrincipal) -> dict[str, Any]:
    return await _set_enabled(rt, principal, channel_id, enabled=True)


@router.post("/{channel_id}/disable", **answers(InterfaceOut))
async def disable(channel_id: str, rt: RuntimeDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """Stop sending and taking webhooks at once; queued messages wait, providers redeliver later."""
    return await _set_enabled(rt, principal, channel_id, enabled=False)


async def _set_enabled(
    rt: Runtime, principal: Principal, channel_id: str, *, enabled: bool
) -> dict[str, Any]:
    async with rt.sessions.begin() as session:
        row = await conversations.set_enabled(rt, session, principal, channel_id, enabled)
        out = (await conversations.interface_status(session, [row]))[0]
    # Again after the commit: a webhook in between may have cached the old state.
    rt.forget_channel(channel_id)
    return out
