"""LINE inbound: X-Line-Signature (base64 HMAC-SHA256 of the body with channel_secret); message events parsed
with the reply token, conversations per user, group or room; other events and standby mode skipped."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from herald.core.errors import Unauthorized
from herald.fakes import inbound as fake
from herald.providers import inbound_adapter
from herald.providers.inbound import InboundMessage

CREDS = {"channel_access_token": "fake-line-channel-access-token", "channel_secret": "8c570fa6dd201bb328f1c1eac23a96d8"}  # fmt: skip
ADAPTER = inbound_adapter("line")
assert ADAPTER is not None
USER = "U4af4980629a1b2c3d4e5f60718293a4b"
GROUP = "Ca56f94637c90e2a1b2c3d4e5f6071829"
SENT = datetime(2021, 7, 7, 13, 40, 42, 211000, tzinfo=UTC)


def event(message: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "type": "message", "message": message, "webhookEventId": "01FZ74A0TDDPYRVKNK77XKC3ZR",
        "deliveryContext": {"isRedelivery": False}, "timestamp": 1625665242211,
        "source": {"type": "user", "userId": USER}, "replyToken": "757913772c4646b784d4b7ce46d12671",
        "mode": "active", **extra,
    }  # fmt: skip


def received(*events: dict[str, Any]) -> list[InboundMessage]:
    payload = {"destination": "Uxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", "events": list(events)}
    found = ADAPTER.receive(CREDS, fake.signed("line", CREDS, payload).callback())
    assert isinstance(found, list)
    return found


def test_a_text_message_is_verified_and_parsed_with_its_reply_token() -> None:
    request = fake.line(CREDS, text="Hello, world", sender_id=USER, message_id="14353798921116", reply_token="757913772c4646b784d4b7ce46d12671", sent_at=SENT)  # fmt: skip
    assert ADAPTER.receive(CREDS, request.callback()) == [
        InboundMessage(
            conversation_key=USER,
            sender_id=USER,
            text="Hello, world",
            provider_message_id="14353798921116",
            sent_at=SENT,
            reply_token="757913772c4646b784d4b7ce46d12671",
            raw_type="text",
        )
    ]


def test_a_group_message_goes_to_the_group() -> None:
    (message,) = ADAPTER.parse(CREDS, fake.line(CREDS, sender_id=USER, conversation_key=GROUP).callback())
    assert (message.conversation_key, message.sender_id) == (GROUP, USER)
    source = {"type": "room", "roomId": "Ra8dbf4673c4c812cd491258042226c99"}
    (message,) = received(event({"type": "text", "id": "1", "text": "hi"}, source=source))
    assert (message.conversation_key, message.sender_id) == ("Ra8dbf4673c4c812cd491258042226c99", "")


def test_media_stickers_and_locations_are_references() -> None:
    found = received(
        event({"type": "image", "id": "354718705033693859", "contentProvider": {"type": "line"}, "imageSet": {"id": "E005D41A", "index": 1, "total": 2}}),
        event({"type": "file", "id": "325708", "fileName": "file.txt", "fileSize": 2138}),
        event({"type": "video", "id": "325709", "duration": 60000, "contentProvider": {"type": "external", "originalContentUrl": "https://example.com/original.mp4"}}),
        event({"type": "sticker", "id": "1501597916", "packageId": "446", "stickerId": "1988", "stickerResourceType": "ANIMATION"}),
        event({"type": "location", "id": "325710", "title": "Tokyo Tower", "address": "Minato", "latitude": 35.65910807942215, "longitude": 139.70372892916203}),
    )  # fmt: skip
    assert [(m.raw_type, m.attachments) for m in found] == [
        ("image", ({"kind": "image", "ref": "354718705033693859"},)),
        ("file", ({"kind": "document", "ref": "325708", "name": "file.txt"},)),
        ("video", ({"kind": "video", "ref": "https://example.com/original.mp4"},)),
        ("sticker", ({"kind": "sticker", "ref": "446/1988"},)),
        (
            "location",
            ({"kind": "location", "ref": "geo:35.65910807942215,139.70372892916203", "name": "Tokyo Tower"},),
        ),
    ]


def test_other_events_standby_and_the_console_check_are_not_messages() -> None:
    follow = {"type": "follow", "timestamp": 1625665242211, "source": {"type": "user", "userId": USER}, "replyToken": "x", "mode": "active", "webhookEventId": "01", "deliveryContext": {"isRedelivery": False}}  # fmt: skip
    unsend = {"type": "unsend", "unsend": {"messageId": "325708"}, "timestamp": 1, "source": {"type": "user", "userId": USER}, "mode": "active"}  # fmt: skip
    standby = event({"type": "text", "id": "2", "text": "not ours"}, mode="standby")
    del standby["replyToken"]
    assert received(follow, unsend, standby) == []
    assert received() == []  # the console's Verify button


def test_a_wrong_secret_is_refused() -> None:
    with pytest.raises(Unauthorized, match="X-Line-Signature does not match"):
        ADAPTER.receive(CREDS, fake.line(CREDS, secret="0" * 32).callback())


def test_a_missing_signature_is_refused() -> None:
    request = fake.line(CREDS)
    del request.headers["x-line-signature"]
    with pytest.raises(Unauthorized, match="X-Line-Signature is missing"):
        ADAPTER.receive(CREDS, request.callback())


def test_a_changed_body_is_refused() -> None:
    request = fake.line(CREDS, text="ok")
    with pytest.raises(Unauthorized):
        ADAPTER.verify(CREDS, request._replace(body=request.body.replace(b'"ok"', b'"no"')).callback())


def test_a_channel_without_channel_secret_takes_no_inbound() -> None:
    with pytest.raises(Unauthorized, match="this channel has no channel_secret configured; inbound is off"):
        ADAPTER.receive(
            {"channel_access_token": "fake-line-channel-access-token"}, fake.line(CREDS).callback()
        )
