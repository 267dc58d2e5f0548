"""Herald monitor benchmark (PostgreSQL): many monitors on pushed metrics, checked every interval.

The bench builds a fresh PostgreSQL database ``herald_bench_mon_<pid>`` on 127.0.0.1, migrates it, creates a
tenant and an AUTONOMOUS agent, then:

1. **seed**: writes ``--n`` monitors (default 10,000) straight into ``monitors`` with a Core insert (not
   through the API): condition ``{"condition_type": "metric", "threshold_config": {"metric": "m<i % 100>",
   "operator": ">", "value": 1e12}}`` (never true: no alerts, the bench measures checking), platforms
   ``[{"platform": "slack", "recipient_id": "C12345"}]``, ``check_interval_seconds`` ``--interval-seconds``
   (60), status active, state ok. It pushes ``--values-per-metric`` MetricValue rows for each of the 100
   metrics, then ANALYZE.
2. **run**: starts ``--checkers`` processes (multiprocessing "spawn"; each builds its own Runtime). Each loops
   like Herald's monitors loop (``herald.producers.monitors.engine.LOOPS``): ``await engine.run_due(rt, limit=--limit,
   concurrency=--concurrency, read_timeout=--read-timeout)``, again at once when a full batch came back,
   otherwise after ``--poll`` seconds (the loop's ``interval``, 0.2 s in ``herald serve``). Once every
   process is up, the monitors' ``next_check_at`` is set to spread evenly over the first interval from the
   *start* (2 s ahead), and the processes check until ``start + --duration + --grace``. The parent pushes one
   new value per metric every ``--push-every`` seconds meanwhile.

How lag is measured (nothing in ``src/`` changes): inside each checker process only, the module attribute
``herald.producers.monitors.engine.apply`` is replaced by a wrapper that notes, for every check, the monitor id, its
``last_check_at`` (the *claim time*: run_due stamps the claimed rows with one ``now`` taken just before its
``SELECT ... FOR UPDATE SKIP LOCKED``) and the ``now`` apply is called with (the *recorded time*: the outcome
is written in that transaction), then calls the real ``apply``. The parent rebuilds each monitor's due times:
the first is the seeded ``next_check_at``, each later one is max(previous due + interval, claim time) (exactly
what run_due writes as the new ``next_check_at``). Lag = claim time - due time ("due -> claimed") and
recorded time - due time ("due -> recorded").

Every monitor checked every interval: a due time before ``start + --duration`` must have been claimed (the
``--grace`` seconds after that window let the last ones finish); "missed" counts due times in the window that
were never claimed (the verdict); the largest gap between two checks of one monitor is reported too (run_due
sets the next due time to the previous due time + interval, so a check's lag does not push the schedule back).
Checks per minute
counts the checks whose due time fell in the window. Also checked from the database afterwards: no alerts,
no monitor left in another state than ok, no ``last_error``.

Targets (from the issue): lag p99 under 1 s and every monitor checked every interval. A missed target is
reported, not an error; the exit status is non-zero on an error or a failed correctness check.

Only 127.0.0.1 is touched; the database is dropped at the end. Results go to
``bench/results/monitors-postgres-<checkers>p.json`` (``-poll<s>`` appended for a non-default ``--poll``).

    .venv/bin/python bench/monitors.py --n 1000 --duration 70
    .venv/bin/python bench/monitors.py
    .venv/bin/python bench/monitors.py --checkers 2
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
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
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

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
from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from herald.admin.tenants import create_agent, get_or_create_tenant
from herald.core.config import load_settings
from herald.core.ids import new_id
from herald.core.maturity import MaturityLevel
from herald.core.principal import Principal
from herald.producers.monitors import engine as monitor_engine
from herald.runtime import Runtime
from herald.storage.migrate import upgrade
from herald.storage.models import MetricValue, Monitor
from herald.storage.types import utcnow

AGENT = "bench-monitors"
METRICS = 100
THRESHOLD = 1e12
INSERT_CHUNK = 2_000
FAR = datetime(2100, 1, 1, tzinfo=UTC)  # seeded next_check_at base: nothing due until the start is set
LEAD_SECONDS = 2.0  # from setting the due times to the first one
SPAWN_TIMEOUT = 60.0
TARGET_LAG_P99_SECONDS = 1.0
COLUMNS = {column.name for column in Monitor.__table__.columns}


# -- helpers ------------------------------------------------------------------------------------------------


def settings_kwargs(database_url: str, data_dir: str) -> dict[str, Any]:
    return {"database_url": database_url, "env": "development", "secret_key": SECRET, "data_dir": data_dir}


def ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def spread_ms(values: Sequence[float]) -> dict[str, float | None]:
    if not values:
        return {"p50_ms": None, "p90_ms": None, "p99_ms": None, "max_ms": None, "min_ms": None}
    return {
        "p50_ms": ms(percentile(values, 50)),
        "p90_ms": ms(percentile(values, 90)),
        "p99_ms": ms(percentile(values, 99)),
        "max_ms": ms(max(values)),
        "min_ms": ms(min(values)),
    }


# -- checker processes --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckerOptions:
    limit: int
    concurrency: int
    read_timeout: float
    poll: float
    profile: bool


def checker_process(
    kwargs: dict[str, Any], index: int, opts: CheckerOptions, ready: Any, go: Any, stop: Any, out: Any
) -> None:
    """Entry point of one checker process (spawned): build a Runtime, wait for "go", check until "stop"."""
    profiler = cProfile.Profile() if opts.profile and index == 0 else None
    stats: dict[str, Any] = {}
    if profiler is not None:
        profiler.enable()
    try:
        stats = asyncio.run(_checker_async(kwargs, index, opts, ready, go, stop))
    except Exception as exc:
        stats = {"index": index, "errors": 1, "last_error": f"{type(exc).__name__}: {exc}"[:1000]}
    finally:
        if profiler is not None:
            profiler.disable()
            buffer = io.StringIO()
            pstats.Stats(profiler, stream=buffer).sort_stats("cumulative").print_stats(35)
            stats["profile"] = buffer.getvalue()
        out.put(stats)


async def _checker_async(
    kwargs: dict[str, Any], index: int, opts: CheckerOptions, ready: Any, go: Any, stop: Any
) -> dict[str, Any]:
    rt = Runtime(load_settings(**kwargs))
    checks: list[tuple[str, float, float]] = []  # (monitor id, claim time, recorded time) as epoch seconds
    troubles: Counter[str] = Counter()
    real_apply = monitor_engine.apply

    async def recording_apply(rt_: Any, session: Any, monitor: Any, outcome: Any, now: datetime) -> None:
        claimed = monitor.last_check_at
        checks.append((monitor.id, claimed.timestamp() if claimed else float("nan"), now.timestamp()))
        evaluation = outcome.evaluation
        trouble = outcome.error or (evaluation.error if evaluation is not None else None)
        if trouble:
            troubles[str(trouble)[:200]] += 1
        await real_apply(rt_, session, monitor, outcome, now)

    monitor_engine.apply = recording_apply  # this process only; run_due looks apply up in its module
    stats: dict[str, Any] = {
        "index": index,
        "pid": os.getpid(),
        "passes": 0,
        "empty_passes": 0,
        "errors": 0,
        "last_error": None,
        "pass_seconds": [],  # one per pass that checked something
        "pass_sizes": [],
        "busy_seconds": 0.0,
    }
    try:
        async with rt.engine.connect() as conn:  # open a pooled connection before the clock starts
            await conn.execute(text("SELECT 1"))
        ready.set()
        if not await wait_mp_event(go, SPAWN_TIMEOUT * 2):
            stats["last_error"] = "never released"
            return stats
        cpu_started, wall_started = time.process_time(), time.monotonic()
        while not stop.is_set():  # the monitors loop (engine.LOOPS), with the bench's run_due arguments
            began = time.perf_counter()
            checked = 0
            try:
                checked = await monitor_engine.run_due(
                    rt, limit=opts.limit, concurrency=opts.concurrency, read_timeout=opts.read_timeout
                )
            except Exception as exc:  # like the loop runner: note it and try again after the poll interval
                stats["errors"] += 1
                stats["last_error"] = f"{type(exc).__name__}: {exc}"[:1000]
            took = time.perf_counter() - began
            stats["passes"] += 1
            if checked:
                stats["busy_seconds"] += took
                stats["pass_seconds"].append(took)
                stats["pass_sizes"].append(checked)
            else:
                stats["empty_passes"] += 1
            if checked >= opts.limit:
                continue
            await wait_mp_event(stop, opts.poll)
        stats["cpu_seconds"] = time.process_time() - cpu_started
        stats["wall_seconds"] = time.monotonic() - wall_started
    except Exception as exc:
        stats["errors"] += 1
        stats["last_error"] = f"{type(exc).__name__}: {exc}"[:1000]
    finally:
        await rt.close()
    stats["checks"] = checks
    stats["troubles"] = dict(troubles.most_common(5))
    return stats


# -- database -----------------------------------------------------------------------------------------------


async def setup_tenant(rt: Runtime) -> Principal:
    async with rt.sessions.begin() as session:
        tenant = await get_or_create_tenant(session, "bench-monitors")
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


def monitor_row(tenant_id: str, i: int, n: int, interval: int, now: datetime) -> dict[str, Any]:
    offset = timedelta(seconds=interval * i / n)  # spread evenly over one interval
    row: dict[str, Any] = {
        "id": new_id("mon"),
        "tenant_id": tenant_id,
        "agent_id": AGENT,
        "name": f"bench monitor {i}",
        "workspace_id": None,
        "condition": {
            "condition_type": "metric",
            "threshold_config": {"metric": f"m{i % METRICS}", "operator": ">", "value": THRESHOLD},
        },
        "condition_text": None,
        "action": None,
        "platforms": [{"platform": "slack", "recipient_id": "C12345"}],
        "alert_template": None,
        "check_interval_seconds": interval,
        "for_seconds": 0,
        "throttle_seconds": 900,
        "priority": 2,
        "no_data_policy": "keep",
        "error_policy": "keep",
        "mute_windows": [],
        "snoozed_until": None,
        "status": "active",
        "state": "ok",
        "state_since": now,
        "pending_since": None,
        "last_value": None,
        "last_error": None,
        "last_check_at": None,
        "next_check_at": FAR + offset,
        "last_notified_at": None,
        "firing_notified": False,
        "trigger_count": 0,
        "created_at": now,
        "updated_at": now,
    }
    missing = COLUMNS - row.keys()
    if missing:
        raise BenchError(f"the Monitor model has columns the bench does not fill: {sorted(missing)}")
    return row


async def seed(observer: AsyncEngine, tenant_id: str, n: int, interval: int, values: int) -> dict[str, Any]:
    now = utcnow()
    started = time.perf_counter()
    async with observer.begin() as conn:
        for first in range(0, n, INSERT_CHUNK):
            rows = [
                monitor_row(tenant_id, i, n, interval, now)
                for i in range(first, min(n, first + INSERT_CHUNK))
            ]
            await conn.execute(insert(Monitor.__table__), rows)
    monitors_seconds = time.perf_counter() - started
    await push_metrics(observer, tenant_id, values, spacing=5.0)
    async with observer.connect() as conn:
        await conn.execute(text("ANALYZE monitors"))
        await conn.execute(text("ANALYZE metric_values"))
        await conn.commit()
    return {"monitors_seconds": round(monitors_seconds, 3), "rows_per_second": round(n / monitors_seconds)}


async def push_metrics(observer: AsyncEngine, tenant_id: str, per_metric: int, spacing: float = 0.0) -> None:
    """``per_metric`` values for each of the metrics (all far under the threshold), the newest now."""
    now = utcnow()
    rows = [
        {
            "id": new_id("mtv"),
            "tenant_id": tenant_id,
            "name": f"m{m}",
            "value": float(m + k),
            "labels": {},
            "observed_at": now - timedelta(seconds=spacing * k),
        }
        for m in range(METRICS)
        for k in range(per_metric)
    ]
    async with observer.begin() as conn:
        await conn.execute(insert(MetricValue.__table__), rows)


async def set_start(observer: AsyncEngine, start: datetime) -> dict[str, float]:
    """Move every monitor's first due time from FAR + offset to start + offset; returns id -> due (epoch s)."""
    async with observer.begin() as conn:
        await conn.execute(
            text("UPDATE monitors SET next_check_at = CAST(:start AS timestamptz) + (next_check_at - :far)"),
            {"start": start, "far": FAR},
        )
    async with observer.connect() as conn:
        rows = await conn.execute(text("SELECT id, next_check_at FROM monitors"))
        return {row[0]: row[1].timestamp() for row in rows}


