"""Herald inbound benchmark: signed webhooks at rising rates, through the agent callback to the reply enqueued.

Everything runs for real on 127.0.0.1, each part in its own process:

- **api**: ``herald api`` (uvicorn, no embedded worker) takes ``POST /api/v1/interfaces/{channel}/webhook``,
  checks the Telegram secret token, stores the message and answers;
- **processor**: a process running ``herald.producers.conversations.processor.Processor`` alone (as ``herald worker``
  does, without the outbound Worker), which claims stored messages in per-conversation order, calls the agent's
  ``callback_url`` signed and enqueues the agent's ``{"reply": ...}`` through the pipeline. With ``--deliver``
  it is ``herald worker`` itself (Processor and outbound Worker), and the replies are sent on to the fake
  Telegram below;
- **agent**: a bare ASGI app on uvicorn answering ``{"reply": "ok"}`` at once on ``/agent`` (and, as the
  channel's ``base_url``, a Telegram-shaped ``{"ok": true, ...}`` to anything else, so nothing leaves loopback);
- **load generator**: this process, a minimal HTTP/1.1 keep-alive client (:class:`RawPool`, asyncio streams;
  httpx costs several ms of CPU per request at this concurrency, which starved the server) sending pre-built,
  correctly signed Telegram
  updates (``herald.fakes.inbound.message``) open-loop at a fixed rate per step, spread over ``--chats``
  private chats so per-conversation ordering does not serialise the load.

PostgreSQL gets its own database ``herald_bench_inbound_<pid>``, dropped at the end. A warm-up sends one
message per chat first (creating the conversations; not reported). Then, per step of ``--rates`` (each
``--seconds`` long):

- acknowledgement: every POST's time from the call to its response (the wait for a free connection included), as the
  provider sees it; the achieved rate is acknowledgements over the step's sending time;
- end to end: ``processed_at - received_at`` of the step's rows that reached ``replied`` (the reply message
  row is written in the same transaction as ``processed_at``), i.e. stored -> reply enqueued;
- processed/s: rows of any step settled while the step was sending, over its duration; backlog: rows still
  pending or processing when the step stopped sending; then the bench waits up to ``--drain-timeout`` for
  the step's rows to settle (and stops the ladder if they do not: the next step would start on a backlog).

A step passes when ack p99 < 200 ms with no errors and >= 95 % of the offered rate acknowledged, and
processing keeps up: everything replied, backlog at the end under one second of arrivals (plus the
processor's 0.5 s poll), processed/s >= 90 % of offered. The headline is the highest passing step.

The load generator, PostgreSQL and the three Herald processes share the machine's CPUs; the table shows each
part's CPU use per step (from /proc) so the split is visible. Results go to ``bench/results/inbound.json``.

    .venv/bin/python bench/inbound.py
    .venv/bin/python bench/inbound.py --rates 100,250,500,1000 --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

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
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from herald.fakes.inbound import message

AGENT_ID = "bench-inbound"
CREDENTIALS = {"bot_token": "123456:" + "A" * 35, "secret_token": "tg-secret-token"}
ACK_P99_LIMIT_MS = 200.0
FIRST_CHAT = 700_000_000
START_TIMEOUT = 60.0
CPU_ROLES = ("generator", "api", "processor", "agent", "pg")


# -- the agent (a subprocess: --role agent) -------------------------------------------------------------------

AGENT_ANSWER = b'{"reply":"ok"}'
TELEGRAM_ANSWER = b'{"ok":true,"result":{"message_id":1,"date":0,"chat":{"id":1,"type":"private"}}}'


async def agent_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answer the agent callback with a reply, and anything else (Telegram's sendMessage) with success."""
    if scope["type"] != "http":
        return
    more = True
    while more:
        more = bool((await receive()).get("more_body", False))
    body = AGENT_ANSWER if scope["path"] == "/agent" else TELEGRAM_ANSWER
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def run_agent(port: int) -> None:
    import uvicorn

    uvicorn.run(agent_app, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="off")


