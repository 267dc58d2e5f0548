"""Herald channel benchmark: Slack and Telegram adapters against their fakes on loopback, through the real pipeline.

Each backend (SQLite by default, PostgreSQL with ``--backend postgres``) gets a fresh, migrated database, a
tenant and an AUTONOMOUS agent. The fake providers (``herald.fakes``) run in a subprocess on 127.0.0.1, so
their CPU stays off the measured process; that subprocess wraps the fake state so every provider request is
stamped with ``time.monotonic()`` on arrival (the fake's own records carry no time) and serves the stamps at
``GET /_bench/log``. Messages are enqueued with ``herald.pipeline.accept.accept`` and drained by one
in-process ``Worker(rt).run(stop)``; the bench polls the database until none is queued or sending.

Phases (each with its own channels, so its own rate buckets):

1. **lifted**: a Slack and a Telegram channel created with ``rate_per_second`` and
   ``recipient_rate_per_second`` overridden to ``--lifted-rate`` (default 1e6); ``--n`` messages (default
   10,000) split evenly, every message to its own recipient. Reports delivered/s per provider and overall.
2. **published**: channels with the adapters' published limits (no override), run together in one drain:

   - telegram: ``--telegram-n`` messages (default 600) to distinct chats, so the per-bot limit (30/s, burst 3)
     paces them: about 20 s;
   - slack-few: ``--slack-few-n`` messages (default 60) to ``--slack-few-channels`` channels (default 3), so
     the per-channel limit (1/s, burst 3) paces them;
   - slack-spread: ``--slack-spread-n`` messages (default 1,000) to distinct channels: Slack publishes no
     workspace-wide limit, so these are effectively unlimited.

   The limit check reads the fake's arrival stamps: for every key (per bot for Telegram, per chat or channel
   for both) and every pair of requests i < j, ``j - i + 1 <= burst + rate * (t_j - t_i) + rate * tolerance``
   (``--tolerance-ms``, default 5 ms, for clock granularity). It prints PASS/FAIL, the largest excess over the
   bound in messages, and the most requests seen in any 1-second window against what the limit allows there
   (``burst + rate``). The verdict (and the exit status) is this provider-side check.

   The same check is also run on Herald's own ledger: the bench wraps ``herald.pipeline.routing.ratelimit.acquire`` in
   its own process (nothing under src/ changes) to record every grant at its gate time, per bucket, in the
   order the buckets were written, and counts gates that wrote a bucket with a clock older than the previous
   writer's (which credits the same interval twice). Arrival excess beyond the ledger's is dispatch jitter.

The worker polls every ``--poll-interval`` seconds (default 0.05, as the tests and bench/throughput.py; Herald's
own default is 1.0, which matters here: a rate-limited message is deferred by milliseconds but, with nothing to
wake the worker, waits for the next poll).

Correctness: every message must end ``sent``, the fake must see exactly one request per message, and every
attempt beyond one per message must be a recorded failure (a retry). Results go to ``bench/results/channels-<backend>.json``. Only 127.0.0.1 is touched; PostgreSQL gets
its own database ``herald_bench_channels_<pid>``, dropped at the end.

    .venv/bin/python bench/channels.py
    .venv/bin/python bench/channels.py --backend postgres
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import itertools
import json
import os
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
from _common import (
    LOOPBACK,
    RESULTS_DIR,
    SECRET,
    BenchError,
    check_loopback,
    describe_environment,
    pg_admin,
    prepare_results,
    with_database,
)
from fastapi import Request
from sqlalchemy import bindparam, text
from sqlalchemy.ext.asyncio import AsyncSession

from herald.admin.channels import create_channel
from herald.admin.tenants import create_agent, create_api_key, get_or_create_tenant, principal_for_key
from herald.core.config import load_settings
from herald.core.intent import Intent
from herald.core.maturity import MaturityLevel
from herald.core.principal import Principal
from herald.fakes import create_fake_app
from herald.pipeline.accept import accept
from herald.pipeline.routing import ratelimit
from herald.pipeline.worker import Worker
from herald.providers.fakebase import FakeState, Recorded, bearer
from herald.providers.slack.send import SlackChannel
from herald.providers.telegram.send import TelegramChannel
from herald.runtime import Runtime
from herald.storage.migrate import upgrade
from herald.storage.types import UTCDateTime, utcnow

AGENT = "bench-channels"
SLACK_CREDENTIALS = {"bot_token": "xoxb-bench-token"}
TELEGRAM_CREDENTIALS = {"bot_token": "123456:bench-token"}
POLL_SECONDS = 0.1
FAKE_START_TIMEOUT = 30.0


# -- the fake providers, in their own process ---------------------------------------------------------------


@dataclass
class TimedFakeState(FakeState):
    """The fakes' state, plus (arrival time, provider, bot, recipient) for every provider request."""

    log: list[tuple[float, str, str, str]] = field(default_factory=list)

    async def record(self, provider: str, request: Request) -> Recorded:
        arrived = time.monotonic()
        recorded = await super().record(provider, request)
        body = recorded.json if isinstance(recorded.json, dict) else {}
        if provider == "telegram":
            bot = request.url.path.split("/")[1].removeprefix("bot")
            recipient = str(body.get("chat_id"))
        else:
            bot = bearer(request) or ""
            recipient = str(body.get("channel"))
        self.log.append((arrived, provider, bot, recipient))
        return recorded

    def reset(self) -> None:
        super().reset()
        self.log.clear()


