"""A producer's agent run (the path every inbound message takes): created held by the process that works it,
retried once per failure, and settled in one write for a one-step agent; the database work per call stays
small and does not grow with the number of runs the tenant already has."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import event, select

from herald.agents import runs
from herald.producers.callbacks import CallbackFailed
from herald.runtime import Runtime
from herald.storage.models import Agent, AgentRun, AgentRunStep, Event
from tests.integration.agents.conftest import Fakes, register


@pytest.fixture
async def helper(client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, fakes: Fakes) -> Agent:
    await register(client, auth, {"id": "helper", "maturity_level": "AUTONOMOUS",
                                  "callback_url": "https://agent.example/hook"})  # fmt: skip
    async with rt.sessions() as session:
        return (await session.execute(select(Agent).where(Agent.id == "helper"))).scalar_one()


@contextmanager
def statements(rt: Runtime) -> Iterator[list[str]]:
    """The SQL statements the runtime's engine sends meanwhile."""
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    event.listen(rt.engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(rt.engine.sync_engine, "before_cursor_execute", record)


async def ask(rt: Runtime, agent: Agent, origin: str) -> Any:
    return await rt.agents.ask(
        agent, "message.received", {"text": "hi"}, origin=origin, message_id=origin, task="hi",
        conversational=True, retry_failed=True,
    )  # fmt: skip


async def test_a_producers_run_is_created_held_and_settled_with_its_step(
    rt: Runtime, helper: Agent, fakes: Fakes
) -> None:
    answer = await ask(rt, helper, "inbound:inb_1")
    assert answer.content == "On it."
    async with rt.sessions() as session:
        run = (await session.execute(select(AgentRun))).scalar_one()
        steps = list((await session.execute(select(AgentRunStep))).scalars())
        kinds = list((await session.execute(select(Event.type).where(Event.subject_id == run.id))).scalars())
    assert (run.status, run.answer, run.steps, run.lease_owner) == (runs.COMPLETED, "On it.", 1, None)
    assert run.started_at is not None
    assert run.finished_at is not None
    assert [(s.seq, s.kind, s.payload["answer"]) for s in steps] == [(1, "callback", {"reply": "On it."})]
    assert sorted(kinds) == ["agent.run.completed", "agent.run.started"]  # never queued for another process
    assert len(fakes.callbacks) == 1


async def test_asking_again_answers_from_the_run_and_a_failure_is_retried_once(
    rt: Runtime, helper: Agent, fakes: Fakes
) -> None:
    await ask(rt, helper, "inbound:inb_2")
    again = await ask(rt, helper, "inbound:inb_2")  # a redelivered message: the finished run answers
    assert again.content == "On it."
    assert len(fakes.callbacks) == 1

    failing = "inbound:inb_3"
    with pytest.raises(CallbackFailed):
        await ask_while_down(rt, helper, failing)
    fakes.callback_answer = {"reply": "Second try."}
    retried = await ask(rt, helper, failing)
    again = await ask(rt, helper, failing)
    assert retried.content == again.content == "Second try."
    async with rt.sessions() as session:
        rows = await session.execute(select(AgentRun.origin, AgentRun.status))
        by_origin = dict(rows.all())
    assert by_origin == {"inbound:inb_2": runs.COMPLETED, failing: runs.FAILED,
                         f"{failing}:retry1": runs.COMPLETED}  # fmt: skip


async def ask_while_down(rt: Runtime, agent: Agent, origin: str) -> Any:
    def down(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, json={"error": "down"})

    working, rt.http = rt.http, httpx.AsyncClient(transport=httpx.MockTransport(down))
    try:
        return await ask(rt, agent, origin)
    finally:
        rt.http = working


async def test_the_database_work_per_call_is_small_and_does_not_grow_with_the_runs(
    rt: Runtime, helper: Agent, fakes: Fakes
) -> None:
    """Each call inserted its run, then looked runs up by a prefix (a scan of all the tenant's runs), took it in
    a transaction of its own, read it back twice and wrote its one step apart from its end."""
    for n in range(30):
        await ask(rt, helper, f"inbound:inb_warm{n}")
    with statements(rt) as seen:
        await ask(rt, helper, "inbound:inb_measured")
    sql = [s.split()[0].upper() for s in seen if s.split()[0].upper() != "BEGIN"]  # SQLite's BEGIN IMMEDIATE
    assert not any(" LIKE " in s.upper() for s in seen), seen
    # two transactions: the run and its event; the lease checked, the run's end, its step and its event
    assert sorted(sql) == ["INSERT"] * 4 + ["SELECT", "UPDATE"], seen
