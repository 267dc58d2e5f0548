"""Audit entries and events: rows built here, written in the caller's transaction (or kept whatever it
does); and the audit trail read back."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from herald.core.ids import new_id
from herald.storage.bulk import table_of
from herald.storage.models import AuditEntry, Event
from herald.storage.sessions import keep
from herald.storage.types import utcnow


def audit_row(
    tenant_id: str,
    actor: str,
    action: str,
    object_type: str,
    object_id: str,
    detail: dict[str, Any] | None = None,
    *,
    needs_review: bool = False,
    at: datetime | None = None,
) -> dict[str, Any]:
    return {
        "id": new_id("aud"),
        "tenant_id": tenant_id,
        "actor": actor,
        "action": action,
        "object_type": object_type,
        "object_id": object_id,
        "detail": detail or {},
        "needs_review": needs_review,
        "created_at": at or utcnow(),
    }


def event_row(
    tenant_id: str,
    type_: str,
    subject_id: str,
    data: dict[str, Any] | None = None,
    *,
    at: datetime | None = None,
) -> dict[str, Any]:
    return {
        "id": new_id("evt"),
        "tenant_id": tenant_id,
        "type": type_,
        "subject_id": subject_id,
        "data": data or {},
        "created_at": at or utcnow(),
    }


def keep_record(
    session: AsyncSession, audits: list[dict[str, Any]], events: list[dict[str, Any]] | None = None
) -> None:
    """Record a refusal: the rows are written even if the caller's transaction rolls back (see
    :func:`herald.storage.sessions.keep`)."""
    keep(session, table_of(AuditEntry), audits)
    keep(session, table_of(Event), events or [])


async def list_entries(
    session: AsyncSession,
    tenant_id: str,
    *,
    object_id: str | None = None,
    action: str | None = None,
    needs_review: bool | None = None,
    limit: int,
    cursor: str | None = None,
) -> list[AuditEntry]:
    """The tenant's audit trail, newest first, before the entry id ``cursor``, filtered by what is given."""
    query = select(AuditEntry).where(AuditEntry.tenant_id == tenant_id)
    if object_id is not None:
        query = query.where(AuditEntry.object_id == object_id)
    if action is not None:
        query = query.where(AuditEntry.action == action)
    if needs_review is not None:
        query = query.where(AuditEntry.needs_review == needs_review)
    if cursor is not None:
        query = query.where(AuditEntry.id < cursor)
    return list((await session.execute(query.order_by(AuditEntry.id.desc()).limit(limit))).scalars())
