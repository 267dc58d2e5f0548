"""The outbox worker: retries with backoff, permanent errors, retry-after, attempt limits, scheduled sends,
approval expiry, leases that survive a dead worker, and many workers draining one queue exactly once."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update

from herald.core.security import verify_standard_webhook
from herald.pipeline.worker import Worker, backoff_seconds
from herald.runtime import Runtime
from herald.storage.models import DevInboxMessage, Message
from tests.conftest import make_agent, send_body

SEND = "/api/v1/messaging/proactive/send"
SECRET = "whsec_dGVzdC13ZWJob29rLXNlY3JldC0xMjM0NTY3ODkw"


def use_transport(rt: Runtime, handler: Callable[[httpx.Request], httpx.Response]) -> list[httpx.Request]:
    """Point the runtime's HTTP client at ``handler``; return the list of requests it receives."""
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)

    rt.http = httpx.AsyncClient(transport=httpx.MockTransport(record))
    return seen


async def webhook_channel(client: httpx.AsyncClient, auth: dict[str, str]) -> str:
    response = await client.post(
        "/api/v1/channels",
        json={
            "platform": "slack",
            "provider": "webhook",
            "name": "relay",
            "credentials": {"url": "https://relay.example/hook", "secret": SECRET},
            "is_default": True,
        },
        headers=auth,
    )
    assert response.status_code == 201, response.text
    channel_id: str = response.json()["id"]
    return channel_id


async def accepted(client: httpx.AsyncClient, auth: dict[str, str], **overrides: Any) -> dict[str, Any]:
    response = await client.post(SEND, json=send_body("bot", **overrides), headers=auth)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture
