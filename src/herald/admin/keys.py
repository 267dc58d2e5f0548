"""API keys after creation: the process's cache of who a key is, listing, and revocation.

A revoked key stops working in every process within :data:`KEY_CACHE_SECONDS` plus one lookup: each process
keeps a key's principal at most that long after the read that found it, whatever the backend (no LISTEN needed,
so SQLite and several PostgreSQL processes behave alike), and the process that revokes forgets it at once.
Concurrent requests with an expired (or new) key share one lookup, so a busy key costs each process about one
indexed read per :data:`KEY_CACHE_SECONDS`.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from herald.admin.tenants import principal_for_key
from herald.core.errors import Conflict, NotFound
from herald.core.principal import Principal
from herald.core.security import hash_api_key
from herald.storage.audit import audit_row
from herald.storage.models import ApiKey, AuditEntry, Tenant
from herald.storage.types import utcnow

if TYPE_CHECKING:
    from datetime import datetime

KEY_CACHE_SECONDS = 0.5
"""How long a process trusts a key it has looked up: a revocation takes effect everywhere within this (plus the
lookup's own time), kept well under the one second promised."""


class KeyCache:
    """API key hash -> (principal, expiry): keeps authentication off the database on the hot path. Only keys that
    exist are kept; an entry's expiry counts from the start of the read that found it."""

    def __init__(self, ttl: float = KEY_CACHE_SECONDS, size: int = 10_000) -> None:
        self.ttl = ttl
        self.size = size
        self._entries: dict[str, tuple[Principal, float]] = {}
        self._pending: dict[str, asyncio.Task[Principal | None]] = {}

    async def principal(self, sessions: async_sessionmaker[AsyncSession], key: str) -> Principal | None:
        """The key's principal, or None for an unknown or revoked key."""
        digest = hash_api_key(key)
        entry = self._entries.get(digest)
        if entry is not None and entry[1] > time.monotonic():
            return entry[0]
        task = self._pending.get(digest)
        if task is None:
            # A task of its own, shared by every request that misses meanwhile: one caller going away (a client
            # disconnecting) does not cancel the others' lookup.
            task = asyncio.ensure_future(self._lookup(sessions, key, digest))
            self._pending[digest] = task
            task.add_done_callback(lambda done: self._settled(digest, done))
        return await asyncio.shield(task)

    async def _lookup(
        self, sessions: async_sessionmaker[AsyncSession], key: str, digest: str
    ) -> Principal | None:
        started = time.monotonic()
        async with sessions() as session:
            principal = await principal_for_key(session, key)
        if principal is not None:
            if len(self._entries) >= self.size:
                self._entries.clear()
            self._entries[digest] = (principal, started + self.ttl)
        return principal

    def _settled(self, digest: str, task: asyncio.Task[Principal | None]) -> None:
        if self._pending.get(digest) is task:
            del self._pending[digest]
        if not task.cancelled():
            task.exception()  # retrieved: every caller may have gone; each one still there sees it

    def forget(self, key_id: str) -> None:
        """Drop a key at once in this process (the one that revoked it)."""
        for digest, (principal, _) in list(self._entries.items()):
            if principal.key_id == key_id:
                del self._entries[digest]

    def clear(self) -> None:
        self._entries.clear()


async def list_keys(
    session: AsyncSession, tenant_id: str | None, *, limit: int, cursor: str | None
) -> list[ApiKey]:
    """A tenant's keys (every tenant's with None: the command line), revoked ones included, oldest first."""
    query = select(ApiKey).order_by(ApiKey.id).limit(limit)
    if tenant_id is not None:
        query = query.where(ApiKey.tenant_id == tenant_id)
    if cursor:
        query = query.where(ApiKey.id > cursor)
    return list((await session.execute(query)).scalars())


async def keys_by_tenant(session: AsyncSession, tenant_name: str | None) -> list[tuple[ApiKey, str]]:
    """Every key with its tenant's name (one tenant's with a name; the command line's list), oldest first."""
    query = select(ApiKey, Tenant.name).join(Tenant, Tenant.id == ApiKey.tenant_id).order_by(ApiKey.id)
    if tenant_name is not None:
        query = query.where(Tenant.name == tenant_name)
    return [(row[0], row[1]) for row in (await session.execute(query)).all()]


async def revoke_key(
    session: AsyncSession,
    key_id: str,
    *,
    tenant_id: str | None,
    actor: str,
    keep_last_admin: bool = True,
    now: datetime | None = None,
) -> tuple[ApiKey, bool]:
    """Revoke ``key_id`` (of ``tenant_id``; any tenant's with None) and audit it; return the key and whether this
    call revoked it (False: it already was, and nothing is written).

    With ``keep_last_admin`` the tenant's last working admin key is refused with 409: nobody could register
    agents or change maturity levels any more, and no API key could make another (only ``herald keys create``).
    Revoking the calling key itself is allowed otherwise; it stops working at once.

    The tenant's row is locked first (PostgreSQL), so two admin keys revoking each other at once cannot both
    succeed and leave none; SQLite has one writer at a time anyway."""
    key = (await session.execute(select(ApiKey).where(ApiKey.id == key_id))).scalar_one_or_none()
    if key is None or (tenant_id is not None and key.tenant_id != tenant_id):
        raise NotFound(f"no API key {key_id!r}", field="key_id")
    await session.execute(select(Tenant.id).where(Tenant.id == key.tenant_id).with_for_update())
    await session.refresh(key)
    if key.revoked_at is not None:
        return key, False
    if keep_last_admin and key.is_admin:
        others = (
            await session.execute(
                select(func.count()).where(
                    ApiKey.tenant_id == key.tenant_id,
                    ApiKey.is_admin.is_(True),
                    ApiKey.revoked_at.is_(None),
                    ApiKey.id != key.id,
                )
            )
        ).scalar_one()
        if not others:
            raise Conflict(
                f"{key_id!r} is the tenant's last admin key; create another admin key first "
                "(herald keys create --tenant NAME)",
                field="key_id",
            )
    at = now or utcnow()
    await session.execute(
        update(ApiKey).where(ApiKey.id == key.id, ApiKey.revoked_at.is_(None)).values(revoked_at=at)
    )
    await session.execute(
        insert(AuditEntry),
        [
            audit_row(
                key.tenant_id, actor, "api_key.revoked", "api_key", key.id,
                {"name": key.name, "prefix": key.prefix, "is_admin": key.is_admin}, at=at,
            )
        ],
    )  # fmt: skip
    await session.refresh(key)
    return key, True
