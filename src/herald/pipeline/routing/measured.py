"""Measured channel choice: a contact's channels ranked by how they have been delivering.

When a tenant's policy says ``channel_choice: measured``, a message routed by priority over a contact's addresses
tries its channels in the order of a score, not of the priority table. The score of a channel is

* its **success rate** over the policy's sliding window (sent attempts against failed and retried ones), as a
  Beta posterior whose prior mean falls with the channel's place in the table, worth ``prior_weight``
  observations: with no data the order is the table's, and a few failures do not overturn it;
* less a **time to delivery** penalty (the receipt's lag after the attempt, else the provider call's duration),
  growing towards ``latency_weight`` as the time grows;
* less a **cost** penalty (the mean cost of a message sent on the channel), growing towards ``cost_weight``.

With probability ``explore_rate`` a channel other than the best goes first, drawn from the runtime's random source
(seeded in tests), so a channel that was demoted keeps being measured and wins its place back once it recovers.

The figures come from one grouped query per tenant (attempts joined to their messages and to the first delivery
receipt of each) and are kept per process for :attr:`MeasuredRouting.ttl` seconds: routing is on the accept path,
and a query per message would cost more than the choice is worth.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from herald.pipeline.routing.policy import MeasuredTuning
from herald.storage.models import Attempt, Event, Message
from herald.storage.types import utcnow

PRIOR_TOP = 0.9  # the prior success rate of the table's first channel
PRIOR_STEP = 0.1  # how much lower each next place starts
PRIOR_FLOOR = 0.1
LATENCY_HALF_SECONDS = 60.0  # the time to delivery that costs half of latency_weight
COST_HALF = 0.01  # the cost per message (USD) that costs half of cost_weight
_GOOD = ("sent",)
_BAD = ("failed", "retry")


@dataclass(frozen=True, slots=True)
class ChannelStats:
    """What one channel did in the window: attempts sent and failed, mean seconds to delivery, mean cost."""

    successes: int = 0
    failures: int = 0
    latency_s: float | None = None
    cost: float | None = None


@dataclass(frozen=True, slots=True)
class Ranking:
    """The chosen order (indexes into the candidates), each candidate's score, and whether it explored."""

    order: list[int]
    scores: list[float]
    explored: bool


def prior_mean(place: int) -> float:
    """The success rate a channel is assumed to have before any data, by its place in the table."""
    return max(PRIOR_FLOOR, PRIOR_TOP - PRIOR_STEP * place)


def score(place: int, stats: ChannelStats | None, tuning: MeasuredTuning) -> float:
    """The channel's score: posterior success rate less the time and cost penalties (see the module)."""
    seen = stats or ChannelStats()
    weight = tuning.prior_weight
    success = (weight * prior_mean(place) + seen.successes) / (weight + seen.successes + seen.failures)
    penalty = 0.0
    if seen.latency_s is not None and seen.latency_s > 0:
        penalty += tuning.latency_weight * seen.latency_s / (seen.latency_s + LATENCY_HALF_SECONDS)
    if seen.cost is not None and seen.cost > 0:
        penalty += tuning.cost_weight * seen.cost / (seen.cost + COST_HALF)
    return success - penalty


def rank(stats: list[ChannelStats | None], tuning: MeasuredTuning, rng: random.Random) -> Ranking:
    """Order candidates given in the table's order by score (ties keep the table's order); with probability
    ``explore_rate`` move a random other candidate first. Draws from ``rng`` once per call (twice when exploring),
    so a seeded source gives a reproducible sequence of choices."""
    scores = [score(place, seen, tuning) for place, seen in enumerate(stats)]
    order = sorted(range(len(stats)), key=lambda i: (-scores[i], i))
    explored = False
    if len(order) > 1 and rng.random() < tuning.explore_rate:
        chosen = rng.choice(order[1:])
        order = [chosen] + [i for i in order if i != chosen]
        explored = True
    return Ranking(order, scores, explored)


