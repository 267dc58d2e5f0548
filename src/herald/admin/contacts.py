"""Contacts: one person's addresses per platform, time zone, quiet hours, opt-outs and fallback order."""

from __future__ import annotations

from typing import Any

from sqlalchemy import String, cast, func, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from herald.core.errors import ValidationFailed
from herald.core.ids import new_id
from herald.core.platforms import PLATFORMS, recipient_problem
from herald.core.principal import Principal
from herald.core.timezones import zone_problem
from herald.pipeline import escalation
from herald.storage.audit import audit_row
from herald.storage.models import AuditEntry, Contact
from herald.storage.queries import owned
from herald.storage.types import utcnow

FIELDS = ("name", "addresses", "timezone", "quiet_hours", "opt_outs", "channel_order", "escalation")


def _check(values: dict[str, Any]) -> None:
    for name in ("name", "addresses", "opt_outs"):  # the others may be cleared with null
        if name in values and values[name] is None:
            raise ValidationFailed("must not be null (leave it out to keep it)", field=name)
    if values.get("timezone") is not None:
        zone = zone_problem(values["timezone"])
        if zone:
            raise ValidationFailed(zone, field="timezone")
    for platform, address in (values.get("addresses") or {}).items():
        if platform not in PLATFORMS:
            raise ValidationFailed(f"unknown platform {platform!r}", field=f"addresses.{platform}")
        problem = recipient_problem(platform, address)
        if problem:
            raise ValidationFailed(problem, field=f"addresses.{platform}")
    if values.get("escalation") is not None:
        wrong = escalation.rule_problem(values["escalation"])
        if wrong:
            raise ValidationFailed(wrong[0], field=wrong[1])
    for name in ("opt_outs", "channel_order"):
        for i, platform in enumerate(values.get(name) or []):
            if platform not in PLATFORMS:
                raise ValidationFailed(f"unknown platform {platform!r}", field=f"{name}.{i}")


async def create_contact(session: AsyncSession, principal: Principal, values: dict[str, Any]) -> Contact:
    _check(values)
    now = utcnow()
    contact = Contact(id=new_id("con"), tenant_id=principal.tenant_id, created_at=now, updated_at=now,
                      **{k: values.get(k) for k in FIELDS if k in values})  # fmt: skip
    contact.addresses = values.get("addresses") or {}
    contact.opt_outs = values.get("opt_outs") or []
    session.add(contact)
    await session.flush()
    await session.execute(
        insert(AuditEntry),
        [audit_row(principal.tenant_id, principal.actor, "contact.created", "contact", contact.id, at=now)],
    )
    return contact


async def get_contact(session: AsyncSession, tenant_id: str, contact_id: str) -> Contact:
    return await owned(session, Contact, tenant_id, contact_id, "contact")


async def update_contact(
    session: AsyncSession, principal: Principal, contact_id: str, changes: dict[str, Any]
) -> Contact:
    _check(changes)
    contact = await get_contact(session, principal.tenant_id, contact_id)
    for key, value in changes.items():
        setattr(contact, key, value)
    contact.updated_at = utcnow()
    await session.execute(
        insert(AuditEntry),
        [
            audit_row(
                principal.tenant_id,
                principal.actor,
                "contact.updated",
                "contact",
                contact_id,
                {"fields": sorted(changes)},
            )
        ],
    )
    await session.flush()
    return contact


async def list_contacts(
    session: AsyncSession, tenant_id: str, *, limit: int, cursor: str | None
) -> list[Contact]:
    query = select(Contact).where(Contact.tenant_id == tenant_id)
    if cursor is not None:
        query = query.where(Contact.id > cursor)
    return list((await session.execute(query.order_by(Contact.id).limit(limit))).scalars())


async def find_contacts(session: AsyncSession, tenant_id: str, query: str, *, limit: int) -> list[Contact]:
    """Contacts whose id is ``query``, or whose name or an address contains it (case-insensitive)."""
    needle = f"%{query.strip().lower()}%"
    found = select(Contact).where(
        Contact.tenant_id == tenant_id,
        or_(
            Contact.id == query.strip(),
            func.lower(Contact.name).like(needle),
            func.lower(cast(Contact.addresses, String)).like(needle),
        ),
    )
    return list((await session.execute(found.order_by(Contact.id).limit(limit))).scalars())
