"""Questions from agents answered by button and by threaded reply, reaching an external agent's callback and a
waiting LLM run; undecided requests escalating to the next channel and approver, and expiring."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import update

from herald.agents import runs
from herald.fakes.inbound import message, slack_block_action
from herald.humans import outreach
from herald.runtime import Runtime
from herald.storage.models import HumanRequest, Message
from herald.storage.types import utcnow
from tests.integration.humans.conftest import (
    AGENT_URL,
    CHANNELS,
    World,
    agent,
    approver,
    channel,
    hold,
    only_request,
    policy,
    post_inbound,
    status_of,
)

SLACK_CREDS = CHANNELS["slack"][1]
ADA_SLACK = {"platform": "slack", "recipient_id": "U0ADA00001"}
BOB_SLACK = {"platform": "slack", "recipient_id": "U0BOB00002"}


async def ask(client: httpx.AsyncClient, auth: dict[str, str], **body: Any) -> httpx.Response:
    return await client.post("/api/v1/questions", json={"agent_id": "writer", "question": "Ship the fix today?",
                                                        **body}, headers=auth)  # fmt: skip


async def due_now(rt: Runtime, *, expire: bool = False) -> None:
    """Move every open request's next check (and, with ``expire``, its expiry) into the past."""
    past = utcnow() - timedelta(seconds=1)
    values: dict[str, Any] = {"next_check_at": past}
    if expire:
        values["expires_at"] = past
    async with rt.sessions.begin() as session:
        await session.execute(update(HumanRequest).where(HumanRequest.status == "pending").values(**values))
        if expire:
            await session.execute(
                update(Message).where(Message.status == "pending_approval").values(expires_at=past)
            )


async def events(client: httpx.AsyncClient, auth: dict[str, str], type_: str) -> list[dict[str, Any]]:
    response = await client.get("/api/v1/events", params={"types": type_}, headers=auth)
    assert response.status_code == 200, response.text
    return [e for e in response.json()["items"] if e["type"] == type_]


async def test_a_question_answered_by_button_reaches_the_external_agents_callback(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, world: World
) -> None:
    interface = await channel(client, auth, "slack")
    await agent(client, auth, level="SUPERVISED", callback_url=AGENT_URL)
    ada = await approver(client, auth, "Ada", ADA_SLACK)
    asked = await ask(client, auth, options=["Yes", "Not today"], approver_ids=[ada], timeout_seconds=600)
    assert asked.status_code == 201, asked.text
    question = asked.json()
    assert question["kind"] == "question"
    assert question["status"] == "pending"
    await world.settle()
    [sent] = [r for r in world.sent("slack") if r.path.endswith("chat.postMessage")]
    [actions] = [b for b in sent.json["blocks"] if b["type"] == "actions"]
    assert [e["value"] for e in actions["elements"]] == [f"hl:{question['id']}:o1", f"hl:{question['id']}:o2"]
    press = slack_block_action(SLACK_CREDS, value=f"hl:{question['id']}:o2", label="Not today",
                               user_id="U0ADA00001", channel_id="D0ADA00001", message_ts="1733390000.000200")  # fmt: skip
    assert (await post_inbound(client, interface["id"], press)).status_code == 200
    await world.take_inbound()
    answered = (await client.get(f"/api/v1/questions/{question['id']}", headers=auth)).json()
    assert answered["status"] == "answered"
    assert answered["answer"]["text"] == "Not today"
    assert answered["answer"]["answered_by"] == "Ada"
    assert await world.notify() == 1
    [callback] = world.callbacks
    assert callback["type"] == "question.answered"
    assert callback["data"]["text"] == "Not today"
    assert callback["data"]["question_id"] == question["id"]
    assert await world.notify() == 0  # told once
    assert [e["data"]["id"] for e in await events(client, auth, "question.answered")] == [question["id"]]


async def test_a_question_answered_by_threaded_reply_resumes_the_waiting_llm_run(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, world: World
) -> None:
    interface = await channel(client, auth, "telegram")
    creds = CHANNELS["telegram"][1]
    ada = await approver(client, auth, "Ada", {"platform": "telegram", "recipient_id": "5550001"})
    body = {"id": "writer", "maturity_level": "AUTONOMOUS", "kind": "llm", "api_key": "sk-test-123",
            "llm": {"base_url": "http://llm.fake/v1", "model": "fake-model"}}  # fmt: skip
    assert (await client.post("/api/v1/agents", json=body, headers=auth)).status_code == 201
    world.llm.script([
        {"kind": "tool_calls", "tool_calls": [{"name": "ask_human", "arguments": {
            "question": "Which region should I deploy to?", "approver_ids": [ada]}}]},
        {"kind": "reply", "content": "Deploying to eu-west."},
    ])  # fmt: skip
    started = await client.post("/api/v1/agents/writer/runs", json={"task": "Deploy the fix"}, headers=auth)
    run_id = started.json()["id"]
    await runs.run_due(rt)
    run = (await client.get(f"/api/v1/agents/writer/runs/{run_id}", headers=auth)).json()
    assert run["status"] == "waiting", run
    await world.settle()
    question = await only_request(client, auth, "question")
    [copy] = question["deliveries"]
    sent = (await client.get(f"/api/v1/messages/{copy['message_id']}", headers=auth)).json()
    assert sent["status"] == "sent"
    assert "Which region" in sent["content"]
    reply = message("telegram", creds, text="eu-west please", sender_id="5550001",
                    reply_to_message_id=int(sent["provider_message_id"]))  # fmt: skip
    assert (await post_inbound(client, interface["id"], reply)).status_code == 200
    await world.take_inbound()
    assert (await client.get(f"/api/v1/questions/{question['id']}", headers=auth)).json()[
        "status"
    ] == "answered"
    await runs.run_due(rt)
    run = (await client.get(f"/api/v1/agents/writer/runs/{run_id}", headers=auth)).json()
    assert run["status"] == "completed", run
    assert run["answer"] == "Deploying to eu-west."
    second = world.llm.requests[1].json
    tool_message = second["messages"][-1]
    assert tool_message["role"] == "tool"
    assert json.loads(tool_message["content"])["text"] == "eu-west please"
    # The conversation's agent never saw the reply: it was the answer, not a new message.
    assert [s["payload"]["name"] for s in run["step_log"] if s["kind"] == "tool"] == ["ask_human"]


