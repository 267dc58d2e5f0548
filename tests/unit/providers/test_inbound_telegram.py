"""Telegram inbound: X-Telegram-Bot-Api-Secret-Token equal to the channel's secret_token; message and
channel_post updates parsed (chat-qualified ids), edits, callback queries, bots and service messages skipped."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from herald.core.errors import Unauthorized
from herald.fakes import inbound as fake
from herald.providers import inbound_adapter
from herald.providers.inbound import InboundMessage

CREDS = {"bot_token": "123456:ABC-DEF1234ghIkl-zyx57W2v1u123ew11", "secret_token": "tg_secret-Token_42"}
ADAPTER = inbound_adapter("telegram")
assert ADAPTER is not None
PERSON = {"id": 1111111, "is_bot": False, "first_name": "Test", "last_name": "Lastname", "username": "Test", "language_code": "en"}  # fmt: skip


def received(payload: dict[str, Any]) -> list[InboundMessage]:
    found = ADAPTER.receive(CREDS, fake.signed("telegram", CREDS, payload).callback())
    assert isinstance(found, list)
    return found


def test_a_private_message_is_verified_and_parsed() -> None:
    request = fake.telegram(CREDS, text="/start", sender_id="1111111", sender_name="Test Lastname", message_id=1365, sent_at=datetime(2015, 9, 7, 17, 5, 32, tzinfo=UTC))  # fmt: skip
    assert ADAPTER.receive(CREDS, request.callback()) == [
        InboundMessage(
            conversation_key="1111111",
            sender_id="1111111",
            sender_name="Test Lastname",
            text="/start",
            provider_message_id="1111111:1365",
            sent_at=datetime(2015, 9, 7, 17, 5, 32, tzinfo=UTC),
            raw_type="text",
        )
    ]


def test_a_group_message_goes_to_the_group_and_keeps_its_topic() -> None:
    message = {
        "message_id": 77, "from": PERSON, "date": 1441645532, "text": "hi all",
        "chat": {"id": -1001234567890, "title": "Herald users", "type": "supergroup", "is_forum": True},
        "message_thread_id": 12, "is_topic_message": True,
    }  # fmt: skip
    (parsed,) = received({"update_id": 10000, "message": message})
    assert (parsed.conversation_key, parsed.sender_id, parsed.provider_message_id, parsed.thread_id) == (
        "-1001234567890", "1111111", "-1001234567890:77", "12",
    )  # fmt: skip


def test_a_channel_post_speaks_for_the_channel() -> None:
    chat = {"id": -1009876543210, "title": "Announcements", "type": "channel"}
    post = {"message_id": 5, "sender_chat": chat, "chat": chat, "date": 1441645532, "text": "Release 2.0"}
    (parsed,) = received({"update_id": 10001, "channel_post": post})
    assert (parsed.conversation_key, parsed.sender_id, parsed.sender_name, parsed.text) == (
        "-1009876543210", "-1009876543210", "Announcements", "Release 2.0",
    )  # fmt: skip


def test_a_photo_with_caption_is_a_file_id_reference() -> None:
    photo = [
        {
            "file_id": "AgACAgQAAxkBAAIBsmall",
            "file_unique_id": "a",
            "width": 90,
            "height": 67,
            "file_size": 1200,
        },
        {
            "file_id": "AgACAgQAAxkBAAIBlarge",
            "file_unique_id": "b",
            "width": 1280,
            "height": 960,
            "file_size": 98000,
        },
    ]
    document = {"file_id": "BQACAgQAAxkBAAIBdoc", "file_unique_id": "c", "file_name": "cv.pdf", "mime_type": "application/pdf"}  # fmt: skip
    base = {"from": PERSON, "chat": {"id": 1111111, "type": "private"}, "date": 1441645532}
    (parsed,) = received(
        {"update_id": 1, "message": {**base, "message_id": 1, "photo": photo, "caption": "look"}}
    )
    assert (parsed.text, parsed.raw_type, parsed.attachments) == ("look", "image", ({"kind": "image", "ref": "AgACAgQAAxkBAAIBlarge"},))  # fmt: skip
    (parsed,) = received({"update_id": 2, "message": {**base, "message_id": 2, "document": document}})
    assert parsed.attachments == ({"kind": "document", "ref": "BQACAgQAAxkBAAIBdoc", "mime_type": "application/pdf", "name": "cv.pdf"},)  # fmt: skip


@pytest.mark.parametrize(
    "update",
    [
        {"update_id": 1, "edited_message": {"message_id": 1, "from": PERSON, "chat": {"id": 1, "type": "private"}, "date": 1, "edit_date": 2, "text": "fixed"}},
        {"update_id": 2, "callback_query": {"id": "4382", "from": PERSON, "data": "yes", "chat_instance": "-1"}},
        {"update_id": 3, "message": {"message_id": 3, "from": {**PERSON, "is_bot": True}, "chat": {"id": -1, "type": "group"}, "date": 1, "text": "beep"}},
        {"update_id": 4, "message": {"message_id": 4, "from": PERSON, "chat": {"id": -1, "type": "group"}, "date": 1, "new_chat_members": [PERSON]}},
        {"update_id": 5, "my_chat_member": {"chat": {"id": 1, "type": "private"}, "from": PERSON, "date": 1}},
    ],
)  # fmt: skip
def test_edits_queries_bots_and_service_messages_are_not_messages(update: dict[str, Any]) -> None:
    assert received(update) == []


def test_a_wrong_secret_token_is_refused() -> None:
    with pytest.raises(Unauthorized, match="does not match"):
        ADAPTER.receive(CREDS, fake.telegram(CREDS, secret="tg_secret-Token_43").callback())


def test_a_missing_secret_token_is_refused() -> None:
    request = fake.telegram(CREDS)
    del request.headers["x-telegram-bot-api-secret-token"]
    with pytest.raises(Unauthorized, match="X-Telegram-Bot-Api-Secret-Token is missing"):
        ADAPTER.receive(CREDS, request.callback())


def test_a_channel_without_secret_token_takes_no_inbound() -> None:
    with pytest.raises(Unauthorized, match="this channel has no secret_token configured; inbound is off"):
        ADAPTER.receive({"bot_token": CREDS["bot_token"]}, fake.telegram(CREDS).callback())
