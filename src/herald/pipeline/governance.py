"""The four maturity tiers and the decision each one gets, with an in-process cache of agents' levels.

The decision is a pure function of the level; the cache keeps the database off the hot path. Entries expire after
a short TTL so a level changed by another process takes effect within seconds, and the process that changes a
level invalidates its own entry at once.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from herald.core.maturity import MaturityLevel
from herald.storage.models import Agent


class Decision(StrEnum):
    BLOCK = "block"  # STUDENT: refused with 403
    REQUIRE_APPROVAL = "require_approval"  # INTERN: waits in pending_approval for a human
    SEND_WITH_REVIEW = "send_with_review"  # SUPERVISED: sent, audit entry flagged for review
    SEND = "send"  # AUTONOMOUS: sent


_DECISIONS = {
    MaturityLevel.STUDENT: Decision.BLOCK,
    MaturityLevel.INTERN: Decision.REQUIRE_APPROVAL,
    MaturityLevel.SUPERVISED: Decision.SEND_WITH_REVIEW,
    MaturityLevel.AUTONOMOUS: Decision.SEND,
}


def decide(level: MaturityLevel) -> Decision:
    return _DECISIONS[level]


LevelLoader = Callable[[str, str], Awaitable[MaturityLevel | None]]


class GovernanceCache:
    """Maps (tenant, agent) to a maturity level, loading misses through ``loader``."""

    def __init__(self, ttl_seconds: float = 5.0, max_entries: int = 100_000) -> None:
        self._ttl = ttl_seconds
        self._max = max_entries
        self._entries: dict[tuple[str, str], tuple[MaturityLevel, float]] = {}

    def cached(self, tenant_id: str, agent_id: str) -> MaturityLevel | None:
        """The cached level if fresh; the governance check's fast path."""
        entry = self._entries.get((tenant_id, agent_id))
        if entry is None or entry[1] < time.monotonic():
            return None
        return entry[0]

    async def level(self, tenant_id: str, agent_id: str, loader: LevelLoader) -> MaturityLevel | None:
        level = self.cached(tenant_id, agent_id)
        if level is not None:
            return level
        level = await loader(tenant_id, agent_id)
        if level is not None:
            if len(self._entries) >= self._max:
                self._entries.clear()
            self._entries[(tenant_id, agent_id)] = (level, time.monotonic() + self._ttl)
        return level

    def check(self, tenant_id: str, agent_id: str) -> Decision | None:
        """Decision from the cache alone, or None on a miss."""
        level = self.cached(tenant_id, agent_id)
        return None if level is None else _DECISIONS[level]

    def invalidate(self, tenant_id: str, agent_id: str) -> None:
        self._entries.pop((tenant_id, agent_id), None)


async def load_level(session: AsyncSession, tenant_id: str, agent_id: str) -> MaturityLevel | None:
    level = (
        await session.execute(
            select(Agent.maturity_level).where(Agent.tenant_id == tenant_id, Agent.id == agent_id)
        )
    ).scalar_one_or_none()
    return None if level is None else MaturityLevel(level)