def serve_fake() -> None:
    """Entry point of the fake-provider subprocess: serve on a free loopback port, print it, run until killed."""
    import uvicorn

    state = TimedFakeState()
    app = create_fake_app(state)

    @app.get("/_bench/log")
    async def bench_log() -> dict[str, Any]:
        return {"entries": state.log}

    @app.post("/_bench/reset")
    async def bench_reset() -> dict[str, bool]:
        state.reset()
        return {"reset": True}

    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)

    async def run() -> None:
        task = asyncio.create_task(server.serve())
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        print(f"http://127.0.0.1:{port}", flush=True)
        await task

    asyncio.run(run())


class FakeProcess:
    """The fake-provider subprocess and a client for its control endpoints."""

    def __init__(self) -> None:
        self.proc: asyncio.subprocess.Process | None = None
        self.origin = ""
        self.http = httpx.AsyncClient(timeout=30.0)

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, str(Path(__file__).resolve()), "--serve-fake",
            stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert self.proc.stdout is not None
        try:
            line = await asyncio.wait_for(self.proc.stdout.readline(), FAKE_START_TIMEOUT)
        except TimeoutError as exc:
            raise BenchError("the fake providers did not start") from exc
        self.origin = line.decode().strip()
        if urlsplit(self.origin).hostname not in LOOPBACK:
            raise BenchError(f"the fake providers did not report a loopback origin: {self.origin!r}")

    def check_alive(self) -> None:
        if self.proc is None or self.proc.returncode is not None:
            raise BenchError("the fake-provider process died")

    async def reset(self) -> None:
        (await self.http.post(f"{self.origin}/_bench/reset")).raise_for_status()

    async def log(self) -> list[tuple[float, str, str, str]]:
        response = await self.http.get(f"{self.origin}/_bench/log")
        response.raise_for_status()
        return [(float(t), p, b, r) for t, p, b, r in response.json()["entries"]]

    async def stop(self) -> None:
        await self.http.aclose()
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


# -- rate-limit check ---------------------------------------------------------------------------------------


def max_excess(stamps: Sequence[float], rate: float, burst: float) -> tuple[float, tuple[int, int]]:
    """max over i <= j of (j - i + 1) - burst - rate * (t_j - t_i), and the pair reaching it.

    Equal to checking every pair, in one pass: for each j keep the best ``rate * t_i - i`` seen so far.
    """
    best, pair = float("-inf"), (0, 0)
    lead, lead_at = float("-inf"), 0
    for j, t in enumerate(stamps):
        if rate * t - j > lead:
            lead, lead_at = rate * t - j, j
        excess = (j + 1) - burst - rate * t + lead
        if excess > best:
            best, pair = excess, (lead_at, j)
    return best, pair


def max_in_window(stamps: Sequence[float], window: float = 1.0) -> int:
    """The most requests whose arrival falls in any half-open window ``[t, t + window)``."""
    most = 0
    for i, t in enumerate(stamps):
        most = max(most, bisect.bisect_left(stamps, t + window, lo=i) - i)
    return most


@dataclass(frozen=True)
class LimitSpec:
    """One published limit to verify: requests grouped by ``key``, at most ``burst + rate * dt``."""

    label: str
    rate: float
    burst: float
    key: Callable[[str, str], str]  # (bot, recipient) -> group, for the fake's log
    bucket: str  # "ch" (the channel's bucket) or "to" (one per recipient), for the gate trace


