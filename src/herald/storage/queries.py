"""Lookups every service makes the same way."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from herald.core.errors import NotFound, ValidationFailed
from herald.storage.models import Base

Row = TypeVar("Row", bound=Base)


async def owned(session: AsyncSession, model: type[Row], tenant_id: str, object_id: str, what: str) -> Row:
    """The tenant's ``model`` row ``object_id``; otherwise 404, alike for a missing row and another tenant's, so
    ids reveal nothing across tenants."""
    columns: Any = model  # every tenant-owned model has ``id`` and ``tenant_id``
    query = select(model).where(columns.id == object_id, columns.tenant_id == tenant_id)
    row = (await session.execute(query)).scalar_one_or_none()
    if row is None:
        raise NotFound(f"no {what} {object_id!r}")
    return row


async def referenced(
    session: AsyncSession, model: type[Row], tenant_id: str, object_id: Any, what: str, *, field: str
) -> Row:
    """The tenant's ``model`` row that a request body names in ``field``; otherwise a 422 naming the field,
    alike for a missing row and another tenant's (the body is at fault, not the URL)."""
    if not isinstance(object_id, str) or not object_id:
        raise ValidationFailed(f"must be the id of a {what}", field=field)
    columns: Any = model
    query = select(model).where(columns.id == object_id, columns.tenant_id == tenant_id)
    row = (await session.execute(query)).scalar_one_or_none()
    if row is None:
        raise ValidationFailed(f"no {what} {object_id!r}", field=field)
    return row
