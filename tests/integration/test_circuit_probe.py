"""The half-open circuit lets exactly one probe through, across every worker and process of the channel."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from herald.pipeline.routing import circuit
from herald.pipeline.worker import Worker
from herald.runtime import Runtime
from herald.storage.models import ChannelHealth, Message
from tests.conftest import make_agent, send_body, webhook_channel

SEND = "/api/v1/messaging/proactive/send"
COOLDOWN = timedelta(seconds=0.3)


class Provider:
    """The channel's far end: down (503), or up and slow, noting when each call started and ended."""

    def __init__(self) -> None:
        self.down = True
        self.permanent = False
        self.delay = 0.0
        self.calls: list[tuple[float, float]] = []
        self.started = 0
        self.gate: asyncio.Event | None = None

    async def __call__(self, _: httpx.Request) -> httpx.Response:
        started = time.monotonic()
        self.started += 1
        if self.gate is not None:
            await self.gate.wait()
        await asyncio.sleep(self.delay)
        self.calls.append((started, time.monotonic()))
        if self.down:
            return httpx.Response(503)
        return httpx.Response(400 if self.permanent else 200, json={"id": "ok"})

    def attach(self, rt: Runtime) -> None:
        rt.http = httpx.AsyncClient(transport=httpx.MockTransport(self))


async def statuses(rt: Runtime) -> list[str]:
    async with rt.sessions() as session:
        return list((await session.execute(select(Message.status))).scalars())


async def health(rt: Runtime, channel_id: str) -> ChannelHealth:
    async with rt.sessions() as session:
        row = await session.get(ChannelHealth, channel_id)
        assert row is not None
        return row


async def open_circuit(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, provider: Provider, count: int
) -> dict[str, Any]:
    """``count`` messages on one webhook channel, tried once while it is down: the circuit opens."""
    provider.attach(rt)
    await make_agent(client, auth, "bot", "AUTONOMOUS")
    channel = await webhook_channel(client, auth, "slack")
    for i in range(count):
        response = await client.post(SEND, json=send_body("bot", content=f"n{i}"), headers=auth)
        assert response.status_code == 201, response.text
    await Worker(rt, worker_id="opener").run_once()
    assert (await health(rt, channel["id"])).state == "open"
    provider.calls.clear()
    provider.started = 0
    return channel


@pytest.fixture(autouse=True)
def short_cooldown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(circuit, "COOLDOWN", COOLDOWN)


async def test_a_second_worker_waits_while_the_probe_is_out(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    provider = Provider()
    channel = await open_circuit(client, auth, rt, provider, count=6)
    await asyncio.sleep(COOLDOWN.total_seconds() + 0.05)
    provider.down, provider.gate = False, asyncio.Event()
    small = Runtime(rt.settings.model_copy(update={"worker_batch_size": 2}))
    other = Runtime(rt.settings)
    provider.attach(small)
    provider.attach(other)
    try:
        first = asyncio.create_task(Worker(small, worker_id="first").run_once())
        while provider.started < 1:
            await asyncio.sleep(0.01)
        # The probe is held by the first worker (its provider call is hanging): the second sends nothing.
        row = await health(rt, channel["id"])
        assert row.probe_owner is not None
        assert row.probe_owner.startswith("first/")
        assert await Worker(other, worker_id="second").run_once() == 4
        assert provider.started == 1
        # Only the probe is out; its batch-mate was put back at once (outcomes are recorded per message).
        assert sorted(await statuses(rt)) == ["queued"] * 5 + ["sending"]
        provider.gate.set()
        await first
        row = await health(rt, channel["id"])
        assert (row.state, row.probe_owner, row.probe_until) == ("closed", None, None)
        assert len(provider.calls) == 1
        await asyncio.sleep(1.1)  # the messages held back wait a second
        await Worker(other, worker_id="second").drain()
        assert sorted(await statuses(rt)) == ["sent"] * 6
    finally:
        await small.close()
        await other.close()


async def test_a_probe_that_fails_reopens_and_one_that_is_refused_is_given_back(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    provider = Provider()
    channel = await open_circuit(client, auth, rt, provider, count=5)
    await asyncio.sleep(COOLDOWN.total_seconds() + 0.05)
    worker = Worker(rt, worker_id="w")
    await worker.run_once()  # the probe fails: open again, for another cool-down, and the probe is free
    row = await health(rt, channel["id"])
    assert (row.state, row.probe_owner, len(provider.calls)) == ("open", None, 1)
    assert circuit.view(row, row.updated_at).state == "open"
    await asyncio.sleep(COOLDOWN.total_seconds() + 0.05)
    provider.down, provider.permanent = False, True
    await worker.run_once()  # a permanent refusal says nothing of the outage: the probe is given back at once
    row = await health(rt, channel["id"])
    assert (row.state, row.probe_owner, row.probe_until, len(provider.calls)) == ("open", None, None, 2)


@pytest.mark.postgres_only
async def test_many_workers_in_many_processes_send_exactly_one_probe(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    provider = Provider()
    total = 40
    channel = await open_circuit(client, auth, rt, provider, count=total)
    provider.down, provider.delay = False, 0.3
    settings = rt.settings.model_copy(update={"worker_batch_size": 4, "worker_concurrency": 8})
    runtimes = [Runtime(settings) for _ in range(5)]
    for other in runtimes:
        provider.attach(other)
    workers = [Worker(r, worker_id=f"p{i}") for i, r in enumerate(runtimes)]
    stop = asyncio.Event()
    tasks = [asyncio.create_task(w.run(stop)) for w in workers]
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and sorted(await statuses(rt)) != ["sent"] * total:
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        for r in runtimes:
            r.waker.wake()
        await asyncio.gather(*tasks)
        for r in runtimes:
            await r.close()
    assert sorted(await statuses(rt)) == ["sent"] * total
    first_end = min(end for _, end in provider.calls)
    during_probe = [start for start, _ in provider.calls if start < first_end]
    assert len(during_probe) == 1, f"{len(during_probe)} calls went out while the circuit was half-open"
    assert (await health(rt, channel["id"])).state == "closed"
