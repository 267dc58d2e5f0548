"""Herald side by side with the job queues a Python user would pick: Celery 5 + Redis, PgQueuer, Procrastinate.

The settings are those issue 22 was measured with (shared PEERS.md). Workloads, each on the same ``--messages``:

- **w1**: a backlog where each message is one signed HTTP POST (Standard Webhooks, Herald's webhook channel's
  envelope) to a loopback sink, drained by 2 worker processes. Herald: a ``webhook`` channel at the sink and
  2 ``herald worker`` processes (defaults: batch 200, 400 in flight). Celery: one ``celery worker --pool
  prefork -c 2`` with ``task_acks_late``. PgQueuer: 2 workers through ``pgqueuer.run`` (batch 10).
  Procrastinate: 2 ``procrastinate worker --concurrency 10``. The peers' jobs build the same request with httpx
  and Herald's client limits (bench/peers/envelope.py).
- **w2**: the same drain without HTTP: Herald's development dev inbox (no channel); no-op jobs for the peers.
- **enqueue**: the backlog enqueued and nothing else. Herald: ``POST /api/v1/messages/bulk`` with 10,000 per
  request to ``herald api`` (bodies encoded before the clock starts); Celery: ``apply_async`` per message;
  PgQueuer: ``Queries.enqueue`` with lists of 10,000; Procrastinate: ``batch_defer_async`` with 10,000 per call.
- **single**: ``--single-seconds`` of single sends from 16 connections (``wrk`` with a Lua script when it is on
  PATH, else this script's asyncio load generator: the table says which). Herald:
  ``POST /api/v1/messaging/proactive/send`` on one ``herald api`` with one ``herald worker`` beside it;
  peers: a minimal uvicorn endpoint that checks four fields and enqueues a w1 job, one worker process beside it.

A drain's rate is timed from the first message done to the last, as polled every 20 ms (so worker start-up is
left out for every system alike). Every w1 and single trial checks exactly-once at the sink (its own process:
distinct ``webhook-id`` values, duplicates, signatures); w2 checks the dev inbox (Herald) or the queue's own
records (PgQueuer's log, Procrastinate's job rows; Celery keeps none with results ignored, so only "drained").

Trials alternate between systems and the order rotates each round; each trial gets a fresh database (or fresh
Redis keys, by a per-trial key prefix). The table gives the median of the rounds and, for each peer, the
median of the per-round ratios Herald/peer. Each peer runs in its own virtual environment, made on first use
under bench/.venvs/ from the pinned bench/peers/<peer>.txt (and remade when that file changes).

Only 127.0.0.1 is touched. Results go to bench/results/peers.json.

    .venv/bin/python bench/peers.py --messages 20000 --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
from _common import (
    RESULTS_DIR,
    SECRET,
    BenchError,
    Processes,
    check_loopback,
    describe_environment,
    percentile,
    pg_admin,
    prepare_results,
    wait_http,
    with_database,
)

BENCH = Path(__file__).resolve().parent
VENVS = BENCH / ".venvs"
PEERS_DIR = BENCH / "peers"  # not a package: its modules run with it on PYTHONPATH
SYSTEMS = ("herald", "celery", "pgqueuer", "procrastinate")
PEERS = SYSTEMS[1:]
WORKLOADS = ("w1", "w2", "enqueue", "single")
AGENT = "bench-peers"
CHUNK = 10_000  # Herald's bulk API takes at most 10,000 per request
POLL_SECONDS = 0.02
SPARSE_POLL_SECONDS = 0.25  # between the first progress and the last tenth of a drain (see time_drain)
START_TIMEOUT = 90.0
STALL_SECONDS = 60.0
CONNECTIONS = 16
WARM_UP = 50  # single-send requests before the clock starts


# -- processes ------------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


# -- peer virtual environments --------------------------------------------------------------------------------


def venv_python(peer: str) -> Path:
    return VENVS / peer / "bin" / "python"


def ensure_venv(peer: str) -> Path:
    """bench/.venvs/<peer>, made from bench/peers/<peer>.txt; remade when the pins change."""
    requirements = PEERS_DIR / f"{peer}.txt"
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()
    home = VENVS / peer
    stamp = home / ".requirements.sha256"
    if stamp.exists() and stamp.read_text().strip() == digest and venv_python(peer).exists():
        return venv_python(peer)
    print(f"[setup] installing {peer} into {home} from {requirements.name} ...", flush=True)
    if home.exists():
        shutil.rmtree(home)
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", str(home)], check=True)
    installed = subprocess.run(
        [str(venv_python(peer)), "-m", "pip", "install", "--quiet", "-r", str(requirements)],
        check=False,
        capture_output=True,
        text=True,
    )
    if installed.returncode != 0:
        raise BenchError(f"pip install -r {requirements} failed:\n{installed.stderr[-3000:]}")
    stamp.write_text(digest + "\n")
    return venv_python(peer)


def versions(peer: str) -> dict[str, str]:
    """The installed versions of the packages that matter, for the results file."""
    names = {
        "celery": "celery kombu redis",
        "pgqueuer": "pgqueuer asyncpg",
        "procrastinate": "procrastinate psycopg",
    }
    code = (
        "import importlib.metadata as m, json, sys; "
        "print(json.dumps({n: m.version(n) for n in sys.argv[1:]}))"
    )
    out = subprocess.run(
        [str(venv_python(peer)), "-c", code, *names[peer].split(), "httpx", "httpcore", "uvicorn"],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, str] = json.loads(out.stdout)
    return result


# -- the sink -------------------------------------------------------------------------------------------------


@dataclass
class Sink:
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def stats(self, http: httpx.AsyncClient) -> dict[str, Any]:
        answer: dict[str, Any] = (await http.get(f"http://127.0.0.1:{self.port}/stats")).json()
        return answer


async def start_sink(procs: Processes) -> Sink:
    sink = Sink(free_port())
    procs.start("sink", [sys.executable, "-m", "sink", "--port", str(sink.port)])
    await wait_http(procs, f"http://127.0.0.1:{sink.port}/stats", START_TIMEOUT)
    return sink


async def settle_sink(sink: Sink, http: httpx.AsyncClient, expected: int) -> dict[str, Any]:
    """The sink's counts once late duplicates have had half a second to arrive, with the verdict."""
    await asyncio.sleep(0.5)
    stats = await sink.stats(http)
    stats["expected"] = expected
    stats["ok"] = stats["distinct"] == expected and stats["duplicates"] == 0 and stats["bad_signatures"] == 0
    return stats


