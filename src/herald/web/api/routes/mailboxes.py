"""Mailboxes: an email interface's inbound IMAP mailbox (``/api/v1/interfaces/{channel_id}/mailbox``).

Admin keys only: a mailbox carries a password or an OAuth2 token for somebody's email. The secret is write-only
and sealed; answers show the settings and the state (last poll, last error, messages today, position, mode).
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from pydantic import Field

from herald.core.errors import Forbidden
from herald.core.principal import Principal
from herald.producers.email import mailbox as service
from herald.web.api.contract import errors
from herald.web.api.deps import CurrentPrincipal, RuntimeDep
from herald.web.api.schemas import MailboxOut, Strict

router = APIRouter(prefix="/api/v1/interfaces", tags=["mailboxes"])


class MailboxPut(Strict):
    host: str = Field(min_length=1, max_length=255, description="the IMAP server, e.g. imap.gmail.com")
    port: int | None = Field(default=None, ge=1, le=65535, description="default 993 with tls, 143 otherwise")
    security: Literal["tls", "starttls", "none"] = Field(
        default="tls", description="none only to a server on loopback, or in development"
    )
    username: str = Field(min_length=1, max_length=320)
    password: str | None = Field(
        default=None, max_length=1000, description="write-only; or give oauth2_token. Omit both to keep the stored "
        "one (same host, port and username only)",
    )  # fmt: skip
    oauth2_token: str | None = Field(
        default=None, max_length=8000, description="an OAuth2 access token, sent with AUTHENTICATE XOAUTH2 "
        "(Gmail, Microsoft 365); write-only",
    )  # fmt: skip
    folder: str = Field(default="INBOX", min_length=1, max_length=200)
    poll_interval_seconds: int = Field(
        default=service.DEFAULT_POLL_SECONDS,
        description=f"between {service.MIN_POLL_SECONDS} and {service.MAX_POLL_SECONDS}; used when the server "
        "offers no IDLE or idle is false",
    )
    idle: bool = Field(default=True, description="use IMAP IDLE when the server offers it")
    after_processing: Literal["flag", "move"] = Field(
        default="flag", description="flag: set \\Seen and the $Herald keyword; move: move to move_to"
    )
    move_to: str | None = Field(default=None, max_length=200)
    ca_cert: str | None = Field(
        default=None, max_length=20_000, description="PEM certificate to trust instead of the system's roots"
    )


def _require_admin(principal: Principal) -> None:
    if not principal.is_admin:
        raise Forbidden("a mailbox needs an admin API key")


@router.put(
    "/{channel_id}/mailbox",
    response_model=None,
    responses={200: {"model": MailboxOut, "description": "replaced"},
               201: {"model": MailboxOut, "description": "created"}, **errors(403)},
)  # fmt: skip
async def put_mailbox(
    channel_id: str, body: MailboxPut, rt: RuntimeDep, principal: CurrentPrincipal
) -> JSONResponse:
    """Create or replace the interface's mailbox. The server is tried first (connect, log in, open the folder):
    a 422 names the field at fault with the server's reason."""
    _require_admin(principal)
    settings = service.MailboxSettings(**body.model_dump())
    async with rt.sessions.begin() as session:
        row, created = await service.put_mailbox(rt, session, principal, channel_id, settings)
        out = await _out(session, row)
    return JSONResponse(out, status_code=201 if created else 200)


@router.get("/{channel_id}/mailbox", response_model=MailboxOut, responses=errors(403))
async def get_mailbox(channel_id: str, rt: RuntimeDep, principal: CurrentPrincipal) -> dict[str, Any]:
    _require_admin(principal)
    async with rt.sessions() as session:
        row = await service.get_mailbox(session, principal.tenant_id, channel_id)
        return await _out(session, row)


@router.delete("/{channel_id}/mailbox", status_code=204, responses=errors(403))
async def delete_mailbox(channel_id: str, rt: RuntimeDep, principal: CurrentPrincipal) -> Response:
    """Stop following the mailbox and forget its position; the mail stays on the server."""
    _require_admin(principal)
    async with rt.sessions.begin() as session:
        await service.delete_mailbox(session, principal, channel_id)
    return Response(status_code=204)


async def _out(session: Any, row: Any) -> dict[str, Any]:
    today = await service.messages_today(session, [row.id])
    return MailboxOut.model_validate(service.view(row, today.get(row.id, 0))).model_dump(mode="json")
