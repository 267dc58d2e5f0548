"""Each maturity tier end to end through the API (seed 000's governance table)."""

from __future__ import annotations

import httpx

from herald.pipeline.worker import Worker
from tests.conftest import make_agent, send_body

SEND = "/api/v1/messaging/proactive/send"


async def test_student_is_blocked_with_problem_details_and_audited(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await make_agent(client, auth, "agent_student", "STUDENT")
    response = await client.post(SEND, json=send_body("agent_student"), headers=auth)
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 403
    assert problem["errors"][0]["field"] == "agent_id"
    history = (await client.get("/api/v1/messaging/proactive/history", headers=auth)).json()
    assert history["items"] == []
    audit = (await client.get("/api/v1/audit?action=message.blocked", headers=auth)).json()
    assert [e["object_id"] for e in audit["items"]] == ["agent_student"]


async def test_intern_waits_for_approval_then_is_delivered(
    client: httpx.AsyncClient, auth: dict[str, str], worker: Worker
) -> None:
    await make_agent(client, auth, "agent_intern", "INTERN")
    response = await client.post(SEND, json=send_body("agent_intern"), headers=auth)
    assert response.status_code == 201
    message = response.json()
    assert message["status"] == "pending_approval"
    assert message["expires_at"] is not None

    assert await worker.drain() == 0  # nothing leaves before a human says so
    queue = (await client.get("/api/v1/messaging/proactive/queue?agent_id=agent_intern", headers=auth)).json()
    assert [m["id"] for m in queue["items"]] == [message["id"]]

    approved = await client.post(
        f"/api/v1/messaging/proactive/approve/{message['id']}",
        json={"approver_user_id": "user_456"},
        headers=auth,
    )
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "queued"
    assert approved.json()["approved_by"] == "user_456"
    assert await worker.drain() == 1

    detail = (await client.get(f"/api/v1/messages/{message['id']}", headers=auth)).json()
    assert detail["status"] == "sent"
    assert detail["sent_at"] is not None
    inbox = (await client.get("/api/v1/devinbox?platform=slack", headers=auth)).json()["items"]
    assert [(i["recipient_id"], i["content"]) for i in inbox] == [
        ("C12345", "Hello! I have important updates.")
    ]
    queue = (await client.get("/api/v1/messaging/proactive/queue", headers=auth)).json()
    assert queue["items"] == []


async def test_supervised_is_sent_and_flagged_for_review(
    client: httpx.AsyncClient, auth: dict[str, str], worker: Worker
) -> None:
    await make_agent(client, auth, "agent_sup", "SUPERVISED")
    message = (await client.post(SEND, json=send_body("agent_sup"), headers=auth)).json()
    assert message["status"] == "queued"
    assert await worker.drain() == 1
    flagged = (await client.get("/api/v1/audit?needs_review=true", headers=auth)).json()["items"]
    assert [(e["action"], e["object_id"]) for e in flagged] == [("message.accepted", message["id"])]


async def test_autonomous_is_sent_without_review_flag(
    client: httpx.AsyncClient, auth: dict[str, str], worker: Worker
) -> None:
    await make_agent(client, auth, "agent_auto", "AUTONOMOUS")
    message = (await client.post(SEND, json=send_body("agent_auto"), headers=auth)).json()
    assert message["status"] == "queued"
    assert await worker.drain() == 1
    sent = (await client.get(f"/api/v1/messages/{message['id']}", headers=auth)).json()
    assert sent["status"] == "sent"
    assert sent["attempt_log"][0]["outcome"] == "sent"
    flagged = (await client.get("/api/v1/audit?needs_review=true", headers=auth)).json()["items"]
    assert flagged == []


async def test_level_change_takes_effect_at_once(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    await make_agent(client, auth, "agent_x", "AUTONOMOUS")
    assert (await client.post(SEND, json=send_body("agent_x"), headers=auth)).status_code == 201
    patched = await client.patch("/api/v1/agents/agent_x", json={"maturity_level": "STUDENT"}, headers=auth)
    assert patched.status_code == 200
    assert (await client.post(SEND, json=send_body("agent_x"), headers=auth)).status_code == 403
    changes = (await client.get("/api/v1/audit?action=agent.updated", headers=auth)).json()["items"]
    assert changes[0]["detail"]["maturity_level"] == ["AUTONOMOUS", "STUDENT"]