async def postgres_settings(engine: AsyncEngine) -> dict[str, Any]:
    async with engine.connect() as conn:
        return {
            name: (await conn.execute(text(f"SHOW {name}"))).scalar()
            for name in ("server_version", "synchronous_commit", "shared_buffers", "max_connections")
        }


async def verify_db(observer: AsyncEngine, window_end: datetime) -> dict[str, Any]:
    async with observer.connect() as conn:

        async def one(sql: str, params: dict[str, Any] | None = None) -> Any:
            return (await conn.execute(text(sql), params or {})).one()

        states = {
            row[0]: int(row[1])
            for row in await conn.execute(text("SELECT state, count(*) FROM monitors GROUP BY state"))
        }
        alerts = (await one("SELECT count(*) FROM monitor_alerts"))[0]
        messages = (await one("SELECT count(*) FROM messages"))[0]
        errors = (await one("SELECT count(*) FROM monitors WHERE last_error IS NOT NULL"))[0]
        never = (await one("SELECT count(*) FROM monitors WHERE last_check_at IS NULL"))[0]
        overdue = (
            await one("SELECT count(*) FROM monitors WHERE next_check_at < :end", {"end": window_end})
        )[0]
    return {
        "states": states,
        "alerts": int(alerts),
        "messages": int(messages),
        "monitors_with_last_error": int(errors),
        "never_checked": int(never),
        "next_check_before_window_end": int(overdue),
    }


