"""Durable agent runs: every step committed as it happens, any process able to resume a run.

A run is woken by a producer (a schedule's task, a trigger's firing, a monitor's alert, an inbound message) or
by ``POST /api/v1/agents/{id}/runs``. Whoever works it holds a lease (:func:`take`, through the one claim helper);
each step renews it in the same transaction that records the step, and a step whose lease was lost rolls back
with everything it did. So a process killed mid-run leaves a lease that runs out, another process takes the run,
rebuilds the conversation from the committed steps, and goes on: a tool call that committed is never repeated,
and one that did not commit never happened.

What runs depends on the agent: an ``llm`` agent's tool-calling loop (:mod:`herald.agents.loop`), an ``external``
agent's callback (one step), or, in development, the echo agent for an agent with neither (one step, marked
simulated).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, bindparam, insert, or_, select, update
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from herald.core.background import Loop
from herald.core.batching import GroupCommits
from herald.core.errors import HeraldError, NotFound, RequestError
from herald.core.ids import new_id
from herald.core.intent import Intent
from herald.core.principal import Principal
from herald.pipeline import accept
from herald.storage import claims
from herald.storage.audit import audit_row, event_row
from herald.storage.bulk import insert_rows, table_of
from herald.storage.models import Agent, AgentRun, AgentRunStep, AuditEntry, Event
from herald.storage.types import utcnow

if TYPE_CHECKING:
    from herald.runtime import Runtime

log = logging.getLogger(__name__)

QUEUED, RUNNING, COMPLETED, FAILED = "queued", "running", "completed", "failed"
WAITING = "waiting"  # for a person's answer (ask_human); the answer queues the run again
STEP_LIMIT, TOKEN_LIMIT, TIMED_OUT = "step_limit", "token_limit", "timed_out"
FINISHED = frozenset({COMPLETED, FAILED, STEP_LIMIT, TOKEN_LIMIT, TIMED_OUT})
LEASE = timedelta(seconds=90)
OWNER = f"{socket.gethostname()}:{os.getpid()}"


class LeaseLost(HeraldError):
    """Another process took this run (our lease ran out): stop without writing anything more."""


def due_runs() -> Any:
    """Runs waiting for a worker: queued, or running under a lease that ran out."""
    now = utcnow()
    return or_(AgentRun.status == QUEUED, and_(AgentRun.status == RUNNING, AgentRun.lease_until < now))


async def ensure(
    rt: Runtime,
    *,
    tenant_id: str,
    agent_id: str,
    origin: str,
    woken_by: str,
    task: str,
    context: dict[str, Any] | None = None,
    retry_failed: bool = False,
) -> str:
    """The id of the run ``origin`` started, creating it (queued) the first time.

    With ``retry_failed``, a caller that retries after a failure (an inbound message's next attempt) gets a new
    run when the last one for ``origin`` failed (``<origin>:retry<n>``); a run that did not fail (still
    working, or finished while the caller's process died) is resumed or answered, never started again."""
    run_id, _ = await open_run(
        rt, tenant_id=tenant_id, agent_id=agent_id, origin=origin, woken_by=woken_by, task=task,
        context=context, retry_failed=retry_failed,
    )  # fmt: skip
    return run_id


async def open_run(
    rt: Runtime,
    *,
    tenant_id: str,
    agent_id: str,
    origin: str,
    woken_by: str,
    task: str,
    context: dict[str, Any] | None = None,
    retry_failed: bool = False,
    held_by: str | None = None,
) -> tuple[str, AgentRun | None]:
    """:func:`ensure`, and the run itself when this call created it.

    With ``held_by``, a run created here is created running under that owner's lease, for a caller that works
    it at once (a producer waiting for its agent): taking it afterwards would be one more transaction per
    inbound message. Runs found (a retry of the same origin) are left as they are, for :func:`drive` to take.

    The first run is inserted straight away: the common case (a message seen for the first time) costs no
    lookup; a conflict on ``(tenant, origin)`` means it exists, and only then are the runs looked up."""
    fields: dict[str, Any] = {"tenant_id": tenant_id, "agent_id": agent_id, "woken_by": woken_by, "task": task,
                              "context": context or {}, "held_by": held_by}  # fmt: skip
    created = await _create(rt, origin=origin, **fields)
    if created is not None:
        return created.id, created
    found = await _runs_of(rt, tenant_id, origin)
    if not found:  # the conflict was not on the origin
        raise HeraldError(f"the agent run for {origin!r} could not be created")
    if not (retry_failed and found[0].status == FAILED):
        return str(found[0].id), None
    retry = f"{origin}:retry{len(found)}"
    created = await _create(rt, origin=retry, **fields)
    if created is not None:
        return created.id, created
    async with rt.sessions() as session:  # another process started the retry first
        existing = await session.scalar(
            select(AgentRun.id).where(AgentRun.tenant_id == tenant_id, AgentRun.origin == retry)
        )
    if existing is None:
        raise NotFound(f"agent run for {retry!r} vanished")
    return existing, None


async def _create(
    rt: Runtime,
    *,
    tenant_id: str,
    agent_id: str,
    origin: str,
    woken_by: str,
    task: str,
    context: dict[str, Any],
    held_by: str | None,
) -> AgentRun | None:
    """Insert the run for ``origin`` (queued, or running under ``held_by``'s lease); None when it exists.

    Runs opened at the same moment share one transaction (group commit), each committed before its caller goes
    on, so a process that dies after this leaves a run another process finds."""
    now = utcnow()
    row: dict[str, Any] = {
        "id": new_id("run"), "tenant_id": tenant_id, "agent_id": agent_id, "origin": origin, "woken_by": woken_by,
        "task": task, "context": context, "status": QUEUED, "steps": 0, "prompt_tokens": 0, "completion_tokens": 0,
        "sent_messages": [], "simulated": False, "lease_owner": None, "lease_until": None, "started_at": None,
        "created_at": now, "updated_at": now,
    }  # fmt: skip
    if held_by is not None:
        row.update(status=RUNNING, lease_owner=held_by, lease_until=now + LEASE, started_at=now)
    kind = "agent.run.started" if held_by is not None else "agent.run.queued"
    event = event_row(tenant_id, kind, row["id"], {"agent_id": agent_id, "woken_by": woken_by}, at=now)
    opening = _Opening(row, event)
    try:
        await _OPENINGS.of(rt).submit(opening)
    except IntegrityError:  # not the origin (a vanished agent's tenant): the caller finds no run and says so
        return None
    return AgentRun(**row) if opening.created else None


@dataclass(eq=False)
class _Opening:
    row: dict[str, Any]
    event: dict[str, Any]
    created: bool = False


async def _open_all(rt: Runtime, openings: list[_Opening]) -> None:
    """Insert the runs; those whose origin exists already are left out (``created`` stays False)."""
    for opening in openings:  # this may be a second attempt after a rolled-back group
        opening.created = False
    insert_ = pg_insert if rt.dialect == "postgresql" else sqlite_insert
    table = table_of(AgentRun)
    async with rt.sessions.begin() as session:
        connection = await session.connection()  # Core, many parameter sets: compiled once, not per row
        written = await connection.execute(
            insert_(table).on_conflict_do_nothing().returning(table.c.id),
            [opening.row for opening in openings],
        )
        fresh = set(written.scalars())
        created = [opening for opening in openings if opening.row["id"] in fresh]
        for opening in created:
            opening.created = True
        if created:
            await session.execute(insert(Event), [opening.event for opening in created])


async def _runs_of(rt: Runtime, tenant_id: str, origin: str) -> list[Any]:
    """The runs ``origin`` started, newest first: (id, status) rows.

    The first run is looked up by equality, on the unique index. Retries (``<origin>:retry<n>``) exist only
    after it failed, and only then are they looked for: a prefix ``LIKE`` cannot use that index (collations, and
    SQLite's case-insensitive LIKE), so asking it on every call scanned all the tenant's runs for each inbound
    message, and routing slowed as the table grew."""
    async with rt.sessions() as session:
        first = (
            await session.execute(
                select(AgentRun.id, AgentRun.status, AgentRun.created_at).where(
                    AgentRun.tenant_id == tenant_id, AgentRun.origin == origin
                )
            )
        ).all()
        if not first or first[0].status != FAILED:
            return list(first)
        rows = await session.execute(
            select(AgentRun.id, AgentRun.status, AgentRun.created_at)
            .where(AgentRun.tenant_id == tenant_id,
                   or_(AgentRun.origin == origin, AgentRun.origin.like(f"{origin}:retry%")))
            .order_by(AgentRun.created_at.desc(), AgentRun.id.desc())
        )  # fmt: skip
        return list(rows.all())


async def take(rt: Runtime, run_id: str, owner: str = OWNER) -> bool:
    """Lease one run if it is due (queued, or its lease ran out); False when it is finished or held."""
    return bool(await _lease(rt, select(AgentRun.id).where(AgentRun.id == run_id, due_runs()), owner))


async def claim_due(rt: Runtime, *, limit: int, owner: str = OWNER) -> list[str]:
    """Lease up to ``limit`` due runs for this process."""
    return await _lease(
        rt, select(AgentRun.id).where(due_runs()).order_by(AgentRun.created_at).limit(limit), owner
    )


async def _lease(rt: Runtime, due: Any, owner: str) -> list[str]:
    """Claim the runs ``due`` selects for ``owner`` (the one claim helper), stamping when each first started."""
    now = utcnow()
    async with rt.sessions.begin() as session:
        taken = await claims.claim(
            session, due,
            lease=claims.Stamp(status=RUNNING, lease_owner=owner, lease_until=now + LEASE, updated_at=now),
        )  # fmt: skip
        if taken:
            await session.execute(
                update(AgentRun)
                .where(AgentRun.id.in_(taken), AgentRun.started_at.is_(None))
                .values(started_at=now)
            )
    return list(taken)


async def get(rt: Runtime, run_id: str) -> AgentRun | None:
    async with rt.sessions() as session:
        return await session.get(AgentRun, run_id)


async def steps_of(rt: Runtime, run_id: str) -> list[AgentRunStep]:
    async with rt.sessions() as session:
        rows = await session.execute(
            select(AgentRunStep).where(AgentRunStep.run_id == run_id).order_by(AgentRunStep.seq)
        )
        return list(rows.scalars())


async def renew(session: AsyncSession, run_id: str, owner: str, **values: Any) -> None:
    """Update the run and renew its lease in the caller's transaction; LeaseLost (rolling that transaction back,
    the step's effects with it) once the lease is someone else's."""
    now = utcnow()
    renewed = await session.execute(
        update(AgentRun)
        .where(AgentRun.id == run_id, AgentRun.lease_owner == owner, AgentRun.status == RUNNING)
        .values(lease_until=now + LEASE, updated_at=now, **values)
    )
    if renewed.rowcount == 0:  # type: ignore[attr-defined]
        raise LeaseLost(run_id)


async def wait(session: AsyncSession, run: AgentRun, owner: str) -> None:
    """Park the run (under our lease) until a person answers: no process holds it meanwhile, and the answer,
    recorded as the waiting tool call's result, queues it again (see :mod:`herald.humans.decisions`)."""
    now = utcnow()
    context = {**run.context, "waiting_since": now.isoformat()}
    parked = await session.execute(
        update(AgentRun)
        .where(AgentRun.id == run.id, AgentRun.lease_owner == owner, AgentRun.status == RUNNING)
        .values(status=WAITING, lease_owner=None, lease_until=None, updated_at=now, context=context)
    )
    if parked.rowcount == 0:  # type: ignore[attr-defined]
        raise LeaseLost(run.id)
    await session.execute(
        insert(Event),
        [event_row(run.tenant_id, "agent.run.waiting", run.id, {"agent_id": run.agent_id}, at=now)],
    )


def waited_seconds(run: AgentRun) -> float:
    """Time the run spent waiting for people, which its own time limit does not count."""
    return float(run.context.get("waited_seconds") or 0.0)


async def finish(
    rt: Runtime,
    run: AgentRun,
    status: str,
    *,
    owner: str,
    answer: str | None = None,
    error: str | None = None,
    simulated: bool | None = None,
    step: AgentRunStep | None = None,
) -> None:
    """Settle the run (under our lease) with its outcome and say so on the event feed; ``step``, the run's last
    step, is recorded in the same transaction (a one-step agent's whole run is then one write).

    Runs finishing at the same moment share one transaction (group commit: many inbound messages' agents
    answer together), except one whose answer goes to the agent's default recipient, which goes through the
    pipeline in its own. The outcome is also set on ``run`` itself, so whoever worked it here can answer without
    reading it back."""
    now = utcnow()
    values: dict[str, Any] = {"status": status, "answer": answer, "error": error, "finished_at": now,
                              "lease_owner": None, "lease_until": None, "updated_at": now}  # fmt: skip
    if simulated is not None:
        values["simulated"] = simulated
    if step is not None:
        values["steps"] = step.seq
    steps = step.seq if step is not None else run.steps
    detail = {"agent_id": run.agent_id, "status": status, "error": error, "steps": steps}
    event = event_row(run.tenant_id, f"agent.run.{status}", run.id, detail, at=now)
    step_row = _step_row(step) if step is not None else None
    # A run woken by the API, or one that waited for a person (its producer stopped waiting for it), has
    # nobody to hand its answer to: it goes to the agent's default recipient.
    unheard = run.woken_by == "api" or "waited_seconds" in run.context
    if unheard and status == COMPLETED and answer and not run.sent_messages:
        async with rt.sessions.begin() as session:
            await _settle(session, [_Ending(run.id, owner, values, step_row, event)])
            await _answer_to_default_recipient(rt, session, run, answer, simulated=bool(simulated))
    else:
        await _ENDINGS.of(rt).submit(_Ending(run.id, owner, values, step_row, event))
    for name, value in values.items():
        setattr(run, name, value)


@dataclass(eq=False)
class _Ending:
    run_id: str
    owner: str
    values: dict[str, Any]
    step: dict[str, Any] | None
    event: dict[str, Any]


async def _settle_all(rt: Runtime, endings: list[_Ending]) -> None:
    async with rt.sessions.begin() as session:
        await _settle(session, endings)


async def _settle(session: AsyncSession, endings: list[_Ending]) -> None:
    """Each run's end under its owner's lease, then their steps and events. A lost lease raises LeaseLost,
    rolling the group back; the group commit then settles each run alone, so only that one fails.

    The leases are checked with one locking read, then the runs updated with one executemany per shape of
    update: a statement per run, one after the other, held the group's transaction open for as many round
    trips while a busy process got round to each."""
    connection = await session.connection()
    held_query = select(AgentRun.id, AgentRun.lease_owner, AgentRun.status).where(
        AgentRun.id.in_([ending.run_id for ending in endings])
    )
    if connection.dialect.name == "postgresql":
        held_query = held_query.with_for_update()
    held = {run_id: (owner, status) for run_id, owner, status in (await connection.execute(held_query)).all()}
    shapes: dict[tuple[str, ...], list[_Ending]] = {}
    for ending in endings:
        if held.get(ending.run_id) != (ending.owner, RUNNING):
            raise LeaseLost(ending.run_id)
        shapes.setdefault(tuple(sorted(ending.values)), []).append(ending)
    table = table_of(AgentRun)
    for names, group in shapes.items():
        statement = (
            update(table)
            .where(table.c.id == bindparam("b_id"))
            .values({name: bindparam(f"b_{name}") for name in names})
        )
        rows = [{"b_id": e.run_id, **{f"b_{name}": value for name, value in e.values.items()}} for e in group]
        await connection.execute(statement, rows)
    steps = [ending.step for ending in endings if ending.step is not None]
    if steps:
        await insert_rows(session, table_of(AgentRunStep), steps)
    await insert_rows(session, table_of(Event), [ending.event for ending in endings])


def _step_row(step: AgentRunStep) -> dict[str, Any]:
    return {attr.key: getattr(step, attr.key) for attr in sa_inspect(AgentRunStep).column_attrs}


async def _answer_to_default_recipient(
    rt: Runtime, session: AsyncSession, run: AgentRun, answer: str, *, simulated: bool
) -> None:
    """A run started through the API answers to nobody in particular: its answer goes to the agent's default
    recipient, in the transaction that finishes the run (so once); with none set, the answer stays on the run.
    A refusal (a STUDENT agent) is recorded by the pipeline and leaves the run's answer as it is."""
    agent = await session.get(Agent, (run.tenant_id, run.agent_id))
    target = (agent.default_recipient if agent else None) or {}
    if not target:
        return
    intent = Intent(
        agent_id=run.agent_id, platform=target.get("platform"), recipient_id=target.get("recipient_id"),
        contact_id=target.get("contact_id"), content=answer,
        governance_metadata={"agent_run": run.id, **({"simulated": True} if simulated else {})},
    )  # fmt: skip
    principal = Principal(tenant_id=run.tenant_id, key_id=run.id, is_admin=False, kind="agent")
    try:
        async with session.begin_nested():
            message = await accept.accept(rt, session, principal, intent)
    except RequestError as exc:
        log.info("run %s: its answer was not sent to the default recipient: %s", run.id, exc.detail)
        return
    await session.execute(update(AgentRun).where(AgentRun.id == run.id).values(sent_messages=[message.id]))
    run.sent_messages = [message.id]


async def work(rt: Runtime, run_id: str, owner: str = OWNER) -> None:
    """Work a run this process holds until it finishes (or its lease is lost); never raises for the run's own
    failures, which end the run ``failed`` with the reason."""
    async with rt.sessions() as session:
        run = await session.get(AgentRun, run_id)
        agent = await session.get(Agent, (run.tenant_id, run.agent_id)) if run else None
    if run is None or run.status != RUNNING or run.lease_owner != owner:
        return
    await work_held(rt, run, agent, owner)


async def work_held(rt: Runtime, run: AgentRun, agent: Agent | None, owner: str = OWNER) -> None:
    """Work ``run``, already loaded and held by ``owner``, until it finishes (see :func:`work`)."""
    # Loaded when a run is first worked: the LLM loop imports the openai library, which a process that never
    # works a run (an API process, a benchmark's worker) does not need to load.
    from herald.agents import executors

    run_id = run.id
    try:
        await executors.execute(rt, run, agent, owner)
    except LeaseLost:
        log.info("agent run %s was taken over by another process", run_id)
    except Exception as exc:  # a bug must end the run visibly, not leave it leased forever
        log.exception("agent run %s failed", run_id)
        with contextlib.suppress(LeaseLost):
            await finish(rt, run, FAILED, owner=owner, error=f"internal error: {type(exc).__name__}")


async def drive(
    rt: Runtime,
    run_id: str,
    *,
    wait_seconds: float,
    held: AgentRun | None = None,
    agent: Agent | None = None,
) -> AgentRun:
    """Take the run if it is due and work it here; if another process holds it, wait for it to finish.

    ``held`` is the run when :func:`open_run` created it held by this process, with its ``agent``: it is worked
    as it is, and a one-step agent's finished run answers from memory (:func:`finish` set its outcome there).

    Answers the run as it stands at the end (finished, or still held elsewhere after ``wait_seconds``)."""
    if held is not None:
        await work_held(rt, held, agent)
        if held.status in FINISHED and agent is not None and agent.kind != "llm":
            return held
    elif await take(rt, run_id):
        await work(rt, run_id)
    loop = asyncio.get_running_loop()
    until = loop.time() + wait_seconds
    while True:
        run = await get(rt, run_id)
        if run is None or run.status in FINISHED or run.status == WAITING or loop.time() >= until:
            assert run is not None
            return run
        if await take(rt, run_id):  # its holder died meanwhile
            await work(rt, run_id)
            continue
        await asyncio.sleep(0.2)


BATCH = 20


async def run_due(rt: Runtime, *, limit: int = BATCH) -> int:
    """One pass of the runs loop: take due runs (queued by the API, or orphaned by a dead process) and work them."""
    taken = await claim_due(rt, limit=limit)
    if taken:
        await asyncio.gather(*(work(rt, run_id) for run_id in taken))
    return len(taken)


async def run_pass(rt: Runtime) -> int:
    return await run_due(rt)


# Agents act on a person's behalf and send through the pipeline: the worker role runs them, next to deliveries.
LOOPS = (Loop("agent runs", "worker", run_pass=run_pass, interval=1.0, batch=BATCH),)


# -- reading and starting runs (the API's) --------------------------------------------------------------------


async def list_runs(
    session: AsyncSession,
    tenant_id: str,
    agent_id: str,
    *,
    status: str | None,
    limit: int,
    cursor: str | None,
) -> list[AgentRun]:
    """Newest first; ``cursor`` is the id of the last run of the previous page."""
    query = select(AgentRun).where(AgentRun.tenant_id == tenant_id, AgentRun.agent_id == agent_id)
    if status is not None:
        query = query.where(AgentRun.status == status)
    if cursor is not None:
        query = query.where(AgentRun.id < cursor)
    return list((await session.execute(query.order_by(AgentRun.id.desc()).limit(limit))).scalars())


async def get_run(session: AsyncSession, tenant_id: str, agent_id: str, run_id: str) -> AgentRun:
    run = await session.get(AgentRun, run_id)
    if run is None or run.tenant_id != tenant_id or run.agent_id != agent_id:
        raise NotFound(f"no run {run_id!r} of agent {agent_id!r}", field="run_id")
    return run


async def step_log(session: AsyncSession, run_id: str) -> list[AgentRunStep]:
    rows = await session.execute(
        select(AgentRunStep).where(AgentRunStep.run_id == run_id).order_by(AgentRunStep.seq)
    )
    return list(rows.scalars())


async def start(
    rt: Runtime, principal: Principal, agent_id: str, task: str, context: dict[str, Any]
) -> AgentRun:
    """Queue a run of the tenant's agent (the runs loop takes it at once); audited as the caller's act."""
    async with rt.sessions.begin() as session:
        agent = await session.get(Agent, (principal.tenant_id, agent_id))
        if agent is None:
            raise NotFound(f"no agent {agent_id!r}", field="agent_id")
        if principal.agent_id is not None and principal.agent_id != agent_id:
            raise NotFound(f"no agent {agent_id!r}", field="agent_id")
        await session.execute(insert(AuditEntry), [audit_row(
            principal.tenant_id, principal.actor, "agent.run_requested", "agent", agent_id, {"task": task[:200]},
        )])  # fmt: skip
    run_id = await ensure(rt, tenant_id=principal.tenant_id, agent_id=agent_id, origin=f"api:{new_id('req')}",
                          woken_by="api", task=task, context={"event": "agent.task", "data": context})  # fmt: skip
    found = await get(rt, run_id)
    assert found is not None
    return found


_OPENINGS: GroupCommits[Runtime, _Opening] = GroupCommits(_open_all)
_ENDINGS: GroupCommits[Runtime, _Ending] = GroupCommits(_settle_all)