def reason(
    platforms: list[str],
    stats: list[ChannelStats | None],
    ranking: Ranking,
    tuning: MeasuredTuning,
) -> dict[str, Any]:
    """What the message records of the choice (``route_reason``): the order tried, the table's order it started
    from, each platform's score and the figures behind it, and whether this message explored."""
    figures: dict[str, Any] = {}
    for index, name in enumerate(platforms):
        seen = stats[index] or ChannelStats()
        figures[name] = {
            "score": round(ranking.scores[index], 4),
            "successes": seen.successes,
            "failures": seen.failures,
            "latency_s": None if seen.latency_s is None else round(seen.latency_s, 3),
            "cost": None if seen.cost is None else round(seen.cost, 6),
        }
    return {
        "mode": "measured",
        "order": [platforms[i] for i in ranking.order],
        "prior": list(platforms),
        "scores": figures,
        "explored": ranking.explored,
        "window_hours": tuning.window_hours,
    }


def _event_floor(at: datetime) -> str:
    """The smallest event id made at or after ``at`` (ids are time-ordered: herald.core.ids.new_id)."""
    return f"evt_{int(at.timestamp() * 1000) - 1000:012x}"


def _seconds(later: Any, earlier: Any, dialect: str) -> ColumnElement[Any]:
    if dialect == "postgresql":
        return func.extract("epoch", later - earlier)
    return (func.julianday(later) - func.julianday(earlier)) * 86400.0


async def load_stats(
    session: AsyncSession, tenant_id: str, window_hours: int, now: datetime | None = None
) -> dict[str, ChannelStats]:
    """Every channel's figures over the window ending ``now``, in one grouped query. Attempts without a channel
    (the development inbox) are not measured: they keep their place in the table."""
    since = (now or utcnow()) - timedelta(hours=window_hours)
    dialect = session.get_bind().dialect.name
    receipts = (
        select(Event.subject_id.label("message_id"), func.min(Event.created_at).label("at"))
        .where(
            Event.tenant_id == tenant_id,
            Event.id >= _event_floor(since),
            Event.type == "message.delivered",
        )
        .group_by(Event.subject_id)
        .subquery()
    )
    sent = Attempt.outcome.in_(_GOOD)
    latency = func.coalesce(
        _seconds(receipts.c.at, Attempt.started_at, dialect), Attempt.duration_ms / 1000.0
    )
    query = (
        select(
            Attempt.channel_id,
            func.sum(case((sent, 1), else_=0)),
            func.sum(case((Attempt.outcome.in_(_BAD), 1), else_=0)),
            func.avg(case((sent, latency), else_=None)),
            func.avg(case((sent, Message.cost), else_=None)),
        )
        .select_from(Attempt)
        .join(Message, Message.id == Attempt.message_id)
        .outerjoin(receipts, receipts.c.message_id == Attempt.message_id)
        .where(
            Attempt.tenant_id == tenant_id,
            Attempt.started_at >= since,
            Attempt.channel_id.is_not(None),
        )
        .group_by(Attempt.channel_id)
    )
    found: dict[str, ChannelStats] = {}
    for channel_id, good, bad, seconds, cost in (await session.execute(query)).all():
        found[str(channel_id)] = ChannelStats(
            successes=int(good or 0),
            failures=int(bad or 0),
            latency_s=None if seconds is None else max(0.0, float(seconds)),
            cost=None if cost is None else float(cost),
        )
    return found


class MeasuredRouting:
    """Per process: each tenant's channel figures, kept ``ttl`` seconds, and the random source exploration
    draws from (replace ``random`` with a seeded :class:`random.Random` for reproducible choices)."""

    def __init__(self, ttl: float = 30.0, rng: random.Random | None = None) -> None:
        self.ttl = ttl
        self.random = rng or random.Random()  # noqa: S311 (chooses a route, guards no secret)
        self._figures: dict[tuple[str, int], tuple[dict[str, ChannelStats], float]] = {}

    async def stats(
        self, session: AsyncSession, tenant_id: str, window_hours: int
    ) -> dict[str, ChannelStats]:
        """The tenant's figures, read again once they are older than ``ttl``."""
        key = (tenant_id, window_hours)
        cached = self._figures.get(key)
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        figures = await load_stats(session, tenant_id, window_hours)
        if len(self._figures) > 10_000:
            self._figures.clear()
        self._figures[key] = (figures, time.monotonic() + self.ttl)
        return figures

    def forget(self) -> None:
        """Drop every cached figure, so the next choice reads them again."""
        self._figures.clear()