def check_groups(
    groups: dict[str, list[float]], rate: float, burst: float, tolerance: float
) -> dict[str, Any]:
    """The pairwise check over every group of sorted stamps, and the busiest 1-second window."""
    worst, worst_key, busiest, span = float("-inf"), "", 0, 0.0
    for key, stamps in groups.items():
        excess, (i, j) = max_excess(stamps, rate, burst)
        if excess > worst:
            worst, worst_key, span = excess, key, stamps[j] - stamps[i]
        busiest = max(busiest, max_in_window(stamps))
    allowed_slack = rate * tolerance
    return {
        "rate_per_second": rate,
        "burst": burst,
        "groups": len(groups),
        "max_excess_messages": round(worst, 3),
        "max_excess_ms_at_rate": round(worst / rate * 1000, 1),
        "worst_group": worst_key,
        "worst_window_seconds": round(span, 4),
        "tolerance_messages": round(allowed_slack, 4),
        "max_in_any_1s_window": busiest,
        "allowed_in_1s_window": burst + rate,
        "pass": worst <= allowed_slack + 1e-6,
    }


def check_arrivals(
    entries: list[tuple[float, str, str, str]], spec: LimitSpec, tolerance: float
) -> dict[str, Any]:
    """The limit as the provider sees it: the fake's arrival stamps, grouped per bot or per recipient."""
    groups: dict[str, list[float]] = defaultdict(list)
    for t, _, bot, recipient in entries:
        groups[spec.key(bot, recipient)].append(t)
    for stamps in groups.values():
        stamps.sort()
    return {"limit": spec.label, **check_groups(groups, spec.rate, spec.burst, tolerance)}


class GateTrace:
    """Records what Herald's token buckets granted, by wrapping ``herald.pipeline.routing.ratelimit.acquire`` in this
    process (the worker looks it up on the module at each call; nothing under src/ changes).

    Per bucket key, in the order the buckets were written (acquire runs under SQLite's write lock, and under
    the rows' FOR UPDATE locks on PostgreSQL), each call's ``now`` and how many tokens it granted. That gives
    the limit as Herald's own ledger sees it (every grant stamped with its gate time) and how often a gate
    wrote a bucket with a ``now`` older than the previous writer's, which credits the same time twice.
    """

    def __init__(self) -> None:
        self.calls: dict[str, list[tuple[float, int]]] = defaultdict(list)
        self._original: Any = None

    def install(self) -> None:
        original = self._original = ratelimit.acquire

        async def traced(
            session: AsyncSession, dialect: str, wants: list[list[ratelimit.Limit]], now: datetime
        ) -> list[float]:
            waits: list[float] = await original(session, dialect, wants, now)
            stamp = now.timestamp()
            granted: Counter[str] = Counter()
            for request, wait in zip(wants, waits, strict=True):
                if wait == 0:
                    granted.update(limit.key for limit in request)
            for key in {limit.key for request in wants for limit in request}:
                self.calls[key].append((stamp, granted[key]))
            return waits

        ratelimit.acquire = traced

    def uninstall(self) -> None:
        if self._original is not None:
            ratelimit.acquire = self._original
            self._original = None

    def reset(self) -> None:
        self.calls.clear()

    def check(self, channel_id: str, spec: LimitSpec) -> dict[str, Any]:
        exact = f"ch:{channel_id}"
        prefix = f"to:{channel_id}:"
        groups: dict[str, list[float]] = {}
        backwards = 0
        for key, calls in self.calls.items():
            if (spec.bucket == "ch" and key == exact) or (spec.bucket == "to" and key.startswith(prefix)):
                groups[key] = sorted(t for t, n in calls for _ in range(n))
                backwards += sum(1 for a, b in itertools.pairwise(calls) if b[0] < a[0])
        result = {"limit": spec.label, **check_groups(groups, spec.rate, spec.burst, 0.0)}
        result["gates_back_in_time"] = backwards
        return result


# -- database -----------------------------------------------------------------------------------------------


async def setup_tenant(rt: Runtime) -> Principal:
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
    return principal


_LEFT = text(
    "SELECT COUNT(*) FROM messages WHERE channel_id IN :ids AND status IN ('queued', 'sending')"
).bindparams(bindparam("ids", expanding=True))

