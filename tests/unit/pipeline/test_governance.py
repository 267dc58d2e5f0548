"""Governance decisions and the level cache."""

from __future__ import annotations

import asyncio
import statistics
import time

import pytest

from herald.core.maturity import MaturityLevel
from herald.pipeline.governance import Decision, GovernanceCache, decide


@pytest.mark.parametrize(
    ("level", "decision"),
    [
        (MaturityLevel.STUDENT, Decision.BLOCK),
        (MaturityLevel.INTERN, Decision.REQUIRE_APPROVAL),
        (MaturityLevel.SUPERVISED, Decision.SEND_WITH_REVIEW),
        (MaturityLevel.AUTONOMOUS, Decision.SEND),
    ],
)
def test_each_tier_gets_its_decision(level: MaturityLevel, decision: Decision) -> None:
    assert decide(level) is decision


async def test_cache_loads_once_then_serves_from_memory() -> None:
    calls: list[tuple[str, str]] = []

    async def loader(tenant: str, agent: str) -> MaturityLevel:
        calls.append((tenant, agent))
        return MaturityLevel.INTERN

    cache = GovernanceCache(ttl_seconds=60)
    assert cache.check("t", "a") is None
    assert await cache.level("t", "a", loader) is MaturityLevel.INTERN
    assert await cache.level("t", "a", loader) is MaturityLevel.INTERN
    assert calls == [("t", "a")]
    assert cache.check("t", "a") is Decision.REQUIRE_APPROVAL
    assert cache.check("other-tenant", "a") is None


async def test_invalidation_and_ttl_force_a_reload() -> None:
    levels = iter([MaturityLevel.AUTONOMOUS, MaturityLevel.STUDENT, MaturityLevel.INTERN])

    async def loader(tenant: str, agent: str) -> MaturityLevel:
        return next(levels)

    cache = GovernanceCache(ttl_seconds=60)
    assert await cache.level("t", "a", loader) is MaturityLevel.AUTONOMOUS
    cache.invalidate("t", "a")
    assert await cache.level("t", "a", loader) is MaturityLevel.STUDENT
    short = GovernanceCache(ttl_seconds=0.01)
    assert await short.level("t", "a", loader) is MaturityLevel.INTERN
    await asyncio.sleep(0.02)
    assert short.cached("t", "a") is None


async def test_unknown_agents_are_not_cached() -> None:
    async def loader(tenant: str, agent: str) -> None:
        return None

    cache = GovernanceCache()
    assert await cache.level("t", "ghost", loader) is None
    assert cache.cached("t", "ghost") is None


def test_cached_check_is_cheap() -> None:
    """Not a timing target (that lives in bench/); guards against the check touching I/O by accident."""
    cache = GovernanceCache(ttl_seconds=60)
    cache._entries[("t", "a")] = (MaturityLevel.SUPERVISED, time.monotonic() + 60)
    samples = []
    for _ in range(50):
        start = time.perf_counter()
        for _ in range(100):
            cache.check("t", "a")
        samples.append((time.perf_counter() - start) / 100)
    assert statistics.median(samples) < 0.001
