"""Herald approvals benchmark: from a signed Slack "Approve" press arriving to the approved message sent.

The bench builds a fresh database (PostgreSQL ``herald_bench_approvals_<pid>`` on 127.0.0.1, dropped at the end,
or an SQLite file in a temporary folder), migrates it and sets up, directly through Herald's services:

- a tenant and one Slack channel whose provider is the Slack fake (``herald.fakes.create_fake_app``, served in
  process through ``httpx.ASGITransport`` as the runtime's HTTP client, so every provider call is answered at once
  and the figure is Herald's own); the channel's per-recipient limit is lifted (Slack's default is 1 message/s
  per conversation, and every request copy goes to the same approver);
- ``--approvers`` approvers (default 1), each with a Slack address, each governing one INTERN agent through its
  own policy (quorum 1);
- ``--n`` messages (plus ``--warmup``) held for approval through ``herald.pipeline.accept.accept`` (each to its own
  customer channel, spread over the agents), then ``outreach.open_pass`` until every one has its request, then
  ``Worker.drain`` so every request copy (Slack message with Approve/Reject buttons) is sent.

Then Herald runs as it is deployed, with Herald's default settings (poll interval included, unless
``--poll-interval``). With ``--processes split`` (the default) the processes are:

- the API process (this one, as ``herald api``): the real app (``create_app(..., run_worker=False)``) on uvicorn
  and no background loop. A press is decided in the webhook handler itself
  (``decisions.humans(rt).take_presses``: the vote is committed and the held message moved to ``queued`` before
  the webhook is answered; presses never reach the inbound processor); acknowledging the press and changing the
  request's Slack copies (``chat.update``) then run as background tasks here, so the API's ``rt.http`` has the
  Slack fake too. Besides, this process only polls a COUNT of the sent messages every 50 ms to know when to stop;
- ``--workers`` worker processes (default 1; multiprocessing "spawn", as ``herald worker``): each builds its own
  ``Runtime`` on the same database, with the Slack fake in its ``rt.http`` the same way, and runs
  ``Worker(rt).run(stop)`` (the outbox: it sends the approved messages) and ``Processor(rt).run(stop)`` (inbound
  routing; idle here, since no press reaches it). On PostgreSQL the approve's ``NOTIFY herald_outbox`` (sent at
  its commit) wakes them through their LISTEN; on SQLite nothing crosses processes, so a worker finds an approved
  message at its next poll (``poll_interval_seconds``, printed with the result): decided -> sent is then about
  half the poll interval on average and up to one;
- the load generator, in its own process (so its CPU is not Herald's).

With ``--processes one`` (the former layout, ``herald serve``-like) the API process also runs
``Processor(rt).run(stop)`` and ``Worker(rt).run(stop)`` as tasks on its event loop, woken in process.

The load generator fires one correctly signed Slack ``block_actions`` "Approve" press per request
(``herald.fakes.inbound.slack_block_action``, each approver pressing in their own DM) at ``POST
/api/v1/interfaces/{channel}/webhook`` over real HTTP (httpx), open loop at ``--rate`` per second: press i is
sent at t0 + i/rate whatever the answers. The warm-up presses go first (at most 20/s), and the measured ones
only once every warm-up message is sent; they are not counted.

Latency of a message = its ``messages.sent_at`` (set by the worker once the provider accepted the send, in the
transaction recording it) minus the wall-clock time the press's POST was sent. Both are the machine's UTC
clock (every process is on this machine). It is split into two stages from the rows: POST -> decided
(``human_requests.decided_at``, stamped when the webhook's vote began, inside the transaction that moves the
message to ``queued``) and decided -> sent (the rest of that transaction and its commit, the NOTIFY or the poll,
the worker's claim and send). The webhook's answer time (ack) is the generator's POST round trip. The CPU
seconds of the API process and of each worker process over the measured phase are printed and in the JSON.

    .venv/bin/python bench/approvals.py --backend postgres --n 1000 --rate 100
    .venv/bin/python bench/approvals.py --backend sqlite
    .venv/bin/python bench/approvals.py --approvers 20 --json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import os
import shlex
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import uvicorn
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
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from herald.admin.channels import create_channel
from herald.admin.tenants import create_agent, create_api_key, get_or_create_tenant, principal_for_key
from herald.core.config import load_settings
from herald.core.intent import Intent
from herald.core.maturity import MaturityLevel
from herald.core.principal import Principal
from herald.core.status import Status
from herald.fakes import FakeState, create_fake_app
from herald.fakes.inbound import slack_block_action
from herald.humans import decisions, directory, outreach
from herald.pipeline.accept import accept
from herald.pipeline.worker import Worker
from herald.producers.conversations.processor import Processor
from herald.runtime import Runtime
from herald.storage.migrate import upgrade
from herald.storage.models import HumanRequest, Message
from herald.web.api.app import create_app

CREDENTIALS = {"bot_token": "xoxb-" + "1" * 20, "signing_secret": "8f742231b10e8888abcd99yyyzzz85a5"}
FAKE_ORIGIN = "http://providers.fake"
AGENT_PREFIX = "bench-intern"
HOLD_CHUNK = 100
POLL_SECONDS = 0.05
SPAWN_TIMEOUT = 120.0


@dataclass(frozen=True)
class Person:
    """An approver: their id in Herald, their Slack user id, the DM they press in, the agent they govern."""

    id: str
    user_id: str
    dm: str
    agent_id: str


@dataclass
class Held:
    index: int
    message_id: str
    person: Person
    request_id: str = ""


# -- the load generator (its own process) ---------------------------------------------------------------------


def fire(url: str, requests: list[tuple[bytes, dict[str, str]]], rate: float, connections: int) -> list[Any]:
    """POST ``requests`` open loop at ``rate``/s; for each: (wall time sent, status, seconds to answer, lateness)."""
    return asyncio.run(_fire(url, requests, rate, connections))


async def _fire(
    url: str, requests: list[tuple[bytes, dict[str, str]]], rate: float, connections: int
) -> list[Any]:
    results: list[Any] = [None] * len(requests)
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(timeout=60.0, limits=limits) as client:

        async def one(i: int, body: bytes, headers: dict[str, str], due: float) -> None:
            late = time.perf_counter() - due
            sent = time.time()
            try:
                status = (await client.post(url, content=body, headers=headers)).status_code
            except httpx.HTTPError:
                status = 0
            results[i] = (sent, status, time.time() - sent, late)

        started = time.perf_counter()
        async with asyncio.TaskGroup() as group:
            for i, (body, headers) in enumerate(requests):
                due = started + i / rate
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                group.create_task(one(i, body, headers, due))
    return results


def _ready() -> bool:
    return True


# -- setup ------------------------------------------------------------------------------------------------------


def settings_kwargs(database_url: str, data_dir: str, poll_interval: float | None) -> dict[str, Any]:
    values: dict[str, Any] = {
        "database_url": database_url,
        "env": "development",
        "secret_key": SECRET,
        "data_dir": data_dir,
    }
    if poll_interval is not None:  # otherwise Herald's default, so the bench measures what ships
        values["poll_interval_seconds"] = poll_interval
    return values


async def use_fake(rt: Runtime) -> FakeState:
    """Answer the runtime's provider calls with the Slack fake, in process through ``httpx.ASGITransport`` (no
    network, answered at once: the figures are Herald's own). Each process wires its own."""
    await rt.http.aclose()
    fake = FakeState()
    rt.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=create_fake_app(fake)), timeout=30.0)
    return fake