_SUMMARY = (
    text(
        "SELECT channel_id, status, COUNT(*) AS n, MAX(sent_at) AS last_sent, MAX(attempts) AS most "
        "FROM messages WHERE channel_id IN :ids GROUP BY channel_id, status"
    )
    .bindparams(bindparam("ids", expanding=True))
    .columns(last_sent=UTCDateTime())
)

_ATTEMPTS = text(
    "SELECT channel_id, outcome, error, COUNT(*) FROM attempts WHERE channel_id IN :ids "
    "GROUP BY channel_id, outcome, error"
).bindparams(bindparam("ids", expanding=True))


# -- phases -------------------------------------------------------------------------------------------------


@dataclass
class Stream:
    """Messages of one kind in a phase: one channel, its recipients, and the limits to verify."""

    name: str
    provider: str
    credentials: dict[str, str]
    recipients: list[str]
    n: int
    override: float | None  # rate_per_second and recipient_rate_per_second, or None for the published ones
    limits: list[LimitSpec] = field(default_factory=list)
    channel_id: str = ""
    _recipients: frozenset[str] | None = field(default=None, repr=False)

    def owns(self, entry: tuple[float, str, str, str]) -> bool:
        """Is this fake log entry one of this stream's requests? (Streams of a phase share no recipient.)"""
        return entry[1] == self.provider and entry[3] in self.recipient_set

    @property
    def recipient_set(self) -> frozenset[str]:
        if self._recipients is None:
            self._recipients = frozenset(self.recipients)
        return self._recipients


def slack_ids(prefix: str, count: int) -> list[str]:
    return [f"{prefix}{i:05d}" for i in range(1, count + 1)]


def telegram_ids(base: int, count: int) -> list[str]:
    return [str(base + i) for i in range(1, count + 1)]


def published_limits(provider: str) -> list[LimitSpec]:
    cls = TelegramChannel if provider == "telegram" else SlackChannel
    burst = max(cls.burst, 1.0)  # as Worker._limits sizes the buckets
    specs = []
    if cls.rate_per_second:
        specs.append(
            LimitSpec(f"per bot {cls.rate_per_second:g}/s", cls.rate_per_second, burst, _per_bot, "ch")
        )
    if cls.recipient_rate_per_second:
        what = "chat" if provider == "telegram" else "channel"
        specs.append(
            LimitSpec(
                f"per {what} {cls.recipient_rate_per_second:g}/s",
                cls.recipient_rate_per_second,
                burst,
                _per_recipient,
                "to",
            )
        )
    return specs


def _per_bot(bot: str, _recipient: str) -> str:
    return bot


def _per_recipient(_bot: str, recipient: str) -> str:
    return recipient


def lifted_streams(args: argparse.Namespace) -> list[Stream]:
    slack_n = args.n // 2
    telegram_n = args.n - slack_n
    return [
        Stream("slack", "slack", SLACK_CREDENTIALS, slack_ids("C", slack_n), slack_n, args.lifted_rate),
        Stream(
            "telegram", "telegram", TELEGRAM_CREDENTIALS, telegram_ids(100_000_000, telegram_n),
            telegram_n, args.lifted_rate,
        ),
    ]  # fmt: skip


def published_streams(args: argparse.Namespace) -> list[Stream]:
    streams = []
    if args.telegram_n:
        streams.append(
            Stream(
                "telegram", "telegram", TELEGRAM_CREDENTIALS, telegram_ids(200_000_000, args.telegram_n),
                args.telegram_n, None, published_limits("telegram"),
            )
        )  # fmt: skip
    if args.slack_few_n:
        streams.append(
            Stream(
                "slack-few", "slack", SLACK_CREDENTIALS, slack_ids("CF", args.slack_few_channels),
                args.slack_few_n, None, published_limits("slack"),
            )
        )  # fmt: skip
    if args.slack_spread_n:
        streams.append(
            Stream(
                "slack-spread", "slack", SLACK_CREDENTIALS, slack_ids("CS", args.slack_spread_n),
                args.slack_spread_n, None, published_limits("slack"),
            )
        )  # fmt: skip
    return streams


async def create_channels(
    rt: Runtime, principal: Principal, phase: str, streams: list[Stream], origin: str
) -> None:
    async with rt.sessions.begin() as session:
        for stream in streams:
            row = await create_channel(
                rt, session, principal, platform=stream.provider, provider=stream.provider,
                name=f"bench {phase} {stream.name}", credentials=dict(stream.credentials), base_url=origin,
                is_default=False, rate_per_second=stream.override, recipient_rate_per_second=stream.override,
            )  # fmt: skip
            stream.channel_id = row.id


