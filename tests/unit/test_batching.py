"""Group commit: submissions of the same moment share one write; each submitter sees its own outcome."""

from __future__ import annotations

import asyncio

import pytest

from herald.batching import GroupCommit


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


async def test_a_failed_write_fails_each_of_its_submitters_and_the_next_write_goes_on() -> None:
    calls = 0

    async def write(items: list[str]) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("database down")

    group: GroupCommit[str] = GroupCommit(write)
    results = await asyncio.gather(group.submit("a"), group.submit("b"), return_exceptions=True)
    assert [type(r) for r in results] == [RuntimeError, RuntimeError]
    await group.submit("c")
    assert calls == 2


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
