"""Background loops: how a producer declares one (:class:`Loop`), and the one runner (:func:`run_loop`).

Every loop that claims work in the background (schedules, monitors, event deliveries, trigger reactions,
retention, the outbox worker, inbound routing) is declared once, next to its code, as a ``LOOPS`` tuple;
:mod:`herald.app` lists them all and says which process runs which. The runner holds what they all share:
a failing pass is logged and retried (the loop never dies of it), a pass that did a full batch runs again at
once (more is due right now), otherwise it waits for its interval or for ``stop``, whichever comes first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, get_args

if TYPE_CHECKING:
    from herald.runtime import Runtime

log = logging.getLogger(__name__)

Role = Literal["worker", "scheduler"]
"""Which process kind runs a loop: ``herald worker`` (deliveries, inbound routing) or ``herald scheduler``
(everything that decides when something happens). ``herald serve`` runs both."""
ROLES: tuple[Role, ...] = get_args(Role)

Pass = Callable[["Runtime"], Awaitable[int]]
"""One pass of a loop: claims and handles one batch, returns how much it did."""
Runner = Callable[["Runtime", asyncio.Event], Awaitable[None]]
"""A loop that keeps its own rhythm, running until the event is set."""

MAX_BACKOFF_SECONDS = 5.0  # a pass that keeps failing (the database is down) is retried at least this often


@dataclass(frozen=True, slots=True)
class Loop:
    """A background loop: its name, the role that runs it, and either a pass to repeat or its own runner.

    With ``run_pass``, :func:`run_loop` repeats the pass: at once when it returned at least ``batch`` (more is
    due now), otherwise after ``interval`` seconds; ``batch=None`` always waits the interval (the retention
    job, whose pass drains everything). With ``runner`` (the outbox worker pipelines batches and wakes on
    ``NOTIFY``; inbound routing the same), the loop is the runner's to run; it is still declared, listed and
    started like every other.
    """

    name: str
    role: Role
    run_pass: Pass | None = None
    interval: float = 1.0
    batch: int | None = None
    runner: Runner | None = None

    def __post_init__(self) -> None:
        if (self.run_pass is None) == (self.runner is None):
            raise ValueError(f"loop {self.name!r}: give run_pass or runner, not both or neither")
        if self.role not in ROLES:
            raise ValueError(f"loop {self.name!r}: role {self.role!r} is not one of {ROLES}")


async def run_loop(loop: Loop, rt: Runtime, stop: asyncio.Event) -> None:
    """Run ``loop`` until ``stop`` is set. A pass under way finishes first; a failing pass never ends it."""
    if loop.runner is not None:
        await loop.runner(rt, stop)
        return
    assert loop.run_pass is not None
    log.info("%s loop started", loop.name)
    failures = 0
    while not stop.is_set():
        try:
            done = await loop.run_pass(rt)
        except Exception:
            failures += 1
            log.exception("%s: a pass failed (%d in a row); trying again shortly", loop.name, failures)
            await _nap(stop, backoff(loop.interval, failures))
            continue
        failures = 0
        if loop.batch is not None and done >= loop.batch:
            continue  # a full batch: more is due right now
        await _nap(stop, loop.interval)
    log.info("%s loop stopped", loop.name)


def backoff(interval: float, failures: int) -> float:
    """The wait after ``failures`` failed passes in a row: the interval, doubling, capped (never below the
    interval), so a database outage is not logged several times a second by every loop."""
    return min(interval * 2.0 ** min(failures - 1, 20), max(interval, MAX_BACKOFF_SECONDS))


async def _nap(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
