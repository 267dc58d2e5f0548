"""Herald scheduler benchmark (PostgreSQL): many recurring schedules due in the same minute, and the due check.

The bench builds a fresh PostgreSQL database ``herald_bench_sched_<pid>`` on 127.0.0.1, migrates it, creates a
tenant and an AUTONOMOUS agent, then:

1. **seed**: writes ``--n`` recurring message schedules (default 100,000) straight into ``schedules`` with
   COPY (not through the API): cron ``* * * * *`` in UTC, platform "slack", recipient "C" + 5 digits, template
   "Report {{date}}", status active, ``misfire_grace_seconds`` 3600 (so none counts as missed), and one shared
   ``next_run`` (the *due time*): the next minute boundary at least 15 s ahead, or with ``--due-now`` the
   current minute rounded down. Then ANALYZE.
2. **run**: starts ``--schedulers`` processes (multiprocessing "spawn"; each builds its own Runtime) and
   releases them together at the due time (at once with ``--due-now``); each loops ``await herald.producers.schedules.service.run_due(rt, limit=--batch)`` until it
   returns zero counts twice in a row (or the parent says stop). The parent polls the number of messages
   produced for the due time until it reaches ``--n``. The clock starts at the later of the due time and the
   release of the schedulers: by default they coincide (the release waits for the due time), so the figure is
   "from due"; with ``--due-now`` (or a seed slower than 15 s) the schedules are overdue at the release and the
   clock starts there. Both figures are reported. (Herald's own Scheduler loop polls every second, so in
   production up to one more second passes between the due time and the first run_due.)

   Checked afterwards: exactly N messages and N executions for the due time, every execution ``queued`` with
   its own message, no (schedule, due time) executed twice, every schedule's ``next_run`` past the due time.
   A run that crosses a minute boundary also sees the next minute's runs come due (the cron is every minute):
   those are legitimate and counted separately ("later-round executions"), not as duplicates.
3. **due check**: spreads ``next_run`` of every schedule over the next 30 days (starting 60 s ago, so a few
   dozen are due), grows the table to ``--table-size`` rows (default 1,000,000) with COPY, VACUUM ANALYZE, then
   times ``service.due_check_query(now, limit=200)`` executed ``--due-checks`` times on one connection
   (median and p99, client side: SQLAlchemy + asyncpg + server) and prints one EXPLAIN (ANALYZE, BUFFERS) of
   it to show whether ix_schedules_due is used.

Targets (from the issue): all 100,000 enqueued within 60 s; the due check under 5 ms. The exit status is
non-zero on an error or a failed correctness check; a missed target is reported, not an error.

Only 127.0.0.1 is touched; the database is dropped at the end. Results go to
``bench/results/scheduler-postgres.json``.

    .venv/bin/python bench/scheduler.py --n 5000 --table-size 100000
    .venv/bin/python bench/scheduler.py
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
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
    scalar,
    wait_mp_event,
    with_database,
)
from sqlalchemy import text
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from herald.admin.tenants import create_agent, get_or_create_tenant
from herald.core.config import load_settings
from herald.core.ids import new_id
from herald.core.maturity import MaturityLevel
from herald.core.principal import Principal
from herald.producers.schedules import service
from herald.runtime import Runtime
from herald.storage.migrate import upgrade
from herald.storage.models import Schedule
from herald.storage.types import UTCDateTime, utcnow

RESULT_FILE = "scheduler-postgres.json"
AGENT = "bench-scheduler"
CRON = "* * * * *"
TEMPLATE = "Report {{date}}"
GRACE_SECONDS = 3600
COPY_CHUNK = 50_000
POLL_SECONDS = 0.25
SPAWN_TIMEOUT = 60.0
NO_PROGRESS_SECONDS = 60.0
MAX_SCHEDULER_ERRORS = 20
RELEASE_SLACK = 0.25  # seconds: a release this close after the due time counts as at the due time
LEAD = timedelta(seconds=15)  # least time from seeding to the due time (without --due-now)
SPREAD = timedelta(days=30)
SPREAD_START = timedelta(seconds=-60)  # a minute's worth of schedules is due at the check
TARGET_RUN_SECONDS = 60.0
TARGET_DUE_CHECK_MS = 5.0
COLUMNS = [column.name for column in Schedule.__table__.columns]


# -- helpers ------------------------------------------------------------------------------------------------


def settings_kwargs(database_url: str, data_dir: str) -> dict[str, Any]:
    return {"database_url": database_url, "env": "development", "secret_key": SECRET, "data_dir": data_dir}


def ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


# -- scheduler processes ------------------------------------------------------------------------------------


def scheduler_process(
    kwargs: dict[str, Any], index: int, batch: int, ready: Any, go: Any, stop: Any, out: Any
) -> None:
    """Entry point of one scheduler process (spawned): build a Runtime, wait for "go", run what is due."""
    asyncio.run(_scheduler_async(kwargs, index, batch, ready, go, stop, out))


async def _scheduler_async(
    kwargs: dict[str, Any], index: int, batch: int, ready: Any, go: Any, stop: Any, out: Any
) -> None:
    rt = Runtime(load_settings(**kwargs))
    stats: dict[str, Any] = {
        "index": index,
        "pid": os.getpid(),
        "calls": 0,
        "empty_calls": 0,
        "sent": 0,
        "failed": 0,
        "skipped": 0,
        "errors": 0,
        "last_error": None,
        "batch_seconds": [],  # one per call that ran something
        "batch_sizes": [],
        "busy_seconds": 0.0,
        "exit_reason": None,
    }
    try:
        async with rt.engine.connect() as conn:  # open a pooled connection before the clock starts
            await conn.execute(text("SELECT 1"))
        ready.set()
        if not await wait_mp_event(go, SPAWN_TIMEOUT * 2):
            stats["exit_reason"] = "never released"
            return
        started = time.monotonic()
        zero_streak = 0
        while True:
            if stop.is_set():
                stats["exit_reason"] = "stopped by the parent"
                break
            if zero_streak >= 2:
                stats["exit_reason"] = "zero counts twice in a row"
                break
            called = time.perf_counter()
            try:
                counts = await service.run_due(rt, limit=batch)
            except Exception as exc:  # record it; a run_due that keeps failing ends the process
                stats["errors"] += 1
                stats["last_error"] = f"{type(exc).__name__}: {exc}"[:1000]
                if stats["errors"] >= MAX_SCHEDULER_ERRORS:
                    stats["exit_reason"] = "too many errors"
                    break
                await asyncio.sleep(0.1)
                continue
            took = time.perf_counter() - called
            stats["calls"] += 1
            ran = 0
            for name in ("sent", "failed", "skipped"):
                value = int(getattr(counts, name, 0))
                stats[name] += value
                ran += value
            if ran == 0:
                stats["empty_calls"] += 1
                zero_streak += 1
                await asyncio.sleep(0.05)
            else:
                zero_streak = 0
                stats["busy_seconds"] += took
                stats["batch_seconds"].append(took)
                stats["batch_sizes"].append(ran)
        stats["wall_seconds"] = time.monotonic() - started
    except Exception as exc:
        stats["errors"] += 1
        stats["last_error"] = f"{type(exc).__name__}: {exc}"[:1000]
        stats["exit_reason"] = "crashed"
    finally:
        out.put(stats)
        await rt.close()


# -- database -----------------------------------------------------------------------------------------------


def observer_engine(async_url: str) -> AsyncEngine:
    """A plain engine for the parent's polling, checks and the due-check timing."""
    return create_async_engine(async_url, pool_size=2, max_overflow=0)


