"""Email as a conversation interface: raw emails handed to ``intake.receive`` reach the agent as cut text in the
right conversation, replies go back threaded (SMTP against a local server, SendGrid and Resend against their
fakes), auto-replies and bounces are never answered, and contact-form notifications are read for fields and
intent, auto-answered through the pipeline and routed."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import EmailMessage, Message
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import func, select

from herald.fakes import FakeLLMState, FakeState, create_fake_app
from herald.pipeline.worker import Worker
from herald.producers.conversations.processor import Processor
from herald.producers.email import intake
from herald.runtime import Runtime
from herald.storage.models import AuditEntry, Channel, Conversation, InboundMessage
from herald.storage.models import Message as MessageRow
from tests.conftest import in_production, new_tenant

AGENT_URL = "https://agent.example/hook"
FAKE_ORIGIN = "http://providers.fake"
LLM_BASE = "http://llm.fake/v1"
DEALER = "service@dealer.example"


# -- the world: a local SMTP server, the agent, the provider and model fakes ---------------------------------------


@dataclass
class Mailbox:
    """What the local SMTP server received."""

    received: list[Message] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.received.append(message_from_bytes(envelope.original_content))
        return "250 OK"


@dataclass
class World:
    rt: Runtime
    smtp_port: int
    mailbox: Mailbox
    providers: FakeState = field(default_factory=FakeState)
    llm: FakeLLMState = field(default_factory=FakeLLMState)
    calls: list[dict[str, Any]] = field(default_factory=list)
    answer: str | None = "Thanks, see you Tuesday."

    def __post_init__(self) -> None:
        fakes = httpx.ASGITransport(app=create_fake_app(self.providers, llm_state=self.llm))

        async def handle(request: httpx.Request) -> httpx.Response:
            if request.url.host == "agent.example":
                self.calls.append(json.loads(request.content))
                return httpx.Response(200, json={"reply": self.answer} if self.answer else {})
            return await fakes.handle_async_request(request)

        self.rt.http = httpx.AsyncClient(transport=httpx.MockTransport(handle))

    def agent_bodies(self) -> list[dict[str, Any]]:
        return [c["data"] for c in self.calls]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def smtp() -> Iterator[tuple[int, Mailbox]]:
    mailbox, port = Mailbox(), free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, mailbox
    finally:
        controller.stop()


@pytest.fixture
def world(rt: Runtime, smtp: tuple[int, Mailbox]) -> World:
    return World(rt, *smtp)


async def post(
    client: httpx.AsyncClient, auth: dict[str, str], path: str, body: dict[str, Any]
) -> dict[str, Any]:
    response = await client.post(path, json=body, headers=auth)
    assert response.status_code == 201, response.text
    out: dict[str, Any] = response.json()
    return out


async def email_interface(
    client: httpx.AsyncClient, auth: dict[str, str], world: World, provider: str = "smtp"
) -> Channel:
    """An email interface, an external agent ``support`` answering everything on it."""
    credentials: dict[str, Any] = {
        "smtp": {"host": "127.0.0.1", "port": world.smtp_port, "from_email": DEALER, "starttls": False},
        "sendgrid": {"api_key": "SG.test-key-123.abcdef", "from_email": DEALER},
        "resend": {"api_key": "re_test_key_123456", "from_email": DEALER},
    }[provider]
    await post(
        client,
        auth,
        "/api/v1/agents",
        {"id": "support", "maturity_level": "AUTONOMOUS", "callback_url": AGENT_URL},
    )
    made = await post(client, auth, "/api/v1/channels", {"platform": "email", "provider": provider, "name": provider,
                                                          "credentials": credentials, "base_url": FAKE_ORIGIN})  # fmt: skip
    await post(client, auth, "/api/v1/routing-rules", {"agent_id": "support"})
    async with world.rt.sessions() as session:
        channel = await session.get(Channel, made["id"])
    assert channel is not None
    return channel


def mail(
    body: str = "Hello",
    *,
    sender: str = "Dana Smith <dana@example.com>",
    subject: str = "Mower will not start",
    message_id: str = "<d1@example.com>",
    html: str | None = None,
    **headers: str,
) -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = DEALER
    message["Subject"] = subject
    message["Message-ID"] = message_id
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    if html is not None and not body:
        message.set_content(html, subtype="html")
    else:
        message.set_content(body)
    return message.as_bytes()


async def count(rt: Runtime, model: Any, *where: Any) -> int:
    async with rt.sessions() as session:
        return int(
            (await session.execute(select(func.count()).select_from(model).where(*where))).scalar_one()
        )


async def inbound(rt: Runtime, inbound_id: str) -> InboundMessage:
    async with rt.sessions() as session:
        row = await session.get(InboundMessage, inbound_id)
    assert row is not None
    return row


async def outbound(rt: Runtime, *where: Any) -> list[MessageRow]:
    async with rt.sessions() as session:
        return list(
            (await session.execute(select(MessageRow).where(*where).order_by(MessageRow.id))).scalars()
        )


# -- conversations and threads --------------------------------------------------------------------------------------


async def test_the_agent_reads_the_cut_text_and_the_reply_goes_out_threaded_over_smtp(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, world: World
) -> None:
    channel = await email_interface(client, auth, world)
    body = ("It clicks but will not start.\n\nOn Mon, 2 Mar 2026 at 09:00, Riverside <s@dealer.example> wrote:\n"
            "> How is the mower?\n\n-- \nDana")  # fmt: skip
    raw = mail(body, References="<root@dealer.example>", In_Reply_To="<root@dealer.example>")
    inbound_id = await intake.receive(rt, channel, raw, source="mbx:1:1")
    assert inbound_id is not None
    assert await Processor(rt).run_once() == 1
    [seen] = world.agent_bodies()
    assert seen["message"]["text"] == "It clicks but will not start."
    assert seen["message"]["subject"] == "Mower will not start"
    assert seen["message"]["sender_id"] == "dana@example.com"
    assert seen["message"]["sender_name"] == "Dana Smith"
    await Worker(rt, worker_id="w").drain()
    [reply] = world.mailbox.received
    assert reply["To"] == "dana@example.com"
    assert reply["Subject"] == "Re: Mower will not start"
    assert reply["In-Reply-To"] == "<d1@example.com>"
    assert reply["References"] == "<root@dealer.example> <d1@example.com>"
    row = await inbound(rt, inbound_id)
    assert row.status == "replied"


async def test_html_only_multipart_with_attachment_and_non_ascii_emails_are_stored_readably(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, world: World
) -> None:
    channel = await email_interface(client, auth, world)
    html_only = mail(
        "", html="<p>Do you have the <b>Z530</b> in stock?</p><p>Thanks</p>", message_id="<h@x.example>"
    )
    with_file = EmailMessage()
    with_file["From"] = "Jörg Müller <joerg@example.de>"
    with_file["Subject"] = "Rasenmäher kaputt – Foto anbei"
    with_file["Message-ID"] = "<a@x.example>"
    with_file.set_content("Grüße, siehe Foto.")
    with_file.add_attachment(
        b"\x89PNG" + b"0" * 2044, maintype="image", subtype="png", filename="schaden.png"
    )
    first = await intake.receive(rt, channel, html_only, source="s:1")
    second = await intake.receive(rt, channel, with_file.as_bytes(), source="s:2")
    assert first is not None
    assert second is not None
    assert (await inbound(rt, first)).body == "Do you have the Z530 in stock?\n\nThanks"
    row = await inbound(rt, second)
    assert (row.body, row.sender_name, row.sender_id) == (
        "Grüße, siehe Foto.",
        "Jörg Müller",
        "joerg@example.de",
    )
    assert row.details is not None
    assert row.details["subject"] == "Rasenmäher kaputt – Foto anbei"
    assert row.details["attachments"] == [
        {"filename": "schaden.png", "content_type": "image/png", "size": 2048}
    ]
    assert row.attachments[0]["name"] == "schaden.png"
    assert await count(rt, Conversation) == 2  # two new emails, two threads


async def test_a_reply_to_a_herald_email_joins_its_conversation(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, world: World
) -> None:
    channel = await email_interface(client, auth, world)
    first = await intake.receive(rt, channel, mail("Can you service my mower?"), source="s:1")
    assert first is not None
    await Processor(rt).run_once()
    await Worker(rt, worker_id="w").drain()
    [herald_reply] = world.mailbox.received
    # The person answers Herald's reply from another client, with a subject of their own.
    answer = mail("Tuesday is fine.", subject="my booking", message_id="<d2@example.com>",
                  In_Reply_To=herald_reply["Message-ID"], References=f"<d1@example.com> {herald_reply['Message-ID']}")  # fmt: skip
    second = await intake.receive(rt, channel, answer, source="s:2")
    assert second is not None
    assert (await inbound(rt, first)).conversation_id == (await inbound(rt, second)).conversation_id
    [sent] = await outbound(rt, MessageRow.provider_message_id == herald_reply["Message-ID"])
    assert sent.conversation_id == (await inbound(rt, second)).conversation_id


async def test_a_reply_to_a_proactive_email_starts_a_conversation_that_later_replies_join(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, world: World
) -> None:
    channel = await email_interface(client, auth, world)
    sent = await post(client, auth, "/api/v1/messaging/proactive/send", {
        "agent_id": "support", "platform": "email", "recipient_id": "dana@example.com", "channel_id": channel.id,
        "subject": "Your mower is due a service", "content": "Book a tune-up this month?"})  # fmt: skip
    await Worker(rt, worker_id="w").drain()
    [proactive] = world.mailbox.received
    reply = mail("Yes please.", subject="Re: Your mower is due a service", In_Reply_To=proactive["Message-ID"],
                 References=proactive["Message-ID"])  # fmt: skip
    first = await intake.receive(rt, channel, reply, source="s:1")
    assert first is not None
    row = await inbound(rt, first)
    [message] = await outbound(rt, MessageRow.id == sent["id"])
    assert message.conversation_id == row.conversation_id  # the agent sees what it sent
    async with rt.sessions() as session:
        conversation = await session.get(Conversation, row.conversation_id)
    assert conversation is not None
    assert conversation.external_id == proactive["Message-ID"]
    later = mail("Any time after 10.", message_id="<d3@example.com>", In_Reply_To="<d1@example.com>",
                 References=f"{proactive['Message-ID']} <d1@example.com>")  # fmt: skip
    second = await intake.receive(rt, channel, later, source="s:2")
    assert second is not None
    assert (await inbound(rt, second)).conversation_id == row.conversation_id
    assert await Processor(rt).run_once() == 1  # in order: the first reply is routed, the second waits for it
    assert "Book a tune-up this month?" in json.dumps(world.agent_bodies()[0]["session"])


async def test_an_llm_agent_answers_an_email_knowing_its_subject(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, world: World
) -> None:
    channel = await email_interface(client, auth, world)
    await post(client, auth, "/api/v1/agents", {"id": "mailbot", "maturity_level": "AUTONOMOUS", "kind": "llm",
                                                "api_key": "sk-test-123", "llm": {"base_url": LLM_BASE, "model": "fake-model"}})  # fmt: skip
    await post(client, auth, "/api/v1/routing-rules", {"agent_id": "mailbot", "priority": 1})
    world.llm.script([{"content": "Bring it in on Tuesday."}])
    body = "It clicks.\n\nSent from my iPhone\n\nOn Mon, 2 Mar 2026, S <s@dealer.example> wrote:\n> Hi"
    assert await intake.receive(rt, channel, mail(body), source="s:1") is not None
    assert await Processor(rt).run_once() == 1
    asked = world.llm.requests[0].json["messages"][1]["content"]
    assert "(subject: Mower will not start): It clicks." in asked
    assert "iPhone" not in asked
    await Worker(rt, worker_id="w").drain()
    [reply] = world.mailbox.received
    assert (reply["Subject"], reply["In-Reply-To"]) == ("Re: Mower will not start", "<d1@example.com>")
    assert reply.get_payload().strip() == "Bring it in on Tuesday."


@pytest.mark.parametrize("provider", ["sendgrid", "resend"])
async def test_replies_through_sendgrid_and_resend_are_threaded_and_their_answers_found(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, world: World, provider: str
) -> None:
    channel = await email_interface(client, auth, world, provider)
    first = await intake.receive(
        rt, channel, mail("Is the Z530 in stock?", subject="Re: RE: Z530"), source="s:1"
    )
    assert first is not None
    await Processor(rt).run_once()
    await Worker(rt, worker_id="w").drain()
    [request] = [r for r in world.providers.requests if r.provider == provider]
    headers = request.json["headers"]
    assert request.json["subject"] == "Re: Z530"
    assert headers["In-Reply-To"] == "<d1@example.com>"
    assert headers["References"] == "<d1@example.com>"
    # The provider answered its own id; the person's reply names Herald's Message-ID, which still leads back.
    [reply_row] = await outbound(rt, MessageRow.conversation_id.is_not(None))
    assert reply_row.provider_message_id != headers["Message-ID"]
    answer = mail("Great, I'll come by.", message_id="<d2@example.com>", In_Reply_To=headers["Message-ID"])
    second = await intake.receive(rt, channel, answer, source="s:2")
    assert second is not None
    assert (await inbound(rt, second)).conversation_id == (await inbound(rt, first)).conversation_id


async def test_auto_replies_and_bounces_are_recorded_and_never_answered(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, world: World
) -> None:
    channel = await email_interface(client, auth, world)
    out_of_office = mail(
        "I am away until Monday.", subject="Automatic reply: Mower", Auto_Submitted="auto-replied"
    )
    bounce = (
        b"From: Mail Delivery Subsystem <MAILER-DAEMON@mx.example.com>\r\nTo: service@dealer.example\r\n"
        b"Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <b1@mx.example.com>\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain\r\n\r\nThe mail system could not deliver your message.\r\n"
        b"--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.com\r\n--b--\r\n"
    )
    assert await intake.receive(rt, channel, out_of_office, source="s:1") is None
    assert await intake.receive(rt, channel, bounce, source="s:2") is None
    assert await count(rt, InboundMessage) == 0
    assert await Processor(rt).run_once() == 0
    assert world.calls == []
    assert await count(rt, MessageRow) == 0
    assert await count(rt, AuditEntry, AuditEntry.action == "email.suppressed") == 2


async def test_the_same_email_read_twice_is_stored_once(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, world: World
) -> None:
    channel = await email_interface(client, auth, world)
    raw = mail("Hello")
    assert await intake.receive(rt, channel, raw, source="inbox:1:7") is not None
    assert await intake.receive(rt, channel, raw, source="archive:1:3") is None
    assert await count(rt, InboundMessage) == 1


# -- contact forms and intent ---------------------------------------------------------------------------------------

NOTIFICATION = """New submission from your website contact form.

