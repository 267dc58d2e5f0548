"""The dashboard's Conversations and Interfaces pages without a browser: a signed Telegram webhook starts a
conversation, the pages show it (both directions, the session), a reply sent from the page takes the API's path
(governance included), forms need their CSRF token, other tenants get 404, and disabling an interface makes its
webhook answer 503. On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import html
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from herald.pipeline.worker import Worker
from herald.producers.conversations.processor import Processor
from herald.runtime import Runtime
from herald.storage.models import AuditEntry, Conversation, Message
from herald.web.api.app import create_app
from herald.web.dashboard import queries
from tests.conftest import make_agent, new_tenant
from tests.integration import test_conversations as convo
from tests.integration.test_dashboard import sign_in

BUBBLE = re.compile(
    r'<li class="bubble (inbound|outbound)" data-id="([^"]+)" data-version="([^"]*)">.*?'
    r'<div class="content">(.*?)</div>',
    re.S,
)


def bubbles(page: str) -> list[tuple[str, str, str]]:
    """The thread as (direction, text, status), in page order."""
    return [(d, html.unescape(text), status) for d, _, status, text in BUBBLE.findall(page)]


def row_of(page: str, row_id: str) -> str:
    found = re.search(rf'<tr data-id="{re.escape(row_id)}"[^>]*>.*?</tr>', page, re.S)
    assert found, f"no row {row_id} on the page"
    return html.unescape(found.group(0))


def flash_of(page: str) -> str:
    found = re.search(r'<div class="flash flash-(?:info|error)"[^>]*>(.*?)</div>', page, re.S)
    assert found, "no notice on the page"
    return html.unescape(found.group(1))


async def silent(_: dict[str, Any]) -> dict[str, Any]:
    """An agent that takes the message and answers later (or never)."""
    await asyncio.sleep(0)
    return {}


async def a_conversation(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, *, process: bool = True, **fields: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A Telegram channel routed to agent "support", one signed inbound message; the channel and conversation."""
    channel = await convo.setup(client, auth, "telegram")
    answer = await convo.deliver(client, "telegram", channel["id"], **fields)
    assert answer.status_code == 200, answer.text
    if process:
        assert await Processor(rt).run_once() == 1
    [conversation] = (await client.get("/api/v1/conversations", headers=auth)).json()["items"]
    return channel, conversation


async def replies_in(rt: Runtime, conversation_id: str) -> list[Message]:
    async with rt.sessions() as session:
        query = select(Message).where(Message.conversation_id == conversation_id).order_by(Message.id)
        return list((await session.execute(query)).scalars())