async def setup_tenant(rt: Runtime) -> Principal:
    async with rt.sessions.begin() as session:
        tenant = await get_or_create_tenant(session, "bench-scheduler")
    principal = Principal(tenant_id=tenant.id, key_id="bench", is_admin=True)
    async with rt.sessions.begin() as session:
        await create_agent(
            session,
            principal,
            agent_id=AGENT,
            name=AGENT,
            maturity_level=MaturityLevel.AUTONOMOUS,
            callback_url=None,
        )
    return principal


def schedule_records(
    tenant_id: str, start: int, count: int, next_run: Any, created: datetime
) -> Iterator[tuple[Any, ...]]:
    """COPY records for ``count`` schedules; ``next_run`` is a datetime or a callable giving one per row."""
    for i in range(start, start + count):
        values: dict[str, Any] = {
            "id": new_id("sch"),
            "tenant_id": tenant_id,
            "agent_id": AGENT,
            "name": None,
            "workspace_id": None,
            "kind": "message",
            "schedule_type": service.RECURRING,
            "cron_expression": CRON,
            "natural_language": None,
            "timezone": "UTC",
            "platform": "slack",
            "recipient_id": f"C{i % 100_000:05d}",
            "contact_id": None,
            "subject": None,
            "template": TEMPLATE,
            "template_variables": "{}",  # JSON column: COPY takes its text
            "task_description": None,
            "priority": 2,
            "misfire_policy": "skip",
            "misfire_grace_seconds": GRACE_SECONDS,
            "status": service.ACTIVE,
            "next_run": next_run() if callable(next_run) else next_run,
            "last_run": None,
            "run_count": 0,
            "created_at": created,
            "updated_at": created,
        }
        yield tuple(values[name] for name in COLUMNS)


