"""Each message's first answer, written where it arrives (herald.storage.responses): the first delivery and read
receipts, and the first reply of the recipient's chat within a day; migration 0028's backfill gives the same."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text, update

from herald.pipeline.worker import Worker
from herald.producers.conversations import service as conversations
from herald.providers.inbound import InboundMessage
from herald.runtime import Runtime
from herald.storage import responses
from herald.storage.models import Channel, Message
from herald.storage.types import utcnow
from tests.conftest import make_agent, send_body, use_transport
from tests.integration.learning.history import NOW, History, tenant
from tests.integration.test_receipts import TOKEN, channel, twilio_callback

SEND = "/api/v1/messaging/proactive/send"
PHONE = "+14155551212"


@pytest.fixture
async def sms(client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime) -> str:
    await make_agent(client, auth, "bot", "AUTONOMOUS")
    sids = iter(f"SM{n:04d}" for n in range(1, 100))
    use_transport(rt, lambda _: httpx.Response(201, json={"sid": next(sids), "status": "queued"}))
    return await channel(client, auth, {
        "platform": "sms", "provider": "twilio",
        "credentials": {"account_sid": "AC12345678", "auth_token": TOKEN, "from_number": "+15017122661"},
    })  # fmt: skip


async def send(client: httpx.AsyncClient, auth: dict[str, str], worker: Worker, to: str = PHONE) -> str:
    response = await client.post(SEND, json=send_body("bot", platform="sms", recipient_id=to), headers=auth)
    assert response.status_code == 201, response.text
    await worker.drain()
    message_id: str = response.json()["id"]
    return message_id


async def answers(rt: Runtime, message_id: str) -> tuple[datetime | None, datetime | None]:
    async with rt.sessions() as session:
        row = (await session.execute(select(Message).where(Message.id == message_id))).scalar_one()
    return row.delivered_at, row.responded_at


async def reply(rt: Runtime, channel_id: str, sender: str, provider_id: str) -> None:
    async with rt.sessions() as session:
        row = (await session.execute(select(Channel).where(Channel.id == channel_id))).scalar_one()
    message = InboundMessage(
        conversation_key=sender,
        sender_id=sender,
        text="yes",
        provider_message_id=provider_id,
        sent_at=utcnow(),
    )
    assert await conversations.store(rt, row, [message]) == 1


async def test_receipts_record_the_first_delivery_and_the_first_read(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, worker: Worker, sms: str
) -> None:
    message_id = await send(client, auth, worker)
    assert await answers(rt, message_id) == (None, None)
    await twilio_callback(client, sms, {"MessageSid": "SM0001", "MessageStatus": "delivered"})
    delivered, responded = await answers(rt, message_id)
    assert delivered is not None
    assert responded is None
    await twilio_callback(client, sms, {"MessageSid": "SM0001", "MessageStatus": "read"})
    first = await answers(rt, message_id)
    assert first[0] == delivered
    assert first[1] is not None
    assert first[1] >= delivered
    await twilio_callback(client, sms, {"MessageSid": "SM0001", "MessageStatus": "read"})  # a repeat
    assert await answers(rt, message_id) == first


async def test_a_reply_answers_the_chats_sends_of_the_last_day_once(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, worker: Worker, sms: str
) -> None:
    recent = await send(client, auth, worker)
    old = await send(client, auth, worker)
    someone_else = await send(client, auth, worker, to="+14155550000")
    async with rt.sessions.begin() as session:
        await session.execute(
            update(Message).where(Message.id == old).values(sent_at=utcnow() - timedelta(days=2))
        )
    await reply(rt, sms, PHONE, "SMin1")
    _, answered = await answers(rt, recent)
    assert answered is not None
    assert (await answers(rt, old))[1] is None
    assert (await answers(rt, someone_else))[1] is None
    await reply(rt, sms, PHONE, "SMin2")  # a second reply: the first answer stays
    assert (await answers(rt, recent))[1] == answered


async def test_the_backfill_finds_the_same_answers_in_old_rows(rt: Runtime) -> None:
    h: History = await tenant(rt, "acme")
    h.agent("ops")
    slack = h.channel("slack")
    cnv = h.conversation(slack, "U2")
    sent = NOW - timedelta(hours=5)
    replied = h.message(sent, recipient_id="U2", channel_id=slack)
    read = h.message(sent, recipient_id="U3", channel_id=slack, status="read")
    too_old = h.message(sent - timedelta(days=2), recipient_id="U2", channel_id=slack)
    h.event("message.delivered", read, sent + timedelta(minutes=1))
    h.event("message.read", read, sent + timedelta(minutes=2))
    h.event("message.read", read, sent + timedelta(minutes=9))
    h.inbound(cnv, slack, "U2", sent + timedelta(minutes=3))
    h.inbound(cnv, slack, "U2", sent + timedelta(minutes=7))
    await h.write(rt)  # inserts the rows, then runs responses.backfill_statements
    got: dict[str, Any] = {m: await answers(rt, m) for m in (replied, read, too_old)}
    assert got[replied] == (None, sent + timedelta(minutes=3))
    assert got[read] == (sent + timedelta(minutes=1), sent + timedelta(minutes=2))
    assert got[too_old] == (None, None)
    # Run again (as a second History.write would): the same answers.
    async with rt.sessions.begin() as session:
        for statement in responses.backfill_statements(rt.dialect):
            await session.execute(text(statement))
    assert {m: await answers(rt, m) for m in (replied, read, too_old)} == got
