"""Herald bulk benchmark: one ``POST /api/v1/messages/bulk`` of 10,000 messages through the HTTP API, on PostgreSQL.

The bench builds a fresh database ``herald_bulk_<pid>`` on the loopback PostgreSQL, migrates it, creates a tenant,
an API key and an AUTONOMOUS agent, and starts the shipped API server (``herald api``, no worker) in a subprocess
on a free port, so the client's CPU is not the server's. Then:

1. **accept**: ``--runs`` requests of ``--n`` messages each (SMS to distinct numbers, which development mode
   routes to the dev inbox), one at a time over one keep-alive connection, then as many again with a per-item
   ``idempotency_key`` on every item. Each request's wall time is measured at the client, from the start of
   sending the body to the end of reading the answer (the client's JSON encoding of the body, done before, is
   reported apart). Every answer must say ``accepted == n``. Target: the median under 2 s on this machine.
2. **drain**: ``--workers`` worker processes (as in bench/throughput.py) send the whole backlog; reports
   delivered/s, and checks every message ended ``sent`` with exactly one dev inbox row.

Results go to ``bench/results/bulk-postgres.json``. Only 127.0.0.1 is touched; the database is dropped at the end.

    .venv/bin/python bench/bulk.py
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
from _common import (
    RESULTS_DIR,
    SECRET,
    BenchError,
    check_loopback,
    describe_environment,
    pg_admin,
    prepare_results,
    scalar,
    with_database,
)
from throughput import WorkerPool, observer_engine, settings_kwargs, verify, wait_drained

from herald.admin.tenants import create_agent, create_api_key, get_or_create_tenant, principal_for_key
from herald.core.config import load_settings
from herald.core.maturity import MaturityLevel
from herald.runtime import Runtime
from herald.storage.migrate import upgrade

AGENT = "bench-bulk"
TARGET_SECONDS = 2.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def setup(rt: Runtime) -> str:
    """A tenant, its API key and the AUTONOMOUS agent the messages come from; returns the key."""
    async with rt.sessions.begin() as session:
        tenant = await get_or_create_tenant(session, "bench")
        key = await create_api_key(session, tenant, name="bench")
    async with rt.sessions.begin() as session:
        principal = await principal_for_key(session, key)
        assert principal is not None
        await create_agent(
            session,
            principal,
            agent_id=AGENT,
            name=AGENT,
            maturity_level=MaturityLevel.AUTONOMOUS,
            callback_url=None,
        )
    return key


def start_server(database_url: str, data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HERALD_")}
    env.update(
        HERALD_DATABASE_URL=database_url,
        HERALD_ENV="development",
        HERALD_SECRET_KEY=SECRET,
        HERALD_DATA_DIR=str(data_dir),
        HERALD_LOG_LEVEL="WARNING",
    )
    return subprocess.Popen(
        [sys.executable, "-m", "herald", "api", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def wait_ready(base: str, server: subprocess.Popen[bytes], within: float = 60.0) -> None:
    deadline = time.monotonic() + within
    async with httpx.AsyncClient() as http:
        while time.monotonic() < deadline:
            if server.poll() is not None:
                raise BenchError(f"herald api exited with {server.returncode}")
            try:
                await http.get(f"{base}/health", timeout=1)  # 503 without a worker: still up
            except httpx.TransportError:
                await asyncio.sleep(0.1)
            else:
                return
    raise BenchError(f"herald api did not answer within {within:.0f} s")


def stop_server(server: subprocess.Popen[bytes]) -> None:
    """Stop the server this bench started (by its handle), politely first."""
    if server.poll() is None:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=5)


def bulk_body(n: int, run: int, *, keyed: bool) -> bytes:
    messages = []
    for i in range(n):
        item = {
            "agent_id": AGENT,
            "platform": "sms",
            "recipient_id": f"+44{7000000000 + run * n + i}",
            "content": f"Your parcel {run}-{i} is out for delivery",
            "priority": "HIGH",
        }
        if keyed:
            item["idempotency_key"] = f"bench-{run}-{i}"
        messages.append(item)
    return json.dumps({"messages": messages}).encode()


async def accept_runs(
    base: str, key: str, n: int, runs: int, *, keyed: bool, first_run: int
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    seconds: list[float] = []
    encode: list[float] = []
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=120) as http:
        await http.get("/health")  # open the connection before the clock starts
        for run in range(first_run, first_run + runs):
            started = time.perf_counter()
            body = bulk_body(n, run, keyed=keyed)
            encode.append(time.perf_counter() - started)
            started = time.perf_counter()
            response = await http.post("/api/v1/messages/bulk", content=body)
            answer = response.json()
            seconds.append(time.perf_counter() - started)
            if response.status_code != 200 or answer.get("accepted") != n:
                raise BenchError(f"bulk request {run}: {response.status_code} {str(answer)[:300]}")
            print(f"  run {run}: {seconds[-1]:.3f} s for {n} messages ({len(body) / 1e6:.1f} MB)", flush=True)
    median = statistics.median(seconds)
    return {
        "requests": runs,
        "messages_per_request": n,
        "idempotency_keys": keyed,
        "seconds": [round(s, 3) for s in seconds],
        "median_seconds": round(median, 3),
        "max_seconds": round(max(seconds), 3),
        "accepted_per_second_median": round(n / median, 1),
        "client_json_encode_seconds_median": round(statistics.median(encode), 3),
        "target_seconds": TARGET_SECONDS,
        "meets_target": median < TARGET_SECONDS,
    }


async def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    db_name = f"herald_bulk_{os.getpid()}"
    await pg_admin(args.postgres_url, f"DROP DATABASE IF EXISTS {db_name} WITH (FORCE)")
    await pg_admin(args.postgres_url, f"CREATE DATABASE {db_name}")
    database_url = with_database(args.postgres_url, db_name)
    kwargs = settings_kwargs(database_url, str(workdir / "var"), args.batch_size, args.worker_concurrency)
    settings = load_settings(**kwargs)
    rt = Runtime(settings)
    observer = observer_engine(settings.async_database_url)
    server: subprocess.Popen[bytes] | None = None
    pool: WorkerPool | None = None
    result: dict[str, Any] = {"backend": "postgres", "workers": args.workers}
    result["loadavg_before"] = [round(x, 2) for x in os.getloadavg()]
    try:
        await upgrade(rt.engine)
        key = await setup(rt)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = start_server(database_url, workdir / "var", port)
        await wait_ready(base, server)
        print(f"accept: {args.runs} bulk requests of {args.n} messages ...", flush=True)
        result["accept"] = await accept_runs(base, key, args.n, args.runs, keyed=False, first_run=0)
        print(f"accept with a per-item idempotency key: {args.runs} requests ...", flush=True)
        result["accept_keyed"] = await accept_runs(
            base, key, args.n, args.runs, keyed=True, first_run=args.runs
        )
        stop_server(server)
        total = 2 * args.runs * args.n
        stored = int(
            await scalar(observer, "SELECT COUNT(*) FROM messages WHERE agent_id = :a", {"a": AGENT})
        )
        if stored != total:
            raise BenchError(f"{stored} messages stored, {total} accepted")

        print(f"drain: {args.workers} worker process(es) send {total} messages ...", flush=True)
        async with observer.begin() as conn:  # fresh statistics, so the claim walks its index
            await conn.exec_driver_sql("ANALYZE messages")
        pool = WorkerPool(kwargs, args.workers)
        await pool.start()
        started = time.monotonic()
        pool.release()
        finished = await wait_drained(observer, pool, AGENT, args.phase_timeout)
        elapsed = finished - started
        result["drain"] = {
            "messages": total,
            "seconds": round(elapsed, 3),
            "per_second": round(total / elapsed, 1),
        }
        result["drain_check"] = await verify(observer, AGENT, total)
        print(f"  {result['drain']['per_second']:.0f} delivered/s", flush=True)
    finally:
        if server is not None:
            stop_server(server)
        if pool is not None:
            await pool.shutdown()
        await observer.dispose()
        await rt.close()
        await pg_admin(args.postgres_url, f"DROP DATABASE IF EXISTS {db_name} WITH (FORCE)")
    result["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    return result


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=10_000, help="messages per bulk request (at most 10,000)")
    parser.add_argument(
        "--runs", type=int, default=5, help="bulk requests per variant (the median is reported)"
    )
    parser.add_argument("--workers", type=int, default=2, help="worker processes for the drain")
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument(
        "--batch-size", type=int, default=200, help="HERALD_WORKER_BATCH_SIZE for the workers"
    )
    parser.add_argument("--worker-concurrency", type=int, default=None, help="HERALD_WORKER_CONCURRENCY")
    parser.add_argument("--phase-timeout", type=float, default=600.0)
    args = parser.parse_args(argv)
    if not 1 <= args.n <= 10_000 or args.runs < 1 or args.workers < 1:
        parser.error("--n must be 1 to 10,000; --runs and --workers positive")
    check_loopback(args.postgres_url)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    prepare_results()
    with tempfile.TemporaryDirectory(prefix="herald-bench-bulk-") as tmp:
        try:
            result = asyncio.run(run(args, Path(tmp)))
            failed = not result["drain_check"]["ok"]
        except Exception as exc:  # report it, still write the JSON
            print(f"FAILED: {type(exc).__name__}: {exc}", file=sys.stderr)
            result, failed = {"backend": "postgres", "error": f"{type(exc).__name__}: {exc}"}, True
    result["environment"] = describe_environment()
    result["args"] = {k: v for k, v in vars(args).items() if k != "postgres_url"}
    path = RESULTS_DIR / "bulk-postgres.json"
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    if "accept" in result:
        for label, key in (("plain", "accept"), ("keyed", "accept_keyed")):
            a = result[key]
            verdict = "meets" if a["meets_target"] else "MISSES"
            print(
                f"{label:>5}: {a['messages_per_request']} messages per request: median {a['median_seconds']} s, "
                f"max {a['max_seconds']} s ({verdict} the {TARGET_SECONDS:g} s target)"
            )
    if "drain" in result:
        check = result["drain_check"]
        print(
            f"drain: {result['drain']['per_second']:.0f} delivered/s with {args.workers} workers; "
            f"{'OK' if check['ok'] else 'FAIL'}: {check['by_status']}, inbox rows {check['inbox_rows']}"
        )
    print(f"results written to {path}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
