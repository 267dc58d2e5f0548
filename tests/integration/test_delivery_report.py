"""``GET /api/v1/messages/{id}/report``: status, channel, every attempt, state-change times (receipts and human
decisions included) and cost, for the tenant's own messages only."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
import pytest

from herald.pipeline.worker import Worker
from herald.providers.receipts import Receipt, apply
from herald.runtime import Runtime
from herald.storage.models import Message
from tests.conftest import make_agent, new_tenant, send_body, use_transport, webhook_channel

SEND = "/api/v1/messaging/proactive/send"


async def report(client: httpx.AsyncClient, auth: dict[str, str], message_id: str) -> dict[str, Any]:
    response = await client.get(f"/api/v1/messages/{message_id}/report", headers=auth)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def send(client: httpx.AsyncClient, auth: dict[str, str], agent_id: str, **extra: Any) -> str:
    response = await client.post(SEND, json=send_body(agent_id, **extra), headers=auth)
    assert response.status_code == 201, response.text
    message_id: str = response.json()["id"]
    return message_id


@pytest.fixture
async def agents(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    await make_agent(client, auth, "bot", "AUTONOMOUS")
    await make_agent(client, auth, "intern", "INTERN")


@pytest.mark.usefixtures("agents")
async def test_report_of_a_message_retried_sent_delivered_and_read(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, worker: Worker
) -> None:
    answers = iter([httpx.Response(503, text="busy"), httpx.Response(200, json={"id": "remote-7"})])
    use_transport(rt, lambda _: next(answers))
    channel = await webhook_channel(client, auth, cost_per_message=0.05)
    message_id = await send(client, auth, "bot")
    await worker.drain()

    sent = await report(client, auth, message_id)
    assert sent["message_id"] == message_id
    assert sent["status"] == "sent"
    assert sent["channel"] == {
        "platform": "slack", "channel_id": channel["id"], "provider": "webhook", "recipient_id": "C12345",
        "simulated": False, "route_step": 0, "fallback_used": False,
    }  # fmt: skip
    assert sent["attempt_count"] == 2
    first, second = sent["attempts"]
    assert (first["number"], first["outcome"], first["provider"]) == (1, "retry", "webhook")
    assert "503" in first["error"]
    assert (second["number"], second["outcome"], second["provider_message_id"]) == (2, "sent", "remote-7")
    assert second["error"] is None
    assert all(a["duration_ms"] >= 0 and datetime.fromisoformat(a["time"]) for a in sent["attempts"])
    assert sent["cost"] == pytest.approx(0.05)
    assert sent["provider_message_id"] == "remote-7"
    times = sent["timestamps"]
    assert times["created_at"] <= times["sent_at"]
    assert times["delivered_at"] is None
    assert times["read_at"] is None

    async with rt.sessions.begin() as session:
        row = await session.get(Message, message_id)
        assert row is not None
        await apply(session, row.tenant_id, channel["id"], [Receipt("remote-7", "delivered")])
    async with rt.sessions.begin() as session:
        await apply(session, row.tenant_id, channel["id"], [Receipt("remote-7", "read")])
    read = await report(client, auth, message_id)
    assert read["status"] == "read"
    assert (
        read["timestamps"]["sent_at"] <= read["timestamps"]["delivered_at"] <= read["timestamps"]["read_at"]
    )


@pytest.mark.usefixtures("agents")
async def test_report_shows_human_decisions_and_cancellation(
    client: httpx.AsyncClient, auth: dict[str, str], worker: Worker
) -> None:
    approved = await send(client, auth, "intern")
    rejected = await send(client, auth, "intern")
    cancelled = await send(client, auth, "intern")
    held = await report(client, auth, approved)
    assert held["status"] == "pending_approval"
    assert held["attempts"] == []
    assert held["timestamps"]["approved_at"] is None

    decide = "/api/v1/messaging/proactive"
    body = {"approver_user_id": "user_456"}
    assert (await client.post(f"{decide}/approve/{approved}", json=body, headers=auth)).status_code == 200
    assert (await client.post(f"{decide}/reject/{rejected}", json=body, headers=auth)).status_code == 200
    assert (await client.post(f"/api/v1/messages/{cancelled}/cancel", headers=auth)).status_code == 200
    await worker.drain()

    ok = await report(client, auth, approved)
    assert ok["status"] == "sent"
    assert ok["approved_by"] == "user_456"
    assert ok["timestamps"]["created_at"] <= ok["timestamps"]["approved_at"] <= ok["timestamps"]["sent_at"]
    assert ok["channel"]["simulated"] is True  # the dev inbox
    assert ok["channel"]["provider"] == "devinbox"
    no = await report(client, auth, rejected)
    assert (no["status"], no["attempt_count"], no["timestamps"]["sent_at"]) == ("rejected", 0, None)
    assert no["timestamps"]["rejected_at"] is not None
    gone = await report(client, auth, cancelled)
    assert gone["status"] == "cancelled"
    assert gone["timestamps"]["cancelled_at"] is not None


@pytest.mark.usefixtures("agents")
async def test_report_is_tenant_scoped(client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime) -> None:
    message_id = await send(client, auth, "bot")
    other = await new_tenant(rt, "globex")
    for headers, wanted in ((other, 404), (auth, 200)):
        response = await client.get(f"/api/v1/messages/{message_id}/report", headers=headers)
        assert response.status_code == wanted, response.text
    missing = await client.get("/api/v1/messages/msg_nope/report", headers=auth)
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert (await client.get(f"/api/v1/messages/{message_id}/report")).status_code == 401
