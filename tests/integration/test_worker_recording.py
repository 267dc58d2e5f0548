"""How the worker records outcomes: each message as soon as its provider answers (not when its batch ends), and,
when recording fails (a database restart), again and again while the lease lasts, extending it meanwhile."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import exc as sa
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from herald.pipeline.worker import Outcome, Worker
from herald.runtime import Runtime
from herald.storage.models import AuditEntry, Message
from herald.storage.types import utcnow
from tests.conftest import make_agent, send_body, webhook_channel

SEND = "/api/v1/messaging/proactive/send"


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"lease_seconds": 2.0}


@pytest.fixture
async def relay(rt: Runtime, client: httpx.AsyncClient, auth: dict[str, str]) -> list[str]:
    """A webhook channel whose receiver answers at once, except "slow" content after 1.5 s; the webhook-ids
    it received."""
    received: list[str] = []

    async def answer(request: httpx.Request) -> httpx.Response:
        received.append(request.headers["webhook-id"])
        if json.loads(request.content)["data"]["content"] == "slow":
            await asyncio.sleep(1.5)
        return httpx.Response(200, json={"id": "r-" + request.headers["webhook-id"]})

    rt.http = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    await make_agent(client, auth, "bot", "AUTONOMOUS")
    await webhook_channel(client, auth)
    return received


async def _send(client: httpx.AsyncClient, auth: dict[str, str], content: str) -> str:
    r = await client.post(SEND, json=send_body("bot", content=content), headers=auth)
    assert r.status_code == 201, r.text
    message_id: str = r.json()["id"]
    return message_id


async def _statuses(rt: Runtime) -> dict[str, str]:
    async with rt.sessions() as session:
        return {r.id: r.status for r in await session.execute(select(Message.id, Message.status))}


async def test_an_outcome_is_committed_when_its_provider_answers_not_when_its_batch_ends(
    rt: Runtime, client: httpx.AsyncClient, auth: dict[str, str], relay: list[str], worker: Worker
) -> None:
    fast = await _send(client, auth, "fast")
    slow = await _send(client, auth, "slow")
    draining = asyncio.create_task(worker.run_once())
    deadline = time.monotonic() + 1.2  # the slow answer comes after 1.5 s
    statuses = await _statuses(rt)
    while statuses[fast] != "sent" and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
        statuses = await _statuses(rt)
    assert not draining.done()
    assert statuses == {fast: "sent", slow: "sending"}  # the batch is still under way
    assert await draining == 2
    assert await _statuses(rt) == {fast: "sent", slow: "sent"}
    assert sorted(relay) == sorted([fast, slow])


async def test_recording_is_retried_through_an_outage_longer_than_the_lease_and_the_lease_is_extended(
    rt: Runtime, client: httpx.AsyncClient, auth: dict[str, str], relay: list[str], worker: Worker,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """Recording fails for 3 s (the database restarting) with a 2 s lease: the worker keeps trying, keeps its
    lease (another worker's reclaim finds nothing), and the message is sent once and recorded once."""
    ids = [await _send(client, auth, f"m{i}") for i in range(3)]
    failing_until = time.monotonic() + 3.0
    complete = Worker._complete
    tries = 0

    async def flaky(self: Worker, session: AsyncSession, outcomes: list[Outcome]) -> None:
        nonlocal tries
        tries += 1
        if time.monotonic() < failing_until:
            raise sa.OperationalError("UPDATE messages", {}, ConnectionResetError("connection reset by peer"))
        await complete(self, session, outcomes)

    monkeypatch.setattr(Worker, "_complete", flaky)
    other = Worker(rt, worker_id="other-worker")
    draining = asyncio.create_task(worker.run_once())
    while time.monotonic() < failing_until:
        await other.reclaim_and_expire()  # would put the messages back if their lease ran out
        await asyncio.sleep(0.2)
    assert await draining == 3
    assert tries > 3
    assert await _statuses(rt) == dict.fromkeys(ids, "sent")
    assert sorted(relay) == sorted(ids)  # each sent once
    async with rt.sessions() as session:
        actions = list(await session.execute(select(AuditEntry.action, AuditEntry.object_id)))
    assert sorted(target for action, target in actions if action == "message.sent") == sorted(ids)
    assert not [a for a, _ in actions if a == "message.lease_expired"]


async def test_a_worker_stalled_past_its_lease_does_not_reclaim_what_it_is_still_sending(
    rt: Runtime, client: httpx.AsyncClient, auth: dict[str, str], relay: list[str], worker: Worker
) -> None:
    """The lease of a message in flight runs out (the worker's event loop starved past it): the worker's own
    housekeeping leaves it alone, so the message is sent once and recorded by its worker."""
    slow = await _send(client, auth, "slow")
    draining = asyncio.create_task(worker.run_once())
    while (await _statuses(rt))[slow] != "sending":
        await asyncio.sleep(0.02)
    async with rt.sessions.begin() as session:  # as if the lease keeper had not run for a whole lease
        await session.execute(
            update(Message).where(Message.id == slow).values(lease_expires_at=utcnow() - timedelta(seconds=1))
        )
    await worker.reclaim_and_expire()
    assert (await _statuses(rt))[slow] == "sending"
    assert await draining == 1
    assert await _statuses(rt) == {slow: "sent"}
    assert relay == [slow]
