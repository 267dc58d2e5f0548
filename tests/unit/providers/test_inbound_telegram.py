"""Telegram inbound: X-Telegram-Bot-Api-Secret-Token equal to the channel's secret_token; message and
channel_post updates parsed (chat-qualified ids, replies with in_reply_to), callback queries parsed as button
presses, edits, bots and service messages skipped."""

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
    return parsed(fake.signed("telegram", CREDS, payload))


def parsed(request: fake.FakeInbound) -> list[InboundMessage]:
    found = ADAPTER.receive(CREDS, request.callback())
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
        {"update_id": 2, "callback_query": {"id": "4382", "from": PERSON, "data": "yes", "chat_instance": "-1", "inline_message_id": "AAA"}},
        {"update_id": 6, "callback_query": {"id": "4383", "from": PERSON, "chat_instance": "-1", "game_short_name": "g", "message": {"message_id": 9, "chat": {"id": 1, "type": "private"}, "date": 1}}},
        {"update_id": 3, "message": {"message_id": 3, "from": {**PERSON, "is_bot": True}, "chat": {"id": -1, "type": "group"}, "date": 1, "text": "beep"}},
        {"update_id": 4, "message": {"message_id": 4, "from": PERSON, "chat": {"id": -1, "type": "group"}, "date": 1, "new_chat_members": [PERSON]}},
        {"update_id": 5, "my_chat_member": {"chat": {"id": 1, "type": "private"}, "from": PERSON, "date": 1}},
    ],
)  # fmt: skip
def test_edits_inline_and_game_queries_bots_and_service_messages_are_not_messages(
    update: dict[str, Any],
) -> None:
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


# -- button presses and replies --


def test_a_callback_query_is_a_verified_button_press() -> None:
    request = fake.telegram_callback_query(
        CREDS, data="hl:req_01JXYZABCDEFGHJKMNPQRSTVWX:a", sender_id="1111111", chat_id="1111111",
        message_id=4242, button_text="Approve", callback_id="4382bfdwdsb323b2d9", sender_name="Ana Lima",
    )  # fmt: skip
    before = datetime.now(UTC)
    (press,) = parsed(request)
    assert press == InboundMessage(
        conversation_key="1111111",
        sender_id="1111111",
        sender_name="Ana Lima",
        text="Approve",
        provider_message_id="cbq:4382bfdwdsb323b2d9",
        sent_at=press.sent_at,
        raw_type="action",
        reply_token="4382bfdwdsb323b2d9",
        action="hl:req_01JXYZABCDEFGHJKMNPQRSTVWX:a",
        in_reply_to="1111111:4242",
    )
    assert before <= press.sent_at <= datetime.now(UTC)


def test_a_press_in_a_group_belongs_to_the_group() -> None:
    request = fake.telegram_callback_query(
        CREDS, data="hl:q:2", sender_id="1111111", chat_id="-1001234567890", message_id=7
    )
    (press,) = parsed(request)
    assert (press.conversation_key, press.sender_id, press.in_reply_to, press.action) == (
        "-1001234567890", "1111111", "-1001234567890:7", "hl:q:2",
    )  # fmt: skip
    assert press.provider_message_id.startswith("cbq:")
    assert press.reply_token == press.provider_message_id.removeprefix("cbq:")


def test_a_press_on_a_button_no_longer_shown_has_its_data_as_text() -> None:
    message = {"message_id": 9, "from": {"id": 5, "is_bot": True, "first_name": "Herald"}, "date": 1441645532,
               "chat": {"id": 1111111, "type": "private"}, "text": "Approved by Ana"}  # fmt: skip
    query = {"id": "77", "from": PERSON, "message": message, "chat_instance": "-1", "data": "hl:q:a"}
    (press,) = received({"update_id": 7, "callback_query": query})
    assert (press.text, press.action, press.in_reply_to, press.sender_name) == (
        "hl:q:a", "hl:q:a", "1111111:9", "Test Lastname",
    )  # fmt: skip


def test_a_callback_query_with_a_wrong_secret_is_refused() -> None:
    request = fake.telegram_callback_query(
        CREDS,
        data="hl:q:a",
        sender_id="1111111",
        chat_id="1111111",
        message_id=1,
        secret="tg_secret-Token_43",
    )
    with pytest.raises(Unauthorized, match="does not match"):
        ADAPTER.receive(CREDS, request.callback())


def test_a_reply_names_the_message_it_answers() -> None:
    request = fake.telegram(CREDS, text="yes", sender_id="1111111", message_id=50, reply_to_message_id=42)
    (reply,) = parsed(request)
    assert (reply.text, reply.in_reply_to, reply.action, reply.raw_type) == (
        "yes",
        "1111111:42",
        None,
        "text",
    )
    (plain,) = parsed(fake.telegram(CREDS, sender_id="1111111"))
    assert plain.in_reply_to is None


def test_a_topic_message_is_not_a_reply_to_the_topic_itself() -> None:
    chat = {"id": -1001234567890, "title": "Herald users", "type": "supergroup", "is_forum": True}
    root = {
        "message_id": 12,
        "from": PERSON,
        "chat": chat,
        "date": 1441645500,
        "forum_topic_created": {"name": "Ops"},
    }
    base = {
        "from": PERSON,
        "chat": chat,
        "date": 1441645532,
        "message_thread_id": 12,
        "is_topic_message": True,
    }
    (in_topic,) = received(
        {"update_id": 8, "message": {**base, "message_id": 80, "text": "hi", "reply_to_message": root}}
    )
    answered = {**root, "message_id": 79, "text": "Approve?", "message_thread_id": 12}
    (reply,) = received(
        {"update_id": 9, "message": {**base, "message_id": 81, "text": "yes", "reply_to_message": answered}}
    )
    assert (in_topic.in_reply_to, reply.in_reply_to) == (None, "-1001234567890:79")
