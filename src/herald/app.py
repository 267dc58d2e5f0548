"""The composition root: every background loop Herald runs, and which command runs which.

Each producer declares its loops next to its code (a ``LOOPS`` tuple of :class:`herald.core.background.Loop`);
this module is the one place that lists them. ``herald serve`` (``create_app(run_worker=True)``) runs every
role, ``herald worker`` the worker role, ``herald scheduler`` the scheduler role; ``herald api`` runs none.
Nothing else names loops, so a new one is added here once and every command that should run it does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import TYPE_CHECKING

from herald.admin import retention
from herald.agents import runs
from herald.core.background import ROLES, Loop, Role, run_loop
from herald.events import dispatcher
from herald.humans import decisions, outreach
from herald.learning import suggestions
from herald.pipeline import escalation, worker
from herald.producers import digests
from herald.producers.campaigns import runner as campaigns
from herald.producers.conversations import processor
from herald.producers.email import imap
from herald.producers.monitors import engine
from herald.producers.schedules import scheduler
from herald.producers.triggers import reactions

if TYPE_CHECKING:
    from herald.runtime import Runtime

LOOPS: tuple[Loop, ...] = (
    # worker: deliveries and inbound routing
    *worker.LOOPS,
    *processor.LOOPS,
    *runs.LOOPS,
    *imap.LOOPS,  # inbound mail: taken in like a provider's webhook
    # scheduler: what decides when something happens
    *outreach.LOOPS,
    *decisions.LOOPS,
    *scheduler.LOOPS,
    *campaigns.LOOPS,
    *digests.LOOPS,  # due digests: one message for many held ones
    *engine.LOOPS,
    *reactions.LOOPS,
    *escalation.LOOPS,  # receipt-driven escalation: unanswered messages go on to the next channel
    *dispatcher.LOOPS,
    *retention.LOOPS,
    *suggestions.LOOPS,  # what Herald learns: suggestions from patterns, per tenant every hour
)

COMMANDS: dict[str, tuple[Role, ...]] = {"serve": ROLES, "worker": ("worker",), "scheduler": ("scheduler",)}
"""The roles each ``herald`` command that runs loops takes on."""


def loops_for(roles: Iterable[Role]) -> tuple[Loop, ...]:
    """The loops of ``roles``, in :data:`LOOPS` order."""
    wanted = set(roles)
    return tuple(loop for loop in LOOPS if loop.role in wanted)


async def run(rt: Runtime, stop: asyncio.Event, roles: Iterable[Role]) -> None:
    """Run the loops of ``roles`` until ``stop`` is set; returns once every one of them has ended."""
    await asyncio.gather(*(run_loop(loop, rt, stop) for loop in loops_for(roles)))
