"""Circuit breaker per channel, shared by every worker through the ``channel_health`` table.

``consecutive_failures`` counts retryable provider failures (outages, not bad recipients). At ``threshold`` the
circuit opens: messages for that channel fall back to their next route step or wait. After ``cooldown`` it is
half-open: one message per batch is let through as a probe; success closes it, failure re-opens it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from herald.storage import sql
from herald.storage.models import ChannelHealth

THRESHOLD = 5
COOLDOWN = timedelta(seconds=30)


@dataclass(frozen=True, slots=True)
class CircuitView:
    state: str  # closed, open, half_open
    consecutive_failures: int
    opened_at: datetime | None
    reopens_at: datetime | None
    last_error: str | None


def view(row: ChannelHealth | None, now: datetime) -> CircuitView:
    if row is None:
        return CircuitView("closed", 0, None, None, None)
    state = row.state
    reopens = row.opened_at + COOLDOWN if row.opened_at else None
    if state == "open" and reopens is not None and now >= reopens:
        state = "half_open"
    return CircuitView(state, row.consecutive_failures, row.opened_at, reopens, row.last_error)


async def load(session: AsyncSession, channel_ids: set[str], now: datetime) -> dict[str, CircuitView]:
    if not channel_ids:
        return {}
    rows = (
        await session.execute(select(ChannelHealth).where(ChannelHealth.channel_id.in_(channel_ids)))
    ).scalars()
    found = {row.channel_id: view(row, now) for row in rows}
    return {cid: found.get(cid, view(None, now)) for cid in channel_ids}


async def record(
    session: AsyncSession, successes: set[str], failures: dict[str, tuple[int, str]], now: datetime
) -> None:
    """Apply one batch's results: a success closes the circuit, failures add up towards opening it."""
    for cid in successes - failures.keys():
        await session.execute(sql.CIRCUIT_SUCCESS, {"cid": cid, "now": now})
    for cid, (count, error) in failures.items():
        if cid in successes:
            await session.execute(sql.CIRCUIT_SUCCESS, {"cid": cid, "now": now})
        await session.execute(
            sql.CIRCUIT_FAILURES, {"cid": cid, "n": count, "threshold": THRESHOLD, "err": error, "now": now}
        )