# -- analysis -----------------------------------------------------------------------------------------------


def analyse(
    checks: list[tuple[str, float, float]],
    seeded: dict[str, float],
    interval: int,
    start: float,
    window_end: float,
) -> dict[str, Any]:
    """Rebuild due times per monitor and compute the lags, counts and misses."""
    by_monitor: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for monitor_id, claimed, recorded in checks:
        by_monitor[monitor_id].append((claimed, recorded))
    claim_lags: list[float] = []
    record_lags: list[float] = []
    in_window = 0
    early = 0
    missed = 0
    missed_monitors = 0
    max_gap = 0.0
    per_monitor_counts: Counter[int] = Counter()
    per_minute: Counter[int] = Counter()
    for monitor_id, due0 in seeded.items():
        due = due0
        count = 0
        previous: float | None = None
        for claimed, recorded in sorted(by_monitor.get(monitor_id, [])):
            if claimed < due - 1e-3:
                early += 1  # checked before it was due: would mean a double claim
            claim_lags.append(claimed - due)
            record_lags.append(recorded - due)
            if due < window_end:
                in_window += 1
                count += 1
                per_minute[int((due - start) // 60)] += 1
            if previous is not None:
                max_gap = max(max_gap, claimed - previous)
            previous = claimed
            due = max(due + interval, claimed)  # what run_due writes: from the due time, never before now
        per_monitor_counts[count] += 1
        if due < window_end:  # a due time inside the window that nobody claimed
            missed += 1
            missed_monitors += 1
    window = window_end - start
    return {
        "checks_recorded": len(checks),
        "checks_due_in_window": in_window,
        "checks_per_minute": round(in_window / (window / 60), 1),
        "checks_per_minute_by_due_minute": {str(k): v for k, v in sorted(per_minute.items())},
        "lag_due_to_claimed": spread_ms(claim_lags),
        "lag_due_to_recorded": spread_ms(record_lags),
        "checks_per_monitor": {str(k): v for k, v in sorted(per_monitor_counts.items())},
        "expected_checks_per_monitor": sorted({int(window // interval), -(-int(window) // interval)}),
        "monitors_never_checked": per_monitor_counts.get(0, 0),
        "missed_due_times": missed,
        "monitors_with_a_miss": missed_monitors,
        "checked_before_due": early,
        "max_gap_between_checks_s": round(max_gap, 3),
        "unknown_monitor_checks": sum(len(v) for k, v in by_monitor.items() if k not in seeded),
    }


def summarise_checkers(stats: list[dict[str, Any]]) -> dict[str, Any]:
    pass_seconds = [s for st in stats for s in st.get("pass_seconds", [])]
    pass_sizes = [s for st in stats for s in st.get("pass_sizes", [])]
    per_check = [t / size for t, size in zip(pass_seconds, pass_sizes, strict=True) if size]
    processes = []
    for st in stats:
        processes.append(
            {
                key: (round(value, 3) if isinstance(value, float) else value)
                for key, value in st.items()
                if key not in ("pass_seconds", "pass_sizes", "checks", "profile")
            }
        )
    return {
        "processes": sorted(processes, key=lambda p: p.get("index", 0)),
        "busy_passes": len(pass_seconds),
        "pass_seconds_p50": round(percentile(pass_seconds, 50), 3) if pass_seconds else None,
        "pass_seconds_p99": round(percentile(pass_seconds, 99), 3) if pass_seconds else None,
        "pass_seconds_max": round(max(pass_seconds), 3) if pass_seconds else None,
        "pass_size_p50": percentile(pass_sizes, 50) if pass_sizes else None,
        "pass_size_max": max(pass_sizes) if pass_sizes else None,
        "ms_per_check_p50": round(percentile(per_check, 50) * 1000, 3) if per_check else None,
        "ms_per_check_mean": round(statistics.fmean(per_check) * 1000, 3) if per_check else None,
        "errors": sum(st.get("errors", 0) for st in stats),
    }


# -- the run ------------------------------------------------------------------------------------------------


async def run_phase(
    args: argparse.Namespace, kwargs: dict[str, Any], observer: AsyncEngine, tenant_id: str
) -> dict[str, Any]:
    result: dict[str, Any] = {
        "monitors": args.n,
        "checkers": args.checkers,
        "interval_seconds": args.interval_seconds,
        "run_due": {"limit": args.limit, "concurrency": args.concurrency, "read_timeout": args.read_timeout},
        "poll_seconds": args.poll,
        "duration_seconds": args.duration,
        "grace_seconds": args.grace,
    }
    print(f"seeding {args.n:,} monitors and {METRICS} metrics ...", flush=True)
    result["seed"] = await seed(observer, tenant_id, args.n, args.interval_seconds, args.values_per_metric)
    print(f"  {result['seed']['rows_per_second']:,} monitors/s", flush=True)
    opts = CheckerOptions(args.limit, args.concurrency, args.read_timeout, args.poll, args.profile)
    print(f"starting {args.checkers} checker process(es) ...", flush=True)
    pool = ProcessPool(
        checker_process, kwargs, args.checkers, opts, "checker", SPAWN_TIMEOUT, collect_seconds=120
    )
    load: list[float] = []
    try:
        await pool.start()
        start = utcnow() + timedelta(seconds=LEAD_SECONDS)
        seeded = await set_start(observer, start)
        pool.go.set()
        window_end = start + timedelta(seconds=args.duration)
        stop_at = window_end + timedelta(seconds=args.grace)
        print(
            f"  checking from {start.isoformat()} for {args.duration:.0f} s (+{args.grace:.0f} s grace) ...",
            flush=True,
        )
        next_push = time.monotonic() + args.push_every
        while (remaining := (stop_at - utcnow()).total_seconds()) > 0:
            pool.check_alive()
            if args.push_every > 0 and time.monotonic() >= next_push:
                await push_metrics(observer, tenant_id, 1)
                next_push += args.push_every
                load.append(os.getloadavg()[0])
            await asyncio.sleep(min(1.0, remaining))
    finally:
        await pool.shutdown()
    checks = [c for st in pool.stats for c in st.get("checks", [])]
    result["start"] = start.isoformat()
    result["window_end"] = window_end.isoformat()
    result["analysis"] = analyse(
        checks, seeded, args.interval_seconds, start.timestamp(), window_end.timestamp()
    )
    result["checkers_detail"] = summarise_checkers(pool.stats)
    result["loadavg_1min_during"] = [round(x, 2) for x in load]
    profiles = [st["profile"] for st in pool.stats if st.get("profile")]
    if profiles:
        result["profile_checker_0"] = profiles[0]
    result["db_check"] = await verify_db(observer, window_end)
    return result


async def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    db_name = f"herald_bench_mon_{os.getpid()}"
    await pg_admin(args.postgres_url, f"DROP DATABASE IF EXISTS {db_name} WITH (FORCE)")
    await pg_admin(args.postgres_url, f"CREATE DATABASE {db_name}")
    dsn = with_database(args.postgres_url, db_name)
    kwargs = settings_kwargs(dsn, str(workdir / "var"))
    settings = load_settings(**kwargs)
    rt = Runtime(settings)
    observer = create_async_engine(settings.async_database_url, pool_size=2, max_overflow=0)
    result: dict[str, Any] = {"backend": "postgres", "loadavg_before": [round(x, 2) for x in os.getloadavg()]}
    try:
        await upgrade(rt.engine)
        principal = await setup_tenant(rt)
        result["postgres"] = await postgres_settings(observer)
        result["run_phase"] = await run_phase(args, kwargs, observer, principal.tenant_id)
    finally:
        await observer.dispose()
        await rt.close()
        await pg_admin(args.postgres_url, f"DROP DATABASE IF EXISTS {db_name} WITH (FORCE)")
    result["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    return result


# -- output -------------------------------------------------------------------------------------------------


def verdicts(rp: dict[str, Any]) -> dict[str, Any]:
    an = rp.get("analysis", {})
    db = rp.get("db_check", {})
    p99 = an.get("lag_due_to_claimed", {}).get("p99_ms")
    p99_recorded = an.get("lag_due_to_recorded", {}).get("p99_ms")
    # Every due time in the window was claimed (the gap between checks, interval + lag, is reported apart).
    every = an.get("missed_due_times") == 0 and an.get("monitors_never_checked") == 0
    correct = (
        an.get("checked_before_due") == 0
        and an.get("unknown_monitor_checks") == 0
        and db.get("alerts") == 0
        and db.get("messages") == 0
        and db.get("monitors_with_last_error") == 0
        and db.get("states") == {"ok": rp.get("monitors")}
        and rp.get("checkers_detail", {}).get("errors") == 0
    )
    return {
        "lag_p99_claimed_met": p99 is not None and p99 < TARGET_LAG_P99_SECONDS * 1000,
        "lag_p99_recorded_met": p99_recorded is not None and p99_recorded < TARGET_LAG_P99_SECONDS * 1000,
        "every_monitor_every_interval": every,
        "correct": correct,
    }


def _lag(d: dict[str, Any]) -> str:
    return f"{d.get('p50_ms')} / {d.get('p90_ms')} / {d.get('p99_ms')} / {d.get('max_ms')}"


def print_table(result: dict[str, Any]) -> None:
    rp = result.get("run_phase", {})
    an = rp.get("analysis", {})
    cd = rp.get("checkers_detail", {})
    db = rp.get("db_check", {})
    v = rp.get("verdicts", {})

    def verdict(key: str) -> str:
        return "-" if key not in v else ("met" if v[key] else "MISSED")

    rows = [
        ("monitors x interval", f"{rp.get('monitors', '-'):,} x {rp.get('interval_seconds', '-')} s"),
        (
            "checker processes x run_due(limit, concurrency)",
            f"{rp.get('checkers')} x ({rp.get('run_due', {}).get('limit')}, "
            f"{rp.get('run_due', {}).get('concurrency')}), poll {rp.get('poll_seconds')} s",
        ),
        ("window (s) + grace", f"{rp.get('duration_seconds')} + {rp.get('grace_seconds')}"),
        (
            "lag due->claimed ms p50/p90/p99/max",
            f"{_lag(an.get('lag_due_to_claimed', {}))}  (p99 < 1 s: {verdict('lag_p99_claimed_met')})",
        ),
        (
            "lag due->recorded ms p50/p90/p99/max",
            f"{_lag(an.get('lag_due_to_recorded', {}))}  (p99 < 1 s: {verdict('lag_p99_recorded_met')})",
        ),
        ("checks per minute (due in window)", f"{an.get('checks_per_minute', '-'):,}"),
        ("  by due minute", str(an.get("checks_per_minute_by_due_minute", "-"))),
        (
            "checks per monitor (count: monitors)",
            f"{an.get('checks_per_monitor')}  expected {an.get('expected_checks_per_monitor')}",
        ),
        (
            "missed due times / max gap between checks (s)",
            f"{an.get('missed_due_times')} / {an.get('max_gap_between_checks_s')}  "
            f"(every monitor every interval: {verdict('every_monitor_every_interval')})",
        ),
        (
            "run_due pass s p50 / p99 / max",
            f"{cd.get('pass_seconds_p50')} / {cd.get('pass_seconds_p99')} / {cd.get('pass_seconds_max')}",
        ),
        ("  monitors per busy pass p50 / max", f"{cd.get('pass_size_p50')} / {cd.get('pass_size_max')}"),
        ("  ms per check (pass time / size) p50", str(cd.get("ms_per_check_p50"))),
        (
            "correctness",
            f"{'OK' if v.get('correct') else 'FAIL'}: states {db.get('states')}, alerts {db.get('alerts')}, "
            f"messages {db.get('messages')}, last_error {db.get('monitors_with_last_error')}, "
            f"early {an.get('checked_before_due')}, errors {cd.get('errors')}",
        ),
    ]
    width = max(len(label) for label, _ in rows)
    print()
    for label, value in rows:
        print(f"{label.ljust(width)}  {value}")
    print()
    for process in cd.get("processes", []):
        cpu = process.get("cpu_seconds")
        wall = process.get("wall_seconds")
        share = f"{cpu / wall:.0%}" if cpu and wall else "-"
        print(
            f"checker {process.get('index')}: {process.get('passes')} passes, busy {process.get('busy_seconds')} s, "
            f"cpu {cpu} s of {wall} s ({share}), troubles {process.get('troubles')}"
            + (f", error: {process['last_error']}" if process.get("last_error") else "")
        )
    settings = result.get("postgres", {})
    if settings:
        print(
            "postgres: "
            + ", ".join(f"{k}={v}" for k, v in settings.items())
            + f"; load average (1 min) during {rp.get('loadavg_1min_during')}, on {os.cpu_count()} CPUs"
        )
    if rp.get("profile_checker_0"):
        print("\ncProfile of checker 0 (cumulative):")
        print(rp["profile_checker_0"])
    if "error" in result:
        print(f"error: {result['error']}")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=10_000, help="monitors")
    parser.add_argument("--interval-seconds", type=int, default=60, help="check_interval_seconds of each")
    parser.add_argument("--checkers", type=int, default=1, help="checker processes")
    parser.add_argument("--duration", type=float, default=180.0, help="seconds of due times measured")
    parser.add_argument("--grace", type=float, default=5.0, help="seconds of checking after the window")
    parser.add_argument("--limit", type=int, default=500, help="run_due(limit=...), as Herald uses")
    parser.add_argument("--concurrency", type=int, default=100, help="run_due(concurrency=...)")
    parser.add_argument("--read-timeout", type=float, default=10.0, help="run_due(read_timeout=...)")
    parser.add_argument(
        "--poll",
        type=float,
        default=0.2,
        help="seconds between passes that checked less than --limit (the monitors loop's interval)",
    )
    parser.add_argument("--values-per-metric", type=int, default=5, help="MetricValue rows seeded per metric")
    parser.add_argument(
        "--push-every", type=float, default=10.0, help="push one value per metric this often (0: never)"
    )
    parser.add_argument("--profile", action="store_true", help="cProfile checker 0 and print the top")
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args(argv)
    if (
        min(
            args.n, args.interval_seconds, args.checkers, args.limit, args.concurrency, args.values_per_metric
        )
        < 1
    ):
        parser.error("--n, --interval-seconds, --checkers, --limit, --concurrency, --values-per-metric: >= 1")
    if (
        args.duration <= 0
        or args.grace < 0
        or args.poll <= 0
        or args.read_timeout <= 0
        or args.push_every < 0
    ):
        parser.error("--duration, --poll and --read-timeout must be positive; --grace, --push-every >= 0")
    if args.duration + args.grace > 3600:
        parser.error("--duration + --grace is bounded to one hour")
    check_loopback(args.postgres_url)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    prepare_results()
    environment = describe_environment()
    failed = False
    with tempfile.TemporaryDirectory(prefix="herald-bench-monitors-") as tmp:
        try:
            result = asyncio.run(run(args, Path(tmp)))
        except Exception as exc:  # report it, still write the JSON
            print(f"FAILED: {type(exc).__name__}: {exc}", file=sys.stderr)
            result = {"backend": "postgres", "error": f"{type(exc).__name__}: {exc}"}
            failed = True
    rp = result.get("run_phase")
    if rp:
        rp["verdicts"] = verdicts(rp)
        rp["targets"] = {"lag_p99_seconds": TARGET_LAG_P99_SECONDS, "every_monitor_every_interval": True}
        if not rp["verdicts"]["correct"]:
            failed = True
    result["environment"] = environment
    result["args"] = {k: v for k, v in vars(args).items() if k != "postgres_url"}
    suffix = "" if args.poll == 1.0 else f"-poll{args.poll:g}"
    path = RESULTS_DIR / f"monitors-postgres-{args.checkers}p{suffix}.json"
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"results written to {path}", flush=True)
    print_table(result)
    if failed:
        print("FAILED: see errors or the correctness row above", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
