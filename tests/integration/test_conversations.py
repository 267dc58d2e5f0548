"""Conversations end to end: a signed inbound webhook in each provider's real shape is stored, routed to the
agent with its session, and the agent's reply goes back through the pipeline to the same provider."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from herald.fakes import create_fake_app
from herald.fakes.inbound import DISCORD_TEST_PUBLIC_KEY, discord_bot, message, signed
from herald.pipeline.worker import Worker
from herald.producers.conversations.processor import Processor
from herald.providers.fakebase import FakeState
from herald.runtime import Runtime
from herald.storage.models import Channel, Conversation, InboundMessage, Message
from tests.conftest import new_tenant

AGENT_URL = "https://agent.example/hook"
FAKE_ORIGIN = "http://providers.fake"

# provider -> (platform, credentials, sender or chat that a reply goes to)
PROVIDERS: dict[str, tuple[str, dict[str, Any]]] = {
    "whatsapp_cloud": ("whatsapp", {"access_token": "EAAG" + "x" * 20, "phone_number_id": "106540352242922",
                                    "app_secret": "meta-app-secret", "verify_token": "verify-me"}),
    "messenger": ("messenger", {"page_access_token": "EAAG" + "y" * 20, "page_id": "1234567890",
                                "app_secret": "meta-app-secret"}),
    "slack": ("slack", {"bot_token": "xoxb-" + "1" * 20, "signing_secret": "8f742231b10e8888abcd99yyyzzz85a5"}),
    "telegram": ("telegram", {"bot_token": "123456:" + "A" * 35, "secret_token": "tg-secret-token"}),
    "twilio": ("sms", {"account_sid": "AC" + "0" * 32, "auth_token": "twilio-auth-token",
                       "from_number": "+15017122661"}),
    "line": ("line", {"channel_access_token": "line-token-" + "z" * 20, "channel_secret": "line-channel-secret"}),
    "discord_bot": ("discord", {"bot_token": "discord." + "b" * 30, "public_key": DISCORD_TEST_PUBLIC_KEY}),
}  # fmt: skip


class World:
    """The agent fake and the provider fakes behind the runtime's HTTP client."""

    def __init__(self, rt: Runtime, answer: Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]) -> None:
        self.fake = FakeState()
        self.calls: list[httpx.Request] = []
        providers = httpx.ASGITransport(app=create_fake_app(self.fake))

        async def handle(request: httpx.Request) -> httpx.Response:
            if request.url.host == "agent.example":
                self.calls.append(request)
                return httpx.Response(200, json=await answer(json.loads(request.content)["data"]))
            return await providers.handle_async_request(request)

        rt.http = httpx.AsyncClient(transport=httpx.MockTransport(handle))

    def agent_bodies(self) -> list[dict[str, Any]]:
        return [json.loads(r.content)["data"] for r in self.calls]


async def echo(data: dict[str, Any]) -> dict[str, Any]:
    return {"reply": f"You said: {data['message']['text']}"}


async def setup(
    client: httpx.AsyncClient, auth: dict[str, str], provider: str, level: str = "AUTONOMOUS"
) -> dict[str, Any]:
    platform, credentials = PROVIDERS[provider]
    response = await client.post("/api/v1/agents", json={"id": "support", "maturity_level": level,
                                                         "callback_url": AGENT_URL}, headers=auth)  # fmt: skip
    assert response.status_code == 201, response.text
    response = await client.post("/api/v1/channels", json={"platform": platform, "provider": provider, "name": provider,
                                                           "credentials": credentials, "base_url": FAKE_ORIGIN},
                                 headers=auth)  # fmt: skip
    assert response.status_code == 201, response.text
    channel: dict[str, Any] = response.json()
    response = await client.post("/api/v1/routing-rules", json={"agent_id": "support"}, headers=auth)
    assert response.status_code == 201, response.text
    return channel


def hook(channel_id: str) -> str:
    return f"/api/v1/interfaces/{channel_id}/webhook"


