"""The one loop runner: a failing pass never ends a loop, a full batch runs again at once, stop ends it."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import pytest

from herald.core.background import MAX_BACKOFF_SECONDS, Loop, backoff, run_loop

RT: Any = object()  # the runner only hands the runtime to the pass


def counting(results: Callable[[int], int]) -> tuple[list[float], Callable[[Any], Any]]:
    """A pass that records when it ran and returns ``results(call number)`` (which may raise)."""
    calls: list[float] = []

    async def run_pass(rt: Any) -> int:
        assert rt is RT
        calls.append(time.monotonic())
        return results(len(calls))

    return calls, run_pass


async def until(condition: Callable[[], bool], within: float = 2.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.005)


async def test_a_pass_that_raises_keeps_the_loop_alive(caplog: pytest.LogCaptureFixture) -> None:
    def results(call: int) -> int:
        if call <= 2:
            raise RuntimeError(f"database down ({call})")
        return 0

    calls, run_pass = counting(results)
    stop = asyncio.Event()
    task = asyncio.create_task(
        run_loop(Loop("probe", "scheduler", run_pass=run_pass, interval=0.01), RT, stop)
    )
    await until(lambda: len(calls) >= 4)
    stop.set()
    await asyncio.wait_for(task, 1)
    failures = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert [r.exc_info[1].args[0] for r in failures if r.exc_info and r.exc_info[1]] == [
        "database down (1)",
        "database down (2)",
    ]


async def test_a_full_batch_runs_the_pass_again_at_once() -> None:
    calls, run_pass = counting(lambda call: 10 if call <= 3 else 2)
    stop = asyncio.Event()
    loop = Loop("probe", "scheduler", run_pass=run_pass, interval=60, batch=10)
    task = asyncio.create_task(run_loop(loop, RT, stop))
    await until(lambda: len(calls) == 4)  # three full batches back to back, then a short one
    await asyncio.sleep(0.1)
    assert len(calls) == 4  # the short batch waits its (minute-long) interval
    stop.set()
    await asyncio.wait_for(task, 1)


async def test_any_work_reruns_with_a_batch_of_one_and_none_never_reruns_early() -> None:
    eager_calls, eager = counting(lambda call: 1 if call <= 5 else 0)
    lazy_calls, lazy = counting(lambda call: 1_000_000)
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(
            run_loop(Loop("eager", "scheduler", run_pass=eager, interval=60, batch=1), RT, stop)
        ),
        asyncio.create_task(run_loop(Loop("lazy", "scheduler", run_pass=lazy, interval=60), RT, stop)),
    ]
    await until(lambda: len(eager_calls) == 6)
    await asyncio.sleep(0.05)
    assert (len(eager_calls), len(lazy_calls)) == (6, 1)
    stop.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 1)


async def test_stop_ends_the_loop_during_its_wait_and_before_its_first_pass() -> None:
    calls, run_pass = counting(lambda call: 0)
    stop = asyncio.Event()
    task = asyncio.create_task(run_loop(Loop("probe", "worker", run_pass=run_pass, interval=3600), RT, stop))
    await until(lambda: len(calls) == 1)
    started = time.monotonic()
    stop.set()
    await asyncio.wait_for(task, 1)
    assert time.monotonic() - started < 0.5  # not the hour-long interval
    await run_loop(Loop("probe", "worker", run_pass=run_pass), RT, stop)  # already stopped: no pass
    assert len(calls) == 1


async def test_a_loop_with_its_own_runner_is_run_by_it() -> None:
    seen: list[tuple[Any, asyncio.Event]] = []

    async def runner(rt: Any, stop: asyncio.Event) -> None:
        seen.append((rt, stop))

    stop = asyncio.Event()
    await run_loop(Loop("own", "worker", runner=runner), RT, stop)
    assert seen == [(RT, stop)]


async def test_a_loop_needs_a_pass_or_a_runner_and_a_known_role() -> None:
    async def runner(rt: Any, stop: asyncio.Event) -> None: ...

    async def run_pass(rt: Any) -> int:
        return 0

    with pytest.raises(ValueError, match="not both or neither"):
        Loop("both", "worker", run_pass=run_pass, runner=runner)
    with pytest.raises(ValueError, match="not both or neither"):
        Loop("neither", "worker")
    with pytest.raises(ValueError, match="role"):
        Loop("odd", "api", run_pass=run_pass)  # type: ignore[arg-type]


def test_backoff_doubles_from_the_interval_and_is_capped() -> None:
    assert [backoff(0.5, n) for n in (1, 2, 3, 4, 5)] == [0.5, 1.0, 2.0, 4.0, MAX_BACKOFF_SECONDS]
    assert backoff(0.5, 10_000) == MAX_BACKOFF_SECONDS  # no overflow after a long outage
    assert backoff(600.0, 3) == 600.0  # never shorter than the interval, never longer either