Name: Dana Smith
Email: Dana@Example.com
Phone: (555) 010-2300
Message: Hello, I would like a quote for the Z530 zero-turn.
Do you offer financing?

Sent by WordPress"""


def form_body(**overrides: Any) -> dict[str, Any]:
    body = {
        "name": "Website contact form", "agent_id": "frontdesk", "senders": ["@site.example"],
        "subject_contains": "contact form", "variables": {"dealership_name": "Riverside Power Equipment",
                                                           "dealership_phone": "(555) 010-2300"},
        "intents": {
            "sales": {"auto_response": {"event_type": "sales_inquiry_response"}, "route_to": "sales"},
            "repair": {"auto_response": {"subject": "About your repair", "body": "Hi {{ first_name }}, our "
                       "workshop will call you about: {{ inquiry_subject }}"}, "route_to": "workshop"},
        },
    }  # fmt: skip
    return {**body, **overrides}


async def form_setup(
    client: httpx.AsyncClient, auth: dict[str, str], world: World, **overrides: Any
) -> Channel:
    channel = await email_interface(client, auth, world)
    for agent in ("frontdesk", "sales", "workshop"):
        await post(
            client,
            auth,
            "/api/v1/agents",
            {"id": agent, "maturity_level": "AUTONOMOUS", "callback_url": AGENT_URL},
        )
    await post(client, auth, "/api/v1/email-forms", form_body(**overrides))
    return channel


def notification(text: str = NOTIFICATION, message_id: str = "<f1@site.example>") -> bytes:
    return mail(text, sender="WordPress <noreply@site.example>", subject="New contact form submission",
                message_id=message_id)  # fmt: skip


async def test_a_contact_form_is_read_answered_by_email_and_routed_to_the_intents_agent(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, world: World
) -> None:
    channel = await form_setup(client, auth, world)
    inbound_id = await intake.receive(rt, channel, notification(), source="s:1")
    assert inbound_id is not None
    row = await inbound(rt, inbound_id)
    assert (row.sender_id, row.sender_name) == ("dana@example.com", "Dana Smith")
    assert (
        row.body
        == "Hello, I would like a quote for the Z530 zero-turn.\nDo you offer financing?\n\nSent by WordPress"
    )
    assert row.details is not None
    assert row.details["form"]["fields"]["phone"] == "+15550102300"
    assert row.details["intent"] == {
        "name": "buying",
        "source": "keywords",
        "matched": ["quote", "financing"],
    }
    [auto] = await outbound(rt, MessageRow.agent_id == "frontdesk")
    assert (auto.platform, auto.recipient_id, auto.status) == ("email", "dana@example.com", "queued")
    assert auto.subject == "Thanks for your enquiry: Hello, I would like a quote for the Z530 zero-turn."
    assert "Riverside Power Equipment" in auto.content
    assert auto.conversation_id == row.conversation_id
    audit = await count(
        rt, AuditEntry, AuditEntry.action == "email_form.received", AuditEntry.object_id == inbound_id
    )
    assert audit == 1
    assert await Processor(rt).run_once() == 1
    [seen] = world.agent_bodies()
    assert seen["message"]["details"]["intent"]["name"] == "buying"
    async with rt.sessions() as session:
        conversation = await session.get(Conversation, row.conversation_id)
    assert conversation is not None
    assert conversation.agent_id == "sales"
    await Worker(rt, worker_id="w").drain()
    # The auto-response and the agent's answer both went to Dana, none to the website's notification address.
    assert sorted(m["To"] for m in world.mailbox.received) == ["dana@example.com", "dana@example.com"]


async def test_a_form_with_only_a_phone_is_answered_by_sms(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, world: World
) -> None:
    channel = await form_setup(client, auth, world)
    text = "Name: Sam Lee\nPhone: 555 010 9999\nMessage: My mower is broken, it will not start."
    inbound_id = await intake.receive(rt, channel, notification(text), source="s:1")
    assert inbound_id is not None
    [auto] = await outbound(rt, MessageRow.agent_id == "frontdesk")
    assert (auto.platform, auto.recipient_id) == ("sms", "+15550109999")
    assert auto.content == "Hi Sam, our workshop will call you about: My mower is broken, it will not start."
    assert (await inbound(rt, inbound_id)).details["intent"]["name"] == "repair"  # type: ignore[index]
    await Processor(rt).run_once()
    [reply] = await outbound(rt, MessageRow.agent_id == "workshop")
    assert (reply.platform, reply.recipient_id) == ("sms", "+15550109999")  # not to the website's address


async def test_the_classifier_agents_model_decides_and_keywords_take_over_when_it_fails(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, world: World
) -> None:
    await post(client, auth, "/api/v1/agents", {"id": "classifier", "maturity_level": "AUTONOMOUS", "kind": "llm",
                                                "api_key": "sk-test-123", "llm": {"base_url": LLM_BASE, "model": "fake-model"}})  # fmt: skip
    channel = await form_setup(client, auth, world, classifier_agent_id="classifier")
    world.llm.script([{"content": "Repair."}, {"kind": "permanent", "status": 400, "message": "bad model"}])
    first = await intake.receive(rt, channel, notification(), source="s:1")
    second = await intake.receive(rt, channel, notification(message_id="<f2@site.example>"), source="s:2")
    assert first is not None
    assert second is not None
    assert (await inbound(rt, first)).details["intent"] == {
        "name": "repair",
        "source": "llm",
        "model": "fake-model",
    }  # type: ignore[index]
    fell_back = (await inbound(rt, second)).details["intent"]  # type: ignore[index]
    assert (fell_back["name"], fell_back["source"]) == ("buying", "fallback")
    assert "bad model" in fell_back["reason"]
    assert len(world.llm.requests) == 2
    assert "Z530" in world.llm.requests[0].json["messages"][1]["content"]
    [repair, buying] = await outbound(rt, MessageRow.agent_id == "frontdesk")
    assert repair.subject == "About your repair"
    assert buying.subject.startswith("Thanks for your enquiry")  # type: ignore[union-attr]


async def test_a_form_email_from_elsewhere_is_an_ordinary_email(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, world: World
) -> None:
    channel = await form_setup(client, auth, world)
    raw = mail(NOTIFICATION, sender="someone@else.example", subject="New contact form submission")
    row = await inbound(rt, str(await intake.receive(rt, channel, raw, source="s:1")))
    assert row.sender_id == "someone@else.example"
    assert row.details is not None
    assert "form" not in row.details
    assert await count(rt, MessageRow) == 0


# -- the email-forms API --------------------------------------------------------------------------------------------


async def test_email_forms_crud_is_audited(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, world: World
) -> None:
    await form_setup(client, auth, world)
    [form] = (await client.get("/api/v1/email-forms", headers=auth)).json()["items"]
    assert set(form["intents"]) == {"buying", "repair"}  # "sales" is buying
    assert form["fields"] == {"name": "Name", "email": "Email", "phone": "Phone", "message": "Message"}
    changed = await client.patch(
        f"/api/v1/email-forms/{form['id']}",
        json={"enabled": False, "keywords": {"buying": ["z530"]}},
        headers=auth,
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["enabled"], changed.json()["keywords"]) == (False, {"buying": ["z530"]})
    assert (await client.get(f"/api/v1/email-forms/{form['id']}", headers=auth)).json()["enabled"] is False
    assert (await client.delete(f"/api/v1/email-forms/{form['id']}", headers=auth)).status_code == 204
    assert (await client.get(f"/api/v1/email-forms/{form['id']}", headers=auth)).status_code == 404
    actions = {"email_form.created", "email_form.updated", "email_form.deleted"}
    assert await count(rt, AuditEntry, AuditEntry.action.in_(actions)) == 3


async def test_another_tenants_form_is_404(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, world: World
) -> None:
    await form_setup(client, auth, world)
    [form] = (await client.get("/api/v1/email-forms", headers=auth)).json()["items"]
    other = await new_tenant(rt, "other")
    for method in ("GET", "PATCH", "DELETE"):
        response = await client.request(method, f"/api/v1/email-forms/{form['id']}", headers=other,
                                        **({"json": {"name": "x"}} if method == "PATCH" else {}))  # fmt: skip
        assert response.status_code == 404, (method, response.text)
    assert (await client.get("/api/v1/email-forms", headers=other)).json()["items"] == []


@pytest.mark.parametrize(
    ("overrides", "field_name"),
    [
        ({"senders": [], "subject_contains": None}, "senders"),
        ({"intents": {"curious": {"route_to": "sales"}}}, "intents.curious"),
        (
            {"intents": {"buying": {"auto_response": {"event_type": "no_such_event"}}}},
            "intents.buying.auto_response.event_type",
        ),
        ({"variables": {}}, "variables"),
        (
            {"intents": {"other": {"auto_response": {"body": "Hi {{ nickname }}"}}}},
            "intents.other.auto_response.body",
        ),
        (
            {"intents": {"other": {"auto_response": {"event_type": "x", "body": "y"}}}},
            "intents.other.auto_response",
        ),
        ({"classifier_agent_id": "sales"}, "classifier_agent_id"),
        ({"channel_id": "chn_nope"}, "channel_id"),
        ({"keywords": {"other": ["x"]}}, "keywords.other"),
        ({"surprise": True}, "surprise"),
    ],
)
async def test_bad_forms_are_422_naming_the_field(
    client: httpx.AsyncClient,
    auth: dict[str, str],
    rt: Runtime,
    world: World,
    overrides: dict[str, Any],
    field_name: str,
) -> None:
    await form_setup(client, auth, world)
    response = await client.post("/api/v1/email-forms", json=form_body(**overrides), headers=auth)
    assert response.status_code == 422, response.text
    assert field_name in [e["field"] for e in response.json()["errors"]], response.json()


async def test_an_unknown_routing_target_is_422_in_production(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, world: World
) -> None:
    await form_setup(client, auth, world)
    in_production(rt)
    body = form_body(intents={"buying": {"route_to": "nobody"}})
    response = await client.post("/api/v1/email-forms", json=body, headers=auth)
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == ["intents.buying.route_to"]
