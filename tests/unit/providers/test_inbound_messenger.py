"""Messenger inbound: Meta's X-Hub-Signature-256 and hub.* handshake, entry[].messaging[] messages, echoes of
the page's own messages, deliveries and reads skipped."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from herald.core.errors import Unauthorized
from herald.fakes import inbound as fake
from herald.providers import inbound_adapter
from herald.providers.inbound import InboundMessage, Reply
from herald.providers.receipts import CallbackRequest

CREDS = {
    "page_access_token": "EAAG-page-token",
    "page_id": "1234567890",
    "app_secret": "messenger-app-secret",
    "verify_token": "messenger-verify-token",
}
ADAPTER = inbound_adapter("messenger")
assert ADAPTER is not None
PSID = "6543210987654321"
SENT = datetime(2016, 3, 23, 0, 25, 52, 478000, tzinfo=UTC)


def page(*events: dict[str, Any]) -> dict[str, Any]:
    return {
        "object": "page",
        "entry": [{"id": "1234567890", "time": 1458692752478, "messaging": list(events)}],
    }


def test_a_text_message_is_verified_and_parsed() -> None:
    request = fake.messenger(
        CREDS,
        text="hello, world!",
        sender_id=PSID,
        message_id="mid.1457764197618:41d102a3e1ae206a38",
        sent_at=SENT,
    )
    assert ADAPTER.receive(CREDS, request.callback()) == [
        InboundMessage(
            conversation_key=PSID,
            sender_id=PSID,
            text="hello, world!",
            provider_message_id="mid.1457764197618:41d102a3e1ae206a38",
            sent_at=SENT,
            raw_type="text",
        )
    ]


def test_attachments_are_url_references() -> None:
    event = {
        "sender": {"id": PSID}, "recipient": {"id": "1234567890"}, "timestamp": 1458692752478,
        "message": {"mid": "m_IMG", "attachments": [
            {"type": "image", "payload": {"url": "https://scontent.xx.fbcdn.net/v/t1/photo.jpg"}},
            {"type": "template", "payload": {"template_type": "generic"}},
        ]},
    }  # fmt: skip
    (message,) = ADAPTER.parse(CREDS, fake.signed("messenger", CREDS, page(event)).callback())
    assert (message.raw_type, message.text) == ("image", "")
    assert message.attachments == ({"kind": "image", "ref": "https://scontent.xx.fbcdn.net/v/t1/photo.jpg"},)


def test_echoes_deliveries_reads_and_reactions_are_not_messages() -> None:
    base = {"sender": {"id": PSID}, "recipient": {"id": "1234567890"}, "timestamp": 1458692752478}
    events = [
        {
            **base,
            "message": {"mid": "m_ECHO", "is_echo": True, "app_id": 1517776481860111, "text": "our reply"},
        },
        {**base, "delivery": {"mids": ["m_OUT"], "watermark": 1458668856253}},
        {**base, "read": {"watermark": 1458668856253}},
        {**base, "reaction": {"mid": "m_OUT", "action": "react", "emoji": "\u2764"}},
    ]
    assert ADAPTER.receive(CREDS, fake.signed("messenger", CREDS, page(*events)).callback()) == []


def test_a_wrong_secret_is_refused() -> None:
    with pytest.raises(Unauthorized, match="X-Hub-Signature-256"):
        ADAPTER.receive(CREDS, fake.messenger(CREDS, secret="whatsapp-app-secret").callback())


def test_a_missing_signature_is_refused() -> None:
    request = fake.messenger(CREDS)
    del request.headers["x-hub-signature-256"]
    with pytest.raises(Unauthorized, match="missing"):
        ADAPTER.receive(CREDS, request.callback())


def test_a_channel_without_app_secret_takes_no_inbound() -> None:
    creds = {"page_access_token": "EAAG-page-token", "page_id": "1234567890"}
    with pytest.raises(Unauthorized, match="no app_secret configured; inbound is off"):
        ADAPTER.verify(creds, fake.messenger(CREDS).callback())


def test_the_subscription_handshake_is_metas() -> None:
    url = f"{fake.DEFAULT_URL}?hub.mode=subscribe&hub.challenge=CHALLENGE_ACCEPTED&hub.verify_token=messenger-verify-token"
    reply = ADAPTER.handshake(CREDS, CallbackRequest(url=url, body=b"", headers={}, form={}))
    assert reply == Reply(200, "CHALLENGE_ACCEPTED")
