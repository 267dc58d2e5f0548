"""Mailboxes: an email interface's inbound IMAP mailbox, its settings (validated, the server probed on save, the
password or OAuth2 bearer sealed and never shown) and its state (position, last poll, last error).

An email interface is a channel whose platform is email (providers smtp, sendgrid, resend); it has at most one
mailbox. :mod:`herald.producers.email.imap` follows it.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import datetime, time
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from herald.core.errors import NotFound, ValidationFailed
from herald.core.ids import new_id
from herald.core.principal import Principal
from herald.producers.email import client as imap_client
from herald.storage.audit import audit_row
from herald.storage.models import AuditEntry, Channel, Mailbox, MailboxMessage
from herald.storage.queries import owned
from herald.storage.types import utcnow

if TYPE_CHECKING:
    from herald.runtime import Runtime

EMAIL_PROVIDERS = ("smtp", "sendgrid", "resend")
SECURITIES = ("tls", "starttls", "none")
DEFAULT_POLL_SECONDS = 60  # seed 004 polls its inbox every 60 s
MIN_POLL_SECONDS = 10  # below this a poll costs the server more than it gains anyone
MAX_POLL_SECONDS = 86_400
PROBE_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class MailboxSettings:
    """What a PUT gives, before validation. ``password`` and ``oauth2_token`` are write-only; both None keeps the
    stored one (same host, port and username only)."""

    host: str
    port: int | None = None
    security: str = "tls"
    username: str = ""
    password: str | None = None
    oauth2_token: str | None = None
    folder: str = "INBOX"
    poll_interval_seconds: int = DEFAULT_POLL_SECONDS
    idle: bool = True
    after_processing: str = "flag"
    move_to: str | None = None
    ca_cert: str | None = None

    def __repr__(self) -> str:  # never the secrets
        return f"MailboxSettings({self.username}@{self.host}:{self.port}, {self.security}, {self.folder})"


def default_port(security: str) -> int:
    return 993 if security == "tls" else 143


def server_of(rt: Runtime, row: Mailbox) -> imap_client.Server:
    """The row's server, with its secret opened."""
    sealed = rt.credentials.open(row.credentials)
    secret = str(sealed.get("oauth2_token") or sealed.get("password") or "")
    return imap_client.Server(
        host=row.host, port=row.port, security=row.security, username=row.username, auth=row.auth,
        secret=secret, ca_cert=sealed.get("ca_cert") or None,
    )  # fmt: skip


async def email_interface(session: AsyncSession, tenant_id: str, channel_id: str) -> Channel:
    """The tenant's channel ``channel_id`` (404 otherwise), which must be an email interface (422 naming
    channel_id otherwise)."""
    channel = await owned(session, Channel, tenant_id, channel_id, "interface")
    if channel.platform != "email" or channel.provider not in EMAIL_PROVIDERS:
        raise ValidationFailed(
            f"interface {channel_id} is {channel.platform} through {channel.provider}; a mailbox belongs to an "
            f"email interface ({', '.join(EMAIL_PROVIDERS)})",
            field="channel_id",
        )
    return channel


async def find(session: AsyncSession, channel_id: str) -> Mailbox | None:
    return (
        await session.execute(select(Mailbox).where(Mailbox.channel_id == channel_id))
    ).scalar_one_or_none()


async def get_mailbox(session: AsyncSession, tenant_id: str, channel_id: str) -> Mailbox:
    channel = await owned(session, Channel, tenant_id, channel_id, "interface")
    row = await find(session, channel.id)
    if row is None:
        raise NotFound(f"interface {channel_id} has no mailbox")
    return row


