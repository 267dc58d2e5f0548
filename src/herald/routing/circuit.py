"""Circuit breaker per channel, shared by every worker through the ``channel_health`` table.

``consecutive_failures`` counts retryable provider failures (outages, not bad recipients). At ``threshold`` the
circuit opens: messages for that channel fall back to their next route step or wait. After ``cooldown`` it is
half-open: one message per batch is let through as a probe; success closes it, failure re-opens it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Integer, String, Text, bindparam, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from herald.storage.models import ChannelHealth
from herald.storage.types import UTCDateTime

THRESHOLD = 5
COOLDOWN = timedelta(seconds=30)

_TS = UTCDateTime()
_FAILURES = text(
    """
INSERT INTO channel_health (channel_id, state, consecutive_failures, opened_at, last_error, updated_at)
VALUES (:cid, CASE WHEN :n >= :threshold THEN 'open' ELSE 'closed' END, :n,
        CASE WHEN :n >= :threshold THEN :now END, :err, :now)
ON CONFLICT (channel_id) DO UPDATE SET
    consecutive_failures = channel_health.consecutive_failures + :n,
    state = CASE WHEN channel_health.consecutive_failures + :n >= :threshold THEN 'open' ELSE channel_health.state END,
    opened_at = CASE WHEN channel_health.consecutive_failures + :n >= :threshold THEN :now
                     ELSE channel_health.opened_at END,
    last_error = :err, updated_at = :now
"""
).bindparams(
    bindparam("now", type_=_TS),
    bindparam("n", type_=Integer()),
    bindparam("threshold", type_=Integer()),
    bindparam("cid", type_=String()),
    bindparam("err", type_=Text()),
)
_SUCCESS = text(
    "UPDATE channel_health SET state = 'closed', consecutive_failures = 0, opened_at = NULL, updated_at = :now "
    "WHERE channel_id = :cid AND (state <> 'closed' OR consecutive_failures > 0)"
).bindparams(bindparam("now", type_=_TS))


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
        await session.execute(_SUCCESS, {"cid": cid, "now": now})
    for cid, (count, error) in failures.items():
        if cid in successes:
            await session.execute(_SUCCESS, {"cid": cid, "now": now})
        await session.execute(
            _FAILURES, {"cid": cid, "n": count, "threshold": THRESHOLD, "err": error, "now": now}
        )
