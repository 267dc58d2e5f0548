"""Configured channels. Credentials are write-only: responses name the fields that are set, never values."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from herald.admin import channels as service
from herald.pipeline.routing import circuit
from herald.runtime import Runtime
from herald.storage.models import Channel
from herald.storage.types import utcnow
from herald.web.api.contract import IDEMPOTENT, answers, errors
from herald.web.api.deps import CurrentPrincipal, Cursor, Limit, RuntimeDep
from herald.web.api.idempotency import create_once
from herald.web.api.schemas import (
    ChannelCreate,
    ChannelOut,
    ChannelPatch,
    ChannelTest,
    ChannelTestOut,
    CircuitOut,
    Page,
    page,
)

router = APIRouter(prefix="/api/v1/channels", tags=["channels"])


def channel_out(rt: Runtime, row: Channel, health: circuit.CircuitView) -> dict[str, Any]:
    return ChannelOut(
        id=row.id, platform=row.platform, provider=row.provider, name=row.name, base_url=row.base_url,
        is_default=row.is_default, credentials_set=service.credential_names(rt, row),
        cost_per_message=row.cost_per_message, rate_per_second=row.rate_per_second,
        recipient_rate_per_second=row.recipient_rate_per_second,
        circuit=CircuitOut.model_validate(health, from_attributes=True), created_at=row.created_at,
    ).model_dump(mode="json")  # fmt: skip


async def channels_out(rt: Runtime, session: AsyncSession, rows: list[Channel]) -> list[dict[str, Any]]:
    health = await circuit.load(session, {r.id for r in rows}, utcnow())
    return [channel_out(rt, r, health[r.id]) for r in rows]


@router.post("", status_code=201, response_model=ChannelOut, responses=errors(409), openapi_extra=IDEMPOTENT)
async def create_channel(
    body: ChannelCreate, request: Request, rt: RuntimeDep, principal: CurrentPrincipal
) -> JSONResponse:
    async def create(session: AsyncSession) -> dict[str, Any]:
        row = await service.create_channel(
            rt, session, principal, platform=body.platform, provider=body.provider, name=body.name,
            credentials=body.credentials, base_url=str(body.base_url).rstrip("/") if body.base_url else None,
            is_default=body.is_default, cost_per_message=body.cost_per_message,
            rate_per_second=body.rate_per_second, recipient_rate_per_second=body.recipient_rate_per_second,
        )  # fmt: skip
        return (await channels_out(rt, session, [row]))[0]

    # The fingerprint must not keep credentials in clear: hash over the body as sent, stored only as a digest.
    return await create_once(rt, principal, request, body.model_dump(mode="json"), create)


@router.get("", **answers(Page[ChannelOut]))
async def list_channels(
    rt: RuntimeDep,
    principal: CurrentPrincipal,
    platform: str | None = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> dict[str, Any]:
    async with rt.sessions() as session:
        rows = await service.list_channels(
            session, principal.tenant_id, platform=platform, limit=limit, cursor=cursor
        )
        items = await channels_out(rt, session, rows)
    return page(items, limit)


@router.get("/{channel_id}", response_model=ChannelOut)
async def get_channel(channel_id: str, rt: RuntimeDep, principal: CurrentPrincipal) -> dict[str, Any]:
    async with rt.sessions() as session:
        row = await service.get_channel(session, principal.tenant_id, channel_id)
        return (await channels_out(rt, session, [row]))[0]


@router.patch("/{channel_id}", response_model=ChannelOut)
async def update_channel(
    channel_id: str, body: ChannelPatch, rt: RuntimeDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    """Change a channel in place (its id stays, so routing rules and interfaces keep it). ``credentials`` is
    partial: rotate one secret and the others stay."""
    async with rt.sessions.begin() as session:
        row = await service.update_channel(rt, session, principal, channel_id, body.changes())
        out = (await channels_out(rt, session, [row]))[0]
    # Again after the commit: a send or a webhook in between may have cached the old credentials.
    rt.forget_channel(channel_id)
    return out


@router.delete("/{channel_id}", status_code=204)
async def delete_channel(channel_id: str, rt: RuntimeDep, principal: CurrentPrincipal) -> Response:
    async with rt.sessions.begin() as session:
        await service.delete_channel(rt, session, principal, channel_id)
    return Response(status_code=204)


@router.post("/{channel_id}/test", response_model=ChannelTestOut)
async def test_channel(
    channel_id: str, body: ChannelTest, rt: RuntimeDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    """Send one test message through the channel now and report the provider's answer."""
    return await service.test_channel(
        rt, principal.tenant_id, channel_id,
        recipient_id=body.recipient_id, content=body.content, subject=body.subject,
    )  # fmt: skip
