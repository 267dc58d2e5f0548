"""Data sources: a tenant's own databases, registered by URL. Create and change probe the connection first; the
URL is sealed like channel credentials and shown only masked. Queries run through
:func:`herald.storage.datasources.run_query`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from herald.core.errors import ValidationFailed
from herald.core.ids import new_id
from herald.core.principal import Principal
from herald.storage import datasources as tenantdb
from herald.storage.audit import audit_row
from herald.storage.models import AuditEntry, DataSource
from herald.storage.queries import owned
from herald.storage.types import utcnow

if TYPE_CHECKING:
    from herald.runtime import Runtime


def _check_name(name: str) -> str:
    name = name.strip()
    if not name:
        raise ValidationFailed("must not be empty", field="name")
    return name


async def create_data_source(
    rt: Runtime, session: AsyncSession, principal: Principal, *, name: str, url: str
) -> DataSource:
    """Probe ``url`` (422 naming ``url`` when it cannot connect), then store it sealed."""
    name = _check_name(name)
    target = await tenantdb.probe(rt, url, field="url")
    now = utcnow()
    row = DataSource(
        id=new_id("dsr"), tenant_id=principal.tenant_id, name=name, backend=target.backend,
        display_url=tenantdb.mask_url(url), credentials=rt.credentials.seal({"url": url.strip()}),
        created_at=now, updated_at=now,
    )  # fmt: skip
    session.add(row)
    await session.flush()
    await _audit(session, principal, "data_source.created", row.id, {"backend": target.backend})
    return row


async def get_data_source(session: AsyncSession, tenant_id: str, source_id: str) -> DataSource:
    return await owned(session, DataSource, tenant_id, source_id, "data source")


async def list_data_sources(
    session: AsyncSession, tenant_id: str, *, limit: int, cursor: str | None
) -> list[DataSource]:
    query = select(DataSource).where(DataSource.tenant_id == tenant_id)
    if cursor is not None:
        query = query.where(DataSource.id > cursor)
    return list((await session.execute(query.order_by(DataSource.id).limit(limit))).scalars())


async def update_data_source(
    rt: Runtime,
    session: AsyncSession,
    principal: Principal,
    source_id: str,
    *,
    name: str | None,
    url: str | None,
) -> DataSource:
    """Rename, or point at another URL (probed first). A URL whose password is ``***`` keeps the stored one,
    so a client may send back the masked URL it read; only to the same backend, host, port, user and database
    (a 422 naming ``url`` otherwise): a masked URL must never carry the stored password somewhere else."""
    row = await get_data_source(session, principal.tenant_id, source_id)
    if name is not None:
        row.name = _check_name(name)
    if url is not None:
        old = str(rt.credentials.open(row.credentials)["url"])
        try:
            full = tenantdb.keep_password(url, old)
        except ValueError as exc:  # a refused parameter, or *** aimed at another place: the reason says which
            raise ValidationFailed(str(exc), field="url") from None
        except Exception:
            raise ValidationFailed("not a valid database URL", field="url") from None
        target = await tenantdb.probe(rt, full, field="url")
        row.backend = target.backend
        row.display_url = tenantdb.mask_url(full)
        row.credentials = rt.credentials.seal({"url": full})
    row.updated_at = utcnow()
    await session.flush()
    await rt.data_sources.forget(f"dsr:{row.id}")
    changed = sorted(k for k, v in (("name", name), ("url", url)) if v is not None)
    await _audit(session, principal, "data_source.updated", row.id, {"changed": changed})
    return row


async def delete_data_source(
    rt: Runtime, session: AsyncSession, principal: Principal, source_id: str
) -> None:
    await get_data_source(session, principal.tenant_id, source_id)
    await session.execute(delete(DataSource).where(DataSource.id == source_id))
    await rt.data_sources.forget(f"dsr:{source_id}")
    await _audit(session, principal, "data_source.deleted", source_id, None)


async def _audit(
    session: AsyncSession,
    principal: Principal,
    action: str,
    source_id: str,
    details: dict[str, object] | None,
) -> None:
    """Never the URL: even masked, the audit log is not where a database's address belongs."""
    await session.execute(
        insert(AuditEntry),
        [audit_row(principal.tenant_id, principal.actor, action, "data_source", source_id, details)],
    )