def check_columns() -> None:
    """Fail early if the Schedule model gained a column schedule_records does not fill."""
    try:
        next(schedule_records("t", 0, 1, utcnow(), utcnow()))
    except KeyError as exc:
        raise BenchError(f"the Schedule model has a column the bench does not fill: {exc}") from exc


async def copy_schedules(
    dsn: str, tenant_id: str, start: int, count: int, next_run: Any, created: datetime
) -> float:
    """COPY ``count`` schedules in chunks; returns the seconds taken."""
    conn = await asyncpg.connect(dsn, timeout=10)
    started = time.perf_counter()
    try:
        done = 0
        while done < count:
            size = min(COPY_CHUNK, count - done)
            records = list(schedule_records(tenant_id, start + done, size, next_run, created))
            await conn.copy_records_to_table("schedules", records=records, columns=COLUMNS)
            done += size
    finally:
        await conn.close()
    return time.perf_counter() - started


async def postgres_settings(engine: AsyncEngine) -> dict[str, Any]:
    async with engine.connect() as conn:
        return {
            name: (await conn.execute(text(f"SHOW {name}"))).scalar()
            for name in ("server_version", "autovacuum", "synchronous_commit", "shared_buffers", "work_mem")
        }


# -- phase: run ---------------------------------------------------------------------------------------------


async def produced_for(engine: AsyncEngine, due: datetime) -> int:
    return int(
        await scalar(engine, "SELECT count(*) FROM messages WHERE scheduled_for = :due", {"due": due}) or 0
    )


async def wait_enqueued(
    engine: AsyncEngine, pool: ProcessPool, due: datetime, n: int, started: float, within: float
) -> dict[str, Any]:
    """Poll until ``n`` messages exist for ``due``; returns when (monotonic) and the progress seen."""
    deadline = started + within
    last, last_progress = -1, time.monotonic()
    at_target: int | None = None
    samples: list[tuple[float, int]] = []
    while True:
        done = await produced_for(engine, due)
        now = time.monotonic()
        samples.append((round(now - started, 3), done))
        if at_target is None and now - started >= TARGET_RUN_SECONDS:
            at_target = done
        if done >= n:
            return {"finished": now, "samples": samples, "enqueued_at_target": at_target}
        if done != last:
            last, last_progress = done, now
        pool.check_alive()
        if pool.alive() == 0:
            raise BenchError(f"every scheduler stopped with {done} of {n} messages enqueued")
        if now >= deadline:
            raise BenchError(f"run timed out after {within:.0f} s with {done} of {n} messages enqueued")
        if now - last_progress > NO_PROGRESS_SECONDS:
            raise BenchError(f"no progress for {NO_PROGRESS_SECONDS:.0f} s with {done} of {n} enqueued")
        await asyncio.sleep(POLL_SECONDS)