# -- Redis (a few RESP commands: Herald's environment has no Redis client) -------------------------------------


async def redis_call(url: str, *commands: Sequence[str]) -> list[Any]:
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname or "127.0.0.1", parts.port or 6379)
    try:
        db = (parts.path or "/0").lstrip("/") or "0"
        batch = [("SELECT", db), *commands]
        for command in batch:
            writer.write(f"*{len(command)}\r\n".encode())
            for arg in command:
                raw = arg.encode()
                writer.write(b"$%d\r\n%s\r\n" % (len(raw), raw))
        await writer.drain()
        replies = [await _resp(reader) for _ in batch]
        return replies[1:]
    finally:
        writer.close()


async def _resp(reader: asyncio.StreamReader) -> Any:
    line = (await reader.readline()).rstrip(b"\r\n")
    kind, rest = line[:1], line[1:]
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        raise BenchError(f"redis: {rest.decode()}")
    if kind == b":":
        return int(rest)
    if kind == b"$":
        size = int(rest)
        return None if size < 0 else (await reader.readexactly(size + 2))[:-2].decode()
    if kind == b"*":
        return [await _resp(reader) for _ in range(max(0, int(rest)))]
    raise BenchError(f"redis: unexpected reply {line!r}")


async def redis_delete_prefix(url: str, prefix: str) -> None:
    cursor = "0"
    while True:
        (reply,) = await redis_call(url, ("SCAN", cursor, "MATCH", prefix + "*", "COUNT", "1000"))
        cursor, keys = reply
        if keys:
            await redis_call(url, ("DEL", *keys))
        if cursor == "0":
            return


# -- one trial's database ---------------------------------------------------------------------------------------


@dataclass
class Database:
    admin_url: str
    name: str
    conn: asyncpg.Connection | None = None  # one connection for the polls, not one per poll

    @property
    def url(self) -> str:
        return with_database(self.admin_url, self.name)

    async def create(self) -> None:
        await pg_admin(self.admin_url, f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)")
        await pg_admin(self.admin_url, f"CREATE DATABASE {self.name}")

    async def drop(self) -> None:
        if self.conn is not None:
            await self.conn.close()
            self.conn = None
        await pg_admin(self.admin_url, f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)")

    async def fetchval(self, sql: str) -> Any:
        if self.conn is None:
            self.conn = await asyncpg.connect(self.url, timeout=10)
            # The drain is polled 50 times a second. Autovacuum is off and the statistics are taken before the
            # drain, when every job is open, so the planner read the whole table on each poll (for Herald and
            # Procrastinate, which keep finished rows, 45-65 ms a poll on 60,000 rows: a third of a core taken
            # from the system being measured). Each system's open jobs are counted through its own indexes
            # instead, by plain index scans, which mark the entries of finished jobs dead as they pass them
            # (a bitmap scan does not): a poll then costs in proportion to the jobs still open.
            await self.conn.execute("SET enable_seqscan = off; SET enable_bitmapscan = off")
        return await self.conn.fetchval(sql)

    async def analyze(self) -> None:
        """Autovacuum is off on this server: without statistics every system's planner guesses."""
        await pg_admin(self.url, "ANALYZE")


# -- drain timing -------------------------------------------------------------------------------------------------


