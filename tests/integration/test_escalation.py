"""Receipt-driven escalation end to end: a message sent by SMS through Twilio (its fake answered by a mock
transport) to a contact with an email address too; the pass runs with ``now`` moved past the deadline."""

from __future__ import annotations

import asyncio
import itertools
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update

from herald.client import AsyncHerald
from herald.pipeline import escalation
from herald.pipeline.worker import Worker
from herald.providers import receipts
from herald.providers.receipts import Receipt
from herald.runtime import Runtime
from herald.storage.models import AuditEntry, Event, Message
from herald.storage.types import utcnow
from herald.web.api.app import create_app
from tests.conftest import make_agent, served, use_transport

SEND = "/api/v1/messaging/proactive/send"
TWILIO = {"account_sid": "AC12345678", "auth_token": "twilio-auth-token-123", "from_number": "+15017122661"}
LATER = timedelta(minutes=16)


@pytest.fixture
async def bot(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    await make_agent(client, auth, "bot", "AUTONOMOUS")


@pytest.fixture
async def sms(client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime) -> str:
    """A default Twilio SMS channel whose every send answers a fresh message sid (SM1, SM2, ...)."""
    sids = itertools.count(1)
    use_transport(rt, lambda _: httpx.Response(201, json={"sid": f"SM{next(sids)}"}))
    return await _channel(client, auth, "sms")


async def _channel(client: httpx.AsyncClient, auth: dict[str, str], platform: str) -> str:
    body = {
        "name": platform,
        "platform": platform,
        "provider": "twilio",
        "is_default": True,
        "credentials": TWILIO,
    }
    response = await client.post("/api/v1/channels", json=body, headers=auth)
    assert response.status_code == 201, response.text
    channel_id: str = response.json()["id"]
    return channel_id


async def contact(client: httpx.AsyncClient, auth: dict[str, str], **fields: Any) -> str:
    body = {
        "name": "Ada",
        "addresses": {"sms": "+447700900123", "email": "ada@example.com"},
        "channel_order": ["sms", "email"],
        **fields,
    }
    response = await client.post("/api/v1/contacts", json=body, headers=auth)
    assert response.status_code == 201, response.text
    contact_id: str = response.json()["id"]
    return contact_id


async def send(client: httpx.AsyncClient, auth: dict[str, str], **fields: Any) -> httpx.Response:
    body = {"agent_id": "bot", "content": "The server room is at 41 degrees", **fields}
    return await client.post(SEND, json=body, headers=auth)


async def sent(
    client: httpx.AsyncClient, auth: dict[str, str], worker: Worker, **fields: Any
) -> dict[str, Any]:
    response = await send(client, auth, **fields)
    assert response.status_code == 201, response.text
    await worker.drain()
    message = await get(client, auth, response.json()["id"])
    assert message["status"] == "sent", message
    return message


async def get(client: httpx.AsyncClient, auth: dict[str, str], message_id: str) -> dict[str, Any]:
    response = await client.get(f"/api/v1/messages/{message_id}", headers=auth)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def count(rt: Runtime, *where: Any) -> int:
    async with rt.sessions() as session:
        return int(
            (await session.execute(select(func.count()).select_from(Message).where(*where))).scalar_one()
        )


async def receipt(rt: Runtime, channel_id: str, message: dict[str, Any], status: str) -> None:
    async with rt.sessions.begin() as session:
        tenant_id = (await session.get(Message, message["id"])).tenant_id  # type: ignore[union-attr]
        changed = await receipts.apply(
            session, tenant_id, channel_id, [Receipt(message["provider_message_id"], status)]
        )
    assert changed == 1


@pytest.mark.usefixtures("bot")
async def test_no_receipt_escalates_once_to_the_next_channel_and_links_both(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, worker: Worker, sms: str
) -> None:
    ada = await contact(client, auth)
    original = await sent(
        client, auth, worker, contact_id=ada, escalation={"after_minutes": 15, "unless": "delivered"}
    )
    rule = original["escalation"]
    assert (rule["after_minutes"], rule["state"], rule["waits_for"], rule["source"]) == (
        15,
        "waiting",
        "delivered",
        "message",
    )

    assert await escalation.run_escalations(rt) == 0  # not due yet: nothing happens
    assert await count(rt, Message.escalated_from_id.is_not(None)) == 0

    later = utcnow() + LATER
    assert await escalation.run_escalations(rt, now=later) == 1
    assert await escalation.run_escalations(rt, now=later) == 0  # the second pass finds nothing to do
    assert await escalation.run_escalations(rt, now=later + LATER) == 0
    assert await count(rt, Message.escalated_from_id == original["id"]) == 1

    first = await get(client, auth, original["id"])
    link = first["escalation"]["escalated_to"]
    assert first["escalation"]["state"] == "escalated"
    assert (link["platform"], link["status"]) == ("email", "queued")
    await worker.drain()  # the escalated message goes like any other (to the dev inbox: no email channel)
    first = await get(client, auth, original["id"])
    assert first["escalation"]["escalated_to"]["status"] == "sent"
    second = await get(client, auth, link["id"])
    assert (second["platform"], second["recipient_id"], second["content"]) == (
        "email", "ada@example.com", "The server room is at 41 degrees",
    )  # fmt: skip
    assert second["escalation"]["escalated_from"] == {
        "id": original["id"],
        "status": "sent",
        "platform": "sms",
    }
    assert second["escalation"]["state"] is None  # an escalated message does not escalate again

    async with rt.sessions() as session:
        actions = set(
            (
                await session.execute(select(AuditEntry.action).where(AuditEntry.object_id == original["id"]))
            ).scalars()
        )
        events = set(
            (await session.execute(select(Event.type).where(Event.subject_id == original["id"]))).scalars()
        )
    assert "message.escalated" in actions
    assert "message.escalated" in events


@pytest.mark.usefixtures("bot")
async def test_two_schedulers_at_once_escalate_once(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, worker: Worker, sms: str
) -> None:
    ada = await contact(client, auth)
    original = await sent(client, auth, worker, contact_id=ada, escalation={"after_minutes": 1})
    later = utcnow() + LATER
    await asyncio.gather(*(escalation.run_escalations(rt, now=later) for _ in range(4)))
    assert await count(rt, Message.escalated_from_id == original["id"]) == 1


@pytest.mark.usefixtures("bot")
async def test_the_database_refuses_a_second_escalated_message(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, worker: Worker, sms: str
) -> None:
    ada = await contact(client, auth)
    original = await sent(client, auth, worker, contact_id=ada, escalation={"after_minutes": 1})
    later = utcnow() + LATER
    await escalation.run_escalations(rt, now=later)
    # As if the original's link had been lost: the pass tries again, the unique index refuses, the pass goes on.
    async with rt.sessions.begin() as session:
        await session.execute(
            update(Message)
            .where(Message.id == original["id"])
            .values(escalation_state="waiting", escalated_to_id=None)
        )
    assert await escalation.run_escalations(rt, now=later) == 1
    assert await count(rt, Message.escalated_from_id == original["id"]) == 1


@pytest.mark.usefixtures("bot")
async def test_a_receipt_in_time_cancels_the_escalation(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, worker: Worker, sms: str
) -> None:
    ada = await contact(client, auth)
    original = await sent(
        client, auth, worker, contact_id=ada, escalation={"after_minutes": 15, "unless": "delivered"}
    )
    await receipt(rt, sms, original, "delivered")
    await escalation.run_escalations(rt, now=utcnow() + LATER)
    assert await count(rt, Message.escalated_from_id.is_not(None)) == 0
    assert (await get(client, auth, original["id"]))["escalation"]["state"] == "answered"


@pytest.mark.usefixtures("bot")
async def test_unless_read_on_sms_waits_for_delivered_as_twilio_sms_reports_no_reads(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, worker: Worker, sms: str
) -> None:
    ada = await contact(client, auth)
    original = await sent(
        client, auth, worker, contact_id=ada, escalation={"after_minutes": 15, "unless": "read"}
    )
    assert original["escalation"]["waits_for"] == "delivered"
    await receipt(rt, sms, original, "delivered")
    await escalation.run_escalations(rt, now=utcnow() + LATER)
    assert await count(rt, Message.escalated_from_id.is_not(None)) == 0


@pytest.mark.usefixtures("bot", "sms")
async def test_unless_read_where_reads_are_reported_still_escalates_after_delivered(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, worker: Worker
) -> None:
    whatsapp = await _channel(client, auth, "whatsapp")
    ada = await contact(client, auth, addresses={"whatsapp": "+447700900123", "sms": "+447700900123"},
                        channel_order=["whatsapp", "sms"])  # fmt: skip
    original = await sent(
        client, auth, worker, contact_id=ada, escalation={"after_minutes": 5, "unless": "read"}
    )
    assert original["escalation"]["waits_for"] == "read"
    await receipt(rt, whatsapp, original, "delivered")
    await escalation.run_escalations(rt, now=utcnow() + LATER)
    linked = (await get(client, auth, original["id"]))["escalation"]["escalated_to"]
    assert linked["platform"] == "sms"


@pytest.mark.usefixtures("bot")
async def test_a_read_receipt_clears_the_rule_at_once(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, worker: Worker, sms: str
) -> None:
    ada = await contact(client, auth)
    original = await sent(client, auth, worker, contact_id=ada, escalation={"after_minutes": 15})
    await receipt(rt, sms, original, "read")
    assert (await get(client, auth, original["id"]))["escalation"]["state"] == "answered"
    await escalation.run_escalations(rt, now=utcnow() + LATER)
    assert await count(rt, Message.escalated_from_id.is_not(None)) == 0


@pytest.mark.usefixtures("bot")
async def test_the_contact_default_rule_applies_and_can_be_cleared(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, worker: Worker, sms: str
) -> None:
    ada = await contact(client, auth, escalation={"after_minutes": 10, "unless": "delivered"})
    original = await sent(client, auth, worker, contact_id=ada)
    assert (original["escalation"]["source"], original["escalation"]["after_minutes"]) == ("contact", 10)
    await escalation.run_escalations(rt, now=utcnow() + timedelta(minutes=11))
    assert await count(rt, Message.escalated_from_id == original["id"]) == 1

    cleared = await client.patch(f"/api/v1/contacts/{ada}", json={"escalation": None}, headers=auth)
    assert cleared.status_code == 200
    assert cleared.json()["escalation"] is None
    assert (await send(client, auth, contact_id=ada)).json()["escalation"] is None


@pytest.mark.usefixtures("bot")
async def test_a_contact_default_with_nowhere_to_go_does_not_refuse_the_message(
    client: httpx.AsyncClient, auth: dict[str, str], worker: Worker, sms: str
) -> None:
    ada = await contact(client, auth, addresses={"sms": "+447700900123"}, channel_order=["sms"],
                        escalation={"after_minutes": 10})  # fmt: skip
    assert (await sent(client, auth, worker, contact_id=ada))["escalation"] is None


@pytest.mark.usefixtures("bot")
async def test_the_deadline_counts_from_when_the_message_was_sent(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, worker: Worker, sms: str
) -> None:
    ada = await contact(client, auth)
    response = await send(
        client, auth, contact_id=ada, escalation={"after_minutes": 15, "unless": "delivered"}
    )
    message_id = response.json()["id"]
    # Accepted now, sent 20 minutes later (a held or delayed message): the 15 minutes start at the send.
    sent_at = utcnow() + timedelta(minutes=20)
    async with rt.sessions.begin() as session:
        row = await session.get(Message, message_id)
        assert row is not None
        row.status, row.sent_at, row.provider_message_id = "sent", sent_at, "SM9"
    assert await escalation.settle(rt, message_id, sent_at + timedelta(minutes=1)) is None
    assert await count(rt, Message.escalated_from_id.is_not(None)) == 0
    assert await escalation.settle(rt, message_id, sent_at + LATER) == "escalated"


@pytest.mark.usefixtures("bot")
async def test_a_message_that_never_went_closes_its_rule(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, sms: str
) -> None:
    ada = await contact(client, auth)
    response = await send(
        client,
        auth,
        contact_id=ada,
        escalation={"after_minutes": 15},
        scheduled_for=(utcnow() + timedelta(hours=1)).isoformat(),
    )
    message_id = response.json()["id"]
    assert (await client.post(f"/api/v1/messages/{message_id}/cancel", headers=auth)).status_code == 200
    await escalation.run_escalations(rt, now=utcnow() + timedelta(hours=2))
    assert (await get(client, auth, message_id))["escalation"]["state"] == "ended"
    assert await count(rt, Message.escalated_from_id.is_not(None)) == 0


@pytest.mark.usefixtures("bot")
async def test_an_approved_message_escalates_without_a_second_approval(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, worker: Worker, sms: str
) -> None:
    await make_agent(client, auth, "intern", "INTERN")
    ada = await contact(client, auth)
    held = await send(
        client,
        auth,
        agent_id="intern",
        contact_id=ada,
        escalation={"after_minutes": 15, "unless": "delivered"},
    )
    assert held.json()["status"] == "pending_approval"
    approved = await client.post(
        f"/api/v1/messaging/proactive/approve/{held.json()['id']}",
        json={"approver_user_id": "grace"},
        headers=auth,
    )
    assert approved.status_code == 200, approved.text
    await worker.drain()
    await escalation.run_escalations(rt, now=utcnow() + LATER)
    linked = (await get(client, auth, held.json()["id"]))["escalation"]["escalated_to"]
    escalated = await get(client, auth, linked["id"])
    assert (escalated["status"], escalated["approved_by"], escalated["agent_id"]) == (
        "queued",
        "grace",
        "intern",
    )


@pytest.mark.usefixtures("bot")
async def test_an_opt_out_after_sending_skips_the_escalation_with_the_reason(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, worker: Worker, sms: str
) -> None:
    ada = await contact(client, auth)
    original = await sent(client, auth, worker, contact_id=ada, escalation={"after_minutes": 15})
    await client.patch(f"/api/v1/contacts/{ada}", json={"opt_outs": ["email"]}, headers=auth)
    await escalation.run_escalations(rt, now=utcnow() + LATER)
    rule = (await get(client, auth, original["id"]))["escalation"]
    assert rule["state"] == "skipped"
    assert "no next channel" in rule["note"]
    assert await count(rt, Message.escalated_from_id.is_not(None)) == 0


@pytest.mark.usefixtures("bot", "sms")
@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"escalation": {"after_minutes": 0}}, "escalation.after_minutes"),
        ({"escalation": {"after_minutes": 5, "unless": "opened"}}, "escalation.unless"),
        (
            {"escalation": {"after_minutes": 5}, "platform": "sms", "recipient_id": "+447700900123"},
            "escalation",
        ),
    ],
)
async def test_an_unusable_rule_is_a_422_naming_the_field(
    client: httpx.AsyncClient, auth: dict[str, str], fields: dict[str, Any], field: str
) -> None:
    response = await send(client, auth, **fields)
    assert response.status_code == 422, response.text
    assert field in response.text


@pytest.mark.usefixtures("bot")
async def test_a_contact_rule_is_checked(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    response = await client.post(
        "/api/v1/contacts", json={"name": "Ada", "escalation": {"after_minutes": -1}}, headers=auth
    )
    assert response.status_code == 422
    assert "escalation.after_minutes" in response.text


@pytest.mark.usefixtures("bot")
async def test_the_sdk_sends_a_rule_and_reads_it_back(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    ada = await contact(client, auth)
    key = auth["Authorization"].removeprefix("Bearer ")
    async with (
        served(create_app(rt.settings, runtime=rt, run_worker=False)) as url,
        AsyncHerald(url, key) as herald,
    ):
        message = await herald.send_message(
            agent_id="bot", contact_id=ada, content="Call me", escalation={"after_minutes": 5}
        )
    assert message.escalation is not None
    assert (message.escalation["after_minutes"], message.escalation["state"]) == (5, "waiting")