async def verify_run(engine: AsyncEngine, due: datetime, n: int) -> dict[str, Any]:
    """Exactly n messages and executions for ``due``, no run twice, every next_run advanced."""
    params = {"due": due}
    async with engine.connect() as conn:

        async def one(sql: str) -> Any:
            return (await conn.execute(text(sql), params)).one()

        messages_for_due, message_recipients = await one(
            "SELECT count(*), count(DISTINCT recipient_id) FROM messages WHERE scheduled_for = :due"
        )
        messages_total = (await one("SELECT count(*) FROM messages"))[0]
        executions = await one(
            "SELECT count(*), count(DISTINCT schedule_id), count(DISTINCT message_id), count(message_id) "
            "FROM schedule_executions WHERE due_at = :due"
        )
        outcomes = {
            row[0]: int(row[1])
            for row in await conn.execute(
                text(
                    "SELECT outcome, count(*) FROM schedule_executions WHERE due_at = :due GROUP BY outcome"
                ),
                params,
            )
        }
        executions_total, later_round = await one(
            "SELECT count(*), count(*) FILTER (WHERE due_at > :due) FROM schedule_executions"
        )
        duplicates = (
            await one(
                "SELECT count(*) FROM (SELECT schedule_id, due_at FROM schedule_executions "
                "GROUP BY schedule_id, due_at HAVING count(*) > 1) d"
            )
        )[0]
        linked = (
            await one(
                "SELECT count(*) FROM schedule_executions e JOIN messages m ON m.id = e.message_id "
                "WHERE e.due_at = :due AND m.scheduled_for = :due"
            )
        )[0]
        schedules, not_advanced, never_ran = await one(
            "SELECT count(*), count(*) FILTER (WHERE next_run IS NULL OR next_run <= :due), "
            "count(*) FILTER (WHERE run_count = 0) FROM schedules"
        )
    result = {
        "schedules": int(schedules),
        "messages_for_due": int(messages_for_due),
        "messages_total": int(messages_total),
        "message_recipients_distinct": int(message_recipients),
        "executions_for_due": int(executions[0]),
        "executions_distinct_schedules": int(executions[1]),
        "executions_distinct_messages": int(executions[2]),
        "executions_linked_to_their_message": int(linked),
        "outcomes": outcomes,
        "executions_total": int(executions_total),
        "later_round_executions": int(later_round),
        "duplicate_schedule_due_pairs": int(duplicates),
        "next_run_not_advanced": int(not_advanced),
        "never_ran": int(never_ran),
    }
    result["ok"] = (
        result["messages_for_due"] == n
        and result["executions_for_due"] == n
        and result["executions_distinct_schedules"] == n
        and result["executions_distinct_messages"] == n
        and result["executions_linked_to_their_message"] == n
        and outcomes == {"queued": n}
        and result["duplicate_schedule_due_pairs"] == 0
        and result["next_run_not_advanced"] == 0
        and result["never_ran"] == 0
    )
    return result


def summarise_schedulers(stats: list[dict[str, Any]]) -> dict[str, Any]:
    batch_seconds = [s for st in stats for s in st.get("batch_seconds", [])]
    batch_sizes = [s for st in stats for s in st.get("batch_sizes", [])]
    per_schedule = [t / size for t, size in zip(batch_seconds, batch_sizes, strict=True) if size]
    processes = []
    for st in stats:
        processes.append(
            {
                key: (round(value, 3) if isinstance(value, float) else value)
                for key, value in st.items()
                if key not in ("batch_seconds", "batch_sizes")
            }
        )
    return {
        "processes": sorted(processes, key=lambda p: p["index"]),
        "batches": len(batch_seconds),
        "batch_seconds_p50": round(percentile(batch_seconds, 50), 3) if batch_seconds else None,
        "batch_seconds_p99": round(percentile(batch_seconds, 99), 3) if batch_seconds else None,
        "batch_seconds_max": round(max(batch_seconds), 3) if batch_seconds else None,
        "ms_per_schedule_p50": round(percentile(per_schedule, 50) * 1000, 3) if per_schedule else None,
        "errors": sum(st.get("errors", 0) for st in stats),
    }