def interleave(streams: list[Stream]) -> list[tuple[Stream, int]]:
    """Every message of every stream, round-robin across streams (so batches mix providers)."""
    order: list[tuple[Stream, int]] = []
    for i in range(max(s.n for s in streams)):
        order.extend((s, i) for s in streams if i < s.n)
    return order


async def accept_all(
    rt: Runtime, principal: Principal, streams: list[Stream], batch: int, concurrency: int
) -> dict[str, Any]:
    """Accept every message through ``herald.pipeline.accept.accept``, ``batch`` per transaction."""
    order = interleave(streams)
    chunks = [order[i : i + batch] for i in range(0, len(order), batch)]
    queue: asyncio.Queue[list[tuple[Stream, int]]] = asyncio.Queue()
    for chunk in chunks:
        queue.put_nowait(chunk)

    async def producer() -> None:
        while not queue.empty():
            chunk = queue.get_nowait()
            async with rt.sessions.begin() as session:
                for stream, i in chunk:
                    intent = Intent(
                        agent_id=AGENT,
                        platform=stream.provider,
                        recipient_id=stream.recipients[i % len(stream.recipients)],
                        content=f"Bench {stream.name} message {i}: the nightly report is ready.",
                        channel_id=stream.channel_id,
                    )
                    await accept(rt, session, principal, intent)

    started = time.perf_counter()
    async with asyncio.TaskGroup() as group:
        for _ in range(concurrency):
            group.create_task(producer())
    elapsed = time.perf_counter() - started
    return {
        "messages": len(order),
        "seconds": round(elapsed, 3),
        "per_second": round(len(order) / elapsed, 1),
    }


async def drain(
    rt: Runtime, fake: FakeProcess, phase: str, channel_ids: list[str], within: float
) -> tuple[datetime, float, Worker]:
    """Run one worker until none of ``channel_ids``' messages is queued or sending; (start, seconds, worker)."""
    worker = Worker(rt, worker_id=f"bench-{phase}-{os.getpid()}")
    stop = asyncio.Event()
    started_wall, started = utcnow(), time.monotonic()
    task = asyncio.create_task(worker.run(stop))
    deadline = started + within
    left, last_left, last_progress = -1, -1, started
    try:
        while True:
            await asyncio.sleep(POLL_SECONDS)
            async with rt.sessions() as session:
                left = int((await session.execute(_LEFT, {"ids": channel_ids})).scalar_one())
            now = time.monotonic()
            if left == 0:
                break
            if task.done():
                task.result()
                raise BenchError("the worker stopped early")
            fake.check_alive()
            if left != last_left:
                last_left, last_progress = left, now
            if now >= deadline:
                raise BenchError(f"{phase}: drain timed out after {within:.0f} s with {left} messages left")
            if now - last_progress > 60:
                raise BenchError(f"{phase}: no progress for 60 s with {left} messages left")
    finally:
        stop.set()
        rt.waker.wake()
        await task
        await worker.stop_heartbeat()
    return started_wall, now - started, worker


async def summarise(
    rt: Runtime, streams: list[Stream], started_wall: datetime, entries: list[tuple[float, str, str, str]]
) -> dict[str, dict[str, Any]]:
    """Per stream: statuses, delivered/s (sent_at of the last message against the worker's start), checks."""
    ids = [s.channel_id for s in streams]
    by_channel: dict[str, dict[str, Any]] = defaultdict(lambda: {"by_status": {}})
    async with rt.sessions() as session:
        for channel_id, status, count, last, most in (await session.execute(_SUMMARY, {"ids": ids})).all():
            row = by_channel[channel_id]
            row["by_status"][status] = int(count)
            if status == "sent":
                row["last_sent"], row["max_attempts"] = last, int(most)
        attempts: dict[str, int] = defaultdict(int)
        failures: dict[str, dict[str, int]] = defaultdict(dict)
        for channel_id, outcome, error, count in (await session.execute(_ATTEMPTS, {"ids": ids})).all():
            attempts[channel_id] += int(count)
            if outcome != "sent":
                failures[channel_id][f"{outcome}: {error}"] = int(count)
    out: dict[str, dict[str, Any]] = {}
    for stream in streams:
        row = by_channel[stream.channel_id]
        sent = row["by_status"].get("sent", 0)
        mine = sorted(e for e in entries if stream.owns(e))
        seconds = (row["last_sent"] - started_wall).total_seconds() if sent else float("nan")
        fake_span = mine[-1][0] - mine[0][0] if len(mine) > 1 else 0.0
        result: dict[str, Any] = {
            "provider": stream.provider,
            "channel_id": stream.channel_id,
            "messages": stream.n,
            "recipients": len(stream.recipients),
            "limits": "lifted" if stream.override else "published",
            "by_status": row["by_status"],
            "attempt_rows": attempts[stream.channel_id],
            "max_attempts_used": row.get("max_attempts", 0),
            # Failed attempts (retried): transport errors that never reached the fake are legitimate retries.
            "failed_attempts": failures[stream.channel_id],
            "fake_requests": len(mine),
            "seconds_to_last_sent": round(seconds, 3),
            "delivered_per_second": round(sent / seconds, 1) if sent and seconds > 0 else None,
            "fake_first_to_last_seconds": round(fake_span, 3),
            "max_in_any_1s_window": max_in_window([e[0] for e in mine]),
        }
        result["correct"] = (
            sent == stream.n
            and result["fake_requests"] == stream.n
            and result["attempt_rows"] - sum(result["failed_attempts"].values()) == stream.n
        )
        out[stream.name] = result
    return out


