"""The retention job (seed 003's automatic cleanup): what Herald no longer needs is deleted.

One pass:

- marks pending OTP verifications past their time ``expired`` (event ``otp.expired``; messages of theirs still
  waiting are cancelled);
- deletes verifications ``HERALD_OTP_RETENTION_HOURS`` after they expire (expiry bounds every verification's
  life, finished or not), and OTP send records once older than both that and the longest send window a tenant
  may set;
- deletes finished messages (sent, delivered, read, failed, rejected, cancelled, expired, digested) older than their
  tenant's ``message_retention_days``, with their attempts and approvals (``ON DELETE CASCADE``), and dev
  inbox copies of the same age. Audit entries and events are kept: they are the record of what happened.

Every batch is its own short transaction, and on PostgreSQL takes its rows ``FOR UPDATE SKIP LOCKED``, so any
number of schedulers may run the job at once. ``herald serve`` and ``herald scheduler`` run it every 10
minutes; ``herald purge`` runs it once.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import ColumnElement, Table, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from herald.core.background import Loop
from herald.core.errors import NotFound
from herald.core.status import FINISHED
from herald.producers.otp import service as otp
from herald.producers.otp.policy import MAX_WINDOW_SECONDS
from herald.storage import claims
from herald.storage.bulk import table_of
from herald.storage.models import DevInboxMessage, Message, OtpSend, OtpVerification, Tenant
from herald.storage.types import utcnow

if TYPE_CHECKING:
    from herald.runtime import Runtime

log = logging.getLogger(__name__)

FINISHED_MESSAGES = tuple(sorted(FINISHED))
INTERVAL_SECONDS = 600.0
BATCH = 1000


@dataclass
class PurgeCounts:
    verifications_expired: int = 0
    verifications_deleted: int = 0
    otp_sends_deleted: int = 0
    messages_deleted: int = 0
    devinbox_deleted: int = 0

    @property
    def total(self) -> int:
        return sum(asdict(self).values())


async def retention_days(session: AsyncSession, tenant_id: str) -> int | None:
    """The tenant's ``message_retention_days`` (None: finished messages are kept)."""
    tenant = await session.get(Tenant, tenant_id)
    return tenant.message_retention_days if tenant else None


async def set_retention_days(session: AsyncSession, tenant_id: str, days: int | None) -> None:
    """Set the tenant's retention period in the caller's transaction; the next pass applies it."""
    tenant = await session.get(Tenant, tenant_id)
    if tenant is None:
        raise NotFound("no such tenant")
    tenant.message_retention_days = days


async def purge(rt: Runtime, now: datetime | None = None, *, batch: int = BATCH) -> PurgeCounts:
    """One retention pass as of ``now``."""
    now = now or utcnow()
    counts = PurgeCounts()
    while True:
        async with rt.sessions.begin() as session:
            expired = await otp.expire_overdue(session, now, batch)
        counts.verifications_expired += expired
        if expired < batch:
            break

    keep = timedelta(hours=rt.settings.otp_retention_hours)
    counts.verifications_deleted = await _delete(rt, table_of(OtpVerification), [
        OtpVerification.expires_at < now - keep,
    ], batch)  # fmt: skip
    counts.otp_sends_deleted = await _delete(rt, table_of(OtpSend), [
        OtpSend.sent_at < now - max(keep, timedelta(seconds=MAX_WINDOW_SECONDS)),
    ], batch)  # fmt: skip

    async with rt.sessions() as session:
        periods = (
            await session.execute(
                select(Tenant.id, Tenant.message_retention_days).where(
                    Tenant.message_retention_days.is_not(None)
                )
            )
        ).all()
    for tenant_id, days in periods:
        if days is None:
            continue
        cutoff = now - timedelta(days=days)
        # Ids begin with their creation time in milliseconds (herald.core.ids), so "id below the cutoff's" walks
        # the (tenant_id, status, id) index; updated_at then spares messages that finished recently.
        counts.messages_deleted += await _delete(rt, table_of(Message), [
            Message.tenant_id == tenant_id, Message.status.in_(FINISHED_MESSAGES),
            Message.id < _id_bound("msg", cutoff), Message.updated_at < cutoff,
        ], batch)  # fmt: skip
        counts.devinbox_deleted += await _delete(rt, table_of(DevInboxMessage), [
            DevInboxMessage.tenant_id == tenant_id, DevInboxMessage.id < _id_bound("dev", cutoff),
            DevInboxMessage.received_at < cutoff,
        ], batch)  # fmt: skip
    return counts


async def run_pass(rt: Runtime) -> int:
    """One retention pass (:func:`purge` drains everything due), logged when it removed anything."""
    counts = await purge(rt)
    if counts.total:
        log.info("retention: %s", ", ".join(f"{k} {v}" for k, v in asdict(counts).items() if v))
    return counts.total


# A pass at start, then one each interval (never at once: a pass leaves nothing due behind).
LOOPS = (Loop("retention", "scheduler", run_pass=run_pass, interval=INTERVAL_SECONDS),)


async def _delete(rt: Runtime, table: Table, conditions: list[ColumnElement[bool]], batch: int) -> int:
    """Delete matching rows ``batch`` at a time, each batch in its own transaction; return how many."""
    total = 0
    while True:
        async with rt.sessions.begin() as session:
            ids = await claims.claim(session, select(table.c.id).where(*conditions).limit(batch))
            if ids:
                await session.execute(delete(table).where(table.c.id.in_(ids)))
        total += len(ids)
        if len(ids) < batch:
            return total


def _id_bound(prefix: str, at: datetime) -> str:
    """Every id made by ``herald.core.ids.new_id(prefix)`` before ``at`` sorts below this."""
    return f"{prefix}_{int(at.timestamp() * 1000):012x}"
