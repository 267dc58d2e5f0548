"""An inbound Telegram message answered by an LLM agent that looks up the contact and schedules a follow-up:
the README's end-to-end example, checked."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import select

from herald.pipeline.worker import Worker
from herald.producers.conversations.processor import Processor
from herald.runtime import Runtime
from herald.storage.models import InboundMessage, Message
from tests.integration.agents.conftest import Fakes, call, llm_agent, register
from tests.integration.test_conversations import FAKE_ORIGIN, PROVIDERS, deliver

SENDER = "111111111"  # the fake Telegram update's sender (a private chat)


async def test_an_llm_agent_answers_a_telegram_message_and_schedules_a_follow_up(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, fakes: Fakes
) -> None:
    platform, credentials = PROVIDERS["telegram"]
    channel = (await client.post("/api/v1/channels", json={"platform": platform, "provider": "telegram",
                                                           "name": "bot", "credentials": credentials,
                                                           "base_url": FAKE_ORIGIN}, headers=auth)).json()  # fmt: skip
    contact = (await client.post("/api/v1/contacts", json={"name": "Sam Lee", "addresses": {"telegram": SENDER},
                                                           "channel_order": ["telegram"]}, headers=auth)).json()  # fmt: skip
    await register(client, auth, llm_agent("support", "AUTONOMOUS"))
    assert (
        await client.post("/api/v1/routing-rules", json={"agent_id": "support"}, headers=auth)
    ).status_code == 201
    follow_up_at = (datetime.now(UTC) + timedelta(days=3)).replace(microsecond=0).isoformat()
    fakes.llm.script([
        {"kind": "tool_calls", "tool_calls": [call("lookup_contact", query=SENDER)]},
        {"kind": "tool_calls", "tool_calls": [call("schedule_message", contact_id=contact["id"], send_at=follow_up_at,
                                                   content="How is the mower running after the tune-up?")]},
        {"kind": "reply", "content": "Thanks Sam, your tune-up is booked for Friday."},
    ])  # fmt: skip

    response = await deliver(client, "telegram", channel["id"], text="Can I book a tune-up for Friday?")
    assert response.status_code == 200, response.text
    assert await Processor(rt).run_once() == 1

    # The model was asked with the person's words and saw the contact it looked up.
    first, second, _ = fakes.model_requests()
    assert "Can I book a tune-up for Friday?" in first["messages"][1]["content"]
    assert "Sam Lee" in second["messages"][-1]["content"]
    async with rt.sessions() as session:
        [inbound] = (await session.execute(select(InboundMessage))).scalars()
        sent = {m.content: m for m in (await session.execute(select(Message))).scalars()}
    assert inbound.status == "replied"
    reply = sent["Thanks Sam, your tune-up is booked for Friday."]
    assert reply.id == inbound.reply_message_id
    follow_up = sent["How is the mower running after the tune-up?"]
    assert (follow_up.status, follow_up.recipient_id) == ("queued", SENDER)
    assert follow_up.scheduled_for is not None
    assert follow_up.scheduled_for > datetime.now(UTC) + timedelta(days=2)

    # The reply goes out on Telegram now; the follow-up waits for its time.
    await Worker(rt, worker_id="w").run_once()
    telegram = [r.json for r in fakes.providers.requests if r.path.endswith("/sendMessage")]
    assert [(m["chat_id"], m["text"]) for m in telegram] == [
        (SENDER, "Thanks Sam, your tune-up is booked for Friday.")
    ]
    runs = (await client.get("/api/v1/agents/support/runs", headers=auth)).json()["items"]
    assert [(r["woken_by"], r["status"], r["steps"]) for r in runs] == [("message", "completed", 5)]


async def test_a_failed_answer_is_retried_with_a_new_run_and_a_crashed_one_resumed(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, fakes: Fakes
) -> None:
    from sqlalchemy import update

    from herald.agents import runs

    platform, credentials = PROVIDERS["telegram"]
    channel = (await client.post("/api/v1/channels", json={"platform": platform, "provider": "telegram",
                                                           "name": "bot", "credentials": credentials,
                                                           "base_url": FAKE_ORIGIN}, headers=auth)).json()  # fmt: skip
    await register(client, auth, llm_agent("support"))
    await client.post("/api/v1/routing-rules", json={"agent_id": "support"}, headers=auth)
    fakes.llm.script([{"kind": "permanent", "status": 400, "message": "context too long"}])
    await deliver(client, "telegram", channel["id"], text="Hello?")
    processor = Processor(rt)
    assert await processor.run_once() == 1
    async with rt.sessions() as session:
        [inbound] = (await session.execute(select(InboundMessage))).scalars()
    assert inbound.status == "pending"
    assert "context too long" in (inbound.error or "")

    # The retry is due: a new run answers (the failed one stays on record, with its reason).
    async with rt.sessions.begin() as session:
        await session.execute(update(InboundMessage).values(next_attempt_at=datetime.now(UTC)))
    fakes.llm.script([{"kind": "reply", "content": "Hello! How can I help?"}])
    assert await processor.run_once() == 1
    async with rt.sessions() as session:
        [inbound] = (await session.execute(select(InboundMessage))).scalars()
    assert inbound.status == "replied"
    listed = (await client.get("/api/v1/agents/support/runs", headers=auth)).json()["items"]
    assert sorted((r["origin"], r["status"]) for r in listed) == [
        (f"inbound:{inbound.id}", "failed"), (f"inbound:{inbound.id}:retry1", "completed"),
    ]  # fmt: skip
    # Asking again for the same message (a processor that died before recording the reply) answers from the
    # completed run; the model is not asked again.
    asked = len(fakes.llm.requests)
    run_id = await runs.ensure(rt, tenant_id=inbound.tenant_id, agent_id="support", origin=f"inbound:{inbound.id}",
                               woken_by="message", task="t", retry_failed=True)  # fmt: skip
    assert run_id == next(r["id"] for r in listed if r["status"] == "completed")
    assert len(fakes.llm.requests) == asked