async def deliver(
    client: httpx.AsyncClient, provider: str, channel_id: str, secret: str | None = None, **fields: Any
) -> httpx.Response:
    url = f"http://herald.test{hook(channel_id)}"
    extra = {"url": url} if provider == "twilio" else {}
    request = message(provider, PROVIDERS[provider][1], secret=secret, **extra, **fields)
    return await client.post(hook(channel_id), content=request.body, headers=request.headers)


async def stored(rt: Runtime) -> int:
    async with rt.sessions() as session:
        return int((await session.execute(select(func.count()).select_from(InboundMessage))).scalar_one())


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
async def test_inbound_reaches_the_agent_and_the_reply_reaches_the_provider(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, provider: str
) -> None:
    channel = await setup(client, auth, provider)
    world = World(rt, echo)
    response = await deliver(client, provider, channel["id"], text="Where is my order?")
    assert response.status_code == 200, response.text
    assert await Processor(rt).run_once() == 1
    [body] = world.agent_bodies()
    said = body["message"]["text"]  # Discord: the slash command as typed, "/ask text:..."
    assert said.endswith("Where is my order?")
    assert body["interface"] == {
        "channel_id": channel["id"],
        "platform": channel["platform"],
        "provider": provider,
    }
    assert world.calls[0].headers["webhook-signature"].startswith("v1,")
    await Worker(rt, worker_id="w").drain()
    sent = [r for r in world.fake.requests if f"You said: {said}" in r.body + json.dumps(r.form)]
    assert len(sent) == 1, [r.path for r in world.fake.requests]
    conversations = (await client.get("/api/v1/conversations", headers=auth)).json()["items"]
    assert len(conversations) == 1
    history = (
        await client.get(f"/api/v1/conversations/{conversations[0]['id']}/messages", headers=auth)
    ).json()
    assert [(h["direction"], h["text"]) for h in history["items"]] == [
        ("inbound", said),
        ("outbound", f"You said: {said}"),
    ]
    assert history["items"][1]["status"] == "sent"


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
async def test_wrong_signature_is_401_and_stores_nothing(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, provider: str
) -> None:
    channel = await setup(client, auth, provider)
    forged = "11" * 32 if provider == "discord_bot" else "not-the-secret"
    response = await deliver(client, provider, channel["id"], secret=forged)
    assert response.status_code == 401, response.text
    assert await stored(rt) == 0


