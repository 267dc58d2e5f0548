"""The outbox's side of the claim: what a claimed message carries, and the claim itself.

The statements are in :mod:`herald.storage.sql` with the other hot SQL (the claim is ``OUTBOX_CLAIM``: pick
due rows in priority order, lock them (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so concurrent workers take
disjoint rows; SQLite runs it inside BEGIN IMMEDIATE, one writer at a time), mark them leased and return
them), run through :func:`herald.storage.claims.claim` like every other loop's claim.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from herald.storage import claims, sql

# The outbox's housekeeping statements, under the names the worker and /metrics know them by.
RECLAIM = sql.OUTBOX_RECLAIM
EXPIRE_APPROVALS = sql.EXPIRE_APPROVALS
QUEUE_DEPTH = sql.QUEUE_DEPTH


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
    sealed_content: bytes | None = None  # encrypted: the real text of a redacted message, the attachments
    reply_context: dict[str, Any] | None = None  # a conversation reply: what it answers, for threading
    actions: list[dict[str, Any]] | None = None  # buttons (an approval request's Approve and Reject)

    def next_step(self) -> dict[str, Any] | None:
        """The fallback after the current route step, if any."""
        following = self.route_step + 1
        return self.route_plan[following] if following < len(self.route_plan) else None


async def claim(
    session: AsyncSession, owner: str, limit: int, now: datetime, lease_seconds: float
) -> list[Claimed]:
    """Lease up to ``limit`` due messages to ``owner`` for ``lease_seconds``: one statement (after its
    planner setting on PostgreSQL), nothing else on the worker's claim path."""
    rows = await claims.claim(
        session,
        sql.OUTBOX_CLAIM,
        {"owner": owner, "limit": limit, "now": now, "lease_until": now + timedelta(seconds=lease_seconds)},
    )
    # Positional: the statement returns the columns in Claimed's field order (a test holds them together);
    # unpacking each row's mapping by name cost four times as much, 11 µs a message.
    make: Callable[..., Claimed] = Claimed  # a row's length is not known to the type checker
    return [make(*row) for row in rows]