async def test_a_student_cannot_ask_and_a_question_needs_someone_to_ask(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, world: World
) -> None:
    await agent(client, auth, level="STUDENT")
    ada = await approver(client, auth, "Ada", ADA_SLACK)
    refused = await ask(client, auth, approver_ids=[ada])
    assert refused.status_code == 403
    assert refused.json()["errors"][0]["field"] == "agent_id"
    await client.patch("/api/v1/agents/writer", json={"maturity_level": "INTERN"}, headers=auth)
    nobody = await ask(client, auth)
    assert nobody.status_code == 422
    assert nobody.json()["errors"][0]["field"] == "approver_ids"
    unknown = await ask(client, auth, approver_ids=["apv_nope"])
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["field"] == "approver_ids"


async def test_an_undecided_request_escalates_to_the_next_channel_and_the_next_approver(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, world: World
) -> None:
    slack = await channel(client, auth, "slack")
    await channel(client, auth, "twilio")
    await agent(client, auth)
    ada = await approver(client, auth, "Ada", ADA_SLACK, {"platform": "sms", "recipient_id": "+15550001111"})
    bob = await approver(client, auth, "Bob", BOB_SLACK)
    await policy(client, auth, [ada], escalate_after_seconds=600, escalate_to=[bob])
    message_id = await hold(client, auth, "slack", "C0CUSTOMER")
    await world.settle()
    assert [d["platform"] for d in (await only_request(client, auth))["deliveries"]] == ["slack"]
    assert await outreach.escalate_pass(rt) == 0  # not yet
    await due_now(rt)
    assert await outreach.escalate_pass(rt) == 1
    await world.settle()
    request = await only_request(client, auth)
    assert request["level"] == 1
    assert sorted((d["approver_id"], d["platform"], d["level"]) for d in request["deliveries"]) == sorted(
        [(ada, "slack", 0), (ada, "sms", 1), (bob, "slack", 1)]
    )
    assert [r.form["To"][0] for r in world.sent("twilio") if r.form] == ["+15550001111"]
    [escalated] = await events(client, auth, "approval.escalated")
    assert escalated["data"]["level"] == 1
    press = slack_block_action(SLACK_CREDS, value=f"hl:{request['id']}:a", label="Approve", user_id="U0BOB00002",
                               channel_id="D0BOB00002", message_ts="1733390000.000300")  # fmt: skip
    await post_inbound(client, slack["id"], press)
    await world.take_inbound()
    assert await status_of(client, auth, message_id) == "queued"


async def test_an_undecided_request_expires_and_the_agent_is_told(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, world: World
) -> None:
    await channel(client, auth, "slack")
    await agent(client, auth, callback_url=AGENT_URL)
    ada = await approver(client, auth, "Ada", ADA_SLACK)
    await policy(client, auth, [ada], expires_after_seconds=3600)
    message_id = await hold(client, auth, "slack", "C0CUSTOMER")
    await world.settle()
    held = (await client.get(f"/api/v1/messages/{message_id}", headers=auth)).json()
    assert held["expires_at"] is not None
    await due_now(rt, expire=True)
    assert await outreach.escalate_pass(rt) == 1
    assert await status_of(client, auth, message_id) == "expired"
    assert (await only_request(client, auth))["status"] == "expired"
    assert any(r.path.endswith("chat.update") for r in world.sent("slack"))  # Ada's copy shows it expired
    await world.notify()
    [callback] = world.callbacks
    assert callback["type"] == "approval.decided"
    assert callback["data"]["decision"] == "expired"


async def test_an_unanswered_question_escalates_then_expires_and_the_agent_hears_of_it(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, world: World
) -> None:
    await channel(client, auth, "slack")
    await agent(client, auth, callback_url=AGENT_URL)
    ada = await approver(client, auth, "Ada", ADA_SLACK)
    bob = await approver(client, auth, "Bob", BOB_SLACK)
    asked = (await ask(client, auth, approver_ids=[ada], escalate_to=[bob], timeout_seconds=60)).json()
    await world.settle()
    await due_now(rt)
    await outreach.escalate_pass(rt)
    await world.settle()
    question = (await client.get(f"/api/v1/questions/{asked['id']}", headers=auth)).json()
    assert question["status"] == "pending"
    assert sorted(d["approver_id"] for d in question["deliveries"]) == sorted([ada, bob])
    await due_now(rt, expire=True)
    await outreach.escalate_pass(rt)
    assert (await client.get(f"/api/v1/questions/{asked['id']}", headers=auth)).json()["status"] == "expired"
    await world.notify()
    [callback] = world.callbacks
    assert callback["type"] == "question.expired"
    assert callback["data"]["status"] == "expired"
    assert [e["data"]["id"] for e in await events(client, auth, "question.expired")] == [asked["id"]]