async def setup(rt: Runtime, approvers: int) -> tuple[Principal, str, list[Person]]:
    """The tenant, the Slack channel (on the fake), the approvers, their INTERN agents and policies."""
    async with rt.sessions.begin() as session:
        tenant = await get_or_create_tenant(session, "bench-approvals")
        key = await create_api_key(session, tenant, name="bench")
    async with rt.sessions.begin() as session:
        principal = await principal_for_key(session, key)
        assert principal is not None
        channel = await create_channel(
            rt, session, principal, platform="slack", provider="slack", name="bench-slack",
            credentials=dict(CREDENTIALS), base_url=FAKE_ORIGIN, is_default=True, recipient_rate_per_second=1e6,
        )  # fmt: skip
        people = []
        for k in range(approvers):
            user_id, agent_id = f"U0BENCH{k:05d}", f"{AGENT_PREFIX}-{k}"
            approver = await directory.create_approver(
                session, principal, f"Approver {k}", [{"platform": "slack", "recipient_id": user_id}]
            )
            await create_agent(
                session, principal, agent_id=agent_id, name=agent_id,
                maturity_level=MaturityLevel.INTERN, callback_url=None,
            )  # fmt: skip
            await directory.create_policy(session, principal, {
                "name": f"interns {k}", "agent_ids": [agent_id], "approver_ids": [approver.id], "quorum": 1,
            })  # fmt: skip
            people.append(Person(approver.id, user_id, f"D0BENCH{k:05d}", agent_id))
        return principal, str(channel.id), people


