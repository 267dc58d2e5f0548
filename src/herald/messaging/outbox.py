"""Named SQL for the outbox's hot paths: claim, reclaim expired leases, expire stale approvals.

The claim is one statement: pick due rows in priority order, lock them (``FOR UPDATE SKIP LOCKED`` on
PostgreSQL, so concurrent workers take disjoint rows; SQLite runs it inside BEGIN IMMEDIATE, one writer at a
time), mark them leased and return them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import JSON, Boolean, Integer, LargeBinary, String, bindparam, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.selectable import TextualSelect

from herald.storage.types import UTCDateTime

_TS = UTCDateTime()

_CLAIM = """
UPDATE messages
   SET status = 'sending', lease_owner = :owner, lease_expires_at = :lease_until,
       attempts = attempts + 1, updated_at = :now
 WHERE id IN (
       SELECT id FROM messages
        WHERE status = 'queued' AND run_at <= :now
        ORDER BY priority, run_at
        LIMIT :limit {lock})
RETURNING id, tenant_id, agent_id, platform, recipient_id, channel_id, simulated, subject, content,
          attempts, max_attempts, priority, route_plan, route_step, sealed_content, reply_context
"""

# A lease that ran out means its worker died (or stalled past the lease): put the row back, or fail it if its
# attempts are spent, so a message that kills workers cannot kill them forever. A finished message drops its
# sealed content (see Message.sealed_content).
RECLAIM = text(
    """
UPDATE messages
   SET status = CASE WHEN attempts >= max_attempts THEN 'failed' ELSE 'queued' END,
       sealed_content = CASE WHEN attempts >= max_attempts THEN NULL ELSE sealed_content END,
       last_error = 'lease expired: the worker holding it stopped',
       lease_owner = NULL, lease_expires_at = NULL, run_at = :now, updated_at = :now
 WHERE status = 'sending' AND lease_expires_at < :now
RETURNING id, tenant_id, platform, status
"""
).bindparams(bindparam("now", type_=_TS))

EXPIRE_APPROVALS = text(
    """
UPDATE messages SET status = 'expired', expires_at = NULL, sealed_content = NULL, updated_at = :now
 WHERE status = 'pending_approval' AND expires_at <= :now
RETURNING id, tenant_id, platform
"""
).bindparams(bindparam("now", type_=_TS))

QUEUE_DEPTH = text(
    "SELECT status, COUNT(*) FROM messages WHERE status IN ('queued', 'sending', 'pending_approval') GROUP BY status"
)


def claim_statement(dialect: str) -> TextualSelect:
    lock = "FOR UPDATE SKIP LOCKED" if dialect == "postgresql" else ""
    return (
        text(_CLAIM.format(lock=lock))
        .bindparams(
            bindparam("now", type_=_TS),
            bindparam("lease_until", type_=_TS),
            bindparam("owner", type_=String()),
            bindparam("limit", type_=Integer()),
        )
        .columns(simulated=Boolean(), route_plan=JSON(), sealed_content=LargeBinary(), reply_context=JSON())
    )


@dataclass(frozen=True, slots=True)
class Claimed:
    id: str
    tenant_id: str
    agent_id: str | None
    platform: str
    recipient_id: str
    channel_id: str | None
    simulated: bool
    subject: str | None
    content: str
    attempts: int
    max_attempts: int
    priority: int
    route_plan: list[dict[str, Any]]
    route_step: int
    sealed_content: bytes | None = None  # the real text, encrypted, when ``content`` is redacted (OTP codes)
    reply_context: dict[str, Any] | None = None  # a conversation reply: what it answers, for threading

    def next_step(self) -> dict[str, Any] | None:
        """The fallback after the current route step, if any."""
        following = self.route_step + 1
        return self.route_plan[following] if following < len(self.route_plan) else None


async def claim(
    session: AsyncSession, dialect: str, owner: str, limit: int, now: datetime, lease_seconds: float
) -> list[Claimed]:
    if dialect == "postgresql":
        # Walk ix_messages_claim in order and stop at the limit. Without fresh statistics the planner would
        # read every queued row and sort them, which grows with the backlog.
        await session.execute(text("SET LOCAL enable_sort = off"))
    result = await session.execute(
        claim_statement(dialect),
        {"owner": owner, "limit": limit, "now": now, "lease_until": now + timedelta(seconds=lease_seconds)},
    )
    return [Claimed(**row._mapping) for row in result]
