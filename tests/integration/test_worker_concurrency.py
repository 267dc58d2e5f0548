"""Many workers, one PostgreSQL: SKIP LOCKED hands each message to exactly one worker; NOTIFY wakes idle ones."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from sqlalchemy import func, select

from herald.pipeline.worker import Worker
from herald.runtime import Runtime
from herald.storage.models import Attempt, DevInboxMessage, Message
from tests.conftest import make_agent, send_body

pytestmark = pytest.mark.postgres_only


async def wait_until_sent(rt: Runtime, expected: int, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        async with rt.sessions() as session:
            sent = (await session.execute(select(func.count()).where(Message.status == "sent"))).scalar_one()
        if sent == expected:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"only {sent} of {expected} sent in {within}s")


async def test_two_workers_drain_one_queue_with_no_message_sent_twice(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    await make_agent(client, auth, "bot", "AUTONOMOUS")
    total = 400
    for i in range(total):
        response = await client.post(
            "/api/v1/messaging/proactive/send", json=send_body("bot", content=f"n{i}"), headers=auth
        )
        assert response.status_code == 201
    settings = rt.settings.model_copy(update={"worker_batch_size": 10, "worker_concurrency": 20})
    runtimes = [Runtime(settings), Runtime(settings)]
    workers = [Worker(r, worker_id=f"w{i}") for i, r in enumerate(runtimes)]
    stop = asyncio.Event()
    tasks = [asyncio.create_task(w.run(stop)) for w in workers]
    try:
        await wait_until_sent(rt, total)
    finally:
        stop.set()
        for r in runtimes:
            r.waker.wake()
        await asyncio.gather(*tasks)
        for r in runtimes:
            await r.close()
    async with rt.sessions() as session:
        rows = (
            await session.execute(select(func.count(), func.count(func.distinct(DevInboxMessage.message_id))))
        ).one()
        attempts = (await session.execute(select(func.count(Attempt.id)))).scalar_one()
    assert tuple(rows) == (total, total)
    assert attempts == total
    assert all(w.claimed_total > 0 for w in workers), [w.claimed_total for w in workers]
    assert sum(w.claimed_total for w in workers) == total


async def test_notify_wakes_an_idle_worker_in_another_process_role(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    await make_agent(client, auth, "bot", "AUTONOMOUS")
    # The worker's own runtime polls only every 30 s, so a prompt delivery proves the NOTIFY wake-up.
    worker_rt = Runtime(rt.settings.model_copy(update={"poll_interval_seconds": 30.0}))
    worker = Worker(worker_rt, worker_id="sleepy")
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        await asyncio.sleep(0.5)  # let it go idle on LISTEN
        started = time.monotonic()
        response = await client.post("/api/v1/messaging/proactive/send", json=send_body("bot"), headers=auth)
        assert response.status_code == 201
        await wait_until_sent(rt, 1, within=10)
        assert time.monotonic() - started < 5
    finally:
        stop.set()
        worker_rt.waker.wake()
        await task
        await worker_rt.close()