async def run_phase(
    args: argparse.Namespace, kwargs: dict[str, Any], dsn: str, observer: AsyncEngine, tenant_id: str
) -> dict[str, Any]:
    result: dict[str, Any] = {"schedules": args.n, "schedulers": args.schedulers, "batch": args.batch}
    seeded_at = utcnow()
    if args.due_now:  # the minute already begun: overdue at once, the clock starts at the release
        due = seeded_at.replace(second=0, microsecond=0)
    else:  # the next minute boundary with room to seed and spawn first: released at the due time itself
        due = (seeded_at + LEAD).replace(second=0, microsecond=0) + timedelta(minutes=1)
    result["due_time"] = due.isoformat()
    print(f"seeding {args.n:,} recurring schedules due at {due.isoformat()} (COPY) ...", flush=True)
    seconds = await copy_schedules(dsn, tenant_id, 0, args.n, due, seeded_at)
    async with observer.connect() as conn:
        await conn.execute(text("ANALYZE schedules"))
        await conn.commit()
    result["seed"] = {"seconds": round(seconds, 3), "rows_per_second": round(args.n / seconds)}
    print(f"  {args.n / seconds:,.0f} rows/s", flush=True)

    print(f"starting {args.schedulers} scheduler process(es), run_due(limit={args.batch}) ...", flush=True)
    pool = ProcessPool(scheduler_process, kwargs, args.schedulers, args.batch, "scheduler", SPAWN_TIMEOUT)
    try:
        await pool.start()
        wait = (due - utcnow()).total_seconds()
        if wait > 0:
            print(f"  waiting {wait:.1f} s for the due time", flush=True)
            await asyncio.sleep(wait + 0.001)
        released_at = utcnow()
        started = time.monotonic()
        pool.release()
        waited = await wait_enqueued(observer, pool, due, args.n, started, args.phase_timeout)
        elapsed = waited["finished"] - started
    finally:
        await pool.shutdown()
    overdue = (released_at - due).total_seconds()
    # Released at the due time (to a few ms) unless --due-now or a slow seed made the schedules overdue first.
    clock_from = "due" if overdue <= RELEASE_SLACK else "release"
    origin = max(released_at, due)
    since_due = overdue + elapsed
    headline = since_due if clock_from == "due" else elapsed
    query = text("SELECT max(created_at) FROM messages WHERE scheduled_for = :due").columns(max=UTCDateTime())
    async with observer.connect() as conn:
        last_created = (await conn.execute(query, {"due": due})).scalar()
    result["run"] = {
        "clock_from": clock_from,
        "released_at": released_at.isoformat(),
        "overdue_at_release_seconds": round(overdue, 3),
        "seconds": round(headline, 3),
        "seconds_since_release": round(elapsed, 3),
        "seconds_since_due": round(since_due, 3),
        "messages_per_second": round(args.n / headline, 1),
        "last_message_created_after_origin_seconds": (
            round((last_created - origin).total_seconds(), 3) if last_created else None
        ),
        "enqueued_within_target": waited["enqueued_at_target"]
        if waited["enqueued_at_target"] is not None
        else args.n,
        "target_seconds": TARGET_RUN_SECONDS,
        "met_target": headline <= TARGET_RUN_SECONDS,
        "progress": thin(waited["samples"], 40),
    }
    result["schedulers_detail"] = summarise_schedulers(pool.stats)
    result["check"] = await verify_run(observer, due, args.n)
    print(
        f"  {args.n:,} enqueued in {headline:.1f} s from {clock_from} ({args.n / headline:,.0f}/s); "
        f"{elapsed:.1f} s since release, {since_due:.1f} s since due",
        flush=True,
    )
    return result


def thin(samples: list[tuple[float, int]], keep: int) -> list[tuple[float, int]]:
    if len(samples) <= keep:
        return samples
    step = len(samples) / keep
    picked = [samples[int(i * step)] for i in range(keep)]
    return [*picked, samples[-1]] if picked[-1] != samples[-1] else picked


# -- phase: due check ---------------------------------------------------------------------------------------


