"""WhatsApp Cloud inbound: X-Hub-Signature-256 over the raw body, the GET hub.challenge check, messages parsed
from entry[].changes[].value.messages[] with names from contacts[], button and list replies as actions, quoted
replies with in_reply_to, statuses and reactions skipped."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from herald.core.errors import Forbidden, Unauthorized, ValidationFailed
from herald.fakes import inbound as fake
from herald.providers import inbound_adapter
from herald.providers.inbound import InboundMessage, Reply
from herald.providers.receipts import CallbackRequest

CREDS = {
    "access_token": "EAAG-whatsapp-token",
    "phone_number_id": "106540352242922",
    "app_secret": "meta-app-secret",
    "verify_token": "meta-verify-token",
}
ADAPTER = inbound_adapter("whatsapp_cloud")
assert ADAPTER is not None
SENT = datetime(2025, 6, 8, 20, 59, 43, tzinfo=UTC)


def change(value: dict[str, Any]) -> dict[str, Any]:
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
        **value,
    }
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"value": value, "field": "messages"}]}],
    }


def test_a_text_message_is_verified_and_parsed() -> None:
    request = fake.whatsapp_cloud(
        CREDS, text="Does it come in another color?", sender_id="16505551234", sender_name="Sheena Nelson",
        message_id="wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=", sent_at=SENT,
    ).callback()  # fmt: skip
    assert ADAPTER.receive(CREDS, request) == [
        InboundMessage(
            conversation_key="16505551234",
            sender_id="16505551234",
            sender_name="Sheena Nelson",
            text="Does it come in another color?",
            provider_message_id="wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=",
            sent_at=SENT,
            raw_type="text",
        )
    ]


def test_media_are_kept_as_references_with_captions_as_text() -> None:
    messages = [
        {"from": "16505551234", "id": "wamid.IMG", "timestamp": "1749416383", "type": "image",
         "image": {"caption": "this one", "mime_type": "image/jpeg", "sha256": "abc=", "id": "1003383421387256"}},
        {"from": "16505551234", "id": "wamid.DOC", "timestamp": "1749416384", "type": "document",
         "document": {"filename": "invoice.pdf", "mime_type": "application/pdf", "sha256": "def=", "id": "2003"}},
        {"from": "16505551234", "id": "wamid.AUD", "timestamp": "1749416385", "type": "audio",
         "audio": {"mime_type": "audio/ogg; codecs=opus", "sha256": "ghi=", "id": "3003", "voice": True}},
        {"from": "16505551234", "id": "wamid.LOC", "timestamp": "1749416386", "type": "location",
         "location": {"latitude": 37.48, "longitude": -122.15, "name": "Head office"}},
    ]  # fmt: skip
    payload = change(
        {"contacts": [{"profile": {"name": "Sheena"}, "wa_id": "16505551234"}], "messages": messages}
    )
    found = ADAPTER.receive(CREDS, fake.signed("whatsapp_cloud", CREDS, payload).callback())
    assert isinstance(found, list)
    assert [(m.raw_type, m.text, m.attachments) for m in found] == [
        ("image", "this one", ({"kind": "image", "ref": "1003383421387256", "mime_type": "image/jpeg"},)),
        (
            "document",
            "",
            ({"kind": "document", "ref": "2003", "mime_type": "application/pdf", "name": "invoice.pdf"},),
        ),
        ("audio", "", ({"kind": "audio", "ref": "3003", "mime_type": "audio/ogg; codecs=opus"},)),
        ("location", "", ({"kind": "location", "ref": "geo:37.48,-122.15", "name": "Head office"},)),
    ]
    assert {m.sender_name for m in found} == {"Sheena"}


def test_button_list_and_template_replies_are_actions_with_the_title_as_text() -> None:
    messages = [
        {"context": {"from": "15550783881", "id": "wamid.ASK"}, "from": "1", "id": "wamid.B",
         "timestamp": "1749416383", "type": "interactive",
         "interactive": {"type": "button_reply", "button_reply": {"id": "yes", "title": "Yes please"}}},
        {"context": {"from": "15550783881", "id": "wamid.LIST"}, "from": "1", "id": "wamid.L",
         "timestamp": "1749416383", "type": "interactive",
         "interactive": {"type": "list_reply", "list_reply": {"id": "r2", "title": "Second", "description": "2nd"}}},
        {"context": {"from": "15550783881", "id": "wamid.TPL"}, "from": "1", "id": "wamid.T",
         "timestamp": "1749416383", "type": "button", "button": {"payload": "stop", "text": "Stop promotions"}},
    ]  # fmt: skip
    found = ADAPTER.receive(
        CREDS, fake.signed("whatsapp_cloud", CREDS, change({"messages": messages})).callback()
    )
    assert isinstance(found, list)
    assert [(m.text, m.action, m.raw_type, m.in_reply_to) for m in found] == [
        ("Yes please", "yes", "action", "wamid.ASK"),
        ("Second", "r2", "action", "wamid.LIST"),
        ("Stop promotions", "stop", "action", "wamid.TPL"),
    ]


def test_statuses_reactions_and_system_notices_are_not_messages() -> None:
    value = {
        "statuses": [{"id": "wamid.OUT", "status": "read", "timestamp": "1749416383", "recipient_id": "1"}],
        "messages": [
            {"from": "1", "id": "wamid.R", "timestamp": "1749416383", "type": "reaction",
             "reaction": {"message_id": "wamid.OUT", "emoji": "\U0001f44d"}},
            {"from": "1", "id": "wamid.S", "timestamp": "1749416383", "type": "system",
             "system": {"body": "User changed number", "type": "user_changed_number"}},
            {"from": "1", "id": "wamid.U", "timestamp": "1749416383", "type": "unsupported", "errors": [{"code": 131051}]},
        ],
    }  # fmt: skip
    assert ADAPTER.receive(CREDS, fake.signed("whatsapp_cloud", CREDS, change(value)).callback()) == []
    account_update = {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "account_update", "value": {}}]}]}  # fmt: skip
    assert ADAPTER.receive(CREDS, fake.signed("whatsapp_cloud", CREDS, account_update).callback()) == []


def test_a_wrong_secret_is_refused() -> None:
    request = fake.whatsapp_cloud(CREDS, secret="not-the-app-secret").callback()
    with pytest.raises(Unauthorized, match="X-Hub-Signature-256"):
        ADAPTER.receive(CREDS, request)


def test_a_missing_signature_is_refused() -> None:
    signed = fake.whatsapp_cloud(CREDS)
    del signed.headers["x-hub-signature-256"]
    with pytest.raises(Unauthorized, match="X-Hub-Signature-256 is missing"):
        ADAPTER.receive(CREDS, signed.callback())


def test_a_changed_body_is_refused() -> None:
    signed = fake.whatsapp_cloud(CREDS, text="pay 10")
    forged = signed._replace(body=signed.body.replace(b"pay 10", b"pay 99"))
    with pytest.raises(Unauthorized):
        ADAPTER.verify(CREDS, forged.callback())


def test_a_channel_without_app_secret_takes_no_inbound() -> None:
    creds = {k: v for k, v in CREDS.items() if k != "app_secret"}
    with pytest.raises(Unauthorized, match="no app_secret configured; inbound is off"):
        ADAPTER.receive(creds, fake.whatsapp_cloud(CREDS).callback())


def test_a_signed_body_that_is_not_json_is_invalid() -> None:
    with pytest.raises(ValidationFailed):
        ADAPTER.receive(CREDS, fake.signed("whatsapp_cloud", CREDS, b"not json").callback())


def get(query: str) -> CallbackRequest:
    return CallbackRequest(url=f"{fake.DEFAULT_URL}?{query}", body=b"", headers={}, form={})


def test_the_subscription_handshake_echoes_the_challenge() -> None:
    reply = ADAPTER.handshake(
        CREDS, get("hub.mode=subscribe&hub.verify_token=meta-verify-token&hub.challenge=1158201444")
    )
    assert reply == Reply(200, "1158201444", "text/plain")


@pytest.mark.parametrize(
    ("creds", "query", "reason"),
    [
        (CREDS, "hub.mode=subscribe&hub.verify_token=guess&hub.challenge=1", "does not match"),
        (CREDS, "hub.mode=unsubscribe&hub.verify_token=meta-verify-token&hub.challenge=1", "does not match"),
        (
            {"app_secret": "s"},
            "hub.mode=subscribe&hub.verify_token=&hub.challenge=1",
            "no verify_token configured",
        ),
    ],
)
def test_the_handshake_refuses_a_wrong_token(creds: dict[str, str], query: str, reason: str) -> None:
    with pytest.raises(Forbidden, match=reason):
        ADAPTER.handshake(creds, get(query))


def test_a_post_is_not_a_handshake() -> None:
    assert ADAPTER.handshake(CREDS, fake.whatsapp_cloud(CREDS).callback()) is None


# -- button presses and replies --


def parsed(request: fake.FakeInbound) -> list[InboundMessage]:
    found = ADAPTER.receive(CREDS, request.callback())
    assert isinstance(found, list)
    return found


def test_a_button_reply_is_a_verified_action_answering_the_message_with_the_buttons() -> None:
    request = fake.whatsapp_button_reply(
        CREDS, button_id="hl:req_01JXYZABCDEFGHJKMNPQRSTVWX:a", title="Approve", sender="16505551234",
        context_id="wamid.HBgLMTY1MDUwNzY1MjAVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA", message_id="wamid.PRESS",
        sender_name="Ana Lima", sent_at=SENT,
    )  # fmt: skip
    assert parsed(request) == [
        InboundMessage(
            conversation_key="16505551234",
            sender_id="16505551234",
            sender_name="Ana Lima",
            text="Approve",
            provider_message_id="wamid.PRESS",
            sent_at=SENT,
            raw_type="action",
            action="hl:req_01JXYZABCDEFGHJKMNPQRSTVWX:a",
            in_reply_to="wamid.HBgLMTY1MDUwNzY1MjAVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA",
        )
    ]


def test_a_list_reply_is_an_action_too() -> None:
    request = fake.whatsapp_button_reply(
        CREDS,
        button_id="hl:q:3",
        title="Option 3",
        sender="16505551234",
        context_id="wamid.LIST",
        list_reply=True,
    )
    (chosen,) = parsed(request)
    assert (chosen.action, chosen.text, chosen.raw_type, chosen.in_reply_to) == (
        "hl:q:3", "Option 3", "action", "wamid.LIST",
    )  # fmt: skip
    assert chosen.provider_message_id.startswith("wamid.")


def test_a_button_reply_with_a_wrong_secret_is_refused() -> None:
    request = fake.whatsapp_button_reply(
        CREDS, button_id="hl:q:a", title="Yes", sender="1", context_id="wamid.X", secret="not-the-app-secret"
    )
    with pytest.raises(Unauthorized, match="X-Hub-Signature-256"):
        ADAPTER.receive(CREDS, request.callback())


def test_a_quoted_reply_names_the_message_it_answers() -> None:
    (reply,) = parsed(fake.whatsapp_cloud(CREDS, text="yes, go ahead", context_id="wamid.ASKED"))
    assert (reply.text, reply.in_reply_to, reply.action, reply.raw_type) == (
        "yes, go ahead", "wamid.ASKED", None, "text",
    )  # fmt: skip
    (plain,) = parsed(fake.whatsapp_cloud(CREDS))
    assert plain.in_reply_to is None