async def put_mailbox(
    rt: Runtime, session: AsyncSession, principal: Principal, channel_id: str, given: MailboxSettings
) -> tuple[Mailbox, bool]:
    """Create or replace the interface's mailbox: validate, check the host with the outbound guard, probe the
    server (connect, authenticate, select the folder; a 422 naming the field with the server's reason), then
    store the secret sealed. Returns the row and whether it is new. A different host, username or folder starts
    the position afresh."""
    channel = await email_interface(session, principal.tenant_id, channel_id)
    existing = await find(session, channel.id)
    values = _validated(rt, given)
    secrets = _secrets(rt, given, values, existing)
    await rt.outbound.validate_host(values["host"], values["port"], field="host")
    await probe(rt, values, secrets)
    now = utcnow()
    sealed = rt.credentials.seal(secrets)
    auth = "oauth2" if secrets.get("oauth2_token") else "password"
    if existing is None:
        row = Mailbox(
            id=new_id("mbx"), tenant_id=channel.tenant_id, channel_id=channel.id, auth=auth, credentials=sealed,
            created_at=now, updated_at=now, last_uid=0, failures=0, **values,
        )  # fmt: skip
        session.add(row)
    else:
        row = existing
        moved = (row.host, row.username, row.folder) != (values["host"], values["username"], values["folder"])
        for key, value in values.items():
            setattr(row, key, value)
        row.auth, row.credentials, row.updated_at = auth, sealed, now
        row.last_error, row.last_error_at, row.failures = None, None, 0
        if moved:  # another mailbox altogether: its UIDs mean nothing here
            row.uidvalidity, row.last_uid, row.mode = None, 0, None
    await session.flush()
    detail = {"host": row.host, "folder": row.folder, "auth": auth, "security": row.security}
    action = "mailbox.created" if existing is None else "mailbox.replaced"
    await session.execute(
        insert(AuditEntry),
        [audit_row(principal.tenant_id, principal.actor, action, "mailbox", row.id, detail)],
    )
    return row, existing is None


async def delete_mailbox(session: AsyncSession, principal: Principal, channel_id: str) -> None:
    row = await get_mailbox(session, principal.tenant_id, channel_id)
    await session.execute(delete(MailboxMessage).where(MailboxMessage.mailbox_id == row.id))
    await session.execute(delete(Mailbox).where(Mailbox.id == row.id))
    await session.execute(
        insert(AuditEntry),
        [audit_row(principal.tenant_id, principal.actor, "mailbox.deleted", "mailbox", row.id,
                   {"channel_id": channel_id})],
    )  # fmt: skip


def _validated(rt: Runtime, given: MailboxSettings) -> dict[str, Any]:
    host = given.host.strip().strip("[]").rstrip(".").lower()
    if not host or any(c.isspace() or c in "/@?#" for c in host):
        raise ValidationFailed("must be a host name or an IP address", field="host")
    if given.security not in SECURITIES:
        raise ValidationFailed(f"must be one of {', '.join(SECURITIES)}", field="security")
    if given.security == "none" and not (rt.settings.is_development or _loopback(host)):
        raise ValidationFailed(
            "an unencrypted connection sends the password in clear: use tls or starttls (none is only for a "
            "server on loopback, or in development)",
            field="security",
        )
    port = given.port if given.port is not None else default_port(given.security)
    if not 1 <= port <= 65535:
        raise ValidationFailed("must be between 1 and 65535", field="port")
    username = given.username.strip()
    if not username or _control(username):
        raise ValidationFailed("must not be empty", field="username")
    folder = _folder(given.folder, "folder")
    if not MIN_POLL_SECONDS <= given.poll_interval_seconds <= MAX_POLL_SECONDS:
        raise ValidationFailed(
            f"must be between {MIN_POLL_SECONDS} and {MAX_POLL_SECONDS} seconds",
            field="poll_interval_seconds",
        )
    if given.after_processing not in ("flag", "move"):
        raise ValidationFailed("must be flag or move", field="after_processing")
    move_to = None
    if given.after_processing == "move":
        if not given.move_to:
            raise ValidationFailed("a folder to move processed messages to is required", field="move_to")
        move_to = _folder(given.move_to, "move_to")
        if move_to == folder:
            raise ValidationFailed("must differ from folder", field="move_to")
    elif given.move_to:
        raise ValidationFailed("only with after_processing move", field="move_to")
    return {
        "host": host, "port": port, "security": given.security, "username": username, "folder": folder,
        "poll_interval_seconds": given.poll_interval_seconds, "idle": given.idle,
        "after_processing": given.after_processing, "move_to": move_to,
    }  # fmt: skip


def _secrets(
    rt: Runtime, given: MailboxSettings, values: dict[str, Any], existing: Mailbox | None
) -> dict[str, Any]:
    if given.password and given.oauth2_token:
        raise ValidationFailed("give a password or an oauth2_token, not both", field="oauth2_token")
    if given.password is not None and (not given.password or _control(given.password)):
        raise ValidationFailed("must not be empty", field="password")
    if given.oauth2_token is not None and (not given.oauth2_token.strip() or _control(given.oauth2_token)):
        raise ValidationFailed("must not be empty", field="oauth2_token")
    ca_cert = given.ca_cert.strip() if given.ca_cert else None
    if ca_cert:
        imap_client.tls_context(ca_cert)  # raises naming ca_cert
    if given.password:
        return {"password": given.password, "ca_cert": ca_cert}
    if given.oauth2_token:
        return {"oauth2_token": given.oauth2_token.strip(), "ca_cert": ca_cert}
    same_place = existing is not None and (existing.host, existing.port, existing.username) == (
        values["host"], values["port"], values["username"],
    )  # fmt: skip
    if existing is None or not same_place:
        # The stored secret never goes to another server or account than the one it was given for.
        raise ValidationFailed("a password or an oauth2_token is required", field="password")
    kept = rt.credentials.open(existing.credentials)
    return {k: v for k, v in kept.items() if k != "ca_cert"} | {"ca_cert": ca_cert or kept.get("ca_cert")}


