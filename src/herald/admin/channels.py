"""Configured channels: create (credentials validated, then encrypted), list, change, delete."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from herald.core.errors import DeliveryError, RetryableDeliveryError, ValidationFailed
from herald.core.ids import new_id
from herald.core.platforms import PLATFORMS, recipient_problem
from herald.core.principal import Principal
from herald.pipeline.parts import Delivery
from herald.providers import OutboundMessage, provider_class, providers
from herald.providers.smtp.send import SmtpCredentials
from herald.storage.audit import audit_row
from herald.storage.models import AuditEntry
from herald.storage.models import Channel as ChannelRow
from herald.storage.queries import owned
from herald.storage.types import utcnow

if TYPE_CHECKING:
    from herald.runtime import Runtime

# The provider a channel gets when it names none (PROVIDERS.md); those not built yet are refused clearly.
DEFAULT_PROVIDER = {
    "slack": "slack", "discord": "discord_bot", "teams": "teams_workflow", "whatsapp": "whatsapp_cloud",
    "telegram": "telegram", "google_chat": "google_chat_webhook", "signal": "signal_cli_rest",
    "messenger": "messenger", "line": "line", "sms": "twilio", "voice": "twilio", "email": "smtp",
    "webhook": "webhook",
}  # fmt: skip


def _credentials_error(exc: ValidationError) -> ValidationFailed:
    first = exc.errors()[0]
    field = ".".join(["credentials", *(str(p) for p in first["loc"])])
    return ValidationFailed(str(first["msg"]).removeprefix("Value error, "), field=field)


async def _check_destinations(rt: Runtime, credentials: BaseModel, base_url: str | None) -> None:
    """Refuse now, naming the field, what the outbound guard would refuse at every send: the base URL, URLs in
    the credentials (webhooks) and an SMTP host."""
    if base_url:
        await rt.outbound.validate_url(base_url, field="base_url")
    for name, value in credentials.model_dump(mode="json").items():
        if isinstance(value, str) and value.lower().startswith(("http://", "https://")):
            await rt.outbound.validate_url(value, field=f"credentials.{name}")
    if isinstance(credentials, SmtpCredentials):
        await rt.outbound.validate_host(credentials.host, credentials.port, field="credentials.host")


async def create_channel(
    rt: Runtime,
    session: AsyncSession,
    principal: Principal,
    *,
    platform: str,
    provider: str | None,
    name: str,
    credentials: dict[str, Any],
    base_url: str | None,
    is_default: bool,
    cost_per_message: float = 0.0,
    rate_per_second: float | None = None,
    recipient_rate_per_second: float | None = None,
) -> ChannelRow:
    if platform not in PLATFORMS:
        raise ValidationFailed(
            f"unknown platform {platform!r}; one of: {', '.join(sorted(PLATFORMS))}", field="platform"
        )
    provider = provider or DEFAULT_PROVIDER[platform]
    if provider == "devinbox" and not rt.settings.is_development:
        # It keeps every message readable, as a provider would receive it: OTP codes included.
        raise ValidationFailed("the dev inbox is for development only", field="provider")
    cls = provider_class(provider)
    if cls is None:
        raise ValidationFailed(
            f"provider {provider!r} is not available in this Herald; available: {', '.join(providers())}",
            field="provider",
        )
    if not cls.serves(platform):
        raise ValidationFailed(
            f"provider {provider!r} does not serve platform {platform!r}", field="provider"
        )
    if cls.requires_base_url and not base_url:
        raise ValidationFailed(f"provider {provider!r} needs base_url: where its API runs", field="base_url")
    try:
        checked = cls.credentials_model.model_validate(credentials)
    except ValidationError as exc:
        raise _credentials_error(exc) from exc
    await _check_destinations(rt, checked, base_url)
    now = utcnow()
    if is_default:
        await session.execute(
            update(ChannelRow)
            .where(ChannelRow.tenant_id == principal.tenant_id, ChannelRow.platform == platform)
            .values(is_default=False)
        )
    row = ChannelRow(
        id=new_id("chn"),
        tenant_id=principal.tenant_id,
        platform=platform,
        provider=provider,
        name=name,
        credentials=rt.credentials.seal(checked.model_dump(mode="json")),
        base_url=base_url,
        is_default=is_default,
        cost_per_message=cost_per_message,
        rate_per_second=rate_per_second,
        recipient_rate_per_second=recipient_rate_per_second,
        created_at=now,
    )
    session.add(row)
    await session.flush()
    rt.lookups.clear()
    await session.execute(
        insert(AuditEntry),
        [
            audit_row(
                principal.tenant_id, principal.actor, "channel.created", "channel", row.id,
                {"platform": platform, "provider": provider, "is_default": is_default}, at=now,
            )
        ],
    )  # fmt: skip
    return row


def credential_names(rt: Runtime, row: ChannelRow) -> list[str]:
    """Which credential fields are set: names only, never values."""
    return sorted(rt.credentials.open(row.credentials))


async def get_channel(session: AsyncSession, tenant_id: str, channel_id: str) -> ChannelRow:
    return await owned(session, ChannelRow, tenant_id, channel_id, "channel")


async def list_channels(
    session: AsyncSession, tenant_id: str, *, platform: str | None, limit: int, cursor: str | None
) -> list[ChannelRow]:
    query = select(ChannelRow).where(ChannelRow.tenant_id == tenant_id)
    if platform is not None:
        query = query.where(ChannelRow.platform == platform)
    if cursor is not None:
        query = query.where(ChannelRow.id > cursor)
    return list((await session.execute(query.order_by(ChannelRow.id).limit(limit))).scalars())


# What a change may touch besides the credentials; platform and provider stay (another provider is another channel).
CHANGEABLE = (
    "name",
    "base_url",
    "is_default",
    "cost_per_message",
    "rate_per_second",
    "recipient_rate_per_second",
)


async def update_channel(
    rt: Runtime, session: AsyncSession, principal: Principal, channel_id: str, changes: dict[str, Any]
) -> ChannelRow:
    """Change a channel in place, so routing rules and interfaces that name its id keep working.

    ``changes`` holds only the fields sent. ``credentials`` is partial: merged over the stored ones and the whole
    validated by the provider's model, as a create validates them, so one secret is rotated without retyping the
    others (a key sent as null drops an optional credential). The audit row names the fields changed, never a
    value; the adapter and lookups this process cached are dropped (other processes' expire within seconds)."""
    row = await get_channel(session, principal.tenant_id, channel_id)
    cls = provider_class(row.provider)
    if cls is None:
        raise ValidationFailed(f"provider {row.provider!r} is not available in this Herald", field="provider")
    base_url = changes.get("base_url", row.base_url)
    if cls.requires_base_url and not base_url:
        raise ValidationFailed(
            f"provider {row.provider!r} needs base_url: where its API runs", field="base_url"
        )
    changed = [name for name in CHANGEABLE if name in changes and changes[name] != getattr(row, name)]
    sealed: bytes | None = None
    if "credentials" in changes:
        stored = rt.credentials.open(row.credentials)
        try:
            checked = cls.credentials_model.model_validate({**stored, **changes["credentials"]})
        except ValidationError as exc:
            raise _credentials_error(exc) from exc
        merged = checked.model_dump(mode="json")
        changed += sorted(
            f"credentials.{k}" for k in set(merged) | set(stored) if merged.get(k) != stored.get(k)
        )
        sealed = rt.credentials.seal(merged)
        await _check_destinations(rt, checked, base_url)
    elif "base_url" in changed and base_url:
        await rt.outbound.validate_url(base_url, field="base_url")
    if changes.get("is_default") and not row.is_default:
        await session.execute(
            update(ChannelRow)
            .where(ChannelRow.tenant_id == principal.tenant_id, ChannelRow.platform == row.platform)
            .values(is_default=False)
        )
    for name in CHANGEABLE:
        if name in changes:
            setattr(row, name, changes[name])
    if sealed is not None:
        row.credentials = sealed
    await session.flush()
    await session.execute(
        insert(AuditEntry),
        [
            audit_row(
                principal.tenant_id,
                principal.actor,
                "channel.updated",
                "channel",
                row.id,
                {"changed": changed},
            )
        ],
    )
    rt.forget_channel(row.id)
    return row


async def delete_channel(rt: Runtime, session: AsyncSession, principal: Principal, channel_id: str) -> None:
    await get_channel(session, principal.tenant_id, channel_id)
    await session.execute(delete(ChannelRow).where(ChannelRow.id == channel_id))
    await session.execute(
        insert(AuditEntry),
        [audit_row(principal.tenant_id, principal.actor, "channel.deleted", "channel", channel_id)],
    )
    rt.forget_channel(channel_id)


async def test_channel(
    rt: Runtime,
    tenant_id: str,
    channel_id: str,
    *,
    recipient_id: str,
    content: str,
    subject: str | None,
) -> dict[str, Any]:
    """Send one message straight through the adapter (not the outbox) and report what the provider said.

    Long content is split as the pipeline splits it; nothing is recorded, so nothing is resumed either. The
    channel is read in a session closed before the send: no transaction is held while the provider is called
    (on SQLite the dev inbox writes through the one connection, which a held session would keep)."""
    async with rt.sessions() as session:
        row = await get_channel(session, tenant_id, channel_id)
        problem = recipient_problem(row.platform, recipient_id)
        if problem:
            raise ValidationFailed(problem, field="recipient_id")
        adapter = rt.build_channel(row)
        provider = row.provider
        platform = row.platform
    message = OutboundMessage(
        id=new_id("tst"), tenant_id=tenant_id, platform=platform, recipient_id=recipient_id,
        content=content, subject=subject,
    )  # fmt: skip
    started = time.perf_counter()
    result: dict[str, Any] = {"ok": True, "provider": provider, "provider_message_id": None, "error": None,
                              "retryable": None, "retry_after": None}  # fmt: skip
    try:
        async with asyncio.timeout(rt.settings.send_timeout_seconds):
            delivery = Delivery(adapter, message, adapter.parts_of(content))
            await delivery.run()
            result["provider_message_id"] = ",".join(delivery.ids)
    except TimeoutError:
        result.update(ok=False, error="timed out", retryable=True)
    except RetryableDeliveryError as exc:
        result.update(ok=False, error=exc.reason, retryable=True, retry_after=exc.retry_after)
    except DeliveryError as exc:
        result.update(ok=False, error=exc.reason, retryable=False)
    result["duration_ms"] = round((time.perf_counter() - started) * 1000, 3)
    return result
