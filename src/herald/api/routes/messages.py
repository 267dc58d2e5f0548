"""Messages by id: detail with attempts, cancel."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from herald.api.deps import CurrentPrincipal, RuntimeDep
from herald.api.routes.proactive import message_detail, message_out
from herald.api.schemas import MessageDetail, MessageOut
from herald.messaging import service

router = APIRouter(prefix="/api/v1/messages", tags=["messages"])


@router.get("/{message_id}", response_model=MessageDetail)
async def get_message(message_id: str, rt: RuntimeDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """A message with every delivery attempt (provider, outcome, error, duration)."""
    async with rt.sessions() as session:
        message = await service.get_message(session, principal.tenant_id, message_id)
        attempts = await service.attempts_of(session, message.id)
    return message_detail(message, attempts)


@router.post("/{message_id}/cancel", response_model=MessageOut)
async def cancel_message(message_id: str, rt: RuntimeDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """Cancel a message that is still queued or awaiting approval."""
    async with rt.sessions.begin() as session:
        return message_out(await service.cancel(session, principal, message_id))