async def probe(rt: Runtime, values: dict[str, Any], secrets: dict[str, Any]) -> None:
    """Connect, authenticate and select the folder (and check move_to exists); a 422 naming the field at fault."""
    server = imap_client.Server(
        host=values["host"], port=values["port"], security=values["security"], username=values["username"],
        auth="oauth2" if secrets.get("oauth2_token") else "password",
        secret=str(secrets.get("oauth2_token") or secrets.get("password")), ca_cert=secrets.get("ca_cert"),
    )  # fmt: skip
    try:
        session = await imap_client.open_session(
            server, rt.outbound, command_timeout=PROBE_TIMEOUT, folder=values["folder"]
        )
        try:
            if values["move_to"] and not await session.folder_exists(values["move_to"]):
                raise imap_client.ImapError(f"no folder {values['move_to']!r} on the server", field="move_to")
        finally:
            await session.close()
    except imap_client.ImapError as exc:
        raise ValidationFailed(exc.reason, field=exc.field) from None
    except TimeoutError:
        raise ValidationFailed("the server did not answer in time", field="host") from None


def _folder(name: str, field: str) -> str:
    name = name.strip()
    if not name or _control(name) or not name.isascii() or len(name) > 200:
        raise ValidationFailed(
            "must be a folder name in printable ASCII (INBOX, Leads, Archive/2026)", field=field
        )
    return "INBOX" if name.upper() == "INBOX" else name


def _control(text: str) -> bool:
    return any(ord(c) < 32 or ord(c) == 127 for c in text)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# -- state ----------------------------------------------------------------------------------------------------


def mode_of(row: Mailbox) -> str:
    """idle or poll: what the follower does (once connected), or what it will try."""
    return row.mode or ("idle" if row.idle else "poll")


async def messages_today(session: AsyncSession, mailbox_ids: list[str]) -> dict[str, int]:
    """Messages taken from each mailbox since midnight UTC."""
    if not mailbox_ids:
        return {}
    midnight = datetime.combine(utcnow().date(), time(0), tzinfo=utcnow().tzinfo)
    query = (
        select(MailboxMessage.mailbox_id, func.count())
        .where(MailboxMessage.mailbox_id.in_(mailbox_ids), MailboxMessage.created_at >= midnight,
               MailboxMessage.status.not_in(("skipped", "stale")))
        .group_by(MailboxMessage.mailbox_id)
    )  # fmt: skip
    return {str(mailbox_id): int(count) for mailbox_id, count in (await session.execute(query)).all()}


def state(row: Mailbox, today: int) -> dict[str, Any]:
    return {
        "last_poll_at": row.last_poll_at, "last_error": row.last_error, "last_error_at": row.last_error_at,
        "messages_today": today, "uidvalidity": row.uidvalidity, "last_uid": row.last_uid, "mode": mode_of(row),
        "following": row.lease_until is not None and row.lease_until > utcnow(),
    }  # fmt: skip


def view(row: Mailbox, today: int) -> dict[str, Any]:
    """The mailbox as answers show it: settings without any secret, and its state."""
    return {
        "id": row.id, "channel_id": row.channel_id, "host": row.host, "port": row.port, "security": row.security,
        "username": row.username, "auth": row.auth, "folder": row.folder,
        "poll_interval_seconds": row.poll_interval_seconds, "idle": row.idle,
        "after_processing": row.after_processing, "move_to": row.move_to, "created_at": row.created_at,
        "updated_at": row.updated_at, "state": state(row, today),
    }  # fmt: skip


async def views_for_channels(session: AsyncSession, channel_ids: list[str]) -> dict[str, dict[str, Any]]:
    """channel id -> its mailbox's :func:`view`, for the channels that have one (the interfaces list)."""
    if not channel_ids:
        return {}
    rows = list((await session.execute(select(Mailbox).where(Mailbox.channel_id.in_(channel_ids)))).scalars())
    today = await messages_today(session, [r.id for r in rows])
    return {r.channel_id: view(r, today.get(r.id, 0)) for r in rows}
