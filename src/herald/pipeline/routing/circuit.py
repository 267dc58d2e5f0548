"""Circuit breaker per channel, shared by every worker through the ``channel_health`` table.

``consecutive_failures`` counts retryable provider failures (outages, not bad recipients). At ``threshold`` the
circuit opens: messages for that channel fall back to their next route step or wait. After ``cooldown`` it is
half-open: exactly one message, across every worker and process, is let through as the probe. A worker claims
the probe with one conditional UPDATE of the channel's row (:func:`claim_probe`); the others find it held and
wait as on an open circuit. Success closes the circuit; failure re-opens it for another cool-down; any other
outcome gives the probe back. A claim runs out after the send's time limit and a margin, so a worker that dies
mid-probe holds the channel no longer than that.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import CursorResult, select
from sqlalchemy.ext.asyncio import AsyncSession

from herald.storage import sql
from herald.storage.models import ChannelHealth

THRESHOLD = 5
COOLDOWN = timedelta(seconds=30)
PROBE_MARGIN = timedelta(seconds=10)
"""A probe's claim lasts the send's time limit plus this (recording its outcome included)."""


@dataclass(frozen=True, slots=True)
class CircuitView:
    state: str  # closed, open, half_open
    consecutive_failures: int
    opened_at: datetime | None
    reopens_at: datetime | None
    last_error: str | None
    probing: bool = False  # half-open with its one probe out (held by a worker): nothing else may go


def view(row: ChannelHealth | None, now: datetime) -> CircuitView:
    if row is None:
        return CircuitView("closed", 0, None, None, None)
    state = row.state
    reopens = row.opened_at + COOLDOWN if row.opened_at else None
    if state == "open" and reopens is not None and now >= reopens:
        state = "half_open"
    probing = state == "half_open" and row.probe_until is not None and row.probe_until > now
    return CircuitView(state, row.consecutive_failures, row.opened_at, reopens, row.last_error, probing)


async def load(session: AsyncSession, channel_ids: set[str], now: datetime) -> dict[str, CircuitView]:
    if not channel_ids:
        return {}
    rows = (
        await session.execute(select(ChannelHealth).where(ChannelHealth.channel_id.in_(channel_ids)))
    ).scalars()
    found = {row.channel_id: view(row, now) for row in rows}
    return {cid: found.get(cid, view(None, now)) for cid in channel_ids}


async def claim_probe(
    session: AsyncSession, channel_id: str, owner: str, now: datetime, hold: timedelta
) -> bool:
    """Try to take the half-open circuit's one probe for ``owner`` (held until ``now + hold``); True when won.
    The claim is visible to other workers once the caller's transaction commits; until then PostgreSQL makes
    them wait on the row and then finds it held."""
    result = await session.execute(
        sql.CIRCUIT_PROBE_CLAIM,
        {"cid": channel_id, "owner": owner, "now": now, "ready": now - COOLDOWN, "until": now + hold},
    )
    assert isinstance(result, CursorResult)
    return result.rowcount == 1


async def record(
    session: AsyncSession,
    successes: set[str],
    failures: dict[str, tuple[int, str]],
    now: datetime,
    probes: dict[str, str] | None = None,
) -> None:
    """Apply one batch's results: a success closes the circuit, failures add up towards opening it (a probe's
    failure re-opens it, the count being past the threshold). ``probes`` (channel id -> owner) are the probes this
    batch held: given back once their outcome is in."""
    for cid in successes - failures.keys():
        await session.execute(sql.CIRCUIT_SUCCESS, {"cid": cid, "now": now})
    for cid, (count, error) in failures.items():
        if cid in successes:
            await session.execute(sql.CIRCUIT_SUCCESS, {"cid": cid, "now": now})
        await session.execute(
            sql.CIRCUIT_FAILURES, {"cid": cid, "n": count, "threshold": THRESHOLD, "err": error, "now": now}
        )
    for cid, owner in (probes or {}).items():
        if cid not in successes or cid in failures:
            await session.execute(sql.CIRCUIT_PROBE_RELEASE, {"cid": cid, "owner": owner})
