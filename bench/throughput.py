"""Herald throughput benchmark: acceptance rate, worker drain rate, delivery latency, governance check cost.

For each backend (SQLite, PostgreSQL) the bench builds a fresh database, migrates it, creates a tenant and two
AUTONOMOUS agents (one per phase, so each phase's rows can be told apart), then:

1. **accept**: enqueues ``--n`` messages through ``herald.pipeline.accept.accept`` (one transaction each,
   ``--concurrency`` tasks at once) to platform "slack", which development mode routes to the dev inbox;
2. **drain**: starts K worker processes (multiprocessing "spawn"; each builds its own Runtime and runs
   ``Worker(rt).run(stop)``), releases them together and times how long they take to send the backlog;
3. **mixed**: with the same workers still running, accepts ``--mixed-n`` messages at a steady
   ``--mixed-rate`` and measures acceptance-to-delivery latency (sent_at - created_at), the honest figure;
4. **governance**: times ``GovernanceCache.check`` on a warm cache.

Correctness is checked after each phase: every message ``sent`` exactly once, one dev inbox row per message.
SQLite always runs one worker: it has a single writer, so more workers only queue on its lock.

Only 127.0.0.1 is touched. PostgreSQL gets its own database ``herald_bench_<pid>``, dropped at the end.

    .venv/bin/python bench/throughput.py --n 20000
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _common import (
    RESULTS_DIR,
    SECRET,
    BenchError,
    check_loopback,
    describe_environment,
    percentile,
    pg_admin,
    prepare_results,
    scalar,
    wait_mp_event,
    with_database,
)
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from herald.admin.tenants import create_agent, create_api_key, get_or_create_tenant, principal_for_key
from herald.core.config import load_settings
from herald.core.intent import Intent
from herald.core.maturity import MaturityLevel
from herald.core.principal import Principal
from herald.pipeline.accept import accept
from herald.pipeline.governance import GovernanceCache
from herald.pipeline.worker import Worker
from herald.runtime import Runtime
from herald.storage.migrate import upgrade
from herald.storage.types import UTCDateTime

DRAIN_AGENT = "bench-drain"
MIXED_AGENT = "bench-mixed"
POLL_SECONDS = 0.02
SPAWN_TIMEOUT = 60.0


# -- helpers ------------------------------------------------------------------------------------------------


def settings_kwargs(
    database_url: str, data_dir: str, batch_size: int, concurrency: int | None = None
) -> dict[str, Any]:
    values: dict[str, Any] = {
        "database_url": database_url,
        "env": "development",
        "secret_key": SECRET,
        "data_dir": data_dir,
        "worker_batch_size": batch_size,
        "poll_interval_seconds": 0.05,
    }
    if concurrency is not None:  # otherwise Herald's default, so the bench measures what ships
        values["worker_concurrency"] = concurrency
    return values


# -- worker processes ---------------------------------------------------------------------------------------


def worker_process(kwargs: dict[str, Any], index: int, ready: Any, go: Any, stop: Any) -> None:
    """Entry point of one worker process (spawned): build a Runtime, wait for "go", run until "stop"."""
    asyncio.run(_worker_async(kwargs, index, ready, go, stop))


async def _worker_async(kwargs: dict[str, Any], index: int, ready: Any, go: Any, stop: Any) -> None:
    rt = Runtime(load_settings(**kwargs))
    worker = Worker(rt, worker_id=f"bench-{index}:{os.getpid()}")
    try:
        async with rt.engine.connect() as conn:  # open a pooled connection before the clock starts
            await conn.execute(text("SELECT 1"))
        ready.set()
        if not await wait_mp_event(go, SPAWN_TIMEOUT * 2):
            return
        stopping = asyncio.Event()
        running = asyncio.create_task(worker.run(stopping))
        while not running.done():
            if await asyncio.to_thread(stop.wait, 0.05):
                stopping.set()
                break
        await running
        await worker.stop_heartbeat()
    finally:
        await rt.close()


@dataclass
class WorkerPool:
    kwargs: dict[str, Any]
    count: int
    ctx: Any = field(default_factory=lambda: mp.get_context("spawn"))
    processes: list[Any] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.go = self.ctx.Event()
        self.stop = self.ctx.Event()
        self.ready = [self.ctx.Event() for _ in range(self.count)]

    async def start(self) -> None:
        """Spawn the processes and wait until each has built its Runtime (imports and connections done)."""
        for index in range(self.count):
            process = self.ctx.Process(
                target=worker_process,
                args=(self.kwargs, index, self.ready[index], self.go, self.stop),
                name=f"herald-bench-worker-{index}",
                daemon=True,
            )
            process.start()
            self.processes.append(process)
        deadline = time.monotonic() + SPAWN_TIMEOUT
        for event in self.ready:
            while not await wait_mp_event(event, 0.5):
                self.check_alive()
                if time.monotonic() > deadline:
                    raise BenchError(f"a worker process did not start within {SPAWN_TIMEOUT:.0f} s")

    def release(self) -> None:
        self.go.set()

    def check_alive(self) -> None:
        dead = [p for p in self.processes if not p.is_alive()]
        if dead:
            raise BenchError(f"worker process exited early (exit codes {[p.exitcode for p in dead]})")

    async def shutdown(self) -> None:
        self.stop.set()
        self.go.set()  # a process still waiting for "go" returns at once
        for process in self.processes:
            await asyncio.to_thread(process.join, 30)
        for process in self.processes:  # only the processes this bench started, by handle
            if process.is_alive():
                process.terminate()
                await asyncio.to_thread(process.join, 5)


# -- database -----------------------------------------------------------------------------------------------


def observer_engine(async_url: str) -> AsyncEngine:
    """A plain engine for the parent's polling and checks. Not Herald's: on SQLite that one opens every
    transaction with BEGIN IMMEDIATE, so a poll would take the write lock from the worker it is watching."""
    return create_async_engine(async_url, pool_size=2, max_overflow=0)


async def remaining(engine: AsyncEngine, agent_id: str) -> int:
    return int(
        await scalar(
            engine,
            "SELECT COUNT(*) FROM messages WHERE agent_id = :a AND status IN ('queued', 'sending')",
            {"a": agent_id},
        )
    )


async def wait_drained(engine: AsyncEngine, pool: WorkerPool, agent_id: str, within: float) -> float:
    """Poll until no message of ``agent_id`` is queued or sending; return the monotonic time it was seen."""
    deadline = time.monotonic() + within
    last_left, last_progress = -1, time.monotonic()
    while True:
        left = await remaining(engine, agent_id)
        now = time.monotonic()
        if left == 0:
            return now
        if left != last_left:
            last_left, last_progress = left, now
        pool.check_alive()
        if now >= deadline:
            raise BenchError(f"drain timed out after {within:.0f} s with {left} messages left")
        if now - last_progress > 60:
            raise BenchError(f"no progress for 60 s with {left} messages left")
        await asyncio.sleep(POLL_SECONDS)


async def latencies(engine: AsyncEngine, agent_id: str) -> list[float]:
    """sent_at - created_at, in seconds, for every sent message of ``agent_id``."""
    query = text("SELECT created_at, sent_at FROM messages WHERE agent_id = :a AND status = 'sent'").columns(
        created_at=UTCDateTime(), sent_at=UTCDateTime()
    )
    async with engine.connect() as conn:
        rows = (await conn.execute(query, {"a": agent_id})).all()
    return [(sent - created).total_seconds() for created, sent in rows]


async def verify(engine: AsyncEngine, agent_id: str, expected: int) -> dict[str, Any]:
    """Every message of ``agent_id`` sent, exactly one attempt each, exactly one dev inbox row each."""
    by_status = {}
    async with engine.connect() as conn:
        for status, count in (
            await conn.execute(
                text("SELECT status, COUNT(*) FROM messages WHERE agent_id = :a GROUP BY status"),
                {"a": agent_id},
            )
        ).all():
            by_status[status] = int(count)
        inbox = (
            await conn.execute(
                text(
                    "SELECT COUNT(*), COUNT(DISTINCT d.message_id) FROM devinbox_messages d "
                    "JOIN messages m ON m.id = d.message_id WHERE m.agent_id = :a"
                ),
                {"a": agent_id},
            )
        ).one()
        attempts = (
            await conn.execute(
                text(
                    "SELECT COUNT(*), COALESCE(MAX(m.attempts), 0) FROM attempts t "
                    "JOIN messages m ON m.id = t.message_id WHERE m.agent_id = :a"
                ),
                {"a": agent_id},
            )
        ).one()
    result = {
        "messages": sum(by_status.values()),
        "by_status": by_status,
        "inbox_rows": int(inbox[0]),
        "inbox_distinct_message_ids": int(inbox[1]),
        "attempt_rows": int(attempts[0]),
        "max_attempts_used": int(attempts[1]),
    }
    result["ok"] = (
        result["messages"] == expected
        and by_status.get("sent", 0) == expected
        and result["inbox_rows"] == expected
        and result["inbox_distinct_message_ids"] == expected
    )
    return result


async def postgres_diagnostics(engine: AsyncEngine, batch: int) -> dict[str, Any]:
    """Server settings that move the figures, and the plan the claim's inner SELECT gets right now.

    Without fresh statistics the planner expects a handful of queued rows and sorts the whole backlog on
    every claim ("sort"); with them it walks ix_messages_claim in order and stops at the batch ("index order").
    """
    async with engine.connect() as conn:
        settings = {
            name: (await conn.execute(text(f"SHOW {name}"))).scalar()
            for name in ("server_version", "autovacuum", "synchronous_commit", "shared_buffers")
        }
        plan = [
            row[0]
            for row in await conn.execute(
                text(
                    "EXPLAIN SELECT id FROM messages WHERE status = 'queued' AND run_at <= now() "
                    f"ORDER BY priority, run_at LIMIT {int(batch)} FOR UPDATE SKIP LOCKED"
                )
            )
        ]
        analyzed = (
            await conn.execute(
                text(
                    "SELECT COALESCE(last_analyze, last_autoanalyze) FROM pg_stat_user_tables "
                    "WHERE relname = 'messages'"
                )
            )
        ).scalar()
    return {
        "settings": settings,
        "messages_last_analyzed": analyzed,
        "claim_plan": "sort" if any("Sort" in line for line in plan) else "index order",
        "claim_plan_text": plan,
    }


# -- phases -------------------------------------------------------------------------------------------------


async def setup_tenant(rt: Runtime) -> Principal:
    async with rt.sessions.begin() as session:
        tenant = await get_or_create_tenant(session, "bench")
        key = await create_api_key(session, tenant, name="bench")
    async with rt.sessions.begin() as session:
        principal = await principal_for_key(session, key)
        assert principal is not None
        for agent_id in (DRAIN_AGENT, MIXED_AGENT):
            await create_agent(
                session,
                principal,
                agent_id=agent_id,
                name=agent_id,
                maturity_level=MaturityLevel.AUTONOMOUS,
                callback_url=None,
            )
    return principal


def intent(agent_id: str, i: int) -> Intent:
    return Intent(
        agent_id=agent_id,
        platform="slack",
        recipient_id=f"C{i % 97:05d}",
        content=f"Bench message {i}: the nightly report is ready.",
    )


async def accept_one(rt: Runtime, principal: Principal, agent_id: str, i: int, lat: list[float]) -> None:
    started = time.perf_counter()
    async with rt.sessions.begin() as session:
        await accept(rt, session, principal, intent(agent_id, i))
    lat.append(time.perf_counter() - started)


async def accept_burst(rt: Runtime, principal: Principal, n: int, concurrency: int) -> dict[str, Any]:
    """Accept ``n`` messages as fast as ``concurrency`` tasks can, one transaction per message."""
    counter = itertools.count()
    lat: list[float] = []

    async def producer() -> None:
        for i in iter(counter.__next__, None):
            if i >= n:
                return
            await accept_one(rt, principal, DRAIN_AGENT, i, lat)

    started = time.perf_counter()
    async with asyncio.TaskGroup() as group:
        for _ in range(concurrency):
            group.create_task(producer())
    elapsed = time.perf_counter() - started
    return {
        "messages": n,
        "concurrency": concurrency,
        "seconds": round(elapsed, 3),
        "per_second": round(n / elapsed, 1),
        "call_ms_p50": round(percentile(lat, 50) * 1000, 2),
        "call_ms_p99": round(percentile(lat, 99) * 1000, 2),
    }


async def accept_steady(
    rt: Runtime, principal: Principal, n: int, rate: float, concurrency: int
) -> dict[str, Any]:
    """Accept ``n`` messages at ``rate`` per second (open loop, at most ``concurrency`` in flight)."""
    lat: list[float] = []
    slots = asyncio.Semaphore(concurrency)
    behind = 0

    async def one(i: int) -> None:
        async with slots:
            await accept_one(rt, principal, MIXED_AGENT, i, lat)

    started = time.perf_counter()
    async with asyncio.TaskGroup() as group:
        for i in range(n):
            delay = started + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -0.1:
                behind += 1
            group.create_task(one(i))
    elapsed = time.perf_counter() - started
    achieved = n / elapsed
    return {
        "messages": n,
        "target_rate": rate,
        # Below the target means acceptance itself was the bottleneck: latency then includes overload.
        "saturated": achieved < 0.95 * rate,
        "achieved_rate": round(achieved, 1),
        "issued_late_over_100ms": behind,
        "call_ms_p50": round(percentile(lat, 50) * 1000, 2),
        "call_ms_p99": round(percentile(lat, 99) * 1000, 2),
    }


def governance_bench(calls: int, batch: int = 10_000) -> dict[str, Any]:
    """Median per-call time of ``GovernanceCache.check`` on a warm one-entry cache, in microseconds."""
    cache = GovernanceCache(ttl_seconds=3600)

    async def loader(_tenant: str, _agent: str) -> MaturityLevel:
        return MaturityLevel.AUTONOMOUS

    asyncio.run(cache.level("ten_bench", "agent_bench", loader))
    check = cache.check
    assert check("ten_bench", "agent_bench") is not None
    per_call: list[float] = []
    baseline: list[float] = []
    for _ in range(max(1, calls // batch)):
        started = time.perf_counter()
        for _ in range(batch):
            check("ten_bench", "agent_bench")
        per_call.append((time.perf_counter() - started) / batch)
        started = time.perf_counter()
        for _ in range(batch):
            pass
        baseline.append((time.perf_counter() - started) / batch)
    return {
        "calls": batch * len(per_call),
        "batch": batch,
        "median_us_per_call": round(statistics.median(per_call) * 1e6, 3),
        "p99_batch_us_per_call": round(percentile(per_call, 99) * 1e6, 3),
        "loop_overhead_us": round(statistics.median(baseline) * 1e6, 3),
    }


def latency_summary(values: list[float]) -> dict[str, Any]:
    return {
        "p50_ms": round(percentile(values, 50) * 1000, 1),
        "p99_ms": round(percentile(values, 99) * 1000, 1),
        "max_ms": round(max(values) * 1000, 1) if values else None,
    }


async def run_backend(backend: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    workers = 1 if backend == "sqlite" else args.workers
    db_name = f"herald_bench_{os.getpid()}"
    if backend == "sqlite":
        database_url = f"sqlite:///{workdir / 'herald.db'}"
    else:
        await pg_admin(args.postgres_url, f"DROP DATABASE IF EXISTS {db_name} WITH (FORCE)")
        await pg_admin(args.postgres_url, f"CREATE DATABASE {db_name}")
        database_url = with_database(args.postgres_url, db_name)
    kwargs = settings_kwargs(database_url, str(workdir / "var"), args.batch_size, args.worker_concurrency)
    settings = load_settings(**kwargs)
    rt = Runtime(settings)
    observer = observer_engine(settings.async_database_url)
    pool: WorkerPool | None = None
    result: dict[str, Any] = {
        "backend": backend,
        "workers": workers,
        "worker_batch_size": args.batch_size,
        "worker_concurrency": settings.worker_concurrency,
    }
    notes = []
    if backend == "sqlite" and args.workers != 1:
        notes.append(f"SQLite has one writer: ran 1 worker (asked for {args.workers})")
    if settings.worker_concurrency < settings.worker_batch_size:
        notes.append(
            f"worker_concurrency ({settings.worker_concurrency}) < worker_batch_size ({settings.worker_batch_size}): "
            f"each claim takes at most {settings.worker_concurrency} and the next waits for it (no pipelining)"
        )
    if notes:
        result["notes"] = notes
    result["loadavg_before"] = [round(x, 2) for x in os.getloadavg()]
    try:
        await upgrade(rt.engine)
        principal = await setup_tenant(rt)

        print(
            f"[{backend}] accepting {args.n} messages with {args.concurrency} concurrent tasks ...",
            flush=True,
        )
        result["accept"] = await asyncio.wait_for(
            accept_burst(rt, principal, args.n, args.concurrency), args.phase_timeout
        )
        print(f"[{backend}]   {result['accept']['per_second']:.0f} accepted/s", flush=True)

        if backend == "postgres":
            result["postgres"] = await postgres_diagnostics(
                observer, min(args.batch_size, settings.worker_concurrency)
            )
        print(f"[{backend}] starting {workers} worker process(es) ...", flush=True)
        pool = WorkerPool(kwargs, workers)
        await pool.start()
        started = time.monotonic()
        pool.release()
        finished = await wait_drained(observer, pool, DRAIN_AGENT, args.phase_timeout)
        elapsed = finished - started
        drain_lat = await latencies(observer, DRAIN_AGENT)
        result["drain"] = {
            "messages": args.n,
            "seconds": round(elapsed, 3),
            "per_second": round(args.n / elapsed, 1),
            "backlog_latency": latency_summary(drain_lat),
        }
        result["drain_check"] = await verify(observer, DRAIN_AGENT, args.n)
        print(f"[{backend}]   {result['drain']['per_second']:.0f} delivered/s", flush=True)

        if args.mixed_n > 0:
            print(
                f"[{backend}] mixed: accepting {args.mixed_n} at {args.mixed_rate:g}/s with workers running ...",
                flush=True,
            )
            mixed = await asyncio.wait_for(
                accept_steady(rt, principal, args.mixed_n, args.mixed_rate, args.concurrency),
                args.phase_timeout,
            )
            await wait_drained(observer, pool, MIXED_AGENT, args.phase_timeout)
            mixed["latency"] = latency_summary(await latencies(observer, MIXED_AGENT))
            result["mixed"] = mixed
            result["mixed_check"] = await verify(observer, MIXED_AGENT, args.mixed_n)
    finally:
        if pool is not None:
            await pool.shutdown()
        await observer.dispose()
        await rt.close()
        if backend == "postgres":
            await pg_admin(args.postgres_url, f"DROP DATABASE IF EXISTS {db_name} WITH (FORCE)")
    result["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    return result


# -- output -------------------------------------------------------------------------------------------------


def _cell(result: dict[str, Any], *path: str, fmt: str = "{}") -> str:
    value: Any = result
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return "-"
        value = value[key]
    return fmt.format(value)


def _check_cell(check: dict[str, Any] | None) -> str:
    if not check:
        return "-"
    sent = check["by_status"].get("sent", 0)
    verdict = "OK" if check["ok"] else "FAIL"
    return f"{verdict} {sent}/{check['messages']} sent, inbox {check['inbox_rows']} ({check['inbox_distinct_message_ids']} distinct)"


def print_table(results: list[dict[str, Any]]) -> None:
    rows: list[tuple[str, list[str]]] = [
        ("worker processes", [_cell(r, "workers") for r in results]),
        ("accepted/s", [_cell(r, "accept", "per_second", fmt="{:,.0f}") for r in results]),
        (
            "  accept call p50 / p99 (ms)",
            [f"{_cell(r, 'accept', 'call_ms_p50')} / {_cell(r, 'accept', 'call_ms_p99')}" for r in results],
        ),
        ("delivered/s (drain)", [_cell(r, "drain", "per_second", fmt="{:,.0f}") for r in results]),
        ("  drain wall time (s)", [_cell(r, "drain", "seconds") for r in results]),
        ("  claim plan at drain start", [_cell(r, "postgres", "claim_plan") for r in results]),
        (
            "  backlog created->sent p50 / p99 (ms)*",
            [
                f"{_cell(r, 'drain', 'backlog_latency', 'p50_ms')} / {_cell(r, 'drain', 'backlog_latency', 'p99_ms')}"
                for r in results
            ],
        ),
        ("  drain correctness", [_check_cell(r.get("drain_check")) for r in results]),
        (
            "mixed: rate target / achieved (/s)",
            [
                f"{_cell(r, 'mixed', 'target_rate', fmt='{:g}')} / {_cell(r, 'mixed', 'achieved_rate')}"
                for r in results
            ],
        ),
        (
            "  accept->sent latency p50 / p99 (ms)",
            [
                f"{_cell(r, 'mixed', 'latency', 'p50_ms')} / {_cell(r, 'mixed', 'latency', 'p99_ms')}"
                for r in results
            ],
        ),
        ("  mixed correctness", [_check_cell(r.get("mixed_check")) for r in results]),
        (
            "governance check (us/call, median)",
            [_cell(r, "governance", "median_us_per_call") for r in results],
        ),
    ]
    headers = [str(r["backend"]) for r in results]
    label_width = max(len(label) for label, _ in rows)
    widths = [max(len(h), *(len(cells[i]) for _, cells in rows)) for i, h in enumerate(headers)]
    line = "  ".join(["".ljust(label_width), *(h.ljust(w) for h, w in zip(headers, widths, strict=True))])
    print()
    print(line)
    print("-" * len(line))
    for label, cells in rows:
        print(
            "  ".join([label.ljust(label_width), *(c.ljust(w) for c, w in zip(cells, widths, strict=True))])
        )
    print()
    print("* backlog latency includes the time messages waited before the workers were started;")
    print("  the mixed phase (workers already running) gives the acceptance-to-delivery figure.")
    for r in results:
        for note in r.get("notes", []):
            print(f"note ({r['backend']}): {note}")
        pg_settings = r.get("postgres", {}).get("settings", {})
        if pg_settings.get("autovacuum") == "off":
            print(
                f"note ({r['backend']}): autovacuum is off on this server: the messages table is never analysed "
                "or vacuumed, so the claim's plan rests on guesses (see 'claim plan') and dead rows pile up"
            )
        if "loadavg_before" in r:
            print(
                f"load average ({r['backend']}, 1 min): {r['loadavg_before'][0]} before, "
                f"{r.get('loadavg_after', ['-'])[0]} after, on {os.cpu_count()} CPUs"
            )
        if r.get("mixed", {}).get("saturated"):
            print(
                f"warning ({r['backend']}): the mixed phase fell short of its target rate, so acceptance was "
                "saturated and its latency includes overload; rerun with a lower --mixed-rate"
            )
        if "error" in r:
            print(f"error ({r['backend']}): {r['error']}")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=20_000, help="messages in the accept/drain phase")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (SQLite always uses 1)")
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--concurrency", type=int, default=50, help="concurrent acceptance tasks")
    parser.add_argument(
        "--batch-size", type=int, default=200, help="HERALD_WORKER_BATCH_SIZE for the workers"
    )
    parser.add_argument(
        "--worker-concurrency", type=int, default=None, help="HERALD_WORKER_CONCURRENCY (default: Herald's)"
    )
    parser.add_argument("--mixed-n", type=int, default=2000, help="messages in the mixed phase (0 to skip)")
    parser.add_argument(
        "--mixed-rate",
        type=float,
        default=100.0,
        help="steady acceptance rate in the mixed phase (/s); keep it below what acceptance sustains",
    )
    parser.add_argument("--governance-calls", type=int, default=200_000)
    parser.add_argument("--phase-timeout", type=float, default=600.0, help="seconds allowed per phase")
    args = parser.parse_args(argv)
    if args.n < 1 or args.workers < 1 or args.concurrency < 1 or args.mixed_n < 0 or args.mixed_rate <= 0:
        parser.error("--n, --workers, --concurrency and --mixed-rate must be positive; --mixed-n >= 0")
    check_loopback(args.postgres_url)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    prepare_results()
    environment = describe_environment()
    results: list[dict[str, Any]] = []
    failed = False
    for backend in backends:
        with tempfile.TemporaryDirectory(prefix=f"herald-bench-{backend}-") as tmp:
            try:
                result = asyncio.run(run_backend(backend, args, Path(tmp)))
            except Exception as exc:  # report it, still write the JSON, go on to the next backend
                print(f"[{backend}] FAILED: {type(exc).__name__}: {exc}", file=sys.stderr)
                result = {"backend": backend, "error": f"{type(exc).__name__}: {exc}"}
                failed = True
        result["governance"] = governance_bench(args.governance_calls)
        result["environment"] = environment
        result["args"] = {k: v for k, v in vars(args).items() if k != "postgres_url"}
        for key in ("drain_check", "mixed_check"):
            if key in result and not result[key]["ok"]:
                failed = True
        path = RESULTS_DIR / f"throughput-{backend}.json"
        path.write_text(json.dumps(result, indent=2, default=str) + "\n")
        print(f"[{backend}] results written to {path}", flush=True)
        results.append(result)
    print_table(results)
    if failed:
        print("FAILED: see errors or correctness rows above", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