async def run_phase(
    rt: Runtime,
    principal: Principal,
    fake: FakeProcess,
    phase: str,
    streams: list[Stream],
    args: argparse.Namespace,
    trace: GateTrace,
) -> dict[str, Any]:
    await fake.reset()
    trace.reset()
    await create_channels(rt, principal, phase, streams, fake.origin)
    total = sum(s.n for s in streams)
    print(
        f"[{phase}] accepting {total} messages ({', '.join(f'{s.name} {s.n}' for s in streams)}) ...",
        flush=True,
    )
    # SQLite has one writer, and its busy handler is not fair: several tasks committing back to back can starve
    # one past its 30 s busy timeout ("database is locked"), so SQLite accepts from one task.
    concurrency = args.accept_concurrency or (1 if rt.dialect == "sqlite" else 4)
    accepted = await accept_all(rt, principal, streams, args.accept_batch, concurrency)
    print(f"[{phase}]   {accepted['per_second']:.0f} accepted/s; draining with one worker ...", flush=True)
    started_wall, seconds, worker = await drain(
        rt, fake, phase, [s.channel_id for s in streams], args.phase_timeout
    )
    entries = await fake.log()
    result: dict[str, Any] = {
        "messages": total,
        "accept": accepted,
        "drain_seconds": round(seconds, 3),
        "claims": worker.claimed_total,
        "claims_per_message": round(worker.claimed_total / total, 2),
        "streams": await summarise(rt, streams, started_wall, entries),
    }
    last = max((r["seconds_to_last_sent"] for r in result["streams"].values()), default=float("nan"))
    sent = sum(r["by_status"].get("sent", 0) for r in result["streams"].values())
    result["seconds_to_last_sent"] = round(last, 3)
    result["delivered_per_second"] = round(sent / last, 1) if last > 0 else None
    checks: list[dict[str, Any]] = []
    for stream in streams:
        mine = [e for e in entries if stream.owns(e)]
        for spec in stream.limits:
            checks.append(
                {
                    "stream": stream.name,
                    "limit": spec.label,
                    "arrival": check_arrivals(mine, spec, args.tolerance_ms / 1000),
                    "gate": trace.check(stream.channel_id, spec),
                }
            )
    result["limit_checks"] = checks
    result["correct"] = all(r["correct"] for r in result["streams"].values())
    result["limits_pass"] = all(c["arrival"]["pass"] for c in checks)
    result["gate_limits_pass"] = all(c["gate"]["pass"] for c in checks)
    print(
        f"[{phase}]   {result['delivered_per_second']} delivered/s overall, drained in {seconds:.1f} s, "
        f"correct={result['correct']}"
        + (f", limits {'PASS' if result['limits_pass'] else 'FAIL'}" if checks else ""),
        flush=True,
    )
    return result