async def time_drain(
    n: int, done: Callable[[], Awaitable[int]], procs: Processes, within: float
) -> dict[str, Any]:
    """Poll ``done()`` until it reaches ``n``: the rate runs from the first poll that saw progress to the last,
    so worker start-up (imports, connections) is left out for every system alike.

    Only those two polls decide the figure, so the polls between them are sparse (``SPARSE_POLL_SECONDS``, for
    stall detection) until the last tenth of the jobs: a poll is a query on the database the system under test
    is using, and counting a large backlog 50 times a second took CPU from it."""
    launched = time.monotonic()
    first: tuple[float, int] | None = None
    last_count, last_progress = -1, launched
    while True:
        count = await done()
        now = time.monotonic()
        if count > 0 and first is None:
            first = (now, count)
        if count != last_count:
            last_count, last_progress = count, now
        if count >= n:
            break
        procs.check_alive()
        if now - launched > within:
            raise BenchError(f"drain timed out after {within:.0f} s with {count}/{n} done")
        if now - last_progress > STALL_SECONDS:
            raise BenchError(f"no progress for {STALL_SECONDS:.0f} s with {count}/{n} done")
        near = first is None or n - count <= n // 10  # the first progress or the end is close: poll often
        await asyncio.sleep(POLL_SECONDS if near else SPARSE_POLL_SECONDS)
    assert first is not None
    seconds = max(now - first[0], 1e-6)
    timed = n - first[1]
    if timed <= 0:  # all done by the first poll (a tiny backlog): only the time since launch is known
        seconds, timed = max(now - launched, 1e-6), n
    return {
        "messages": n,
        "seconds": round(seconds, 3),
        "per_second": round(timed / seconds, 1),
        "since_launch_seconds": round(now - launched, 3),
        "done_at_first_poll": first[1],
        "timed_from": "first progress" if first[1] < n else "launch (all done at the first poll)",
    }


# -- load for single sends ----------------------------------------------------------------------------------------


def lua_script(body: dict[str, Any], headers: dict[str, str]) -> str:
    lines = ['wrk.method = "POST"', f"wrk.body = {json.dumps(json.dumps(body))}"]
    lines += [f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in headers.items()]
    lines.append(
        "done = function(summary, latency, requests)\n"
        '  io.write(string.format("BENCH %d %d %d %d %d %d %d %d %d\\n", summary.requests, summary.duration,\n'
        "    summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write,\n"
        "    summary.errors.timeout, latency:percentile(50), latency:percentile(99), latency.max, 0))\n"
        "end"
    )
    return "\n".join(lines) + "\n"


async def run_wrk(
    url: str, body: dict[str, Any], headers: dict[str, str], seconds: float, workdir: Path
) -> dict[str, Any]:
    script = workdir / "single.lua"
    script.write_text(lua_script(body, headers))
    proc = await asyncio.create_subprocess_exec(
        "wrk",
        "-t2",
        f"-c{CONNECTIONS}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
        url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    text = out.decode(errors="replace")
    line = next((ln for ln in text.splitlines() if ln.startswith("BENCH ")), None)
    if line is None:
        raise BenchError(f"wrk printed no summary:\n{text[-1500:]}")
    requests, duration_us, status_errors, socket_errors, timeouts, p50, p99, worst, _ = map(
        int, line.split()[1:]
    )
    ok = requests - status_errors
    return {
        "generator": "wrk",
        "requests": requests,
        "accepted": ok,
        "non_2xx": status_errors,
        "socket_errors": socket_errors,
        "timeouts": timeouts,
        "seconds": round(duration_us / 1e6, 3),
        "per_second": round(ok / (duration_us / 1e6), 1),
        "p50_ms": round(p50 / 1000, 1),
        "p99_ms": round(p99 / 1000, 1),
        "max_ms": round(worst / 1000, 1),
    }


async def run_asyncio_load(
    url: str, body: dict[str, Any], headers: dict[str, str], seconds: float
) -> dict[str, Any]:
    """Closed loop on ``CONNECTIONS`` keep-alive connections for ``seconds`` (when wrk is not installed)."""
    raw = json.dumps(body).encode()
    latencies: list[float] = []
    errors = {"non_2xx": 0, "socket": 0}
    limits = httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS)
    async with httpx.AsyncClient(limits=limits, timeout=10.0) as http:
        start = time.perf_counter()
        stop_at = start + seconds

        async def loop() -> None:
            while time.perf_counter() < stop_at:
                began = time.perf_counter()
                try:
                    response = await http.post(url, content=raw, headers=headers)
                except httpx.HTTPError:
                    errors["socket"] += 1
                    continue
                if 200 <= response.status_code < 300:
                    latencies.append(time.perf_counter() - began)
                else:
                    errors["non_2xx"] += 1

        await asyncio.gather(*(loop() for _ in range(CONNECTIONS)))
        elapsed = time.perf_counter() - start
    return {
        "generator": "asyncio (httpx, closed loop)",
        "requests": len(latencies) + errors["non_2xx"],
        "accepted": len(latencies),
        "non_2xx": errors["non_2xx"],
        "socket_errors": errors["socket"],
        "seconds": round(elapsed, 3),
        "per_second": round(len(latencies) / elapsed, 1),
        "p50_ms": round(percentile(latencies, 50) * 1000, 1) if latencies else None,
        "p99_ms": round(percentile(latencies, 99) * 1000, 1) if latencies else None,
        "max_ms": round(max(latencies) * 1000, 1) if latencies else None,
    }


async def warm_up(url: str, body: dict[str, Any], headers: dict[str, str], count: int = WARM_UP) -> None:
    """A few requests before the clock starts, so first-request costs (caches, lazy imports, pools) are paid by
    every system outside the measurement. Their messages are delivered too, and counted by the checks."""
    async with httpx.AsyncClient(timeout=30) as http:
        for _ in range(count):
            response = await http.post(url, json=body, headers=headers)
            if not 200 <= response.status_code < 300:
                raise BenchError(f"warm-up request answered {response.status_code}: {response.text[:300]}")