async def test_a_correctly_signed_discord_interaction_an_hour_old_is_401_and_stores_nothing(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    channel = await setup(client, auth, "discord_bot")
    credentials = PROVIDERS["discord_bot"][1]
    old = discord_bot(credentials, text="replayed", signed_at=int(time.time()) - 3600)
    response = await client.post(hook(channel["id"]), content=old.body, headers=old.headers)
    assert response.status_code == 401, response.text
    assert "X-Signature-Timestamp" in response.json()["detail"]
    assert await stored(rt) == 0
    fresh = discord_bot(credentials, text="fresh")
    response = await client.post(hook(channel["id"]), content=fresh.body, headers=fresh.headers)
    assert response.status_code == 200, response.text
    assert await stored(rt) == 1


async def test_a_providers_repeat_is_stored_once(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    channel = await setup(client, auth, "telegram")
    world = World(rt, echo)
    for _ in range(3):
        response = await deliver(client, "telegram", channel["id"], message_id=77)
        assert response.status_code == 200
    assert await stored(rt) == 1
    await Processor(rt).run_once()
    assert len(world.calls) == 1


async def test_session_context_carries_the_last_interactions(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    channel = await setup(client, auth, "telegram")
    world = World(rt, echo)
    processor = Processor(rt)
    for i in range(4):
        await deliver(client, "telegram", channel["id"], text=f"message {i}", message_id=i + 1)
        await processor.run_once()
    last = world.agent_bodies()[-1]
    history = [(h["direction"], h["text"]) for h in last["session"]["history"]]
    # The default keeps three interactions: the previous message, its reply and the one before that reply.
    assert history == [
        ("outbound", "You said: message 1"),
        ("inbound", "message 2"),
        ("outbound", "You said: message 2"),
    ]


async def test_messages_of_one_conversation_reach_the_agent_in_order_while_others_proceed(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    channel = await setup(client, auth, "telegram")
    release = asyncio.Event()
    order: list[str] = []

    async def slow_for_ada(data: dict[str, Any]) -> dict[str, Any]:
        if data["message"]["sender_id"] == "111" and not release.is_set():
            await release.wait()
        order.append(data["message"]["text"])
        return {}

    World(rt, slow_for_ada)
    for i in range(3):
        await deliver(client, "telegram", channel["id"], text=f"ada {i}", sender_id="111", message_id=i + 1)
    await deliver(client, "telegram", channel["id"], text="bob 0", sender_id="222", message_id=1)
    processor = Processor(rt)
    first = asyncio.create_task(processor.run_once())
    for _ in range(100):
        if order:
            break
        await asyncio.sleep(0.01)
    assert order == ["bob 0"]  # Ada's slow agent call does not hold Bob's conversation up
    release.set()
    await first
    while await processor.run_once():
        pass
    assert order == ["bob 0", "ada 0", "ada 1", "ada 2"]


async def test_an_interns_reply_waits_for_approval(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    channel = await setup(client, auth, "telegram", level="INTERN")
    World(rt, echo)
    await deliver(client, "telegram", channel["id"], text="hi")
    await Processor(rt).run_once()
    conversation = (await client.get("/api/v1/conversations", headers=auth)).json()["items"][0]
    items = (await client.get(f"/api/v1/conversations/{conversation['id']}/messages", headers=auth)).json()[
        "items"
    ]
    assert [(i["direction"], i["status"]) for i in items] == [
        ("inbound", "replied"),
        ("outbound", "pending_approval"),
    ]


async def test_a_later_reply_through_the_api_goes_to_the_same_chat(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    channel = await setup(client, auth, "telegram")
    world = World(rt, lambda _: asyncio.sleep(0, {}))
    await deliver(client, "telegram", channel["id"], text="call me back", sender_id="4242", message_id=99)
    await Processor(rt).run_once()
    conversation = (await client.get("/api/v1/conversations", headers=auth)).json()["items"][0]
    response = await client.post(f"/api/v1/conversations/{conversation['id']}/reply", json={"text": "Here I am"},
                                 headers=auth)  # fmt: skip
    assert response.status_code == 201, response.text
    assert response.json()["recipient_id"] == "4242"
    await Worker(rt, worker_id="w").drain()
    [sent] = [r for r in world.fake.requests if "Here I am" in r.body]
    assert sent.json["chat_id"] in (4242, "4242")
    assert sent.json["reply_parameters"]["message_id"] == 99  # threaded: a reply to the message it answers
    other = await new_tenant(rt, "globex")
    assert (await client.get(f"/api/v1/conversations/{conversation['id']}", headers=other)).status_code == 404
    response = await client.post(
        f"/api/v1/conversations/{conversation['id']}/reply", json={"text": "x"}, headers=other
    )
    assert response.status_code == 404


async def test_routing_rules_pick_by_pattern_then_default(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    channel = await setup(client, auth, "telegram")
    response = await client.post("/api/v1/agents", json={"id": "billing", "maturity_level": "AUTONOMOUS",
                                                         "callback_url": AGENT_URL}, headers=auth)  # fmt: skip
    assert response.status_code == 201
    response = await client.post("/api/v1/routing-rules", json={"agent_id": "billing", "pattern": "(?i)invoice",
                                                               "priority": 10}, headers=auth)  # fmt: skip
    assert response.status_code == 201
    World(rt, echo)
    await deliver(client, "telegram", channel["id"], text="Where is my INVOICE?", sender_id="1", message_id=1)
    await deliver(client, "telegram", channel["id"], text="hello", sender_id="2", message_id=1)
    await Processor(rt).run_once()
    async with rt.sessions() as session:
        routed = dict((await session.execute(select(InboundMessage.body, InboundMessage.agent_id))).all())
    assert routed == {"Where is my INVOICE?": "billing", "hello": "support"}
    bad = await client.post(
        "/api/v1/routing-rules", json={"agent_id": "billing", "pattern": "("}, headers=auth
    )
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "pattern"


async def test_disabled_interface_answers_503_and_stores_nothing_then_recovers(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    channel = await setup(client, auth, "telegram")
    response = await client.post(f"/api/v1/interfaces/{channel['id']}/disable", headers=auth)
    assert response.status_code == 200
    assert response.json()["enabled"] is False
    response = await deliver(client, "telegram", channel["id"], message_id=5)
    assert response.status_code == 503
    assert await stored(rt) == 0
    await client.post(f"/api/v1/interfaces/{channel['id']}/enable", headers=auth)
    assert (await deliver(client, "telegram", channel["id"], message_id=5)).status_code == 200
    assert await stored(rt) == 1
    listed = (await client.get("/api/v1/interfaces", headers=auth)).json()["items"]
    assert [(i["id"], i["enabled"], i["circuit"]) for i in listed] == [(channel["id"], True, "closed")]
    assert listed[0]["last_inbound_at"] is not None


async def test_meta_handshake_and_slack_url_verification(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    channel = await setup(client, auth, "whatsapp_cloud")
    params = {"hub.mode": "subscribe", "hub.verify_token": "verify-me", "hub.challenge": "1158201444"}
    response = await client.get(hook(channel["id"]), params=params)
    assert (response.status_code, response.text) == (200, "1158201444")
    response = await client.get(hook(channel["id"]), params={**params, "hub.verify_token": "wrong"})
    assert response.status_code == 403


async def test_a_disabled_interface_holds_outbound_messages_until_enabled(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    channel = await setup(client, auth, "telegram")
    world = World(rt, echo)
    await client.post(f"/api/v1/interfaces/{channel['id']}/disable", headers=auth)
    body = {"agent_id": "support", "platform": "telegram", "recipient_id": "4242", "content": "held",
            "channel_id": channel["id"], "send_now": True}  # fmt: skip
    response = await client.post("/api/v1/messaging/proactive/send", json=body, headers=auth)
    assert response.status_code == 201, response.text
    message_id = response.json()["id"]
    worker = Worker(rt, worker_id="w")
    await worker.drain()
    assert world.fake.requests == []
    assert (await client.get(f"/api/v1/messages/{message_id}", headers=auth)).json()["status"] == "queued"
    await client.post(f"/api/v1/interfaces/{channel['id']}/enable", headers=auth)
    async with rt.sessions.begin() as session:
        from sqlalchemy import update

        from herald.storage.models import Message

        await session.execute(update(Message).where(Message.id == message_id).values(run_at=func.now()))
    await worker.drain()
    assert [r.json["text"] for r in world.fake.requests] == ["held"]


async def test_a_contact_has_one_session_across_platforms(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    telegram = await setup(client, auth, "telegram")
    platform, credentials = PROVIDERS["slack"]
    response = await client.post("/api/v1/channels", json={"platform": platform, "provider": "slack", "name": "slack",
                                                           "credentials": credentials, "base_url": FAKE_ORIGIN},
                                 headers=auth)  # fmt: skip
    slack = response.json()
    response = await client.post("/api/v1/contacts", json={"name": "Ada", "addresses": {"telegram": "111",
                                                           "slack": "U061F7AUR"}}, headers=auth)  # fmt: skip
    assert response.status_code == 201, response.text
    contact_id = response.json()["id"]
    world = World(rt, echo)
    processor = Processor(rt)
    await deliver(client, "telegram", telegram["id"], text="on telegram", sender_id="111", message_id=1)
    await processor.run_once()
    await deliver(client, "slack", slack["id"], text="now on slack", sender_id="U061F7AUR")
    await processor.run_once()
    last = world.agent_bodies()[-1]
    assert last["contact_id"] == contact_id
    assert [(h["direction"], h["text"]) for h in last["session"]["history"]] == [
        ("inbound", "on telegram"),
        ("outbound", "You said: on telegram"),
    ]
    conversations = (await client.get("/api/v1/conversations", headers=auth)).json()["items"]
    assert {c["platform"] for c in conversations} == {"telegram", "slack"}
    assert {c["contact_id"] for c in conversations} == {contact_id}


async def test_an_idle_gap_starts_a_new_session(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    channel = await setup(client, auth, "telegram")
    world = World(rt, echo)
    processor = Processor(rt)
    await deliver(client, "telegram", channel["id"], text="yesterday", message_id=1)
    await processor.run_once()
    async with rt.sessions.begin() as session:  # a day and a minute pass
        day = timedelta(days=1, minutes=1)
        for conversation in (await session.execute(select(Conversation))).scalars():
            conversation.last_activity_at -= day
        for inbound in (await session.execute(select(InboundMessage))).scalars():
            inbound.received_at -= day
        for sent in (await session.execute(select(Message))).scalars():
            sent.created_at -= day
    before = (await client.get("/api/v1/conversations", headers=auth)).json()["items"][0][
        "session_started_at"
    ]
    await deliver(client, "telegram", channel["id"], text="today", message_id=2)
    await processor.run_once()
    assert world.agent_bodies()[-1]["session"]["history"] == []
    after = (await client.get("/api/v1/conversations", headers=auth)).json()["items"][0]["session_started_at"]
    assert after > before


async def test_order_is_kept_per_conversation_under_concurrent_load(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    channel = await setup(client, auth, "telegram")
    seen: dict[str, list[int]] = {}
    rng = random.Random(7)

    async def jittery(data: dict[str, Any]) -> dict[str, Any]:
        await asyncio.sleep(rng.random() / 100)
        sender, _, number = data["message"]["text"].partition(" ")
        seen.setdefault(sender, []).append(int(number))
        return {}

    World(rt, jittery)
    senders = [str(100 + i) for i in range(6)]
    posts = [
        deliver(client, "telegram", channel["id"], text=f"{sender} {n}", sender_id=sender, message_id=n + 1)
        for n in range(8)
        for sender in senders
    ]
    for post in posts:  # arrival order is the order that counts
        assert (await post).status_code == 200
    stop = asyncio.Event()
    running = asyncio.create_task(Processor(rt, concurrency=20).run(stop, interval=0.02))
    for _ in range(500):
        if sum(len(v) for v in seen.values()) == len(posts):
            break
        await asyncio.sleep(0.02)
    stop.set()
    await running
    assert seen == {sender: list(range(8)) for sender in senders}


@pytest.mark.postgres_only
async def test_a_processor_in_another_process_is_woken_by_notify(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    channel = await setup(client, auth, "telegram")
    other = Runtime(rt.settings)  # another process's runtime on the same database
    calls: list[str] = []

    async def record(data: dict[str, Any]) -> dict[str, Any]:
        calls.append(data["message"]["text"])
        return {}

    World(other, record)
    stop = asyncio.Event()
    running = asyncio.create_task(Processor(other).run(stop, interval=60))
    try:
        await asyncio.sleep(0.3)  # listening
        await deliver(client, "telegram", channel["id"], text="wake up")
        for _ in range(250):
            if calls:
                break
            await asyncio.sleep(0.02)
        assert calls == ["wake up"]  # well before the 60 s poll
    finally:
        stop.set()
        other.inbound_waker.wake()
        await running
        await other.close()


async def test_concurrent_webhooks_are_stored_once_each_even_when_repeated_together(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    channel = await setup(client, auth, "telegram")
    posts = [deliver(client, "telegram", channel["id"], message_id=500, sender_id="9") for _ in range(5)]
    posts += [
        deliver(client, "telegram", channel["id"], message_id=600 + i, sender_id=str(i)) for i in range(5)
    ]
    answers = await asyncio.gather(*posts)
    assert [a.status_code for a in answers] == [200] * 10
    assert sum(a.json()["messages"] for a in answers) == 6
    assert await stored(rt) == 6


async def test_malformed_requests_are_refused_cleanly_not_500(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    slack = await setup(client, auth, "slack")
    request = message("slack", PROVIDERS["slack"][1])
    headers = {**request.headers, "x-slack-request-timestamp": "9" * 400}
    assert (await client.post(hook(slack["id"]), content=request.body, headers=headers)).status_code == 401
    params = {"hub.mode": "subscribe", "hub.verify_token": "vérifié", "hub.challenge": "1"}
    meta_platform, meta_credentials = PROVIDERS["whatsapp_cloud"]
    response = await client.post("/api/v1/channels", json={"platform": meta_platform, "provider": "whatsapp_cloud",
                                                           "name": "wa", "credentials": meta_credentials}, headers=auth)  # fmt: skip
    whatsapp = response.json()
    assert (await client.get(hook(whatsapp["id"]), params=params)).status_code == 403
    odd = signed(
        "whatsapp_cloud", meta_credentials, {"entry": ["x", {"changes": [{"value": {"statuses": [1]}}]}]}
    )
    assert (await client.post(hook(whatsapp["id"]), content=odd.body, headers=odd.headers)).status_code == 200
    too_big = b"{" * (1024 * 1024 + 1)
    assert (await client.post(hook(whatsapp["id"]), content=too_big)).status_code == 413


async def test_a_bad_message_does_not_fail_the_webhooks_stored_with_it(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    channel = await setup(client, auth, "telegram")
    credentials = PROVIDERS["telegram"][1]
    odd = {"update_id": 1, "message": {"message_id": 1, "date": 1_700_000_000, "text": "nul \x00 inside",
                                       "from": {"id": 7, "is_bot": False, "first_name": "N"},
                                       "chat": {"id": 7, "type": "private"}}}  # fmt: skip
    posts = [client.post(hook(channel["id"]), content=r.body, headers=r.headers)
             for r in (signed("telegram", credentials, odd), message("telegram", credentials, message_id=2))]  # fmt: skip
    answers = await asyncio.gather(*posts)
    assert [a.status_code for a in answers] == [200, 200]
    async with rt.sessions() as session:
        bodies = sorted((await session.execute(select(InboundMessage.body))).scalars())
    assert bodies == ["Hello", "nul  inside"]


async def test_a_processor_that_lost_its_lease_sends_no_reply(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    channel = await setup(client, auth, "telegram")
    World(rt, echo)
    await deliver(client, "telegram", channel["id"], text="hello")
    slow = Processor(rt, owner="slow")
    claimed = await slow.claim(10)
    routed = await slow._route(claimed)
    async with rt.sessions.begin() as session:  # its lease ran out and another processor took the message
        from sqlalchemy import update

        await session.execute(update(InboundMessage).values(lease_owner="fast"))
    for item in routed:
        await slow._call(item)
    async with rt.sessions() as session:
        assert (await session.execute(select(func.count()).select_from(Message))).scalar_one() == 0
        row = (await session.execute(select(InboundMessage))).scalar_one()
    assert (row.status, row.lease_owner) == ("processing", "fast")


async def test_a_runaway_routing_pattern_is_cut_short(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    from herald.producers.conversations import service

    channel = await setup(client, auth, "telegram")
    response = await client.post("/api/v1/routing-rules", json={"agent_id": "support", "priority": 1,
                                                               "pattern": r"(x+x+)+y"}, headers=auth)  # fmt: skip
    assert response.status_code == 201
    async with rt.sessions() as session:
        rules = await service.list_rules(
            session, (await session.execute(select(Channel.tenant_id))).scalar_one()
        )
    import time

    started = time.perf_counter()
    chosen = service.choose(rules, channel_id=channel["id"], contact_id=None, text="x" * 3000 + "!")
    assert time.perf_counter() - started < 2
    assert chosen is not None
    assert chosen.pattern is None  # the runaway pattern counted as no match; the default rule answered
