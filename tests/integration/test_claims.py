"""The claim helper on both backends: due rows in order up to the limit, leased until the lease runs out, and
disjoint between concurrent claimers on PostgreSQL (``FOR UPDATE SKIP LOCKED``), in each of its forms."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import String, bindparam, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from herald.runtime import Runtime
from herald.storage import claims
from herald.storage.sql import NamedClaim
from herald.storage.types import UTCDateTime, utcnow


class _Base(DeclarativeBase):
    pass


class Probe(_Base):
    """A stand-in for any table a loop claims from: a due time and who holds the row."""

    __tablename__ = "claim_probe"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    owner: Mapped[str | None] = mapped_column(String(40), default=None)


def _named(lock: str) -> Any:
    return (
        text(
            "UPDATE claim_probe SET owner = :owner, due_at = :until WHERE id IN ("
            f"SELECT id FROM claim_probe WHERE due_at <= :now ORDER BY due_at, id LIMIT :limit {lock}) RETURNING id"
        )
        .bindparams(bindparam("now", type_=UTCDateTime()), bindparam("until", type_=UTCDateTime()))
        .columns(id=String())
    )


PROBE_CLAIM = NamedClaim(
    "probe claim",
    postgresql=_named("FOR UPDATE SKIP LOCKED"),
    sqlite=_named(""),
    postgresql_setup=(text("SET LOCAL enable_sort = off"),),
)


@pytest.fixture
async def probes(rt: Runtime) -> list[str]:
    """Twenty rows due a second apart (oldest first), and five not due yet."""
    async with rt.engine.begin() as conn:
        await conn.run_sync(_Base.metadata.create_all)
    now = utcnow()
    due = [f"p{i:02d}" for i in range(20)]
    async with rt.sessions.begin() as session:
        session.add_all(Probe(id=pid, due_at=now - timedelta(seconds=100 - i)) for i, pid in enumerate(due))
        session.add_all(Probe(id=f"later{i}", due_at=now + timedelta(hours=1)) for i in range(5))
    return due


def due(limit: int) -> Any:
    return select(Probe).where(Probe.due_at <= utcnow()).order_by(Probe.due_at, Probe.id).limit(limit)


def due_keys(limit: int) -> Any:
    return select(Probe.id).where(Probe.due_at <= utcnow()).order_by(Probe.due_at, Probe.id).limit(limit)


async def claim_ids(
    session: AsyncSession, form: str, limit: int, lease: timedelta, owner: str = "me"
) -> list[str]:
    """Claim with one of the helper's forms; the claimed ids, sorted."""
    if form == "lock":
        rows = await claims.claim(session, due(limit))
        return sorted(r.id for r in rows)
    if form == "hold":
        rows = await claims.claim(session, due(limit), lease=claims.hold(Probe.due_at, lease))
        return sorted(r.id for r in rows)
    if form == "stamp":
        ids = await claims.claim(
            session, due_keys(limit), lease=claims.Stamp(owner=owner, due_at=utcnow() + lease)
        )
        return sorted(ids)
    now = utcnow()
    params = {"owner": owner, "now": now, "until": now + lease, "limit": limit}
    return sorted(r.id for r in await claims.claim(session, PROBE_CLAIM, params))


async def test_a_claim_takes_the_due_rows_in_order_up_to_its_limit(rt: Runtime, probes: list[str]) -> None:
    async with rt.sessions.begin() as session:
        rows = await claims.claim(session, due(3))
    assert [r.id for r in rows] == probes[:3]


@pytest.mark.parametrize("form", ["hold", "stamp", "named"])
async def test_a_leased_row_is_not_claimed_again_until_its_lease_runs_out(
    rt: Runtime, probes: list[str], form: str
) -> None:
    async with rt.sessions.begin() as session:
        first = await claim_ids(session, form, 5, timedelta(seconds=0.4))
    assert first == probes[:5]
    async with rt.sessions.begin() as session:
        second = await claim_ids(session, form, 5, timedelta(seconds=0.4))
    assert second == probes[5:10]  # the leased five are passed over
    await asyncio.sleep(0.5)
    async with rt.sessions.begin() as session:
        third = await claim_ids(session, form, 20, timedelta(minutes=1))
    assert set(third) == set(probes)  # both leases ran out: those ten are due again (at least once)


async def test_a_stamp_is_written_by_the_claiming_statement(rt: Runtime, probes: list[str]) -> None:
    async with rt.sessions.begin() as session:
        ids = await claim_ids(session, "stamp", 4, timedelta(minutes=1), owner="w1")
    async with rt.sessions() as session:
        owners = dict(
            (await session.execute(select(Probe.id, Probe.owner).where(Probe.id.in_(probes)))).all()
        )
    assert ids == probes[:4]
    assert {pid for pid, owner in owners.items() if owner == "w1"} == set(ids)


async def test_a_stamp_needs_a_select_of_one_key(rt: Runtime, probes: list[str]) -> None:
    async with rt.sessions.begin() as session:
        with pytest.raises(TypeError, match="one key column"):
            await claims.claim(session, due(3), lease=claims.Stamp(owner="x"))


@pytest.mark.postgres_only
@pytest.mark.parametrize("form", ["lock", "hold", "stamp", "named"])
async def test_concurrent_claimers_take_disjoint_rows(rt: Runtime, probes: list[str], form: str) -> None:
    """Two transactions claim at once; the first holds its rows until it commits, and the second skips them
    rather than waiting for them or taking them too."""
    first = rt.sessions()
    second = rt.sessions()
    try:
        await first.begin()
        mine = await claim_ids(first, form, 6, timedelta(minutes=1), owner="first")
        await second.begin()
        theirs = await asyncio.wait_for(claim_ids(second, form, 6, timedelta(minutes=1), owner="second"), 5)
        assert mine == probes[:6]
        assert theirs == probes[6:12]
        await asyncio.gather(first.commit(), second.commit())
    finally:
        await first.close()
        await second.close()


@pytest.mark.postgres_only
async def test_many_concurrent_claimers_never_share_a_row(rt: Runtime, probes: list[str]) -> None:
    async def claimer(index: int) -> list[str]:
        taken: list[str] = []
        while True:
            async with rt.sessions.begin() as session:
                got = await claim_ids(session, "stamp", 2, timedelta(minutes=1), owner=f"c{index}")
            if not got:
                return taken
            taken += got

    results = await asyncio.gather(*(claimer(i) for i in range(5)))
    every = [pid for taken in results for pid in taken]
    assert sorted(every) == sorted(probes)  # each due row once, none twice