async def settled_count(count: Callable[[], Awaitable[int]]) -> int:
    """A count read until it stops moving: requests in flight when the load stopped still finish."""
    last = await count()
    while True:
        await asyncio.sleep(0.5)
        now = await count()
        if now == last:
            return now
        last = now


async def single_load(
    url: str, body: dict[str, Any], headers: dict[str, str], seconds: float, workdir: Path
) -> dict[str, Any]:
    await warm_up(url, body, headers)
    if shutil.which("wrk"):
        return await run_wrk(url, body, headers, seconds, workdir)
    return await run_asyncio_load(url, body, headers, seconds)


SINGLE_BODY = {
    "agent_id": AGENT,
    "platform": "webhook",
    "recipient_id": "R00001",
    "content": "Bench single send: the nightly report is ready.",
}


# -- a trial ------------------------------------------------------------------------------------------------------


@dataclass
class Trial:
    args: argparse.Namespace
    system: str
    workload: str
    round: int
    index: int
    workdir: Path
    webhook_secret: str

    @property
    def prefix(self) -> str:
        return f"r{self.round}-{self.system}-{self.workload}-"

    @property
    def n(self) -> int:
        return int(self.args.messages)

    def database(self) -> Database:
        return Database(self.args.postgres_url, f"bench_peers_{os.getpid()}_{self.index}")

    def base_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HERALD_", "BENCH_"))}
        env["BENCH_WEBHOOK_SECRET"] = self.webhook_secret
        # The job modules, the sink and the envelope; then the caller's path (PYTHONPATH=src runs this checkout's Herald).
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(PEERS_DIR), os.environ.get("PYTHONPATH", "")) if p
        )
        return env


async def run_trial(trial: Trial) -> dict[str, Any]:
    runner = run_herald if trial.system == "herald" else run_peer
    result: dict[str, Any] = {"system": trial.system, "workload": trial.workload, "round": trial.round}
    result["loadavg_before"] = round(os.getloadavg()[0], 2)
    started = time.monotonic()
    try:
        result.update(await asyncio.wait_for(runner(trial), trial.args.trial_timeout))
    except (BenchError, OSError, TimeoutError, subprocess.SubprocessError, asyncpg.PostgresError) as exc:
        result["error"] = f"{type(exc).__name__}: {exc}"
    result["wall_seconds"] = round(time.monotonic() - started, 1)
    return result


# -- Herald -------------------------------------------------------------------------------------------------------


def herald_env(trial: Trial, database_url: str) -> dict[str, str]:
    env = trial.base_env()
    env.update(
        HERALD_DATABASE_URL=database_url,
        HERALD_ENV="development",
        HERALD_SECRET_KEY=SECRET,
        HERALD_DATA_DIR=str(trial.workdir / "var"),
        HERALD_LOG_LEVEL="WARNING",
    )
    # BENCH_HERALD_<NAME>=value sets HERALD_<NAME> for Herald's processes alone, to compare settings in one run
    # (BENCH_HERALD_EVENT_LOOP=asyncio, BENCH_HERALD_DATABASE_POOL_SIZE=10).
    env.update({k.removeprefix("BENCH_"): v for k, v in os.environ.items() if k.startswith("BENCH_HERALD_")})
    return env


async def herald_setup(database_url: str, data_dir: Path, sink: Sink | None, webhook_secret: str) -> str:
    """Migrate; a tenant, its key, an AUTONOMOUS agent and (for w1 and single) a default webhook channel to the
    sink on platform "webhook". Returns the API key."""
    from herald.admin.channels import create_channel
    from herald.admin.tenants import create_agent, create_api_key, get_or_create_tenant, principal_for_key
    from herald.core.config import load_settings
    from herald.core.maturity import MaturityLevel
    from herald.runtime import Runtime
    from herald.storage.migrate import upgrade

    rt = Runtime(
        load_settings(database_url=database_url, env="development", secret_key=SECRET, data_dir=str(data_dir))
    )
    try:
        await upgrade(rt.engine)
        async with rt.sessions.begin() as session:
            tenant = await get_or_create_tenant(session, "bench-peers")
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
            if sink is not None:
                await create_channel(
                    rt,
                    session,
                    principal,
                    platform="webhook",
                    provider="webhook",
                    name="bench-sink",
                    credentials={"url": sink.url, "secret": webhook_secret},
                    base_url=None,
                    is_default=True,
                )
        return key
    finally:
        await rt.close()


def herald_bodies(n: int, platform: str) -> list[bytes]:
    """The bulk request bodies, encoded before the clock starts (10,000 messages each at most)."""
    bodies = []
    for start in range(0, n, CHUNK):
        items = [
            {
                "agent_id": AGENT,
                "platform": platform,
                "recipient_id": f"R{i % 97:05d}" if platform == "webhook" else f"+44{7000000000 + i}",
                "content": f"Bench message {i}: the nightly report is ready.",
            }
            for i in range(start, min(n, start + CHUNK))
        ]
        bodies.append(json.dumps({"messages": items}).encode())
    return bodies


