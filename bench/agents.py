"""Herald agent-runs benchmark: LLM agent runs per second, and Herald's own overhead per agent step.

The bench builds a fresh database (PostgreSQL ``herald_bench_agents_<pid>`` on 127.0.0.1, dropped at the end, or
an SQLite file in a temporary folder), migrates it, creates a tenant and one AUTONOMOUS agent of kind ``llm``
(``herald.admin.tenants.create_agent`` with the settings and the sealed API key the agents API stores:
``base_url http://llm.bench/v1``, model ``fake-model``, all tools offered, as Herald's default; ``--offer one``
offers only the tool called). Then, ``--rounds`` times (default 3):

1. **queue**: ``--runs`` runs (default 2,000) through ``herald.agents.runs.ensure`` (what a producer or the API
   does; ``--queue-concurrency`` tasks at once), each with its own origin ``bench:r<round>:<i>``; on PostgreSQL
   the run tables are then ANALYZEd, as autovacuum would keep them on a live server;
2. **drain**: ``--workers`` worker processes (multiprocessing "spawn", default 2; each builds its own Runtime
   and its own model, below) are started and released together; each loops ``await runs.run_due(rt,
   limit=--limit)`` (what the "agent runs" worker loop does: claim a batch of due runs, work them concurrently,
   claim again) until a pass claims nothing. Runs per second = runs / (last run's ``finished_at`` - release).
   Before it says it is ready, each worker works one warm-up run of its own (``runs.take`` + ``runs.work``):
   the first run in a process imports the executors, the tools and the ``openai`` client's lazy modules (about
   1.5 s here), which a running worker has long done; its time is reported as ``warmup_seconds``.

The model answers at once, in process: each worker's ``rt.http`` is an ``httpx.AsyncClient`` on an
``httpx.MockTransport`` whose handler is the bench's (nothing in ``src/`` changes). The handler checks each
request as strictly as ``herald.fakes.llm`` does (its ``check_request``: key, model, roles, every tool call
answered, tool schemas) and answers with ``herald.fakes.llm.completion``: a call of ``--tool``
(``list_pending_approvals``, read-only, or ``lookup_contact``) when the conversation's last message is the
user's task, and the reply ``ok`` when it is a tool result. The answer depends on the request only, so runs
worked concurrently cannot take each other's scripted turns; every run is model, tool, model: 3 steps.

Figures, from the database after each round (every run of the round must have ended ``completed`` with exactly
the steps model, tool (outcome ok), model and the answer ``ok``, else the bench fails):

- **runs/s** and steps/s per round, and their median over the rounds;
- **Herald's overhead per step**: for each run, (``finished_at`` - ``started_at``) minus the sum of its model
  steps' ``duration_ms`` (the model call's time as the loop records it), divided by its number of steps;
  median and p95 over all runs. ``started_at`` is stamped when ``run_due`` claims the batch, and the batch's
  runs are worked concurrently in one event loop, so this is a latency under load: it grows with ``--limit``
  (each run waits while the batch's other runs take the loop and the database). ``--limit 1 --workers 1`` gives
  the unloaded figure;
- **model time per call** as recorded (``duration_ms`` of the model steps): it includes the ``openai``
  client's own work on Herald's side (a client per call, request serialisation, parsing the answer) and time
  waiting for the event loop behind the batch's other runs, besides the handler's time, reported apart;
- **cost per step**, the throughput view: worker process-seconds (workers x drain time) per step, worker CPU
  time per step (the workers' CPU from release to their last pass; it includes the in-process model), and the
  CPU time of the machine's ``postgres`` processes per step (/proc: user + system, the ended backends' counted
  in the postmaster's); with the machine's busy share during the drain and the share spent by neither (another
  load on the machine skews the figures: the bench warns above 10%);
- database connections the workers opened during the drain, per run (Herald's pool keeps 10 and opens up to 10
  more for a burst; a batch of 20 concurrent runs keeps opening and closing those).

Rounds share the database, so later rounds claim among the earlier rounds' finished runs (as a live server
does). The PostgreSQL server, the parent and the workers share the machine's CPUs.

Only 127.0.0.1 is touched. Results go to ``bench/results/agents-<backend>-<workers>w.json`` (with
``-limit<n>`` appended for a non-default ``--limit``, ``-offer1`` for ``--offer one``).

    .venv/bin/python bench/agents.py
    .venv/bin/python bench/agents.py --backend sqlite --runs 1000
    .venv/bin/python bench/agents.py --workers 1 --limit 1 --runs 300
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import itertools
import json
import os
import pstats
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from _common import (
    RESULTS_DIR,
    SECRET,
    BenchError,
    ProcessPool,
    check_loopback,
    describe_environment,
    percentile,
    pg_admin,
    prepare_results,
    wait_mp_event,
    with_database,
)
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from herald.admin.tenants import create_agent, get_or_create_tenant
from herald.agents import runs
from herald.agents.settings import LLMSettings
from herald.core.config import load_settings
from herald.core.errors import RequestError
from herald.core.maturity import MaturityLevel
from herald.core.principal import Principal
from herald.fakes.llm import FakeLLMState, LLMBehaviour, LLMRequest, ToolCall, check_request, completion
from herald.runtime import Runtime
from herald.storage.migrate import upgrade
from herald.storage.types import UTCDateTime

AGENT = "bench-agent"
LLM_BASE = "http://llm.bench/v1"
MODEL = "fake-model"
API_KEY = "sk-bench-0123456789"
REPLY = "ok"
TOOL_ARGUMENTS: dict[str, dict[str, Any]] = {
    "list_pending_approvals": {},
    "lookup_contact": {"query": "bench"},
}
EXPECTED_KINDS = ["model", "tool", "model"]
SPAWN_TIMEOUT = 60.0


# -- helpers ------------------------------------------------------------------------------------------------


def settings_kwargs(database_url: str, data_dir: str) -> dict[str, Any]:
    return {"database_url": database_url, "env": "development", "secret_key": SECRET, "data_dir": data_dir}


def spread(values: Sequence[float], digits: int = 2) -> dict[str, float | None]:
    """p50 / p95 / p99 / max / mean of values already in milliseconds."""
    if not values:
        return {"p50": None, "p95": None, "p99": None, "max": None, "mean": None}
    return {
        "p50": round(percentile(values, 50), digits),
        "p95": round(percentile(values, 95), digits),
        "p99": round(percentile(values, 99), digits),
        "max": round(max(values), digits),
        "mean": round(statistics.fmean(values), digits),
    }


def postgres_cpu_seconds() -> float | None:
    """CPU time of this machine's ``postgres`` processes (user + system, with the reaped children's: backends
    that ended are counted in the postmaster's); None when none is visible. Only differences are used."""
    tick = os.sysconf("SC_CLK_TCK")
    total, seen = 0, False
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() != "postgres":
                continue
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        seen = True
        total += sum(int(x) for x in fields[11:15])  # utime, stime, cutime, cstime
    return total / tick if seen else None


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, from /proc/stat."""
    values = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    tick = os.sysconf("SC_CLK_TCK")
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return (sum(values) - idle) / tick, sum(values) / tick


# -- the model: answers by the conversation, not by a shared script -----------------------------------------


class InstantModel:
    """An OpenAI-compatible chat completions endpoint answering at once, for an ``httpx.MockTransport``.

    A tool call when the last message is the user's task, the reply ``ok`` when it is a tool result; any other
    request is refused (400) and counted, so a run that went astray fails the bench's checks."""

    def __init__(self, tool: str) -> None:
        self.state = FakeLLMState()  # only its id counter: call ids and completion ids
        self.call = LLMBehaviour(
            kind="tool_calls", tool_calls=[ToolCall(name=tool, arguments=TOOL_ARGUMENTS[tool])]
        )
        self.reply = LLMBehaviour(kind="reply", content=REPLY)
        self.calls = 0
        self.refused = 0
        self.last_refusal: str | None = None
        self.seconds = 0.0  # time spent in this handler, from request to response object

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        started = time.perf_counter()
        try:
            return self._answer(request)
        finally:
            self.seconds += time.perf_counter() - started

    def _answer(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        if request.method != "POST" or not request.url.path.endswith("/chat/completions"):
            return self._refuse(404, f"no route {request.method} {request.url.path}")
        body_text = request.content.decode(errors="replace")
        try:
            parsed: Any = json.loads(body_text)
        except ValueError:
            parsed = None
        recorded = LLMRequest(
            headers={k.lower(): v for k, v in request.headers.items()}, body=body_text, json=parsed
        )
        try:
            body = check_request(recorded)
        except RequestError as problem:
            return self._refuse(problem.status, problem.detail)
        last = body["messages"][-1].get("role")
        if last == "user":
            behaviour = self.call
        elif last == "tool":
            behaviour = self.reply
        else:
            return self._refuse(400, f"unexpected conversation: the last message is of role {last!r}")
        return httpx.Response(200, json=completion(self.state, body, behaviour))

    def _refuse(self, status: int, message: str) -> httpx.Response:
        self.refused += 1
        self.last_refusal = message[:500]
        body = {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": None}}
        return httpx.Response(status, json=body)


# -- worker processes ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkerOptions:
    limit: int
    tool: str
    tenant_id: str
    round_no: int
    profile: str | None  # a pstats sort key: profile worker 0's drain and print its top functions


def worker_process(
    kwargs: dict[str, Any], index: int, opts: WorkerOptions, ready: Any, go: Any, stop: Any, out: Any
) -> None:
    """Entry point of one worker process (spawned): build a Runtime, wait for "go", work runs until none is due."""
    profiler = cProfile.Profile() if opts.profile and index == 0 else None
    try:
        stats = asyncio.run(_worker_async(kwargs, index, opts, ready, go, stop, profiler))
    except Exception as exc:
        stats = {"index": index, "errors": 1, "last_error": f"{type(exc).__name__}: {exc}"[:1000]}
    if profiler is not None and opts.profile:
        buffer = io.StringIO()
        pstats.Stats(profiler, stream=buffer).sort_stats(opts.profile).print_stats(40)
        stats["profile"] = buffer.getvalue()
    out.put(stats)
    if not ready.is_set():  # failed while setting up: say why, and exit non-zero so the parent stops waiting
        print(f"agent worker {index} failed to start: {stats.get('last_error')}", file=sys.stderr, flush=True)
        sys.exit(1)


async def _worker_async(
    kwargs: dict[str, Any],
    index: int,
    opts: WorkerOptions,
    ready: Any,
    go: Any,
    stop: Any,
    profiler: cProfile.Profile | None,
) -> dict[str, Any]:
    rt = Runtime(load_settings(**kwargs))
    model = InstantModel(opts.tool)
    await rt.http.aclose()
    rt.http = httpx.AsyncClient(transport=httpx.MockTransport(model))
    stats: dict[str, Any] = {"index": index, "pid": os.getpid(), "passes": 0, "runs": 0, "errors": 0,
                             "last_error": None}  # fmt: skip
    try:
        stats["warmup_seconds"] = await warm_up(rt, opts, index)
        model.calls, model.seconds = 0, 0.0
        opened = [0]  # database connections opened during the drain (the pool's overflow coming and going)

        def count_connect(*_: Any) -> None:
            opened[0] += 1

        event.listen(rt.engine.sync_engine, "connect", count_connect)
        ready.set()
        if not await wait_mp_event(go, SPAWN_TIMEOUT * 2):
            return stats
        cpu0, wall0 = time.process_time(), time.time()
        if profiler is not None:
            profiler.enable()
        try:
            while not stop.is_set():
                worked = await runs.run_due(rt, limit=opts.limit)
                if worked == 0:  # every run was queued before "go": nothing claimed means nothing left
                    break
                stats["passes"] += 1
                stats["runs"] += worked
        except Exception as exc:
            stats["errors"] += 1
            stats["last_error"] = f"{type(exc).__name__}: {exc}"[:1000]
        if profiler is not None:
            profiler.disable()
        stats["cpu_seconds"] = time.process_time() - cpu0
        stats["wall_seconds"] = time.time() - wall0
        stats["ended_at"] = time.time()
        stats["connections_opened"] = opened[0]
        stats["model_calls"] = model.calls
        stats["model_refused"] = model.refused
        stats["model_last_refusal"] = model.last_refusal
        stats["model_handler_seconds"] = model.seconds
    finally:
        await rt.close()
    return stats


async def warm_up(rt: Runtime, opts: WorkerOptions, index: int) -> float:
    """Work one run of this worker's own before the clock starts: the first run imports the executors, the
    tools and the ``openai`` client's lazy modules and fills SQLAlchemy's statement caches, which a running
    Herald worker has long done. Answers its wall time (the cold start)."""
    started = time.perf_counter()
    run_id = await runs.ensure(rt, tenant_id=opts.tenant_id, agent_id=AGENT, woken_by="api",
                               origin=f"bench:warmup:r{opts.round_no}:w{index}", task="Warm-up")  # fmt: skip
    if not await runs.take(rt, run_id):
        raise BenchError(f"worker {index} could not take its warm-up run")
    await runs.work(rt, run_id)
    found = await runs.get(rt, run_id)
    if found is None or found.status != runs.COMPLETED:
        raise BenchError(f"worker {index}: the warm-up run ended {found.status if found else 'missing'}: "
                         f"{found.error if found else ''}")  # fmt: skip
    return time.perf_counter() - started


# -- database -----------------------------------------------------------------------------------------------


async def setup_agent(rt: Runtime, offer: str, tool: str) -> Principal:
    """A tenant and an LLM agent stored as ``POST /api/v1/agents`` stores one (settings, sealed key)."""
    async with rt.sessions.begin() as session:
        tenant = await get_or_create_tenant(session, "bench-agents")
    principal = Principal(tenant_id=tenant.id, key_id="bench", is_admin=True)
    llm = LLMSettings.model_validate(
        {"base_url": LLM_BASE, "model": MODEL, "tools": [tool] if offer == "one" else None}
    )
    async with rt.sessions.begin() as session:
        await create_agent(
            session,
            principal,
            agent_id=AGENT,
            name=AGENT,
            maturity_level=MaturityLevel.AUTONOMOUS,
            callback_url=None,
            behaviour={
                "kind": "llm",
                "llm": llm.stored(),
                "llm_api_key": rt.credentials.seal({"api_key": API_KEY}),
            },
        )
    return principal


async def queue_runs(rt: Runtime, tenant_id: str, round_no: int, n: int, concurrency: int) -> dict[str, Any]:
    """``n`` runs through ``runs.ensure``, ``concurrency`` at once; answers how fast."""
    counter = itertools.count()

    async def producer() -> None:
        for i in iter(counter.__next__, None):
            if i >= n:
                return
            await runs.ensure(rt, tenant_id=tenant_id, agent_id=AGENT, origin=f"bench:r{round_no}:{i}",
                              woken_by="api", task=f"Bench task {i}: anything waiting for approval?")  # fmt: skip

    started = time.perf_counter()
    async with asyncio.TaskGroup() as group:
        for _ in range(concurrency):
            group.create_task(producer())
    elapsed = time.perf_counter() - started
    return {"runs": n, "seconds": round(elapsed, 3), "per_second": round(n / elapsed, 1)}


async def analyze(observer: AsyncEngine) -> None:
    async with observer.connect() as conn:
        await conn.execute(text("ANALYZE agent_runs"))
        await conn.execute(text("ANALYZE agent_run_steps"))
        await conn.commit()


@dataclass
class RunRecord:
    status: str
    answer: str | None
    steps_counter: int
    started: float | None
    finished: float | None
    kinds: list[str]
    model_ms: list[float]
    tool_ms: list[float]
    tool_outcomes: list[str]


async def read_round(observer: AsyncEngine, round_no: int) -> dict[str, RunRecord]:
    """Every run of the round with its steps, in order."""
    origin = f"bench:r{round_no}:%"
    run_query = text(
        "SELECT id, status, answer, steps, started_at, finished_at FROM agent_runs WHERE origin LIKE :o"
    ).columns(started_at=UTCDateTime(), finished_at=UTCDateTime())
    step_query = text(
        "SELECT s.run_id, s.seq, s.kind, s.duration_ms, s.payload FROM agent_run_steps s "
        "JOIN agent_runs r ON r.id = s.run_id WHERE r.origin LIKE :o ORDER BY s.run_id, s.seq"
    )
    async with observer.connect() as conn:
        run_rows = (await conn.execute(run_query, {"o": origin})).all()
        step_rows = (await conn.execute(step_query, {"o": origin})).all()
    records = {
        row.id: RunRecord(
            status=row.status, answer=row.answer, steps_counter=int(row.steps),
            started=row.started_at.timestamp() if row.started_at else None,
            finished=row.finished_at.timestamp() if row.finished_at else None,
            kinds=[], model_ms=[], tool_ms=[], tool_outcomes=[],
        )
        for row in run_rows
    }  # fmt: skip
    for row in step_rows:
        record = records[row.run_id]
        record.kinds.append(row.kind)
        if row.kind == "model":
            record.model_ms.append(float(row.duration_ms))
        elif row.kind == "tool":
            record.tool_ms.append(float(row.duration_ms))
            payload = row.payload if isinstance(row.payload, dict) else json.loads(row.payload)
            record.tool_outcomes.append(str(payload.get("outcome")))
    return records


def check_round(records: dict[str, RunRecord], expected: int) -> dict[str, Any]:
    """Every run completed with exactly model, tool (ok), model and the answer ``ok``."""
    statuses = Counter(r.status for r in records.values())
    shapes = Counter("/".join(r.kinds) for r in records.values())
    good = sum(
        1
        for r in records.values()
        if r.status == runs.COMPLETED
        and r.kinds == EXPECTED_KINDS
        and r.steps_counter == len(EXPECTED_KINDS)
        and r.tool_outcomes == ["ok"]
        and r.answer == REPLY
        and r.started is not None
        and r.finished is not None
    )
    return {
        "runs": len(records),
        "statuses": dict(statuses),
        "step_shapes": dict(shapes),
        "as_expected": good,
        "ok": len(records) == expected and good == expected,
    }


def round_figures(
    records: dict[str, RunRecord], released: float, workers: list[dict[str, Any]]
) -> dict[str, Any]:
    finished = [r.finished for r in records.values() if r.finished is not None]
    drain = (max(finished) - released) if finished else float("nan")
    steps = sum(len(r.kinds) for r in records.values())
    overhead = per_step_overhead(records)
    cpu = sum(w.get("cpu_seconds", 0.0) for w in workers)
    calls = sum(w.get("model_calls", 0) for w in workers)
    handler = sum(w.get("model_handler_seconds", 0.0) for w in workers)
    return {
        "drain_seconds": round(drain, 3),
        "runs_per_second": round(len(records) / drain, 1),
        "steps_per_second": round(steps / drain, 1),
        "steps": steps,
        "overhead_ms_per_step": spread(overhead),
        "model_call_ms": spread([ms for r in records.values() for ms in r.model_ms]),
        "tool_step_ms": spread([ms for r in records.values() for ms in r.tool_ms]),
        "run_wall_ms": spread(
            [(r.finished - r.started) * 1000 for r in records.values() if r.finished and r.started], 1
        ),
        "model_handler_ms_per_call": round(handler / calls * 1000, 3) if calls else None,
        "worker_cpu_ms_per_step": round(cpu / steps * 1000, 3) if steps else None,
        "worker_process_ms_per_step": round(len(workers) * drain / steps * 1000, 3) if steps else None,
        "connections_opened_per_run": round(
            sum(w.get("connections_opened", 0) for w in workers) / len(records), 3
        )
        if records
        else None,
        "workers": [
            {k: (round(v, 3) if isinstance(v, float) else v) for k, v in w.items() if k != "profile"}
            for w in sorted(workers, key=lambda w: w.get("index", 0))
        ],
    }


def per_step_overhead(records: dict[str, RunRecord]) -> list[float]:
    """(finished - started) - model time, over the run's steps, in ms: one value per run."""
    return [
        ((r.finished - r.started) * 1000 - sum(r.model_ms)) / len(r.kinds)
        for r in records.values()
        if r.finished is not None and r.started is not None and r.kinds
    ]


# -- the run ------------------------------------------------------------------------------------------------


async def one_round(
    args: argparse.Namespace,
    rt: Runtime,
    observer: AsyncEngine,
    kwargs: dict[str, Any],
    tenant_id: str,
    round_no: int,
    backend: str,
) -> tuple[dict[str, Any], dict[str, RunRecord]]:
    result: dict[str, Any] = {"round": round_no}
    print(f"[{backend}] round {round_no}: queueing {args.runs:,} runs ...", flush=True)
    result["queue"] = await queue_runs(rt, tenant_id, round_no, args.runs, args.queue_concurrency)
    if backend == "postgres":
        await analyze(observer)
    opts = WorkerOptions(
        limit=args.limit, tool=args.tool, tenant_id=tenant_id, round_no=round_no, profile=args.profile
    )
    pool = ProcessPool(
        worker_process, kwargs, args.workers, opts, "agent-worker", SPAWN_TIMEOUT, collect_seconds=30
    )
    try:
        await pool.start()
        pg_cpu0, (busy0, total0) = postgres_cpu_seconds(), machine_cpu()
        released = time.time()
        pool.release()
        await asyncio.wait_for(asyncio.to_thread(pool.collect, args.timeout), args.timeout + 30)
        pg_cpu1, (busy1, total1) = postgres_cpu_seconds(), machine_cpu()
        if len(pool.stats) < args.workers:
            raise BenchError(f"round {round_no}: the workers did not finish within {args.timeout:.0f} s")
    finally:
        await pool.shutdown()
    records = await read_round(observer, round_no)
    result["check"] = check_round(records, args.runs)
    result.update(round_figures(records, released, pool.stats))
    steps = result["steps"]
    result["machine_cpu_busy_share"] = (
        round((busy1 - busy0) / (total1 - total0), 3) if total1 > total0 else None
    )
    pg_cpu = (pg_cpu1 - pg_cpu0) if pg_cpu0 is not None and pg_cpu1 is not None else 0.0
    if backend == "postgres" and pg_cpu0 is not None and steps:
        result["postgres_cpu_ms_per_step"] = round(pg_cpu / steps * 1000, 3)
    # What the machine spent on neither the workers nor PostgreSQL: another load sharing the CPUs skews the run.
    worker_cpu = sum(w.get("cpu_seconds", 0.0) for w in pool.stats)
    other = (busy1 - busy0) - worker_cpu - pg_cpu
    result["other_cpu_share"] = round(max(0.0, other) / (total1 - total0), 3) if total1 > total0 else None
    profiles = [w["profile"] for w in pool.stats if w.get("profile")]
    if profiles:
        result["profile_worker_0"] = profiles[0]
    worker_errors = [
        {k: v for k, v in w.items() if k != "profile"}
        for w in pool.stats
        if w.get("errors") or w.get("model_refused")
    ]
    if worker_errors:
        result["worker_errors"] = worker_errors
    print(
        f"[{backend}] round {round_no}: {result['runs_per_second']:,} runs/s, {result['drain_seconds']} s, "
        f"overhead/step p50 {result['overhead_ms_per_step']['p50']} ms, "
        f"check {'OK' if result['check']['ok'] else 'FAIL ' + json.dumps(result['check'])}",
        flush=True,
    )
    return result, records


async def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    db_name = f"herald_bench_agents_{os.getpid()}"
    if args.backend == "sqlite":
        database_url = f"sqlite:///{workdir / 'herald.db'}"
    else:
        await pg_admin(args.postgres_url, f"DROP DATABASE IF EXISTS {db_name} WITH (FORCE)")
        await pg_admin(args.postgres_url, f"CREATE DATABASE {db_name}")
        database_url = with_database(args.postgres_url, db_name)
    kwargs = settings_kwargs(database_url, str(workdir / "var"))
    settings = load_settings(**kwargs)
    rt = Runtime(settings)
    # A plain engine for reading results: Herald's own opens every SQLite transaction with BEGIN IMMEDIATE.
    observer = create_async_engine(settings.async_database_url, pool_size=2, max_overflow=0)
    result: dict[str, Any] = {
        "backend": args.backend,
        "workers": args.workers,
        "limit": args.limit,
        "runs_per_round": args.runs,
        "rounds": args.rounds,
        "tool": args.tool,
        "tools_offered": args.offer,
        "loadavg_before": [round(x, 2) for x in os.getloadavg()],
    }
    try:
        await upgrade(rt.engine)
        principal = await setup_agent(rt, args.offer, args.tool)
        if args.backend == "postgres":
            result["postgres"] = await postgres_settings(observer)
        rounds: list[dict[str, Any]] = []
        every_run: dict[str, RunRecord] = {}
        for round_no in range(1, args.rounds + 1):
            figures, records = await one_round(
                args, rt, observer, kwargs, principal.tenant_id, round_no, args.backend
            )
            rounds.append(figures)
            every_run.update(records)
        result["round_results"] = rounds
        result["summary"] = summarise(rounds, every_run)
    finally:
        await observer.dispose()
        await rt.close()
        if args.backend == "postgres":
            await pg_admin(args.postgres_url, f"DROP DATABASE IF EXISTS {db_name} WITH (FORCE)")
    result["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    return result


async def postgres_settings(engine: AsyncEngine) -> dict[str, Any]:
    async with engine.connect() as conn:
        return {
            name: (await conn.execute(text(f"SHOW {name}"))).scalar()
            for name in ("server_version", "synchronous_commit", "shared_buffers", "autovacuum")
        }


def summarise(rounds: list[dict[str, Any]], every_run: dict[str, RunRecord]) -> dict[str, Any]:
    """Medians over the rounds; overhead and model time over every run of every round."""

    def median_of(key: str) -> float | None:
        values = [r[key] for r in rounds if r.get(key) is not None]
        return round(statistics.median(values), 3) if values else None

    by_status: defaultdict[str, int] = defaultdict(int)
    for r in rounds:
        for status, count in r["check"]["statuses"].items():
            by_status[status] += count
    return {
        "runs_per_second_median": median_of("runs_per_second"),
        "runs_per_second_rounds": [r["runs_per_second"] for r in rounds],
        "steps_per_second_median": median_of("steps_per_second"),
        "queued_per_second_median": round(statistics.median(r["queue"]["per_second"] for r in rounds), 1),
        "overhead_ms_per_step": spread(per_step_overhead(every_run)),
        "model_call_ms": spread([ms for r in every_run.values() for ms in r.model_ms]),
        "tool_step_ms": spread([ms for r in every_run.values() for ms in r.tool_ms]),
        "model_handler_ms_per_call_median": median_of("model_handler_ms_per_call"),
        "worker_cpu_ms_per_step_median": median_of("worker_cpu_ms_per_step"),
        "worker_process_ms_per_step_median": median_of("worker_process_ms_per_step"),
        "postgres_cpu_ms_per_step_median": median_of("postgres_cpu_ms_per_step"),
        "machine_cpu_busy_share_median": median_of("machine_cpu_busy_share"),
        "other_cpu_share_max": max(
            (r["other_cpu_share"] for r in rounds if r.get("other_cpu_share") is not None), default=None
        ),
        "connections_opened_per_run_median": median_of("connections_opened_per_run"),
        "runs": len(every_run),
        "statuses": dict(by_status),
        "all_ok": all(r["check"]["ok"] for r in rounds) and not any("worker_errors" in r for r in rounds),
    }


# -- output -------------------------------------------------------------------------------------------------


def _p(d: dict[str, Any] | None, *keys: str) -> str:
    if not d:
        return "-"
    return " / ".join(str(d.get(k)) for k in keys)


def print_table(result: dict[str, Any]) -> None:
    s = result.get("summary", {})
    rows = [
        (
            "backend, workers x run_due(limit)",
            f"{result.get('backend')}, {result.get('workers')} x {result.get('limit')}",
        ),
        (
            "runs per round x rounds",
            f"{result.get('runs_per_round', 0):,} x {result.get('rounds')} "
            f"(model, {result.get('tool')}, model; tools offered: {result.get('tools_offered')})",
        ),
        (
            "runs/s (median of rounds)",
            f"{s.get('runs_per_second_median')}  rounds {s.get('runs_per_second_rounds')}",
        ),
        ("steps/s (median of rounds)", str(s.get("steps_per_second_median"))),
        ("queued/s via runs.ensure (median)", str(s.get("queued_per_second_median"))),
        (
            "Herald overhead ms/step p50 / p95 / max",
            _p(s.get("overhead_ms_per_step"), "p50", "p95", "max"),
        ),
        ("model call ms p50 / p95 (recorded)", _p(s.get("model_call_ms"), "p50", "p95")),
        ("  of which the fake's handler, ms/call", str(s.get("model_handler_ms_per_call_median"))),
        ("tool step ms p50 / p95", _p(s.get("tool_step_ms"), "p50", "p95")),
        ("worker CPU ms per step (median)", str(s.get("worker_cpu_ms_per_step_median"))),
        ("worker process-ms per step (median)", str(s.get("worker_process_ms_per_step_median"))),
        ("PostgreSQL CPU ms per step (median)", str(s.get("postgres_cpu_ms_per_step_median"))),
        (
            "machine CPU busy during drain (median)",
            f"{s.get('machine_cpu_busy_share_median')}  (others than workers and PostgreSQL, max of rounds: "
            f"{s.get('other_cpu_share_max')})",
        ),
        ("DB connections opened per run (median)", str(s.get("connections_opened_per_run_median"))),
        (
            "correctness",
            f"{'OK' if s.get('all_ok') else 'FAIL'}: {s.get('runs')} runs, statuses {s.get('statuses')}",
        ),
    ]
    width = max(len(label) for label, _ in rows)
    print()
    for label, value in rows:
        print(f"{label.ljust(width)}  {value}")
    print()
    print(
        "overhead/step = (finished_at - started_at - model steps' duration_ms) / steps, per run; the batch's"
    )
    print("runs share one event loop, so it is a latency under load (--limit 1 --workers 1: unloaded).")
    if (s.get("other_cpu_share_max") or 0) > 0.1:
        print("warning: other processes used over 10% of the CPUs during a drain: the figures are skewed")
    settings = result.get("postgres")
    if settings:
        print("postgres: " + ", ".join(f"{k}={v}" for k, v in settings.items()))
    print(
        f"load average (1 min): {result.get('loadavg_before', ['-'])[0]} before, "
        f"{result.get('loadavg_after', ['-'])[0]} after, on {os.cpu_count()} CPUs"
    )
    for r in result.get("round_results", []):
        if not r["check"]["ok"]:
            print(f"round {r['round']} check FAILED: {r['check']}")
        for w in r.get("worker_errors", []):
            print(
                f"round {r['round']} worker {w.get('index')}: {w.get('last_error') or w.get('model_last_refusal')}"
            )
    profiled = [r["profile_worker_0"] for r in result.get("round_results", []) if r.get("profile_worker_0")]
    if profiled:
        print("\ncProfile of worker 0's drain, last round:")
        print(profiled[-1])
    if "error" in result:
        print(f"error: {result['error']}")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--backend", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--runs", type=int, default=2_000, help="runs queued and drained per round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; runs/s is their median")
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    parser.add_argument(
        "--limit",
        type=int,
        default=runs.BATCH,
        help=f"run_due(limit=...): runs per pass (Herald's: {runs.BATCH})",
    )
    parser.add_argument("--tool", choices=sorted(TOOL_ARGUMENTS), default="list_pending_approvals")
    parser.add_argument(
        "--offer",
        choices=["all", "one"],
        default="all",
        help="tools the agent is offered: all (default) or --tool",
    )
    parser.add_argument(
        "--profile",
        choices=["cumulative", "tottime"],
        default=None,
        help="cProfile worker 0's drain, print its top 40 functions sorted so (slows that worker)",
    )
    parser.add_argument("--queue-concurrency", type=int, default=20, help="concurrent runs.ensure tasks")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds allowed for one round's drain")
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args(argv)
    if min(args.runs, args.rounds, args.workers, args.limit, args.queue_concurrency) < 1 or args.timeout <= 0:
        parser.error(
            "--runs, --rounds, --workers, --limit, --queue-concurrency and --timeout must be positive"
        )
    check_loopback(args.postgres_url)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    prepare_results()
    environment = describe_environment()
    failed = False
    with tempfile.TemporaryDirectory(prefix=f"herald-bench-agents-{args.backend}-") as tmp:
        try:
            result = asyncio.run(run(args, Path(tmp)))
        except Exception as exc:  # report it, still write the JSON
            print(f"FAILED: {type(exc).__name__}: {exc}", file=sys.stderr)
            result = {"backend": args.backend, "error": f"{type(exc).__name__}: {exc}"}
            failed = True
    if not result.get("summary", {}).get("all_ok", False):
        failed = True
    result["environment"] = environment
    result["command"] = [Path(sys.executable).name, *sys.argv]
    result["args"] = {k: v for k, v in vars(args).items() if k != "postgres_url"}
    suffix = ("" if args.limit == runs.BATCH else f"-limit{args.limit}") + (
        "" if args.offer == "all" else "-offer1"
    )
    path = RESULTS_DIR / f"agents-{args.backend}-{args.workers}w{suffix}.json"
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"results written to {path}", flush=True)
    print_table(result)
    if failed:
        print("FAILED: see the errors or the correctness row above", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