async def hold(rt: Runtime, principal: Principal, people: list[Person], count: int) -> list[Held]:
    """``count`` messages from the INTERN agents, each held for approval, each to its own customer."""
    held: list[Held] = []
    for start in range(0, count, HOLD_CHUNK):
        async with rt.sessions.begin() as session:
            for i in range(start, min(count, start + HOLD_CHUNK)):
                person = people[i % len(people)]
                intent = Intent(
                    agent_id=person.agent_id, platform="slack", recipient_id=f"C0CUST{i:07d}",
                    content=f"Your refund #{i} of $40 is on its way.", governance_metadata={"confidence": 0.72},
                )  # fmt: skip
                message = await accept(rt, session, principal, intent)
                if message.status != Status.PENDING_APPROVAL:
                    raise BenchError(f"message {i} was not held: {message.status}")
                held.append(Held(i, message.id, person))
    return held


async def open_requests(rt: Runtime, held: list[Held], within: float) -> None:
    """Run the outreach loop's pass until every held message has its request; send the copies."""
    deadline = time.monotonic() + within
    while await outreach.open_pass(rt):
        if time.monotonic() > deadline:
            raise BenchError("opening the requests timed out")
    async with rt.sessions() as session:
        found = dict((await session.execute(select(HumanRequest.message_id, HumanRequest.id))).all())
    for item in held:
        if item.message_id not in found:
            raise BenchError(f"message {item.message_id} has no request")
        item.request_id = found[item.message_id]
    await Worker(rt, worker_id="bench-setup").drain()
    async with rt.sessions() as session:
        copies = (
            await session.execute(
                select(Message.status).where(Message.agent_id.is_(None), Message.platform == "slack")
            )
        ).scalars()
        statuses = list(copies)
    sent = sum(1 for s in statuses if s == Status.SENT)
    if sent != len(held):
        raise BenchError(f"{sent} request copies sent, {len(held)} expected (statuses: {set(statuses)})")


def presses(held: list[Held], stamp_base: int) -> list[tuple[bytes, dict[str, str]]]:
    """One signed Approve press per held message, by its approver in their DM (signed now: Slack's 5 min)."""
    out = []
    for item in held:
        action_ts = f"{stamp_base + item.index // 1000}.{item.index % 1000:03d}000"
        request = slack_block_action(
            CREDENTIALS, value=f"hl:{item.request_id}:a", label="Approve", user_id=item.person.user_id,
            channel_id=item.person.dm, message_ts="1733390000.000100", action_ts=action_ts,
        )  # fmt: skip
        out.append((request.body, dict(request.headers)))
    return out