async def herald_enqueue(base: str, key: str, bodies: list[bytes], n: int) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=300) as http:
        await http.get("/health")  # open the connection before the clock starts
        started = time.perf_counter()
        accepted = 0
        for body in bodies:
            response = await http.post("/api/v1/messages/bulk", content=body)
            if response.status_code != 200:
                raise BenchError(f"bulk answered {response.status_code}: {response.text[:300]}")
            accepted += int(response.json().get("accepted", 0))
        seconds = time.perf_counter() - started
    if accepted != n:
        raise BenchError(f"bulk accepted {accepted} of {n}")
    return {"messages": n, "seconds": round(seconds, 3), "per_second": round(n / seconds, 1)}


async def run_herald(trial: Trial) -> dict[str, Any]:
    db = trial.database()
    await db.create()
    procs = Processes(trial.workdir, herald_env(trial, db.url), cwd=BENCH)
    herald = [sys.executable, "-m", "herald"]
    result: dict[str, Any] = {}
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            sink = await start_sink(procs) if trial.workload in ("w1", "single") else None
            key = await herald_setup(db.url, trial.workdir / "var", sink, trial.webhook_secret)
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            procs.start("api", [*herald, "api", "--host", "127.0.0.1", "--port", str(port)])
            await wait_http(procs, f"{base}/health", START_TIMEOUT)
            if trial.workload == "single":
                procs.start("worker0", [*herald, "worker"])
                await asyncio.sleep(1.0)  # let the worker import and connect before the load
                procs.check_alive()
                load = await single_load(
                    f"{base}/api/v1/messaging/proactive/send",
                    SINGLE_BODY,
                    {"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
                    trial.args.single_seconds,
                    trial.workdir,
                )
                result["single"] = load
                stored = await settled_count(lambda: _stored(db))
                assert sink is not None
                await time_drain(stored, lambda: _sink_distinct(sink, http), procs, trial.args.trial_timeout)
                result["check"] = await settle_sink(sink, http, stored)
                result["check"]["herald_attempts"] = await herald_attempts(db)
                result["check"]["ok"] = result["check"]["ok"] and stored >= load["accepted"] + WARM_UP
                return result
            platform = "webhook" if trial.workload == "w1" else "sms"
            bodies = herald_bodies(trial.n, platform)
            result["enqueue"] = await herald_enqueue(base, key, bodies, trial.n)
            procs.stop("api")
            if trial.workload == "enqueue":
                stored = int(await db.fetchval("SELECT COUNT(*) FROM messages"))
                result["check"] = {"ok": stored == trial.n, "stored": stored}
                return result
            await db.analyze()
            for index in range(trial.args.workers):
                procs.start(f"worker{index}", [*herald, "worker"])
            if sink is not None:
                result["drain"] = await time_drain(
                    trial.n, lambda: _sink_distinct(sink, http), procs, trial.args.trial_timeout
                )
                result["check"] = await settle_sink(sink, http, trial.n)
                result["check"]["herald_attempts"] = await herald_attempts(db)
            else:
                result["drain"] = await time_drain(
                    trial.n, lambda: _herald_done(db, trial.n), procs, trial.args.trial_timeout
                )
                result["check"] = await herald_inbox_check(db, trial.n)
            return result
    finally:
        procs.close()
        await db.drop()


async def _stored(db: Database) -> int:
    return int(await db.fetchval("SELECT COUNT(*) FROM messages"))


async def _sink_distinct(sink: Sink, http: httpx.AsyncClient) -> int:
    return int((await sink.stats(http))["distinct"])


async def _herald_done(db: Database, n: int) -> int:
    left = await db.fetchval(  # one count per status: each is read from its partial index
        "SELECT (SELECT COUNT(*) FROM messages WHERE status = 'queued')"
        " + (SELECT COUNT(*) FROM messages WHERE status = 'sending')"
    )
    return n - int(left)


async def herald_attempts(db: Database) -> dict[str, Any]:
    """What Herald recorded of its tries, to explain a duplicate or a missing post at the sink."""
    await db.fetchval("SELECT 1")
    assert db.conn is not None
    outcomes = {f"{r[0]} (try {r[1]})": int(r[2]) for r in await db.conn.fetch(
        "SELECT outcome, number, COUNT(*) FROM attempts GROUP BY 1, 2 ORDER BY 2, 1")}  # fmt: skip
    errors = {str(r[0])[:200]: int(r[1]) for r in await db.conn.fetch(
        "SELECT error, COUNT(*) FROM attempts WHERE error IS NOT NULL GROUP BY 1 ORDER BY 2 DESC LIMIT 5")}  # fmt: skip
    statuses = {
        str(r[0]): int(r[1]) for r in await db.conn.fetch("SELECT status, COUNT(*) FROM messages GROUP BY 1")
    }
    return {"attempts": outcomes, "errors": errors, "messages": statuses}


async def herald_inbox_check(db: Database, n: int) -> dict[str, Any]:
    """Every message sent, one dev inbox row each."""
    sent = int(await db.fetchval("SELECT COUNT(*) FROM messages WHERE status = 'sent'"))
    rows = int(await db.fetchval("SELECT COUNT(*) FROM devinbox_messages"))
    distinct = int(await db.fetchval("SELECT COUNT(DISTINCT message_id) FROM devinbox_messages"))
    return {"sent": sent, "inbox_rows": rows, "inbox_distinct": distinct, "ok": sent == rows == distinct == n}


# -- peers --------------------------------------------------------------------------------------------------------


def peer_module(system: str) -> str:
    return f"{system}_jobs"


def worker_commands(trial: Trial, python: str, count: int) -> list[tuple[str, list[str]]]:
    """How the peer's workers start: ``count`` worker processes (Celery: one prefork worker with ``count``
    children, as a Celery user runs it)."""
    if trial.system == "celery":
        argv = [python, "-m", "celery", "-A", "celery_jobs", "worker", "--pool", "prefork"]
        return [("worker0", [*argv, "-c", str(count), "--loglevel", "WARNING"])]
    if trial.system == "pgqueuer":
        return [(f"worker{i}", [python, "-m", "pgqueuer_jobs", "worker"]) for i in range(count)]
    argv = [python, "-m", "procrastinate", "--app", "procrastinate_jobs.app", "--log-level", "warning"]
    return [(f"worker{i}", [*argv, "worker", "--concurrency", "10"]) for i in range(count)]


async def peer_remaining(trial: Trial, db: Database | None, key_prefix: str) -> int:
    """Jobs not yet finished, as the queue itself records them."""
    if trial.system == "celery":
        queued, unacked = await redis_call(
            trial.args.redis_url, ("LLEN", key_prefix + "celery"), ("HLEN", key_prefix + "unacked")
        )
        return int(queued) + int(unacked)
    assert db is not None
    if trial.system == "pgqueuer":
        return int(await db.fetchval("SELECT COUNT(*) FROM pgqueuer"))
    return int(await db.fetchval("SELECT COUNT(*) FROM procrastinate_jobs WHERE status IN ('todo', 'doing')"))


async def peer_queue_check(trial: Trial, db: Database | None, n: int) -> dict[str, Any]:
    """w2's check for a peer: what its queue records of the finished jobs."""
    if trial.system == "celery":
        return {"ok": True, "note": "drained; Celery keeps no record of a finished job with results ignored"}
    assert db is not None
    if trial.system == "pgqueuer":
        rows = await _rows(db, "SELECT status::text, COUNT(*) FROM pgqueuer_log GROUP BY 1")
        return {"log": rows, "ok": rows.get("successful", 0) == n and rows.get("exception", 0) == 0}
    rows = await _rows(db, "SELECT status::text, COUNT(*) FROM procrastinate_jobs GROUP BY 1")
    return {"jobs": rows, "ok": rows.get("succeeded", 0) == n and sum(rows.values()) == n}


async def _rows(db: Database, sql: str) -> dict[str, int]:
    await db.fetchval("SELECT 1")
    assert db.conn is not None
    return {str(k): int(v) for k, v in await db.conn.fetch(sql)}


async def peer_command(python: str, module: str, env: dict[str, str], *argv: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        python, "-m", module, *argv, env=env, cwd=BENCH,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise BenchError(f"{module} {' '.join(argv)} exited {proc.returncode}: {err.decode()[-1500:]}")
    return out.decode()


async def run_peer(trial: Trial) -> dict[str, Any]:
    python = str(venv_python(trial.system))
    module = peer_module(trial.system)
    db = None if trial.system == "celery" else trial.database()
    key_prefix = f"bench-peers-{os.getpid()}-{trial.index}:"
    env = trial.base_env()
    env["BENCH_REDIS_URL"] = trial.args.redis_url
    env["BENCH_KEYPREFIX"] = key_prefix
    if db is not None:
        await db.create()
        env["BENCH_PG_DSN"] = db.url
    procs = Processes(trial.workdir, env, cwd=BENCH)
    result: dict[str, Any] = {}
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            sink = await start_sink(procs) if trial.workload in ("w1", "single") else None
            if sink is not None:
                procs.env["BENCH_SINK_URL"] = env["BENCH_SINK_URL"] = sink.url
            await peer_command(python, module, env, "setup")
            if trial.workload == "single":
                return await peer_single(trial, python, procs, db, key_prefix, sink, http)
            mode = "w1" if trial.workload == "w1" else "w2"
            out = await peer_command(
                python, module, env, "enqueue", "--n", str(trial.n), "--prefix", trial.prefix, "--mode", mode
            )
            enqueued = json.loads(out.strip().splitlines()[-1])
            result["enqueue"] = {
                "messages": trial.n,
                "seconds": round(enqueued["seconds"], 3),
                "per_second": round(enqueued["per_second"], 1),
            }
            left = await peer_remaining(trial, db, key_prefix)
            if trial.workload == "enqueue":
                result["check"] = {"ok": left == trial.n, "queued": left}
                return result
            if left != trial.n:
                raise BenchError(f"{left} jobs queued after enqueuing {trial.n}")
            if db is not None:
                await db.analyze()
            for name, argv in worker_commands(trial, python, trial.args.workers):
                procs.start(name, argv)

            async def done() -> int:
                if sink is not None:
                    return await _sink_distinct(sink, http)
                return trial.n - await peer_remaining(trial, db, key_prefix)

            result["drain"] = await time_drain(trial.n, done, procs, trial.args.trial_timeout)
            if sink is not None:
                result["check"] = await settle_sink(sink, http, trial.n)
            else:
                await asyncio.sleep(0.5)  # let the last completions be recorded
                result["check"] = await peer_queue_check(trial, db, trial.n)
            return result
    finally:
        procs.close()
        if db is not None:
            await db.drop()
        if trial.system == "celery":
            await redis_delete_prefix(trial.args.redis_url, key_prefix)


async def peer_single(
    trial: Trial,
    python: str,
    procs: Processes,
    db: Database | None,
    key_prefix: str,
    sink: Sink | None,
    http: httpx.AsyncClient,
) -> dict[str, Any]:
    """The peer's minimal endpoint on uvicorn (one process), one worker process beside it, 16 connections."""
    assert sink is not None
    port = free_port()
    uvicorn = [python, "-m", "uvicorn", f"{peer_module(trial.system)}:endpoint", "--host", "127.0.0.1"]
    procs.start("endpoint", [*uvicorn, "--port", str(port), "--log-level", "warning", "--no-access-log"])
    for name, argv in worker_commands(trial, python, 1):
        procs.start(name, argv)
    await wait_http(procs, f"http://127.0.0.1:{port}/", START_TIMEOUT)
    await asyncio.sleep(1.0)  # let the worker import and connect before the load
    procs.check_alive()
    load = await single_load(
        f"http://127.0.0.1:{port}/send",
        SINGLE_BODY,
        {"Content-Type": "application/json"},
        trial.args.single_seconds,
        trial.workdir,
    )
    result: dict[str, Any] = {"single": load}

    async def drained() -> int:
        return 1 if await peer_remaining(trial, db, key_prefix) == 0 else 0

    await time_drain(1, drained, procs, trial.args.trial_timeout)
    stats = await settle_sink(sink, http, load["accepted"] + WARM_UP)
    # Requests still in flight when the load stopped may have been enqueued without being counted by it.
    stats["ok"] = (
        stats["distinct"] >= load["accepted"] + WARM_UP
        and stats["duplicates"] == 0
        and stats["bad_signatures"] == 0
    )
    result["check"] = stats
    return result


# -- summary ------------------------------------------------------------------------------------------------------


def figure(trial: dict[str, Any], *, checked: bool = True) -> float | None:
    """The number a trial contributes to the table (None when it failed, or when its check did not pass)."""
    if "error" in trial or (checked and not trial.get("check", {}).get("ok")):
        return None
    section = {"w1": "drain", "w2": "drain", "enqueue": "enqueue", "single": "single"}[trial["workload"]]
    value = trial.get(section, {}).get("per_second")
    return float(value) if value is not None else None


def summarise(
    trials: list[dict[str, Any]], systems: Sequence[str], workloads: Sequence[str]
) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for workload in workloads:
        row: dict[str, Any] = {}
        for system in systems:
            mine = [t for t in trials if t["system"] == system and t["workload"] == workload]
            values = [v for v in (figure(t) for t in mine) if v is not None]
            unchecked = [v for v in (figure(t, checked=False) for t in mine) if v is not None]
            cell: dict[str, Any] = {
                "trials": len(mine),
                "passed": len(values),
                "median_per_second": round(statistics.median(values), 1) if values else None,
                # Trials that ran but failed their check (a duplicate at the sink, say) still have a rate.
                "median_per_second_unchecked": round(statistics.median(unchecked), 1) if unchecked else None,
            }
            if workload == "single":
                p99 = [t["single"]["p99_ms"] for t in mine if figure(t) is not None]
                cell["median_p99_ms"] = round(statistics.median(p99), 1) if p99 else None
                cell["generator"] = next((t["single"]["generator"] for t in mine if "single" in t), None)
            if system != "herald" and "herald" in systems:
                ratios = []
                for t in mine:
                    ours = next(
                        (h for h in trials if h["system"] == "herald" and h["workload"] == workload
                         and h["round"] == t["round"]),
                        None,
                    )  # fmt: skip
                    a, b = (figure(ours) if ours else None), figure(t)
                    if a is not None and b:
                        ratios.append(a / b)
                cell["herald_ratio_median"] = round(statistics.median(ratios), 2) if ratios else None
            row[system] = cell
        summary[workload] = row
    return summary


LABELS = {
    "w1": "W1 drain, signed HTTP POST per message (/s)",
    "w2": "W2 drain, queue only (/s)",
    "enqueue": "enqueue (/s)",
    "single": "single sends, 16 connections (/s, p99)",
}


def print_table(summary: dict[str, Any], systems: Sequence[str], args: argparse.Namespace) -> None:
    def cell(workload: str, system: str) -> str:
        c = summary[workload][system]
        if c["median_per_second"] is None:
            if c.get("median_per_second_unchecked") is not None:
                return f"{c['median_per_second_unchecked']:,.0f}/s, CHECK FAILED"
            return f"FAILED ({c['passed']}/{c['trials']})"
        text = f"{c['median_per_second']:,.0f}/s"
        if workload == "single" and c.get("median_p99_ms") is not None:
            text += f", p99 {c['median_p99_ms']:g} ms"
        if c.get("herald_ratio_median") is not None:
            text += f" (Herald {c['herald_ratio_median']:g}x)"
        if c["passed"] < c["trials"]:
            text += f" [{c['passed']}/{c['trials']} passed]"
        return text

    names = {
        "herald": "Herald",
        "celery": "Celery+Redis",
        "pgqueuer": "PgQueuer",
        "procrastinate": "Procrastinate",
    }
    print()
    print(
        f"{args.messages:,} messages, {args.rounds} round(s), {args.workers} worker processes; medians of rounds,"
    )
    print("ratios the median of per-round Herald/peer figures.")
    print()
    print("| workload | " + " | ".join(names[s] for s in systems) + " |")
    print("| --- |" + " --- |" * len(systems))
    for workload in summary:
        print(f"| {LABELS[workload]} | " + " | ".join(cell(workload, s) for s in systems) + " |")
    single = summary.get("single", {})
    generators = {c.get("generator") for c in single.values() if c.get("generator")}
    if generators:
        print(
            f"\nsingle sends: load from {', '.join(sorted(generators))}, {args.single_seconds:g} s per trial"
        )


# -- main ---------------------------------------------------------------------------------------------------------


def rotated(systems: Sequence[str], round_index: int) -> list[str]:
    shift = round_index % len(systems)
    return [*systems[shift:], *systems[:shift]]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=20_000, help="messages per drain and enqueue trial")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--systems", default=",".join(SYSTEMS), help="comma-separated: " + ",".join(SYSTEMS))
    parser.add_argument(
        "--workloads", default=",".join(WORKLOADS), help="comma-separated: " + ",".join(WORKLOADS)
    )
    parser.add_argument("--workers", type=int, default=2, help="worker processes for the drains")
    parser.add_argument("--single-seconds", type=float, default=10.0, help="length of each single-send trial")
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--trial-timeout", type=float, default=900.0, help="seconds allowed per trial")
    args = parser.parse_args(argv)
    args.systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    args.workloads = [w.strip() for w in args.workloads.split(",") if w.strip()]
    unknown = [s for s in args.systems if s not in SYSTEMS] + [
        w for w in args.workloads if w not in WORKLOADS
    ]
    if unknown or not args.systems or not args.workloads:
        parser.error(f"unknown or missing systems/workloads: {unknown}")
    if args.messages < 1 or args.rounds < 1 or args.workers < 1 or args.single_seconds <= 0:
        parser.error("--messages, --rounds, --workers and --single-seconds must be positive")
    check_loopback(args.postgres_url)
    if urlsplit(args.redis_url).hostname not in ("127.0.0.1", "localhost"):
        parser.error("--redis-url must point at 127.0.0.1")
    return args


async def run_all(args: argparse.Namespace, workdir: Path) -> list[dict[str, Any]]:
    trials: list[dict[str, Any]] = []
    index = 0
    webhook_secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    for round_index in range(args.rounds):
        order = rotated(args.systems, round_index)
        for workload in args.workloads:
            for system in order:
                index += 1
                trial_dir = workdir / f"{index:03d}-{system}-{workload}"
                trial_dir.mkdir()
                trial = Trial(args, system, workload, round_index + 1, index, trial_dir, webhook_secret)
                print(f"[round {round_index + 1}] {workload:>7} {system:<13} ...", end=" ", flush=True)
                result = await run_trial(trial)
                trials.append(result)
                print(describe(result), flush=True)
    return trials


def describe(result: dict[str, Any]) -> str:
    if "error" in result:
        return f"ERROR {result['error'][:400]}"
    figure_value = figure(result)
    parts = []
    for section in ("enqueue", "drain", "single"):
        if section in result and result[section].get("per_second") is not None:
            parts.append(f"{section} {result[section]['per_second']:,.0f}/s")
    if "single" in result:
        parts.append(f"p99 {result['single']['p99_ms']} ms")
    verdict = "ok" if figure_value is not None else f"CHECK FAILED {result.get('check')}"
    return f"{', '.join(parts)}; {verdict} ({result['wall_seconds']} s)"


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    prepare_results()
    peer_versions = {}
    for peer in args.systems:
        if peer in PEERS:
            ensure_venv(peer)
            peer_versions[peer] = versions(peer)
    with tempfile.TemporaryDirectory(prefix="herald-bench-peers-") as tmp:
        trials = asyncio.run(run_all(args, Path(tmp)))
    summary = summarise(trials, args.systems, args.workloads)
    result = {
        "summary": summary,
        "trials": trials,
        "peer_versions": peer_versions,
        "environment": describe_environment(),
        "args": {k: v for k, v in vars(args).items() if k not in ("postgres_url", "redis_url")},
        "load_generator": "wrk" if shutil.which("wrk") else "asyncio",
    }
    path = RESULTS_DIR / "peers.json"
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print_table(summary, args.systems, args)
    busiest = max((t["loadavg_before"] for t in trials), default=0.0)
    if busiest > (os.cpu_count() or 1):
        print(
            f"\nwarning: the 1-minute load average reached {busiest:g} on {os.cpu_count()} CPUs before a trial: "
            "other work shared the machine, so these figures (ratios included) are not a clean measurement"
        )
    print(f"\nresults written to {path}")
    failed = [t for t in trials if figure(t) is None]
    if failed:
        print(f"FAILED: {len(failed)} trial(s) errored or failed their check (see above)", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