async def due_check_phase(
    args: argparse.Namespace, dsn: str, observer: AsyncEngine, tenant_id: str
) -> dict[str, Any]:
    now = utcnow()
    start = now + SPREAD_START
    span = (SPREAD - SPREAD_START).total_seconds()
    rng = random.Random(0)

    def spread() -> datetime:
        return start + timedelta(seconds=rng.random() * span)

    result: dict[str, Any] = {
        "table_size": args.table_size,
        "spread": "next_run uniform over [now-60s, now+30d)",
    }
    async with observer.connect() as conn:
        existing = int((await conn.execute(text("SELECT count(*) FROM schedules"))).scalar() or 0)
        # The schedules of the run phase come due again every minute: spread them like the rest.
        await conn.execute(
            text(
                "UPDATE schedules SET next_run = CAST(:start AS timestamptz) + random() * make_interval(secs => :span)"
            ),
            {"start": start, "span": span},
        )
        await conn.commit()
    grow = max(0, args.table_size - existing)
    print(f"growing schedules from {existing:,} to {existing + grow:,} rows (COPY) ...", flush=True)
    seconds = await copy_schedules(dsn, tenant_id, existing, grow, spread, now) if grow else 0.0
    result["grow"] = {"rows": grow, "seconds": round(seconds, 3)}
    raw = await asyncpg.connect(dsn, timeout=10)
    try:
        started = time.perf_counter()
        await raw.execute("VACUUM ANALYZE schedules")
        result["vacuum_analyze_seconds"] = round(time.perf_counter() - started, 3)
        sizes = await raw.fetchrow(
            "SELECT count(*) AS rows, pg_relation_size('schedules') AS heap, "
            "pg_relation_size('ix_schedules_due') AS idx FROM schedules"
        )
    finally:
        await raw.close()
    result["rows"] = int(sizes["rows"])
    result["heap_mb"] = round(sizes["heap"] / 2**20, 1)
    result["ix_schedules_due_mb"] = round(sizes["idx"] / 2**20, 1)

    print(f"timing due_check_query(now, limit=200) x {args.due_checks} on one connection ...", flush=True)
    timings: list[float] = []
    returned: list[int] = []
    async with observer.connect() as conn:
        for _ in range(5):  # warm up: connection, statement cache, buffers
            await conn.execute(service.due_check_query(utcnow(), limit=200))
        for _ in range(args.due_checks):
            query = service.due_check_query(utcnow(), limit=200)
            began = time.perf_counter()
            rows = (await conn.execute(query)).all()
            timings.append(time.perf_counter() - began)
            returned.append(len(rows))
        check = service.due_check_query(utcnow(), limit=200)
        literal = str(check.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))
        plan = [row[0] for row in await conn.execute(text("EXPLAIN (ANALYZE, BUFFERS) " + literal))]
        await conn.rollback()
    execution_ms = None
    for line in plan:
        if line.strip().startswith("Execution Time:"):
            execution_ms = float(line.split(":")[1].split()[0])
    result.update(
        {
            "calls": len(timings),
            "rows_returned_median": statistics.median(returned),
            "median_ms": ms(statistics.median(timings)),
            "p99_ms": ms(percentile(timings, 99)),
            "max_ms": ms(max(timings)),
            "server_execution_ms": execution_ms,
            "uses_ix_schedules_due": any("ix_schedules_due" in line for line in plan),
            "target_ms": TARGET_DUE_CHECK_MS,
            "met_target": percentile(timings, 99) * 1000 < TARGET_DUE_CHECK_MS,
            "sql": literal,
            "explain": plan,
        }
    )
    print(f"  median {result['median_ms']} ms, p99 {result['p99_ms']} ms", flush=True)
    return result


# -- the run ------------------------------------------------------------------------------------------------


