"""Configured channels. Credentials are write-only: responses name the fields that are set, never values."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from herald.api.deps import CurrentPrincipal, Cursor, Limit, RuntimeDep
from herald.api.idempotency import create_once
from herald.api.schemas import ChannelCreate, ChannelOut, page
from herald.channels import service
from herald.runtime import Runtime
from herald.storage.models import Channel

router = APIRouter(prefix="/api/v1/channels", tags=["channels"])


def channel_out(rt: Runtime, row: Channel) -> dict[str, Any]:
    return ChannelOut(
        id=row.id, platform=row.platform, provider=row.provider, name=row.name, base_url=row.base_url,
        is_default=row.is_default, credentials_set=service.credential_names(rt, row), created_at=row.created_at,
    ).model_dump(mode="json")  # fmt: skip


@router.post("", status_code=201, response_model=ChannelOut)
async def create_channel(
    body: ChannelCreate, request: Request, rt: RuntimeDep, principal: CurrentPrincipal
) -> JSONResponse:
    async def create(session: AsyncSession) -> dict[str, Any]:
        row = await service.create_channel(
            rt, session, principal, platform=body.platform, provider=body.provider, name=body.name,
            credentials=body.credentials, base_url=str(body.base_url).rstrip("/") if body.base_url else None,
            is_default=body.is_default,
        )  # fmt: skip
        return channel_out(rt, row)

    # The fingerprint must not keep credentials in clear: hash over the body as sent, stored only as a digest.
    return await create_once(rt, principal, request, body.model_dump(mode="json"), create)


@router.get("")
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
    return page([channel_out(rt, r) for r in rows], limit)


@router.get("/{channel_id}", response_model=ChannelOut)
async def get_channel(channel_id: str, rt: RuntimeDep, principal: CurrentPrincipal) -> dict[str, Any]:
    async with rt.sessions() as session:
        return channel_out(rt, await service.get_channel(session, principal.tenant_id, channel_id))


@router.delete("/{channel_id}", status_code=204)
async def delete_channel(channel_id: str, rt: RuntimeDep, principal: CurrentPrincipal) -> Response:
    async with rt.sessions.begin() as session:
        await service.delete_channel(rt, session, principal, channel_id)
    return Response(status_code=204)
