"""Group commit: submissions of the same moment share one write; each submitter sees its own outcome."""

from __future__ import annotations

import asyncio

import pytest

from herald.core.batching import GroupCommit


async def test_concurrent_submissions_share_one_write_and_alone_is_written_at_once() -> None:
    writes: list[list[int]] = []

    async def write(items: list[int]) -> None:
        await asyncio.sleep(0.01)
        writes.append(items)

    group: GroupCommit[int] = GroupCommit(write)
    await group.submit(0)
    assert writes == [[0]]
    await asyncio.gather(*(group.submit(i) for i in range(1, 11)))
    assert writes[1:] == [list(range(1, 11))]


async def test_a_bad_item_fails_only_its_own_submitter() -> None:
    written: list[list[str]] = []

    async def write(items: list[str]) -> None:
        if "bad" in items:
            raise RuntimeError("cannot store this one")
        written.append(items)

    group: GroupCommit[str] = GroupCommit(write)
    results = await asyncio.gather(
        group.submit("a"), group.submit("bad"), group.submit("b"), return_exceptions=True
    )
    assert [type(r) for r in results] == [type(None), RuntimeError, type(None)]
    assert written == [["a"], ["b"]]  # the group failed as a whole, then each was written alone
    await group.submit("c")
    assert written[-1] == ["c"]


async def test_batches_are_capped() -> None:
    sizes: list[int] = []

    async def write(items: list[int]) -> None:
        sizes.append(len(items))

    group: GroupCommit[int] = GroupCommit(write, max_batch=4)
    await asyncio.gather(*(group.submit(i) for i in range(10)))
    assert sizes == [4, 4, 2]


@pytest.mark.parametrize("n", [1, 3])
async def test_every_submitter_returns(n: int) -> None:
    async def write(items: list[int]) -> None:
        return None

    group: GroupCommit[int] = GroupCommit(write)
    await asyncio.wait_for(asyncio.gather(*(group.submit(i) for i in range(n))), 1)


async def test_a_failure_not_worth_writing_alone_fails_every_submitter_at_once() -> None:
    calls: list[list[str]] = []

    async def write(items: list[str]) -> None:
        calls.append(items)
        raise ConnectionRefusedError("the database is down")

    group: GroupCommit[str] = GroupCommit(write, alone=lambda exc: not isinstance(exc, ConnectionError))
    results = await asyncio.gather(*(group.submit(x) for x in "abc"), return_exceptions=True)
    assert [type(r) for r in results] == [ConnectionRefusedError] * 3
    assert calls == [["a", "b", "c"]]  # one try for the group, none alone
