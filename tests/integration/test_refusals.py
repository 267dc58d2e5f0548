"""The pipeline records every refusal itself: a STUDENT agent's message refused through any producer leaves its
``message.blocked`` audit entry and event, exactly once, whatever the producer does with its own transaction."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from herald.producers.conversations.processor import Processor
from herald.producers.monitors import engine
from herald.runtime import Runtime
from herald.storage.models import Monitor
from tests.conftest import make_agent, send_body, use_transport
from tests.integration.test_conversations import World, deliver, echo, setup

AGENT = "pupil"
CALLBACK = {"callback_url": "https://agent.example/cb"}


async def student(client: httpx.AsyncClient, auth: dict[str, str], **extra: Any) -> None:
    response = await client.post(
        "/api/v1/agents", json={"id": AGENT, "maturity_level": "STUDENT", **extra}, headers=auth
    )
    assert response.status_code == 201, response.text


async def assert_refusal_recorded(
    client: httpx.AsyncClient, auth: dict[str, str], producer: str, count: int = 1
) -> None:
    """One audit entry and one event per refused message, naming the agent and the producer that asked."""
    audit = (await client.get("/api/v1/audit?action=message.blocked", headers=auth)).json()["items"]
    assert len(audit) == count, audit
    assert {(a["object_type"], a["object_id"]) for a in audit} == {("agent", AGENT)}
    assert {a["detail"]["producer"] for a in audit} == {producer}
    assert {a["detail"]["maturity_level"] for a in audit} == {"STUDENT"}
    assert all(a["actor"].startswith(f"{producer}:") for a in audit)
    events = (await client.get("/api/v1/events?types=message.blocked", headers=auth)).json()["items"]
    assert len(events) == count, events
    assert {e["data"]["id"] for e in events} == {AGENT}


async def test_send_api(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    await student(client, auth)
    response = await client.post("/api/v1/messaging/proactive/send", json=send_body(AGENT), headers=auth)
    assert response.status_code == 403
    await assert_refusal_recorded(client, auth, "api_key")


async def test_send_api_with_idempotency_key_records_the_refusal_once(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await student(client, auth)
    headers = {**auth, "Idempotency-Key": "k-1"}
    for _ in range(2):
        response = await client.post(
            "/api/v1/messaging/proactive/send", json=send_body(AGENT), headers=headers
        )
        assert response.status_code == 403
    await assert_refusal_recorded(client, auth, "api_key", count=2)  # each request is a decision


async def test_bulk(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    await student(client, auth)
    await make_agent(client, auth, "bot", "AUTONOMOUS")
    items = [send_body(AGENT), send_body("bot"), send_body(AGENT)]
    response = await client.post("/api/v1/messages/bulk", json={"messages": items}, headers=auth)
    assert response.status_code in (200, 207), response.text
    await assert_refusal_recorded(client, auth, "api_key", count=2)


async def test_schedule(client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime) -> None:
    await student(client, auth)
    body = {"agent_id": AGENT, "platform": "slack", "recipient_id": "C12345", "template": "Daily report",
            "schedule_type": "recurring", "cron_expression": "0 9 * * *"}  # fmt: skip
    created = await client.post("/api/v1/messaging/schedule/create", json=body, headers=auth)
    assert created.status_code == 201, created.text
    ran = await client.post(f"/api/proactive/schedules/{created.json()['id']}/run", headers=auth)
    assert ran.status_code == 200, ran.text
    assert ran.json()["execution"]["outcome"] == "failed"
    await assert_refusal_recorded(client, auth, "schedule")


async def test_agent_task(client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime) -> None:
    use_transport(rt, lambda _: httpx.Response(200, json={"reply": "Daily metrics: all green"}))
    await student(client, auth, **CALLBACK)
    body = {"name": "Daily Report", "agent_id": AGENT, "task_description": "Generate the report",
            "cron_expression": "0 9 * * *", "platform": "slack", "recipient_id": "C12345"}  # fmt: skip
    created = await client.post("/api/proactive/schedules", json=body, headers=auth)
    assert created.status_code == 201, created.text
    ran = await client.post(f"/api/proactive/schedules/{created.json()['id']}/run", headers=auth)
    assert ran.status_code == 200, ran.text
    assert ran.json()["execution"]["outcome"] == "failed"
    await assert_refusal_recorded(client, auth, "schedule")


async def test_monitor_alert(client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime) -> None:
    await student(client, auth)
    body = {"agent_id": AGENT, "name": "Inbox", "condition_type": "inbox_volume",
            "threshold_config": {"metric": "unread_count", "operator": ">", "value": 100},
            "platforms": [{"platform": "slack", "recipient_id": "C12345"}, {"platform": "telegram", "recipient_id": "42"}],
            "check_interval_seconds": 300}  # fmt: skip
    created = await client.post("/api/v1/monitoring/condition/create", json=body, headers=auth)
    assert created.status_code == 201, created.text
    pushed = await client.post(
        "/api/v1/monitoring/values", json={"name": "unread_count", "value": 500}, headers=auth
    )
    assert pushed.status_code == 201
    async with rt.sessions.begin() as session:
        await session.execute(update(Monitor).values(next_check_at=datetime.now(UTC)))
    await engine.run_due(rt)
    (alert,) = (
        await client.get(f"/api/v1/monitoring/alerts?monitor_id={created.json()['id']}", headers=auth)
    ).json()["items"]
    assert alert["status"] == "failed"
    await assert_refusal_recorded(client, auth, "monitor", count=2)  # one per target


async def test_trigger(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    await student(client, auth)
    body = {"name": "Deploy", "trigger_type": "manual", "config": {}, "agent_id": AGENT,
            "task_template": "Deployed {version}",
            "action": {"type": "message", "platform": "slack", "recipient_id": "C12345"}}  # fmt: skip
    created = await client.post("/api/proactive/triggers", json=body, headers=auth)
    assert created.status_code == 201, created.text
    fired = await client.post(
        f"/api/proactive/triggers/{created.json()['id']}/fire",
        json={"payload": {"version": "v1"}},
        headers=auth,
    )
    assert fired.status_code in (200, 201), fired.text
    assert fired.json()["outcome"] == "failed"
    await assert_refusal_recorded(client, auth, "trigger")


async def test_inbound_reply(client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime) -> None:
    channel = await setup(client, auth, "telegram", level="STUDENT")
    World(rt, echo)
    response = await deliver(client, "telegram", channel["id"], text="hi")
    assert response.status_code == 200, response.text
    await Processor(rt).run_once()
    audit = (await client.get("/api/v1/audit?action=message.blocked", headers=auth)).json()["items"]
    assert [(a["object_id"], a["detail"]["producer"]) for a in audit] == [("support", "agent")]
    events = (await client.get("/api/v1/events?types=message.blocked", headers=auth)).json()["items"]
    assert [e["data"]["id"] for e in events] == ["support"]


async def test_conversation_reply_api(client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime) -> None:
    channel = await setup(client, auth, "telegram")
    World(rt, echo)
    await deliver(client, "telegram", channel["id"], text="hi")
    await Processor(rt).run_once()
    await student(client, auth)
    conversation = (await client.get("/api/v1/conversations", headers=auth)).json()["items"][0]
    response = await client.post(
        f"/api/v1/conversations/{conversation['id']}/reply",
        json={"text": "x", "agent_id": AGENT},
        headers=auth,
    )
    assert response.status_code == 403, response.text
    await assert_refusal_recorded(client, auth, "api_key")


async def test_otp_asked_by_an_agent(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    await student(client, auth)
    response = await client.post(
        "/api/v1/otp/send", json={"phone": "+15551234567", "agent_id": AGENT}, headers=auth
    )
    assert response.status_code == 403, response.text
    await assert_refusal_recorded(client, auth, "api_key")
    # The refused code left no verification behind: a later send by the tenant itself starts fresh.
    response = await client.post("/api/v1/otp/send", json={"phone": "+15551234567"}, headers=auth)
    assert response.status_code == 201, response.text
    assert response.json()["sends"] == 1


@pytest.mark.parametrize("level", ["INTERN", "SUPERVISED", "AUTONOMOUS"])
async def test_no_refusal_no_record(client: httpx.AsyncClient, auth: dict[str, str], level: str) -> None:
    await make_agent(client, auth, AGENT, level)
    response = await client.post("/api/v1/messaging/proactive/send", json=send_body(AGENT), headers=auth)
    assert response.status_code == 201
    assert (await client.get("/api/v1/audit?action=message.blocked", headers=auth)).json()["items"] == []