async def run_backend(backend: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    db_name = f"herald_bench_channels_{os.getpid()}"
    if backend == "sqlite":
        database_url = f"sqlite:///{workdir / 'herald.db'}"
    else:
        await pg_admin(args.postgres_url, f"DROP DATABASE IF EXISTS {db_name} WITH (FORCE)")
        await pg_admin(args.postgres_url, f"CREATE DATABASE {db_name}")
        database_url = with_database(args.postgres_url, db_name)
    settings = load_settings(
        database_url=database_url, env="development", secret_key=SECRET, data_dir=str(workdir / "var"),
        worker_batch_size=args.batch_size, poll_interval_seconds=args.poll_interval,
    )  # fmt: skip
    rt = Runtime(settings)
    fake = FakeProcess()
    trace = GateTrace()
    result: dict[str, Any] = {
        "backend": backend,
        "worker_batch_size": settings.worker_batch_size,
        "worker_concurrency": settings.worker_concurrency,
    }
    try:
        trace.install()
        await fake.start()
        print(f"[{backend}] fake providers at {fake.origin} (subprocess)", flush=True)
        await upgrade(rt.engine)
        principal = await setup_tenant(rt)
        if args.n:
            result["lifted"] = await run_phase(
                rt, principal, fake, "lifted", lifted_streams(args), args, trace
            )
        published = published_streams(args)
        if published:
            result["published"] = await run_phase(rt, principal, fake, "published", published, args, trace)
    finally:
        trace.uninstall()
        await fake.stop()
        await rt.close()
        if backend == "postgres":
            await pg_admin(args.postgres_url, f"DROP DATABASE IF EXISTS {db_name} WITH (FORCE)")
    return result


# -- output -------------------------------------------------------------------------------------------------


def _fmt(value: Any, spec: str = "{}") -> str:
    return "-" if value is None else spec.format(value)


def print_table(result: dict[str, Any]) -> None:
    headers = ["phase", "stream", "msgs", "recips", "limits", "sent", "to last sent (s)", "delivered/s",
               "max/1s window", "retries", "correct"]  # fmt: skip
    rows: list[list[str]] = []
    for phase in ("lifted", "published"):
        if phase not in result:
            continue
        data = result[phase]
        for name, s in data["streams"].items():
            rows.append([
                phase, name, str(s["messages"]), str(s["recipients"]), s["limits"],
                str(s["by_status"].get("sent", 0)), _fmt(s["seconds_to_last_sent"], "{:.2f}"),
                _fmt(s["delivered_per_second"], "{:,.1f}"), str(s["max_in_any_1s_window"]),
                str(sum(s["failed_attempts"].values())), "OK" if s["correct"] else "FAIL",
            ])  # fmt: skip
        rows.append([
            phase, "overall", str(data["messages"]), "", "", "", _fmt(data["seconds_to_last_sent"], "{:.2f}"),
            _fmt(data["delivered_per_second"], "{:,.1f}"), "", "", "OK" if data["correct"] else "FAIL",
        ])  # fmt: skip
    _table(headers, rows)
    checks = result.get("published", {}).get("limit_checks", [])
    if checks:
        print()
        print(
            "limit check, published run: at the provider (the fake's arrival stamps; tolerance rate x "
            f"{result['tolerance_ms']:g} ms) and in Herald's ledger (each grant at its gate time, no tolerance)"
        )
        headers = ["stream", "limit", "burst", "groups", "max/1s window", "allowed/1s", "arrival excess",
                   "verdict", "gate excess", "gate verdict", "gates back in time"]  # fmt: skip
        rows = []
        for c in checks:
            a, g = c["arrival"], c["gate"]
            rows.append([
                c["stream"], c["limit"], f"{a['burst']:g}", str(a["groups"]), str(a["max_in_any_1s_window"]),
                f"{a['allowed_in_1s_window']:g}",
                f"{a['max_excess_messages']:+.3f} ({a['max_excess_ms_at_rate']:+.0f} ms)",
                "PASS" if a["pass"] else "FAIL",
                f"{g['max_excess_messages']:+.3f} ({g['max_excess_ms_at_rate']:+.0f} ms)",
                "PASS" if g["pass"] else "FAIL", str(g["gates_back_in_time"]),
            ])  # fmt: skip
        _table(headers, rows)
        print(
            "  excess: the largest (requests in [t_i, t_j]) - (burst + rate x (t_j - t_i)) over all pairs i < j,"
        )
        print(
            "  in messages and as time at the limit's rate; <= 0 means the limit held (negative: headroom)."
        )
        print(
            "  Herald stamps a grant when it gates a batch; the request reaches the provider after that commit and"
        )
        print("  behind the batch's other sends, so arrival excess beyond the gate's is gate-to-wire jitter.")
    for phase in ("lifted", "published"):
        if phase in result:
            print(f"{phase}: worker claims per message {result[phase]['claims_per_message']} "
                  f"({result[phase]['claims']} claims for {result[phase]['messages']} messages)")  # fmt: skip
    for phase in ("lifted", "published"):
        for name, s in result.get(phase, {}).get("streams", {}).items():
            for error, count in s["failed_attempts"].items():
                print(f"{phase} {name}: {count} attempt(s) retried after '{error}'")
    if "error" in result:
        print(f"error: {result['error']}")


def _table(headers: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    print()
    print(line)
    print("-" * len(line))
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="sqlite")
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument(
        "--n", type=int, default=10_000, help="lifted run: messages, half Slack, half Telegram (0 skips)"
    )
    parser.add_argument("--lifted-rate", type=float, default=1e6, help="lifted run: rate overrides (/s)")
    parser.add_argument(
        "--telegram-n", type=int, default=600, help="published run: Telegram messages, distinct chats"
    )
    parser.add_argument(
        "--slack-few-n", type=int, default=60, help="published run: Slack messages to a few channels"
    )
    parser.add_argument(
        "--slack-few-channels", type=int, default=3, help="published run: how many channels those go to"
    )
    parser.add_argument(
        "--slack-spread-n", type=int, default=1000, help="published run: Slack messages, distinct channels"
    )
    parser.add_argument(
        "--tolerance-ms",
        type=float,
        default=5.0,
        help="limit check: allowed clock slack, as time at the limit's rate",
    )
    parser.add_argument("--batch-size", type=int, default=200, help="HERALD_WORKER_BATCH_SIZE")
    parser.add_argument(
        "--poll-interval",
        type=float,
        default=0.05,
        help="HERALD_POLL_INTERVAL_SECONDS for the worker (Herald's default is 1.0; the test suite and "
        "bench/throughput.py use 0.05)",
    )
    parser.add_argument("--accept-batch", type=int, default=100, help="messages accepted per transaction")
    parser.add_argument(
        "--accept-concurrency",
        type=int,
        default=0,
        help="concurrent accepting tasks (0: 1 on SQLite, 4 on PostgreSQL)",
    )
    parser.add_argument("--phase-timeout", type=float, default=300.0, help="seconds allowed for one drain")
    parser.add_argument(
        "--serve-fake",
        action="store_true",
        help="internal: run the timed fake providers and print their origin",
    )
    args = parser.parse_args(argv)
    counts = (args.n, args.telegram_n, args.slack_few_n, args.slack_spread_n)
    if min(counts) < 0 or args.slack_few_channels < 1 or args.lifted_rate <= 0 or args.tolerance_ms < 0:
        parser.error(
            "message counts must be >= 0, --slack-few-channels >= 1, --lifted-rate > 0, --tolerance-ms >= 0"
        )
    if args.accept_batch < 1 or args.accept_concurrency < 0 or args.batch_size < 1:
        parser.error("--accept-batch and --batch-size must be positive, --accept-concurrency >= 0")
    check_loopback(args.postgres_url)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve_fake:
        with contextlib.suppress(KeyboardInterrupt):
            serve_fake()
        return 0
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    prepare_results()
    environment = describe_environment()
    failed = False
    for backend in backends:
        with tempfile.TemporaryDirectory(prefix=f"herald-bench-channels-{backend}-") as tmp:
            try:
                result = asyncio.run(run_backend(backend, args, Path(tmp)))
            except (BenchError, OSError, asyncpg.PostgresError, TimeoutError, httpx.HTTPError) as exc:
                print(f"[{backend}] FAILED: {type(exc).__name__}: {exc}", file=sys.stderr)
                result = {"backend": backend, "error": f"{type(exc).__name__}: {exc}"}
                failed = True
        result["tolerance_ms"] = args.tolerance_ms
        result["environment"] = environment
        result["args"] = {k: v for k, v in vars(args).items() if k not in ("postgres_url", "serve_fake")}
        for phase in ("lifted", "published"):
            if phase in result and not (result[phase]["correct"] and result[phase]["limits_pass"]):
                failed = True
        path = RESULTS_DIR / f"channels-{backend}.json"
        path.write_text(json.dumps(result, indent=2, default=str) + "\n")
        print(f"\n[{backend}] results written to {path}")
        print_table(result)
    if failed:
        print("FAILED: see the correctness and limit-check rows above", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