async def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    db_name = f"herald_bench_sched_{os.getpid()}"
    await pg_admin(args.postgres_url, f"DROP DATABASE IF EXISTS {db_name} WITH (FORCE)")
    await pg_admin(args.postgres_url, f"CREATE DATABASE {db_name}")
    dsn = with_database(args.postgres_url, db_name)
    kwargs = settings_kwargs(dsn, str(workdir / "var"))
    settings = load_settings(**kwargs)
    rt = Runtime(settings)
    observer = observer_engine(settings.async_database_url)
    result: dict[str, Any] = {"backend": "postgres", "loadavg_before": [round(x, 2) for x in os.getloadavg()]}
    try:
        check_columns()
        await upgrade(rt.engine)
        principal = await setup_tenant(rt)
        result["postgres"] = await postgres_settings(observer)
        try:
            result["run_phase"] = await run_phase(args, kwargs, dsn, observer, principal.tenant_id)
        except Exception as exc:  # report it and go on to the due check, which does not depend on it
            print(f"run phase FAILED: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
            result["run_phase"] = {"error": f"{type(exc).__name__}: {exc}"}
        if args.table_size > 0:
            try:
                result["due_check"] = await due_check_phase(args, dsn, observer, principal.tenant_id)
            except Exception as exc:
                print(f"due check FAILED: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
                result["due_check"] = {"error": f"{type(exc).__name__}: {exc}"}
    finally:
        await observer.dispose()
        await rt.close()
        await pg_admin(args.postgres_url, f"DROP DATABASE IF EXISTS {db_name} WITH (FORCE)")
    result["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    return result


# -- output -------------------------------------------------------------------------------------------------


def _get(result: dict[str, Any], *path: str, fmt: str = "{}") -> str:
    value: Any = result
    for key in path:
        if not isinstance(value, dict) or key not in value or value[key] is None:
            return "-"
        value = value[key]
    return fmt.format(value)


def _verdict(met: Any) -> str:
    return "-" if met is None else ("met" if met else "MISSED")


def print_table(result: dict[str, Any]) -> None:
    rp = result.get("run_phase", {})
    dc = result.get("due_check", {})
    check = rp.get("check")
    if check:
        check_text = (
            f"{'OK' if check['ok'] else 'FAIL'}: {check['messages_for_due']:,} messages, "
            f"{check['executions_for_due']:,} executions ({check['executions_distinct_schedules']:,} schedules), "
            f"outcomes {check['outcomes']}, {check['duplicate_schedule_due_pairs']} duplicate runs, "
            f"{check['next_run_not_advanced']} not advanced"
        )
    else:
        check_text = "-"
    detail = rp.get("schedulers_detail", {})
    rows = [
        ("schedules due at once", _get(rp, "schedules", fmt="{:,}")),
        ("scheduler processes x run_due(limit)", f"{_get(rp, 'schedulers')} x {_get(rp, 'batch')}"),
        ("seed (COPY) rows/s", _get(rp, "seed", "rows_per_second", fmt="{:,}")),
        ("overdue at release (s)", _get(rp, "run", "overdue_at_release_seconds")),
        (
            f"all enqueued (s), clock from {_get(rp, 'run', 'clock_from')}",
            f"{_get(rp, 'run', 'seconds')}  (target {TARGET_RUN_SECONDS:.0f} s: "
            f"{_verdict(rp.get('run', {}).get('met_target'))})",
        ),
        ("all enqueued, from release (s)", _get(rp, "run", "seconds_since_release")),
        ("all enqueued, from due time (s)", _get(rp, "run", "seconds_since_due")),
        ("messages/s", _get(rp, "run", "messages_per_second", fmt="{:,.0f}")),
        (
            f"enqueued within {TARGET_RUN_SECONDS:.0f} s of release",
            _get(rp, "run", "enqueued_within_target", fmt="{:,}"),
        ),
        (
            "run_due batch s p50 / p99 / max",
            f"{_get(detail, 'batch_seconds_p50')} / {_get(detail, 'batch_seconds_p99')} / "
            f"{_get(detail, 'batch_seconds_max')}",
        ),
        ("  ms per schedule (batch p50)", _get(detail, "ms_per_schedule_p50")),
        ("  scheduler errors", _get(detail, "errors")),
        ("correctness", check_text),
        ("later-round executions (next minute)", _get(check or {}, "later_round_executions", fmt="{:,}")),
        ("due check: table rows", _get(dc, "rows", fmt="{:,}")),
        ("  rows returned (median)", _get(dc, "rows_returned_median")),
        (
            "  client ms median / p99 / max",
            f"{_get(dc, 'median_ms')} / {_get(dc, 'p99_ms')} / {_get(dc, 'max_ms')}  "
            f"(target {TARGET_DUE_CHECK_MS:g} ms: {_verdict(dc.get('met_target'))})",
        ),
        ("  server execution ms (EXPLAIN ANALYZE)", _get(dc, "server_execution_ms")),
        ("  uses ix_schedules_due", _get(dc, "uses_ix_schedules_due")),
    ]
    width = max(len(label) for label, _ in rows)
    print()
    for label, value in rows:
        print(f"{label.ljust(width)}  {value}")
    print()
    if dc.get("explain"):
        print("EXPLAIN (ANALYZE, BUFFERS) " + " ".join(dc["sql"].split()))
        for line in dc["explain"]:
            print(f"  {line}")
        print()
    if rp.get("run", {}).get("clock_from") == "release":
        print(
            "note: the clock starts at the release of the schedulers, which came after the due time "
            "(the schedules were already overdue by 'overdue at release')."
        )
    if check and check.get("later_round_executions"):
        print(
            "note: the cron is every minute, so schedules run before a minute boundary came due again after it; "
            "those runs are the next minute's, counted apart from the due time's."
        )
    settings = result.get("postgres", {})
    if settings:
        print(
            "postgres: "
            + ", ".join(f"{k}={v}" for k, v in settings.items())
            + f"; load average (1 min) {result.get('loadavg_before', ['-'])[0]} before, "
            f"{result.get('loadavg_after', ['-'])[0]} after, on {os.cpu_count()} CPUs"
        )
    if "error" in rp:
        print(f"error (run phase): {rp['error']}")
    if "error" in dc:
        print(f"error (due check): {dc['error']}")
    for process in detail.get("processes", []):
        if process.get("last_error"):
            print(f"scheduler {process['index']} error: {process['last_error']}")
    if "error" in result:
        print(f"error: {result['error']}")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=100_000, help="recurring schedules due in the same minute")
    parser.add_argument("--schedulers", type=int, default=2, help="scheduler processes")
    parser.add_argument("--batch", type=int, default=500, help="run_due(limit=...) per call")
    parser.add_argument(
        "--table-size",
        type=int,
        default=1_000_000,
        help="schedules in the table for the due check (0 to skip)",
    )
    parser.add_argument("--due-checks", type=int, default=200, help="timed due-check queries")
    parser.add_argument(
        "--due-now",
        action="store_true",
        help="make the schedules due at the current minute rounded down (already overdue, no wait); by default "
        "they are due at the next minute boundary at least 15 s ahead and the schedulers are released then",
    )
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument(
        "--phase-timeout", type=float, default=600.0, help="seconds allowed for the run phase"
    )
    args = parser.parse_args(argv)
    if args.n < 1 or args.schedulers < 1 or args.batch < 1 or args.due_checks < 1 or args.table_size < 0:
        parser.error("--n, --schedulers, --batch and --due-checks must be positive; --table-size >= 0")
    if args.phase_timeout <= 0:
        parser.error("--phase-timeout must be positive")
    check_loopback(args.postgres_url)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    prepare_results()
    environment = describe_environment()
    failed = False
    with tempfile.TemporaryDirectory(prefix="herald-bench-scheduler-") as tmp:
        try:
            result = asyncio.run(run(args, Path(tmp)))
        except Exception as exc:  # report it, still write the JSON
            print(f"FAILED: {type(exc).__name__}: {exc}", file=sys.stderr)
            result = {"backend": "postgres", "error": f"{type(exc).__name__}: {exc}"}
            failed = True
    result["environment"] = environment
    result["args"] = {k: v for k, v in vars(args).items() if k != "postgres_url"}
    run_phase_result = result.get("run_phase", {})
    if "error" in run_phase_result or not run_phase_result.get("check", {}).get("ok", False):
        failed = True
    if "error" in result.get("due_check", {}):
        failed = True
    path = RESULTS_DIR / RESULT_FILE
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"results written to {path}", flush=True)
    print_table(result)
    if failed:
        print("FAILED: see errors or the correctness row above", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