@pytest.fixture
async def browser_b(rt: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    """A second browser (its own cookie jar) on the same Herald."""
    app = create_app(rt.settings, runtime=rt, run_worker=False)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://herald.test") as c:
        yield c


# -- conversations --------------------------------------------------------------------------------------------


async def test_the_list_shows_conversations_by_last_activity_and_the_page_both_directions(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    convo.World(rt, convo.echo)
    channel, ada = await a_conversation(
        client,
        auth,
        rt,
        text="Where is my order?",
        sender_id="4242",
        sender_name="Ada Lovelace",
        message_id=1,
    )
    await convo.deliver(
        client, "telegram", channel["id"], text="Hi", sender_id="5151", sender_name="Bob Stone"
    )
    assert await Processor(rt).run_once() == 1
    await sign_in(client, auth)

    listing = await client.get("/conversations")
    assert listing.status_code == 200
    row = row_of(listing.text, ada["id"])
    for shown in ("Ada Lovelace", "4242", "telegram", "support", f'href="/conversations/{ada["id"]}"'):
        assert shown in row, shown
    order = re.findall(r'<tr data-id="(cnv_[^"]+)"', listing.text)
    assert order[0] != ada["id"]  # Bob wrote last
    await convo.deliver(client, "telegram", channel["id"], text="Hello?", sender_id="4242", message_id=2)
    order = re.findall(r'<tr data-id="(cnv_[^"]+)"', (await client.get("/conversations")).text)
    assert order[0] == ada["id"]  # now Ada did
    async with rt.sessions() as session:  # pages follow the same order
        tenant_id = (await session.get(Conversation, ada["id"])).tenant_id  # type: ignore[union-attr]
        first = await queries.conversations_page(session, tenant_id, channel_id=None, limit=1, cursor=None)
        second = await queries.conversations_page(
            session, tenant_id, channel_id=None, limit=1, cursor=first[0].row.id
        )
        third = await queries.conversations_page(
            session, tenant_id, channel_id=None, limit=1, cursor=second[0].row.id
        )
    assert [first[0].row.id, *[r.row.id for r in second]] == order
    assert third == []
    filtered = await client.get("/conversations", params={"channel": channel["id"]})
    assert len(re.findall(r'<tr data-id="cnv_', filtered.text)) == 2
    assert "<tr data-id" not in (await client.get("/conversations", params={"channel": "chn_other"})).text

    page = await client.get(f"/conversations/{ada['id']}")
    assert page.status_code == 200
    assert bubbles(page.text) == [
        ("inbound", "Where is my order?", "replied"),
        ("outbound", "You said: Where is my order?", "queued"),
        ("inbound", "Hello?", "pending"),
    ]
    assert 'aria-current="page">Conversations' in page.text
    session = page.text.split('id="session-h"', 1)[1].split("</section>", 1)[0]
    assert "Where is my order?" in session  # the session context the agent gets next
    assert "You said: Where is my order?" in session
    assert "A new session starts after 1 day of silence." in session

    await Worker(rt, worker_id="w").drain()
    page = await client.get(f"/conversations/{ada['id']}")
    assert bubbles(page.text)[1] == ("outbound", "You said: Where is my order?", "sent")
    live = (await client.get(f"/conversations/{ada['id']}/live")).json()
    assert [item["version"] for item in live["items"]] == ["replied", "sent", "pending"]
    assert "You said: Where is my order?" in live["items"][1]["html"]


async def test_a_reply_from_the_page_goes_to_the_same_chat_threaded(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    world = convo.World(rt, silent)
    _, conversation = await a_conversation(
        client, auth, rt, text="call me back", sender_id="4242", message_id=99
    )
    token = await sign_in(client, auth)
    answer = await client.post(
        f"/conversations/{conversation['id']}/reply", data={"csrf_token": token, "text": "  Here I am  "}
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/conversations/{conversation['id']}"

    [reply] = await replies_in(rt, conversation["id"])
    assert (reply.content, reply.agent_id, reply.status) == ("Here I am", "support", "queued")
    assert (reply.platform, reply.recipient_id) == ("telegram", "4242")
    page = await client.get(f"/conversations/{conversation['id']}")
    assert flash_of(page.text) == "Reply by support queued."
    assert bubbles(page.text)[-1] == ("outbound", "Here I am", "queued")
    api = (await client.get(f"/api/v1/conversations/{conversation['id']}/messages", headers=auth)).json()
    assert api["items"][-1]["id"] == reply.id

    await Worker(rt, worker_id="w").drain()
    [sent] = [r for r in world.fake.requests if "Here I am" in r.body]
    assert sent.json["chat_id"] in (4242, "4242")
    assert sent.json["reply_parameters"]["message_id"] == 99  # threaded, as the API's reply is
    async with rt.sessions() as session:
        audit = (await session.execute(select(AuditEntry).where(AuditEntry.object_id == reply.id))).scalars()
        assert any(e.actor.startswith("dashboard:") for e in audit)


async def test_a_reply_is_governed_by_the_chosen_agents_level(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    convo.World(rt, silent)
    _, conversation = await a_conversation(client, auth, rt, text="hello")
    await make_agent(client, auth, "trainee", "INTERN")
    await make_agent(client, auth, "novice", "STUDENT")
    token = await sign_in(client, auth)
    url = f"/conversations/{conversation['id']}/reply"

    form = await client.get(f"/conversations/{conversation['id']}")
    assert '<option value="trainee">' in form.text
    answer = await client.post(url, data={"csrf_token": token, "text": "Soon", "agent_id": "trainee"})
    assert answer.status_code == 303
    [reply] = await replies_in(rt, conversation["id"])
    assert (reply.agent_id, reply.status) == ("trainee", "pending_approval")
    page = await client.get(f"/conversations/{conversation['id']}")
    assert flash_of(page.text) == "Reply by trainee waits for approval."
    assert bubbles(page.text)[-1] == ("outbound", "Soon", "pending_approval")
    assert reply.id in (await client.get("/approvals")).text

    await client.post(url, data={"csrf_token": token, "text": "Buy now", "agent_id": "novice"})
    page = await client.get(f"/conversations/{conversation['id']}")
    assert "Reply not sent" in flash_of(page.text)
    assert "STUDENT" in flash_of(page.text)
    assert len(await replies_in(rt, conversation["id"])) == 1
    async with rt.sessions() as session:
        blocked = (
            await session.execute(select(AuditEntry).where(AuditEntry.action == "message.blocked"))
        ).scalars()
        assert [e.object_id for e in blocked] == ["novice"]  # kept, as the API keeps it

    await client.post(url, data={"csrf_token": token, "text": "   "})
    assert flash_of((await client.get(f"/conversations/{conversation['id']}")).text) == "Write a reply first."
    assert len(await replies_in(rt, conversation["id"])) == 1


async def test_a_conversation_no_agent_answered_yet_needs_one_named(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    _, conversation = await a_conversation(client, auth, rt, process=False, text="anyone there?")
    token = await sign_in(client, auth)
    page = await client.get(f"/conversations/{conversation['id']}")
    assert '<select id="reply-agent" name="agent_id" required>' in page.text
    url = f"/conversations/{conversation['id']}/reply"
    await client.post(url, data={"csrf_token": token, "text": "Yes"})
    page = await client.get(f"/conversations/{conversation['id']}")
    assert "no agent has answered this conversation yet" in flash_of(page.text)
    assert await replies_in(rt, conversation["id"]) == []
    await client.post(url, data={"csrf_token": token, "text": "Yes", "agent_id": "support"})
    [reply] = await replies_in(rt, conversation["id"])
    assert reply.agent_id == "support"


async def test_reply_and_interface_forms_need_the_csrf_token(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    convo.World(rt, silent)
    channel, conversation = await a_conversation(client, auth, rt)
    token = await sign_in(client, auth)
    url = f"/conversations/{conversation['id']}/reply"
    assert (await client.post(url, data={"text": "no token"})).status_code == 403
    assert (await client.post(url, data={"text": "stale", "csrf_token": token[:-1] + "x"})).status_code == 403
    elsewhere = await client.post(
        url, data={"text": "cross-site", "csrf_token": token}, headers={"Origin": "https://evil.example"}
    )
    assert elsewhere.status_code == 403
    assert (await client.post(url, json={"text": "as json", "csrf_token": token})).status_code == 403
    assert await replies_in(rt, conversation["id"]) == []
    assert (await client.post(f"/interfaces/{channel['id']}/disable", data={})).status_code == 403
    [status] = (await client.get("/api/v1/interfaces", headers=auth)).json()["items"]
    assert status["enabled"] is True


async def test_another_tenant_gets_404_and_sees_nothing(
    client: httpx.AsyncClient, browser_b: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    convo.World(rt, silent)
    channel, conversation = await a_conversation(
        client, auth, rt, text="Secret plans of tenant A", sender_name="Ada Lovelace"
    )
    other = await new_tenant(rt, "globex")
    token_b = await sign_in(browser_b, other)
    for path in (f"/conversations/{conversation['id']}", f"/conversations/{conversation['id']}/live"):
        page = await browser_b.get(path)
        assert page.status_code == 404, path
        assert "Secret plans" not in page.text
    for path in ("/conversations", f"/conversations?channel={channel['id']}", "/interfaces"):
        page = await browser_b.get(path)
        assert page.status_code == 200, path
        for secret in ("Secret plans", "Ada Lovelace", conversation["id"], "tg-secret-token"):
            assert secret not in page.text, (path, secret)
    assert channel["id"] not in (await browser_b.get("/interfaces")).text
    reply = await browser_b.post(
        f"/conversations/{conversation['id']}/reply",
        data={"csrf_token": token_b, "text": "mine now", "agent_id": "support"},
    )
    assert reply.status_code == 404
    assert await replies_in(rt, conversation["id"]) == []
    disable = await browser_b.post(f"/interfaces/{channel['id']}/disable", data={"csrf_token": token_b})
    assert disable.status_code == 404
    assert (await convo.deliver(client, "telegram", channel["id"], text="still open")).status_code == 200


# -- interfaces -----------------------------------------------------------------------------------------------


async def test_interfaces_show_status_and_disable_makes_the_webhook_answer_503(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    convo.World(rt, convo.echo)
    channel, _ = await a_conversation(client, auth, rt, text="ping")
    await Worker(rt, worker_id="w").drain()
    token = await sign_in(client, auth)

    page = await client.get("/interfaces")
    assert page.status_code == 200
    row = row_of(page.text, channel["id"])
    for shown in ("telegram via telegram", f"/api/v1/interfaces/{channel['id']}/webhook", "status-enabled",
                  "status-closed", "1 in · 1 sent", f"/conversations?channel={channel['id']}", "Disable telegram"):  # fmt: skip
        assert shown in row, shown
    assert "never" not in row  # traffic both ways

    answer = await client.post(
        f"/interfaces/{channel['id']}/disable", data={"csrf_token": token, "back": "/interfaces"}
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/interfaces"
    page = await client.get("/interfaces")
    assert "disabled" in flash_of(page.text)
    row = row_of(page.text, channel["id"])
    assert "status-disabled" in row
    assert "Enable telegram" in row
    refused = await convo.deliver(client, "telegram", channel["id"], text="are you there?")
    assert refused.status_code == 503
    async with rt.sessions() as session:
        audit = (
            await session.execute(select(AuditEntry).where(AuditEntry.action == "interface.disabled"))
        ).scalars()
        assert [e.object_id for e in audit] == [channel["id"]]

    answer = await client.post(f"/interfaces/{channel['id']}/enable", data={"csrf_token": token})
    assert answer.status_code == 303
    assert "status-enabled" in row_of((await client.get("/interfaces")).text, channel["id"])
    assert (await convo.deliver(client, "telegram", channel["id"], text="back?")).status_code == 200
    assert (
        await client.post(f"/interfaces/{channel['id']}/explode", data={"csrf_token": token})
    ).status_code == 422