# -- running Herald -----------------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def served(app: Any) -> AsyncIterator[str]:
    """``app`` on uvicorn at 127.0.0.1 and a free port, lifespan included; yields its base URL."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", access_log=False)
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
            raise BenchError("uvicorn stopped before it started")
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def sent_count(observer: AsyncEngine) -> int:
    return int(
        await scalar(
            observer,
            "SELECT COUNT(*) FROM messages WHERE agent_id LIKE :p AND status = 'sent'",
            {"p": AGENT_PREFIX + "-%"},
        )
    )


def check_loops(loops: list[asyncio.Task[Any]]) -> None:
    for task in loops:
        if task.done():
            task.result()
            raise BenchError(f"the {task.get_name()} loop stopped early")


async def wait_sent(observer: AsyncEngine, expected: int, within: float, check: Callable[[], None]) -> bool:
    """Poll (a COUNT every 50 ms, on the observer's own connection) until ``expected`` held messages are sent;
    ``check`` raises if a Herald loop or process died meanwhile."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        check()
        if await sent_count(observer) >= expected:
            return True
        await asyncio.sleep(POLL_SECONDS)
    return False


def worker_process(
    kwargs: dict[str, Any], index: int, processor: bool, ready: Any, go: Any, stop: Any, out: Any
) -> None:
    """Entry point of one worker process (spawned, as ``herald worker`` would run): its own Runtime on the
    bench's database, the Slack fake as its provider, ``Worker.run`` (and ``Processor.run``) until ``stop``."""
    try:
        stats = asyncio.run(_worker_async(kwargs, index, processor, ready, go, stop))
    except Exception as exc:
        stats = {"index": index, "pid": os.getpid(), "errors": [f"{type(exc).__name__}: {exc}"[:1000]]}
    out.put(stats)
    if not ready.is_set():  # failed while starting: say why, and exit non-zero so the parent stops waiting
        print(f"worker process {index} failed to start: {stats.get('errors')}", file=sys.stderr, flush=True)
        sys.exit(1)


async def _worker_async(
    kwargs: dict[str, Any], index: int, processor: bool, ready: Any, go: Any, stop_event: Any
) -> dict[str, Any]:
    rt = Runtime(load_settings(**kwargs))
    fake = await use_fake(rt)
    stop = asyncio.Event()
    worker = Worker(rt, worker_id=f"bench-worker-{index}-{os.getpid()}")
    loops = [asyncio.create_task(worker.run(stop), name="worker")]
    if processor:
        loops.append(asyncio.create_task(Processor(rt).run(stop), name="processor"))
    errors: list[str] = []
    measured: tuple[float, float] | None = None  # (CPU, wall) when the measured presses started ("go")
    try:
        while not worker.last_loop_at:  # set on the first pass, after the worker's LISTEN is up
            check_loops(loops)
            await asyncio.sleep(0.01)
        ready.set()
        while not await wait_mp_event(stop_event, 0.1):
            check_loops(loops)
            if measured is None and go.is_set():
                measured = (time.process_time(), time.monotonic())
    except Exception as exc:
        errors.append(f"{type(exc).__name__}: {exc}"[:1000])
    finally:
        stop.set()
        ended = await asyncio.gather(*loops, return_exceptions=True)
        await worker.stop_heartbeat()
        await rt.close()
    errors += [f"{type(e).__name__}: {e}"[:1000] for e in ended if isinstance(e, BaseException)]
    return {
        "index": index,
        "pid": os.getpid(),
        "claimed": worker.claimed_total,
        "fake_requests": len(fake.requests),
        "cpu_seconds": round(time.process_time() - measured[0], 2) if measured else None,
        "wall_seconds": round(time.monotonic() - measured[1], 2) if measured else None,
        "errors": errors,
    }


async def decide(
    pool: ProcessPoolExecutor, url: str, held: list[Held], rate: float, connections: int
) -> list[Any]:
    requests = presses(held, int(time.time()))
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(pool, fire, url, requests, rate, connections)


# -- figures ----------------------------------------------------------------------------------------------------


def summary(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50_ms": None, "p90_ms": None, "p99_ms": None, "max_ms": None}
    return {
        "p50_ms": round(percentile(values, 50) * 1000, 1),
        "p90_ms": round(percentile(values, 90) * 1000, 1),
        "p99_ms": round(percentile(values, 99) * 1000, 1),
        "max_ms": round(max(values) * 1000, 1),
    }


async def figures(rt: Runtime, held: list[Held], fired: list[Any]) -> dict[str, Any]:
    ids = [h.message_id for h in held]
    requests = [h.request_id for h in held]
    sent: dict[str, tuple[str, datetime | None]] = {}
    decided: dict[str, tuple[str, datetime | None]] = {}
    async with rt.sessions() as session:
        for at in range(0, len(held), 500):
            rows = await session.execute(
                select(Message.id, Message.status, Message.sent_at).where(Message.id.in_(ids[at : at + 500]))
            )
            sent.update({i: (s, t) for i, s, t in rows})
            rows = await session.execute(
                select(HumanRequest.id, HumanRequest.status, HumanRequest.decided_at).where(
                    HumanRequest.id.in_(requests[at : at + 500])
                )
            )
            decided.update({i: (s, t) for i, s, t in rows})
    total, to_decided, to_sent, acks, late = [], [], [], [], []
    statuses: dict[str, int] = {}
    approved = accepted = 0
    for item, (posted, http_status, ack, lateness) in zip(held, fired, strict=True):
        acks.append(ack)
        late.append(lateness)
        accepted += http_status == 200
        status, sent_at = sent.get(item.message_id, ("missing", None))
        statuses[status] = statuses.get(status, 0) + 1
        request_status, decided_at = decided.get(item.request_id, ("missing", None))
        approved += request_status == outreach.APPROVED
        if sent_at is not None and status == Status.SENT:
            total.append(sent_at.timestamp() - posted)
        if decided_at is not None:
            to_decided.append(decided_at.timestamp() - posted)
            if sent_at is not None:
                to_sent.append((sent_at - decided_at).total_seconds())
    stamps = sorted(f[0] for f in fired)
    span = stamps[-1] - stamps[0] if len(stamps) > 1 else 0.0
    return {
        "decisions": len(held),
        "achieved_rate": round((len(stamps) - 1) / span, 1) if span > 0 else None,
        "http_200": accepted,
        "approved": approved,
        "sent": statuses.get(Status.SENT, 0),
        "by_status": statuses,
        "latency": summary(total),
        "stages": {"post_to_decided": summary(to_decided), "decided_to_sent": summary(to_sent)},
        "ack": summary(acks),
        "generator_late_p99_ms": round(percentile(late, 99) * 1000, 1) if late else None,
    }


# -- one backend ------------------------------------------------------------------------------------------------


async def run(args: argparse.Namespace, workdir: Path, say: Any) -> dict[str, Any]:
    backend = args.backend
    db_name = f"herald_bench_approvals_{os.getpid()}"
    if backend == "sqlite":
        database_url = f"sqlite:///{workdir / 'herald.db'}"
    else:
        await pg_admin(args.postgres_url, f"DROP DATABASE IF EXISTS {db_name} WITH (FORCE)")
        await pg_admin(args.postgres_url, f"CREATE DATABASE {db_name}")
        database_url = with_database(args.postgres_url, db_name)
    kwargs = settings_kwargs(database_url, str(workdir / "var"), args.poll_interval)
    settings = load_settings(**kwargs)
    rt = Runtime(settings)
    fake = await use_fake(rt)
    observer = create_async_engine(settings.async_database_url, pool_size=2, max_overflow=0)
    generator = ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("spawn"))
    split = args.processes == "split"
    workers: ProcessPool | None = None
    if not split:
        wake = "in-process event (one process)"
    elif backend == "postgres":
        wake = "LISTEN/NOTIFY (the API's approve NOTIFYs at commit; the worker process LISTENs)"
    else:
        wake = f"none across processes on SQLite: the worker process polls every {settings.poll_interval_seconds:g} s"
    result: dict[str, Any] = {
        "backend": backend,
        "processes": args.processes,
        "worker_processes": args.workers if split else 0,
        "wake": wake,
        "n": args.n,
        "warmup": args.warmup,
        "rate": args.rate,
        "approvers": args.approvers,
        "poll_interval_seconds": settings.poll_interval_seconds,
        "worker_batch_size": settings.worker_batch_size,
        "worker_concurrency": settings.worker_concurrency,
    }
    try:
        started_generator = asyncio.get_running_loop().run_in_executor(generator, _ready)  # spawned meanwhile
        await upgrade(rt.engine)
        principal, channel_id, people = await setup(rt, args.approvers)
        total = args.n + args.warmup
        say(f"[{backend}] holding {total} messages from {len(people)} INTERN agent(s) ...")
        clock = time.monotonic()
        held = await hold(rt, principal, people, total)
        say(f"[{backend}] opening {total} requests and sending their copies ...")
        await open_requests(rt, held, args.timeout)
        result["setup_seconds"] = round(time.monotonic() - clock, 1)
        await started_generator
        warm, measured = held[: args.warmup], held[args.warmup :]
        stop = asyncio.Event()
        loops: list[asyncio.Task[Any]] = []
        if split:
            say(
                f"[{backend}] starting {args.workers} worker process(es) (Worker + Processor; wake: {wake}) ..."
            )
            workers = ProcessPool(worker_process, kwargs, args.workers, True, "worker", SPAWN_TIMEOUT)
            await workers.start()
        check: Callable[[], None] = workers.check_alive if workers is not None else lambda: check_loops(loops)
        app = create_app(settings, runtime=rt, run_worker=False)
        async with served(app) as base:
            url = f"{base}/api/v1/interfaces/{channel_id}/webhook"
            worker = Worker(rt, worker_id=f"bench-{os.getpid()}")
            if not split:  # herald serve's delivery loops, on the API's own event loop
                loops += [
                    asyncio.create_task(Processor(rt).run(stop), name="processor"),
                    asyncio.create_task(worker.run(stop), name="worker"),
                ]
            try:
                if warm:
                    say(f"[{backend}] warm-up: {len(warm)} decisions at {min(args.rate, 20.0):g}/s ...")
                    await decide(generator, url, warm, min(args.rate, 20.0), args.connections)
                    if not await wait_sent(observer, len(warm), args.timeout, check):
                        raise BenchError("the warm-up decisions were not all sent")
                say(f"[{backend}] {len(measured)} decisions at {args.rate:g}/s ...")
                if workers is not None:
                    workers.release()  # the worker processes start counting their CPU
                cpu0, wall0 = time.process_time(), time.monotonic()
                fired = await decide(generator, url, measured, args.rate, args.connections)
                say(f"[{backend}] waiting for the approved messages to be sent ...")
                result["all_sent_in_time"] = await wait_sent(observer, total, args.timeout, check)
                result["api_process"] = {
                    "pid": os.getpid(),
                    "cpu_seconds": round(time.process_time() - cpu0, 2),
                    "wall_seconds": round(time.monotonic() - wall0, 2),
                }
                await decisions.humans(rt).idle()  # the copies' updates, still running in the background
            finally:
                stop.set()
                await asyncio.gather(*loops, return_exceptions=True)
                if loops:
                    await worker.stop_heartbeat()
        if workers is not None:
            pool, workers = workers, None
            await pool.shutdown()
            result["worker_process_stats"] = sorted(pool.stats, key=lambda w: w["index"])
            failed = [w for w in pool.stats if w.get("errors")]
            if failed:
                raise BenchError(f"worker process errors: {[w['errors'] for w in failed]}")
        result.update(await figures(rt, measured, fired))
        result["fake_requests"] = len(fake.requests) + sum(
            w.get("fake_requests", 0) for w in result.get("worker_process_stats", [])
        )
    finally:
        if workers is not None:
            await workers.shutdown()
        generator.shutdown(wait=True, cancel_futures=True)
        await observer.dispose()
        await rt.close()
        if backend == "postgres":
            await pg_admin(args.postgres_url, f"DROP DATABASE IF EXISTS {db_name} WITH (FORCE)")
    return result


# -- output -----------------------------------------------------------------------------------------------------


LABEL = 46


def _row(label: str, figures: dict[str, Any]) -> str:
    cells = [
        f"{figures[k]:>8}" if figures[k] is not None else f"{'-':>8}"
        for k in ("p50_ms", "p90_ms", "p99_ms", "max_ms")
    ]
    return f"{label:<{LABEL}}" + "".join(cells)


def layout(result: dict[str, Any]) -> str:
    if result["processes"] == "one":
        return (
            "one process: the app on uvicorn with Processor and Worker on its event loop (herald serve); "
            "load generator in its own process"
        )
    workers = result.get("worker_process_stats") or []
    cpu = ", ".join(f"{w['cpu_seconds']}" for w in workers if w.get("cpu_seconds") is not None)
    api = result.get("api_process") or {}
    return (
        f"split: API process (the app on uvicorn, no loops; {api.get('cpu_seconds')} s CPU over "
        f"{api.get('wall_seconds')} s measured) + {result['worker_processes']} worker process(es) "
        f"(Worker + Processor; CPU s {cpu or '-'}) + load generator process"
    )


def print_result(result: dict[str, Any], command: str) -> None:
    print()
    print(f"{'':<{LABEL}}{'p50 ms':>8}{'p90 ms':>8}{'p99 ms':>8}{'max ms':>8}")
    print(_row("press POST -> approved message sent", result["latency"]))
    print(_row("  POST -> decided (human_requests.decided_at)", result["stages"]["post_to_decided"]))
    print(_row("  decided -> sent (worker)", result["stages"]["decided_to_sent"]))
    print(_row("webhook answer (ack)", result["ack"]))
    print()
    print(
        f"backend {result['backend']}: {result['decisions']} decisions at {result['rate']:g}/s target, "
        f"{result['achieved_rate']}/s achieved (generator lateness p99 {result['generator_late_p99_ms']} ms); "
        f"{result['http_200']} answered 200, {result['approved']} approved, {result['sent']} sent "
        f"(statuses {result['by_status']})"
    )
    print(f"layout: {layout(result)}")
    print(f"wake: {result['wake']}")
    print(
        f"{result['approvers']} approver(s) pressing in their own Slack DM; Herald defaults: poll interval "
        f"{result['poll_interval_seconds']:g} s, worker batch {result['worker_batch_size']}, "
        f"concurrency {result['worker_concurrency']}; setup took {result['setup_seconds']} s"
    )
    print(f"command: {command}")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--backend", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--n", type=int, default=1000, help="decisions measured (each one held message)")
    parser.add_argument("--rate", type=float, default=100.0, help="decisions per second (open loop)")
    parser.add_argument("--warmup", type=int, default=20, help="decisions sent first and not counted")
    parser.add_argument(
        "--approvers",
        type=int,
        default=1,
        help="approvers (each its own DM, so its own conversation; presses are spread over them)",
    )
    parser.add_argument(
        "--processes",
        choices=["split", "one"],
        default="split",
        help="split: API process + worker process(es), as deployed (default); one: everything in one process",
    )
    parser.add_argument("--workers", type=int, default=1, help="worker processes with --processes split")
    parser.add_argument("--connections", type=int, default=100, help="load generator's connection pool")
    parser.add_argument(
        "--poll-interval", type=float, default=None, help="HERALD_POLL_INTERVAL_SECONDS (default: Herald's)"
    )
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds allowed for a phase")
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--json", action="store_true", help="print the result as JSON (progress to stderr)")
    args = parser.parse_args(argv)
    if args.n < 1 or args.rate <= 0 or args.warmup < 0 or args.approvers < 1 or args.connections < 1:
        parser.error("--n, --rate, --approvers and --connections must be positive; --warmup >= 0")
    if args.workers < 1 or (args.processes == "one" and args.workers != 1):
        parser.error("--workers must be positive, and is for --processes split")
    check_loopback(args.postgres_url)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    command = shlex.join([Path(sys.executable).name, *sys.argv])

    def say(text: str) -> None:
        print(text, file=sys.stderr if args.json else sys.stdout, flush=True)

    prepare_results()
    with tempfile.TemporaryDirectory(prefix="herald-bench-approvals-") as tmp:
        try:
            result = asyncio.run(run(args, Path(tmp), say))
        except Exception as exc:
            print(f"FAILED: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 1
    result["command"] = command
    result["environment"] = describe_environment()
    suffix = "" if args.processes == "split" else f"-{args.processes}"
    path = RESULTS_DIR / f"approvals-{args.backend}{suffix}.json"
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    else:
        print_result(result, command)
        print(f"results written to {path}")
    missing = result["decisions"] - result["sent"]
    if missing or not result.get("all_sent_in_time"):
        print(f"FAILED: {missing} of {result['decisions']} approved messages were not sent", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