# -- the processor (a subprocess: --role processor) -----------------------------------------------------------


def run_processor() -> None:
    """The inbound Processor alone, with Herald's defaults, until SIGTERM (settings from HERALD_* variables)."""
    from herald.core.config import load_settings
    from herald.producers.conversations.processor import Processor
    from herald.runtime import Runtime

    async def run() -> None:
        rt = Runtime(load_settings())
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await Processor(rt).run(stop)
        finally:
            await rt.close()

    asyncio.run(run())


# -- processes ------------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process, from /proc (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def postgres_seconds(db_name: str) -> float:
    """CPU time of the PostgreSQL backends serving ``db_name`` (their command line names the database)."""
    total = 0.0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if cmdline.startswith(b"postgres:") and f" {db_name} ".encode() in cmdline:
            total += cpu_seconds(int(proc.name))
    return total


def machine_busy_seconds() -> float:
    """CPU seconds spent not idle by the whole machine, summed over CPUs."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return (sum(values[:8]) - idle) / os.sysconf("SC_CLK_TCK")


@dataclass
class Services:
    """The agent fake, the API and the processors (or delivering workers) of one run."""

    env: dict[str, str]
    deliver: bool
    processors: int
    workdir: Path
    db_name: str
    running: Processes = field(init=False)

    def __post_init__(self) -> None:
        self.running = Processes(self.workdir, self.env)

    def start(self, api_port: int, agent_port: int) -> None:
        me = [sys.executable, str(Path(__file__).resolve())]
        herald = [sys.executable, "-c", "from herald.cli import main; main()"]
        self.running.start("agent", [*me, "--role", "agent", "--port", str(agent_port)])
        self.running.start("api", [*herald, "api", "--port", str(api_port)])
        for index in range(self.processors):
            argv = [*herald, "worker"] if self.deliver else [*me, "--role", "processor"]
            self.running.start(f"processor{index}" if index else "processor", argv)

    def check_alive(self) -> None:
        self.running.check_alive()

    def cpu(self) -> dict[str, float]:
        usage = dict.fromkeys(CPU_ROLES, 0.0)
        usage["generator"] = cpu_seconds(os.getpid())
        for name, proc in self.running.procs.items():
            usage["processor" if name.startswith("processor") else name] += cpu_seconds(proc.pid)
        usage["pg"] = postgres_seconds(self.db_name)
        usage["machine"] = machine_busy_seconds()
        return usage

    def stop(self) -> None:
        self.running.close()


# -- database -------------------------------------------------------------------------------------------------


async def setup_herald(settings_kwargs: dict[str, Any], agent_port: int, deliver: bool) -> str:
    """Migrate; create a tenant, the agent (callback on loopback), a Telegram channel and a default rule."""
    from herald.admin.channels import create_channel
    from herald.admin.tenants import create_agent, create_api_key, get_or_create_tenant, principal_for_key
    from herald.core.config import load_settings
    from herald.core.maturity import MaturityLevel
    from herald.producers import callbacks
    from herald.producers.conversations.service import create_rule
    from herald.runtime import Runtime
    from herald.storage.migrate import upgrade

    rt = Runtime(load_settings(**settings_kwargs))
    try:
        await upgrade(rt.engine)
        async with rt.sessions.begin() as session:
            tenant = await get_or_create_tenant(session, "bench-inbound")
            key = await create_api_key(session, tenant, name="bench")
        async with rt.sessions.begin() as session:
            principal = await principal_for_key(session, key)
            assert principal is not None
            _, sealed = callbacks.new_secret(rt)
            await create_agent(
                session,
                principal,
                agent_id=AGENT_ID,
                name=AGENT_ID,
                maturity_level=MaturityLevel.AUTONOMOUS,
                callback_url=f"http://127.0.0.1:{agent_port}/agent",
                callback_secret=sealed,
            )
            lifted = {"rate_per_second": 1e6, "recipient_rate_per_second": 1e6} if deliver else {}
            channel = await create_channel(
                rt,
                session,
                principal,
                platform="telegram",
                provider="telegram",
                name="bench-telegram",
                credentials=dict(CREDENTIALS),
                base_url=f"http://127.0.0.1:{agent_port}",
                is_default=True,
                **lifted,
            )
            await create_rule(rt, session, principal, {"agent_id": AGENT_ID})
            return str(channel.id)
    finally:
        await rt.close()


async def open_count(engine: AsyncEngine, prefix: str | None = None) -> int:
    where = "status IN ('pending', 'processing')"
    params: dict[str, Any] = {}
    if prefix is not None:
        where += " AND body LIKE :prefix"
        params["prefix"] = prefix + "%"
    async with engine.connect() as conn:
        return int(
            (
                await conn.execute(text(f"SELECT COUNT(*) FROM inbound_messages WHERE {where}"), params)
            ).scalar_one()
        )


async def wait_settled(
    engine: AsyncEngine, services: Services, prefix: str, within: float
) -> tuple[bool, float]:
    """Poll until no row of ``prefix`` is open; returns (settled, seconds waited)."""
    started = time.monotonic()
    while True:
        services.check_alive()
        if await open_count(engine, prefix) == 0:
            return True, time.monotonic() - started
        if time.monotonic() - started > within:
            return False, time.monotonic() - started
        await asyncio.sleep(0.1)


async def step_rows(engine: AsyncEngine, prefix: str) -> dict[str, Any]:
    query = text(
        "SELECT COUNT(*), "
        "COUNT(*) FILTER (WHERE status = 'replied' AND reply_message_id IS NOT NULL), "
        "COUNT(*) FILTER (WHERE status IN ('pending', 'processing')), "
        "percentile_disc(0.5) WITHIN GROUP (ORDER BY EXTRACT(EPOCH FROM processed_at - received_at)) "
        "  FILTER (WHERE status = 'replied'), "
        "percentile_disc(0.99) WITHIN GROUP (ORDER BY EXTRACT(EPOCH FROM processed_at - received_at)) "
        "  FILTER (WHERE status = 'replied'), "
        "MAX(EXTRACT(EPOCH FROM processed_at - received_at)) FILTER (WHERE status = 'replied') "
        "FROM inbound_messages WHERE body LIKE :prefix"
    )
    async with engine.connect() as conn:
        total, replied, still_open, p50, p99, worst = (
            await conn.execute(query, {"prefix": prefix + "%"})
        ).one()
        statuses: dict[Any, Any] = dict(
            (
                await conn.execute(
                    text(
                        "SELECT status, COUNT(*) FROM inbound_messages WHERE body LIKE :prefix GROUP BY status"
                    ),
                    {"prefix": prefix + "%"},
                )
            ).all()
        )
        replies = (
            await conn.execute(
                text(
                    "SELECT COUNT(*) FROM messages m JOIN inbound_messages i ON i.reply_message_id = m.id "
                    "WHERE i.body LIKE :prefix"
                ),
                {"prefix": prefix + "%"},
            )
        ).scalar_one()

    def ms(value: Any) -> float | None:
        return None if value is None else round(float(value) * 1000, 1)

    return {
        "stored": int(total),
        "replied": int(replied),
        "reply_rows": int(replies),
        "open": int(still_open),
        "by_status": {str(k): int(v) for k, v in statuses.items()},
        "e2e_p50_ms": ms(p50),
        "e2e_p99_ms": ms(p99),
        "e2e_max_ms": ms(worst),
    }


async def settled_between(engine: AsyncEngine, start: datetime, end: datetime) -> int:
    async with engine.connect() as conn:
        return int(
            (
                await conn.execute(
                    text(
                        "SELECT COUNT(*) FROM inbound_messages WHERE processed_at >= :a AND processed_at < :b"
                    ),
                    {"a": start, "b": end},
                )
            ).scalar_one()
        )


# -- load -----------------------------------------------------------------------------------------------------


@dataclass
class Load:
    url: str
    chats: int
    next_message_id: int = 1

    def build(self, prefix: str, count: int) -> list[tuple[dict[str, str], bytes]]:
        """Signed Telegram updates, round-robin over the chats, each with a message id never used before."""
        built = []
        for i in range(count):
            chat = str(FIRST_CHAT + i % self.chats)
            request = message(
                "telegram", CREDENTIALS, text=f"{prefix}{i}", sender_id=chat, message_id=self.next_message_id
            )
            self.next_message_id += 1
            built.append((request.headers, request.body))
        return built


class RawPool:
    """Up to ``size`` persistent HTTP/1.1 connections; a request waits for a free one (that wait is latency)."""

    def __init__(self, url: str, size: int) -> None:
        parts = urlsplit(url)
        self.host, self.port, self.path = parts.hostname or "127.0.0.1", parts.port or 80, parts.path
        self.size = size
        self.opened = 0
        self.free: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()

    async def _connection(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.free.empty() and self.opened < self.size:
            self.opened += 1
            try:
                return await asyncio.open_connection(self.host, self.port)
            except OSError:
                self.opened -= 1
                raise
        return await self.free.get()

    async def post(self, headers: dict[str, str], body: bytes) -> int:
        reader, writer = await self._connection()
        try:
            head = f"POST {self.path} HTTP/1.1\r\nhost: {self.host}:{self.port}\r\ncontent-length: {len(body)}\r\n"
            head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
            writer.write(head.encode() + body)
            status_line = await reader.readline()
            length, closing = 0, False
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                if name.lower() == "content-length":
                    length = int(value)
                elif name.lower() == "connection" and "close" in value.lower():
                    closing = True
            await reader.readexactly(length)
            status = int(status_line.split()[1])
        except (OSError, IndexError, ValueError, asyncio.IncompleteReadError) as exc:
            writer.close()
            self.opened -= 1
            raise ConnectionError(type(exc).__name__) from exc
        except asyncio.CancelledError:
            writer.close()
            self.opened -= 1
            raise
        if closing:
            writer.close()
            self.opened -= 1
        else:
            self.free.put_nowait((reader, writer))
        return status

    async def close(self) -> None:
        while not self.free.empty():
            _, writer = self.free.get_nowait()
            writer.close()


async def send_at_rate(
    client: RawPool, url: str, requests: list[tuple[dict[str, str], bytes]], rate: float
) -> dict[str, Any]:
    """Open loop: request i starts at start + i/rate whatever the previous ones are doing."""
    acks: list[float] = []
    late: list[float] = []
    errors: dict[str, int] = {}
    last_done = [0.0]

    async def post(headers: dict[str, str], body: bytes) -> None:
        started = time.perf_counter()
        try:
            status = await client.post(headers, body)
        except ConnectionError as exc:
            errors[str(exc)] = errors.get(str(exc), 0) + 1
            return
        done = time.perf_counter()
        last_done[0] = max(last_done[0], done)
        if status == 200:
            acks.append(done - started)
        else:
            errors[f"HTTP {status}"] = errors.get(f"HTTP {status}", 0) + 1

    tasks = []
    start = time.perf_counter() + 0.05
    for i, (headers, body) in enumerate(requests):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        late.append(max(0.0, time.perf_counter() - due))
        tasks.append(asyncio.create_task(post(headers, body)))
    sent_done = time.perf_counter()
    # A server far behind would keep the step open for ever: past a grace period, what is left counts as lost.
    _, abandoned = await asyncio.wait(
        tasks, timeout=max(0.0, start + len(requests) / rate + 10 - time.perf_counter())
    )
    for task in abandoned:
        task.cancel()
    if abandoned:
        await asyncio.gather(*abandoned, return_exceptions=True)
        errors["abandoned after 10 s"] = len(abandoned)
    span = max(last_done[0], sent_done) - start
    return {
        "offered_rate": rate,
        "sent": len(requests),
        "acked": len(acks),
        "errors": errors,
        "send_seconds": round(sent_done - start, 3),
        "acked_rate": round(len(acks) / span, 1) if span > 0 else None,
        "ack_p50_ms": round(percentile(acks, 50) * 1000, 1) if acks else None,
        "ack_p99_ms": round(percentile(acks, 99) * 1000, 1) if acks else None,
        "ack_max_ms": round(max(acks) * 1000, 1) if acks else None,
        "generator_late_p99_ms": round(percentile(late, 99) * 1000, 1) if late else None,
    }


# -- the run --------------------------------------------------------------------------------------------------


def cpu_share(before: dict[str, float], after: dict[str, float], seconds: float) -> dict[str, int]:
    """CPU use per role over ``seconds``, in percent of one CPU; "pg" is this database's PostgreSQL backends,
    "other" the rest of the machine (other users' processes included)."""
    used = {k: max(0.0, after[k] - before[k]) for k in after}
    ours = sum(used[k] for k in CPU_ROLES)
    shares = {k: round(100 * used[k] / seconds) for k in CPU_ROLES}
    shares["other"] = round(100 * max(0.0, used["machine"] - ours) / seconds)
    shares["machine"] = round(100 * used["machine"] / seconds)
    return shares


def verdict(step: dict[str, Any]) -> tuple[bool, bool]:
    rate = step["offered_rate"]
    ack_ok = (
        not step["errors"]
        and step["ack_p99_ms"] is not None
        and step["ack_p99_ms"] < ACK_P99_LIMIT_MS
        and (step["acked_rate"] or 0) >= 0.95 * rate
    )
    rows = step["rows"]
    keeps_up = (
        step["settled"]
        and rows["replied"] == step["sent"]
        and step["backlog_at_end"] <= max(50, 1.5 * rate)
        and step["processed_rate"] >= 0.9 * rate
    )
    return ack_ok, keeps_up


async def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    db_name = f"herald_bench_inbound_{os.getpid()}"
    await pg_admin(args.postgres_url, f"DROP DATABASE IF EXISTS {db_name} WITH (FORCE)")
    await pg_admin(args.postgres_url, f"CREATE DATABASE {db_name}")
    database_url = with_database(args.postgres_url, db_name)
    settings_kwargs = {
        "database_url": database_url,
        "env": "development",
        "secret_key": SECRET,
        "data_dir": str(workdir / "var"),
        "log_level": "WARNING",
    }
    env = {**os.environ, **{f"HERALD_{k.upper()}": str(v) for k, v in settings_kwargs.items()}}
    services = Services(
        env=env, deliver=args.deliver, processors=args.processors, workdir=workdir, db_name=db_name
    )
    observer = create_async_engine(
        database_url.replace("postgresql://", "postgresql+asyncpg://", 1), pool_size=2, max_overflow=0
    )
    result: dict[str, Any] = {
        "database": "postgresql",
        "processors": args.processors,
        "deliver": args.deliver,
    }
    result["loadavg_before"] = [round(x, 2) for x in os.getloadavg()]
    steps: list[dict[str, Any]] = []
    result["steps"] = steps
    try:
        api_port, agent_port = free_port(), free_port()
        channel_id = await setup_herald(settings_kwargs, agent_port, args.deliver)
        services.start(api_port, agent_port)
        await wait_http(services, f"http://127.0.0.1:{agent_port}/health", START_TIMEOUT)
        await wait_http(services, f"http://127.0.0.1:{api_port}/health", START_TIMEOUT)
        url = f"http://127.0.0.1:{api_port}/api/v1/interfaces/{channel_id}/webhook"
        load = Load(url, args.chats)
        client = RawPool(url, args.connections)
        try:
            warm_rate = min(250.0, max(args.rates))
            print(f"warm-up: one message to each of {args.chats} chats at {warm_rate:g}/s ...", flush=True)
            await send_at_rate(client, url, load.build("warm:", args.chats), warm_rate)
            settled, _ = await wait_settled(observer, services, "warm:", args.drain_timeout * 2)
            if not settled:
                raise BenchError("the warm-up was not routed in time: is the processor running?")
            for index, rate in enumerate(args.rates):
                prefix = f"s{index}:"
                count = max(1, round(rate * args.seconds))
                requests = load.build(prefix, count)
                print(
                    f"step {index + 1}/{len(args.rates)}: {rate:g} msg/s for {args.seconds:g} s ...",
                    flush=True,
                )
                cpu_before, wall_before = services.cpu(), time.monotonic()
                start_utc = datetime.now(UTC)
                step = await send_at_rate(client, url, requests, rate)
                end_utc = datetime.now(UTC)
                step["cpu_percent"] = cpu_share(cpu_before, services.cpu(), time.monotonic() - wall_before)
                step["backlog_at_end"] = await open_count(observer)
                window = (end_utc - start_utc).total_seconds()
                step["processed_rate"] = round(
                    await settled_between(observer, start_utc, end_utc) / window, 1
                )
                step["settled"], waited = await wait_settled(observer, services, prefix, args.drain_timeout)
                step["drain_seconds"] = round(waited, 2)
                step["rows"] = await step_rows(observer, prefix)
                step["ack_ok"], step["keeps_up"] = verdict(step)
                steps.append(step)
                print(
                    f"  acked {step['acked_rate']}/s, ack p99 {step['ack_p99_ms']} ms, processed "
                    f"{step['processed_rate']}/s, e2e p99 {step['rows']['e2e_p99_ms']} ms, backlog "
                    f"{step['backlog_at_end']}",
                    flush=True,
                )
                if not step["settled"]:
                    result["stopped_early"] = (
                        f"step {rate:g}/s left {step['rows']['open']} messages open after "
                        f"{args.drain_timeout:g} s; higher steps skipped"
                    )
                    break
        finally:
            await client.close()
    finally:
        services.stop()
        await observer.dispose()
        await pg_admin(args.postgres_url, f"DROP DATABASE IF EXISTS {db_name} WITH (FORCE)")
    result["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    passing = [s["offered_rate"] for s in steps if s["ack_ok"] and s["keeps_up"]]
    result["headline_rate"] = max(passing) if passing else None
    return result


# -- output ---------------------------------------------------------------------------------------------------


def _fmt(value: Any, spec: str = "{:g}") -> str:
    return "-" if value is None else spec.format(value)


def print_table(result: dict[str, Any], args: argparse.Namespace) -> None:
    headers = [
        "offered/s",
        "acked/s",
        "ack p50/p99 ms",
        "processed/s",
        "e2e p50/p99 ms",
        "backlog",
        "drain s",
        "replied",
        "CPU% gen/api/proc/agent/pg/other",
        "ack<200",
        "keeps up",
    ]
    rows = []
    for s in result["steps"]:
        cpu = s["cpu_percent"]
        r = s["rows"]
        rows.append(
            [
                _fmt(s["offered_rate"]),
                _fmt(s["acked_rate"]),
                f"{_fmt(s['ack_p50_ms'])} / {_fmt(s['ack_p99_ms'])}",
                _fmt(s["processed_rate"]),
                f"{_fmt(r['e2e_p50_ms'])} / {_fmt(r['e2e_p99_ms'])}",
                str(s["backlog_at_end"]),
                _fmt(s["drain_seconds"]),
                f"{r['replied']}/{s['sent']}",
                "/".join(str(cpu[k]) for k in (*CPU_ROLES, "other")),
                "yes" if s["ack_ok"] else "NO",
                "yes" if s["keeps_up"] else "NO",
            ]
        )
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h) for i, h in enumerate(headers)]
    line = "  ".join(h.rjust(w) for h, w in zip(headers, widths, strict=True))
    print()
    print(line)
    print("-" * len(line))
    for row in rows:
        print("  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)))
    print()
    mode = "herald worker (Processor + outbound Worker)" if args.deliver else "Processor alone"
    print(
        f"Herald: herald api (1 process) + {args.processors} x {mode}; PostgreSQL; {args.chats} chats; "
        f"{args.seconds:g} s per step; {args.connections} client connections."
    )
    print(
        f"The load generator, the agent, PostgreSQL and Herald all share this machine's {os.cpu_count()} CPUs "
        "(CPU% is of one CPU; pg = this bench's PostgreSQL backends; other = everything else on the machine)."
    )
    print(
        "ack = POST to provider-visible answer; e2e = stored (received_at) -> reply enqueued (processed_at)."
    )
    late = [s["generator_late_p99_ms"] for s in result["steps"] if s.get("generator_late_p99_ms") is not None]
    if late:
        print(f"load generator start lateness p99: {', '.join(f'{v:g}' for v in late)} ms per step.")
    if result.get("stopped_early"):
        print(f"stopped early: {result['stopped_early']}")
    for s in result["steps"]:
        if s["errors"]:
            print(f"errors at {s['offered_rate']:g}/s: {s['errors']}")
        other = {k: v for k, v in s["rows"]["by_status"].items() if k != "replied"}
        if other:
            print(f"not replied at {s['offered_rate']:g}/s: {other}")
    headline = result.get("headline_rate")
    if headline is None:
        print(f"HEADLINE: no step kept ack p99 < {ACK_P99_LIMIT_MS:g} ms with processing keeping up.")
    else:
        print(
            f"HEADLINE: {headline:g} messages/s sustained with ack p99 < {ACK_P99_LIMIT_MS:g} ms and routing "
            f"keeping up (highest passing step; seed 001 asks for 1,000/s)."
        )


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--rates", default="100,250,500,1000", help="comma-separated offered rates (msg/s)")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each step")
    parser.add_argument(
        "--chats", type=int, default=500, help="distinct Telegram chats the load is spread over"
    )
    parser.add_argument("--connections", type=int, default=200, help="client connection pool size")
    parser.add_argument("--processors", type=int, default=1, help="processor processes")
    parser.add_argument(
        "--deliver",
        action="store_true",
        help="run `herald worker` (also sends the replies to a loopback fake)",
    )
    parser.add_argument("--drain-timeout", type=float, default=20.0, help="seconds a step may take to settle")
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--role", choices=["agent", "processor"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.role is None:
        try:
            args.rates = sorted(float(r) for r in str(args.rates).split(",") if r.strip())
        except ValueError:
            parser.error("--rates must be numbers separated by commas")
        if (
            not args.rates
            or min(args.rates) <= 0
            or args.seconds <= 0
            or args.chats < 1
            or args.processors < 1
        ):
            parser.error("--rates, --seconds, --chats and --processors must be positive")
        check_loopback(args.postgres_url)
    return args


def _interrupt(*_: Any) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.role == "agent":
        run_agent(args.port)
        return 0
    if args.role == "processor":
        run_processor()
        return 0
    prepare_results()
    started = time.monotonic()
    signal.signal(
        signal.SIGTERM, _interrupt
    )  # a `timeout` or kill still stops the subprocesses, drops the db
    with tempfile.TemporaryDirectory(prefix="herald-bench-inbound-") as tmp:
        try:
            result = asyncio.run(run(args, Path(tmp)))
        except Exception as exc:
            print(f"FAILED: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 1
    result["environment"] = describe_environment()
    result["args"] = {k: v for k, v in vars(args).items() if k not in ("postgres_url", "role", "port")}
    result["wall_seconds"] = round(time.monotonic() - started, 1)
    path = RESULTS_DIR / "inbound.json"
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print_table(result, args)
    print(f"results written to {path} ({result['wall_seconds']:g} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