async def bot(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    await make_agent(client, auth, "bot", "AUTONOMOUS")


async def detail(client: httpx.AsyncClient, auth: dict[str, str], message_id: str) -> dict[str, Any]:
    body: dict[str, Any] = (await client.get(f"/api/v1/messages/{message_id}", headers=auth)).json()
    return body


@pytest.mark.usefixtures("bot")
async def test_webhook_channel_sends_a_signed_standard_webhook(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, worker: Worker
) -> None:
    seen = use_transport(rt, lambda _: httpx.Response(200, json={"id": "remote-1"}))
    channel_id = await webhook_channel(client, auth)
    message = await accepted(client, auth)
    assert message["channel_id"] == channel_id
    assert message["simulated"] is False
    assert await worker.drain() == 1

    (request,) = seen
    assert str(request.url) == "https://relay.example/hook"
    assert request.headers["webhook-id"] == message["id"]
    assert verify_standard_webhook(
        SECRET,
        request.headers["webhook-id"],
        int(request.headers["webhook-timestamp"]),
        request.content,
        request.headers["webhook-signature"],
    )
    assert not verify_standard_webhook(
        SECRET,
        request.headers["webhook-id"],
        int(request.headers["webhook-timestamp"]),
        b"{}",
        request.headers["webhook-signature"],
    )
    payload = json.loads(request.content)
    assert payload["type"] == "message.send"
    assert payload["data"]["content"] == "Hello! I have important updates."
    sent = await detail(client, auth, message["id"])
    assert sent["status"] == "sent"
    assert sent["provider_message_id"] == "remote-1"


@pytest.mark.usefixtures("bot")
async def test_retry_then_success(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, worker: Worker
) -> None:
    answers = iter([httpx.Response(503), httpx.Response(500), httpx.Response(200, json={"id": "ok-3"})])
    use_transport(rt, lambda _: next(answers))
    await webhook_channel(client, auth)
    message = await accepted(client, auth)
    await worker.drain()
    sent = await detail(client, auth, message["id"])
    assert sent["status"] == "sent"
    assert [a["outcome"] for a in sent["attempt_log"]] == ["retry", "retry", "sent"]
    assert sent["attempt_log"][0]["error"] == "webhook answered HTTP 503"
    assert sent["attempts"] == 3


@pytest.mark.usefixtures("bot")
async def test_permanent_error_fails_at_once_with_the_reason(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, worker: Worker
) -> None:
    seen = use_transport(rt, lambda _: httpx.Response(400))
    await webhook_channel(client, auth)
    message = await accepted(client, auth)
    await worker.drain()
    failed = await detail(client, auth, message["id"])
    assert failed["status"] == "failed"
    assert failed["last_error"] == "webhook answered HTTP 400"
    assert len(seen) == 1
    events = (await client.get(f"/api/v1/audit?object_id={message['id']}", headers=auth)).json()["items"]
    assert "message.failed" in [e["action"] for e in events]


@pytest.mark.usefixtures("bot")
async def test_attempt_limit_spent_ends_failed_with_last_error(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, worker: Worker
) -> None:
    seen = use_transport(rt, lambda _: httpx.Response(502))
    await webhook_channel(client, auth)
    message = await accepted(client, auth)
    await worker.drain()
    failed = await detail(client, auth, message["id"])
    assert failed["status"] == "failed"
    assert failed["attempts"] == rt.settings.max_attempts == len(seen)
    assert failed["last_error"] == "webhook answered HTTP 502"


@pytest.mark.usefixtures("bot")
async def test_timeout_is_retried(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, worker: Worker
) -> None:
    calls = {"n": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        if calls["n"] == 1:
            raise httpx.ReadTimeout("slow", request=request)
        return httpx.Response(204)

    use_transport(rt, handler)
    await webhook_channel(client, auth)
    message = await accepted(client, auth)
    await worker.drain()
    sent = await detail(client, auth, message["id"])
    assert sent["status"] == "sent"
    assert sent["attempt_log"][0]["error"] == "webhook timed out"


@pytest.mark.usefixtures("bot")
async def test_retry_after_is_honoured(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, worker: Worker
) -> None:
    use_transport(rt, lambda _: httpx.Response(429, headers={"Retry-After": "120"}))
    await webhook_channel(client, auth)
    message = await accepted(client, auth)
    before = datetime.now(UTC)
    assert await worker.drain() == 1  # one attempt, then the message waits two minutes
    async with rt.sessions() as session:
        row = await session.get(Message, message["id"])
    assert row is not None
    assert row.status == "queued"
    assert row.run_at >= before + timedelta(seconds=119)
    retried = await detail(client, auth, message["id"])
    assert retried["attempt_log"][0]["retry_after"] == 120


def test_backoff_grows_exponentially_with_jitter_and_is_capped() -> None:
    delays = [backoff_seconds(n, base=2, cap=60, retry_after=None) for n in range(1, 8)]
    for n, delay in enumerate(delays, start=1):
        full = min(60, 2 * 2 ** (n - 1))
        assert full / 2 <= delay <= full
    assert backoff_seconds(1, base=2, cap=60, retry_after=30) == 30


@pytest.mark.usefixtures("bot")
async def test_scheduled_message_is_not_sent_before_its_time(
    client: httpx.AsyncClient, auth: dict[str, str], worker: Worker
) -> None:
    when = datetime.now(UTC) + timedelta(seconds=1.0)
    response = await client.post(
        "/api/v1/messaging/proactive/schedule",
        json=send_body("bot", content="Reminder: Meeting at 2pm", scheduled_for=when.isoformat()),
        headers=auth,
    )
    assert response.status_code == 201, response.text
    message = response.json()
    assert await worker.drain() == 0
    await asyncio.sleep(max(0.0, (when - datetime.now(UTC)).total_seconds()) + 0.05)
    assert await worker.drain() == 1
    sent = await detail(client, auth, message["id"])
    assert datetime.fromisoformat(sent["sent_at"]) >= when


async def test_unapproved_message_expires(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, worker: Worker
) -> None:
    await make_agent(client, auth, "intern", "INTERN")
    message = (await client.post(SEND, json=send_body("intern"), headers=auth)).json()
    async with rt.sessions.begin() as session:
        await session.execute(
            update(Message)
            .where(Message.id == message["id"])
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    await worker.drain()
    expired = await detail(client, auth, message["id"])
    assert expired["status"] == "expired"
    late = await client.post(f"/api/v1/messaging/proactive/approve/{message['id']}", headers=auth)
    assert late.status_code == 409


async def test_rejected_message_is_never_sent(
    client: httpx.AsyncClient, auth: dict[str, str], worker: Worker
) -> None:
    await make_agent(client, auth, "intern", "INTERN")
    message = (await client.post(SEND, json=send_body("intern"), headers=auth)).json()
    rejected = await client.post(
        f"/api/v1/messaging/proactive/reject/{message['id']}",
        json={"approver_user_id": "user_456", "reason": "wrong tone"},
        headers=auth,
    )
    assert rejected.status_code == 200
    assert rejected.json()["status"] == "rejected"
    await worker.drain()
    assert (await detail(client, auth, message["id"]))["status"] == "rejected"
    assert (await client.get("/api/v1/devinbox", headers=auth)).json()["items"] == []


@pytest.mark.parametrize("settings_overrides", [{"lease_seconds": 0.3}])
@pytest.mark.usefixtures("bot")
async def test_messages_leased_by_a_dead_worker_are_delivered_by_another(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    ids = [(await accepted(client, auth, content=f"m{i}"))["id"] for i in range(5)]
    dead = Worker(rt, worker_id="dead")
    claimed = await dead._claim(10)  # claims, then "dies": never sends, never completes
    assert sorted(c.id for c in claimed) == sorted(ids)

    survivor = Worker(rt, worker_id="survivor")
    assert await survivor.drain() == 0  # leases still held
    await asyncio.sleep(0.4)
    assert await survivor.drain() == 5
    async with rt.sessions() as session:
        statuses = (await session.execute(select(Message.status).where(Message.id.in_(ids)))).scalars().all()
        delivered = (await session.execute(select(func.count(DevInboxMessage.id)))).scalar_one()
    assert set(statuses) == {"sent"}
    assert delivered == 5
