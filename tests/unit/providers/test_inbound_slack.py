"""Slack Events API inbound: v0 signatures with a 5-minute window, the signed url_verification handshake,
message events parsed, bot messages and edits skipped."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import pytest

from herald.core.errors import Unauthorized
from herald.fakes import inbound as fake
from herald.providers import inbound_adapter
from herald.providers.inbound import InboundMessage, Reply
from herald.providers.slack.inbound import signature

CREDS = {"bot_token": "xoxb-slack-bot-token", "signing_secret": "8f742231b10e8888abcd99yyyzzz85a5"}
ADAPTER = inbound_adapter("slack")
assert ADAPTER is not None


def callback(event: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "token": "XXYYZZ", "team_id": "T061EG9R6", "api_app_id": "A0MDYCDME", "event": event,
        "type": "event_callback", "event_id": "Ev0PV52K21", "event_time": 1355517523, **extra,
    }  # fmt: skip


def received(request: fake.FakeInbound) -> list[InboundMessage]:
    found = ADAPTER.receive(CREDS, request.callback())
    assert isinstance(found, list)
    return found


def test_the_signature_matches_slacks_documented_example() -> None:
    body = (
        b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V"
        b"&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text="
        b"&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN"
        b"&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
    )
    expected = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
    assert signature("8f742231b10e8888abcd99yyyzzz85a5", "1531420618", body) == expected


def test_a_message_event_is_verified_and_parsed() -> None:
    request = fake.slack(
        CREDS,
        text="Hello world",
        sender_id="U2147483697",
        conversation_key="C2147483705",
        message_id="1355517523.000005",
    )
    assert ADAPTER.receive(CREDS, request.callback()) == [
        InboundMessage(
            conversation_key="C2147483705",
            sender_id="U2147483697",
            text="Hello world",
            provider_message_id="C2147483705:1355517523.000005",
            sent_at=datetime(2012, 12, 14, 20, 38, 43, 5, tzinfo=UTC),
            raw_type="text",
        )
    ]


def test_a_thread_reply_keeps_the_thread() -> None:
    request = fake.slack(
        CREDS, text="in thread", message_id="1355517600.000100", thread_id="1355517523.000005"
    )
    (message,) = ADAPTER.parse(CREDS, request.callback())
    assert message.thread_id == "1355517523.000005"


def test_files_and_mentions_are_messages() -> None:
    share = {
        "type": "message", "subtype": "file_share", "channel": "D024BE91L", "user": "U2147483697", "text": "",
        "ts": "1355517523.000005", "files": [{"id": "F0S43PZDF", "name": "plan.png", "mimetype": "image/png",
                                              "url_private": "https://files.slack.com/files-pri/T1-F0S43PZDF/plan.png"}],
    }  # fmt: skip
    (message,) = received(fake.signed("slack", CREDS, callback(share)))
    assert message.attachments == (
        {"kind": "image", "ref": "F0S43PZDF", "mime_type": "image/png", "name": "plan.png"},
    )
    assert message.raw_type == "image"
    mention = {
        "type": "app_mention",
        "channel": "C1",
        "user": "U1",
        "text": "<@U0LAN0Z89> hi",
        "ts": "1515449522.000016",
    }
    (message,) = received(fake.signed("slack", CREDS, callback(mention)))
    assert (message.provider_message_id, message.text) == ("C1:1515449522.000016", "<@U0LAN0Z89> hi")


@pytest.mark.parametrize(
    "event",
    [
        {"type": "message", "subtype": "bot_message", "bot_id": "B1", "channel": "C1", "text": "ours", "ts": "1.0"},
        {"type": "message", "bot_id": "B1", "user": "U0LAN0Z89", "channel": "C1", "text": "ours", "ts": "1.0"},
        {"type": "message", "subtype": "message_changed", "hidden": True, "channel": "C1", "ts": "2.0",
         "message": {"type": "message", "user": "U1", "text": "edited", "ts": "1.0"}},
        {"type": "message", "subtype": "message_deleted", "hidden": True, "channel": "C1", "ts": "2.0"},
        {"type": "message", "subtype": "channel_join", "user": "U1", "channel": "C1", "text": "joined", "ts": "1.0"},
        {"type": "reaction_added", "user": "U1", "reaction": "thumbsup", "item": {"type": "message", "channel": "C1", "ts": "1.0"}},
    ],
)  # fmt: skip
def test_bot_messages_edits_and_other_events_are_not_messages(event: dict[str, Any]) -> None:
    assert ADAPTER.receive(CREDS, fake.signed("slack", CREDS, callback(event)).callback()) == []


def test_url_verification_echoes_the_challenge_after_the_signature() -> None:
    payload = {"token": "Jhj5dZrVaK7ZwHHjRyZWjbDl", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P", "type": "url_verification"}  # fmt: skip
    request = fake.signed("slack", CREDS, payload).callback()
    assert ADAPTER.receive(CREDS, request) == Reply(200, payload["challenge"], "text/plain")
    assert ADAPTER.handshake(CREDS, request) == Reply(200, payload["challenge"], "text/plain")
    forged = fake.signed("slack", CREDS, payload, secret="guess").callback()
    with pytest.raises(Unauthorized):
        ADAPTER.handshake(CREDS, forged)


def test_a_wrong_secret_is_refused() -> None:
    with pytest.raises(Unauthorized, match="X-Slack-Signature does not match"):
        ADAPTER.receive(CREDS, fake.slack(CREDS, secret="not-the-signing-secret").callback())


@pytest.mark.parametrize("name", ["x-slack-signature", "x-slack-request-timestamp"])
def test_missing_signature_headers_are_refused(name: str) -> None:
    request = fake.slack(CREDS)
    del request.headers[name]
    with pytest.raises(Unauthorized, match="missing"):
        ADAPTER.receive(CREDS, request.callback())


@pytest.mark.parametrize("offset", [-301, 301])
def test_a_timestamp_outside_five_minutes_is_refused(offset: int) -> None:
    request = fake.slack(CREDS, signed_at=int(time.time()) + offset)
    with pytest.raises(Unauthorized, match="5 minutes"):
        ADAPTER.receive(CREDS, request.callback())


def test_a_timestamp_within_five_minutes_is_accepted() -> None:
    request = fake.slack(CREDS, signed_at=int(time.time()) - 240)
    assert len(received(request)) == 1


def test_a_replayed_body_under_a_fresh_timestamp_is_refused() -> None:
    old = fake.slack(CREDS, signed_at=int(time.time()) - 3600)
    replay = old._replace(headers={**old.headers, "x-slack-request-timestamp": str(int(time.time()))})
    with pytest.raises(Unauthorized, match="does not match"):
        ADAPTER.verify(CREDS, replay.callback())


def test_a_channel_without_signing_secret_takes_no_inbound() -> None:
    with pytest.raises(Unauthorized, match="this channel has no signing_secret configured; inbound is off"):
        ADAPTER.receive({"bot_token": "xoxb-slack-bot-token"}, fake.slack(CREDS).callback())


def test_event_bodies_are_not_handshakes() -> None:
    request = fake.slack(CREDS).callback()
    assert ADAPTER.handshake(CREDS, request) is None
    assert json.loads(request.body)["type"] == "event_callback"


def test_a_threaded_reply_answers_its_parent_and_a_top_level_message_answers_nothing() -> None:
    reply = fake.slack(CREDS, text="yes", message_id="1355517600.000100", thread_id="1355517523.000005")
    (message,) = received(reply)
    assert message.in_reply_to == "1355517523.000005"
    top = fake.slack(CREDS, text="hi", message_id="1355517523.000005", thread_id="1355517523.000005")
    (message,) = received(top)
    assert (message.thread_id, message.in_reply_to) == ("1355517523.000005", None)


def test_a_button_press_is_verified_and_parsed() -> None:
    request = fake.slack_block_action(
        CREDS,
        value="hl:req_01JXYZ:a",
        label="Approve",
        user_id="U2147483697",
        user_name="ana",
        channel_id="D024BE91L",
        message_ts="1548261231.000200",
        action_ts="1548426417.840180",
    )
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert request.body.startswith(b"payload=")
    found = received(request)
    assert found == [
        InboundMessage(
            conversation_key="D024BE91L",
            sender_id="U2147483697",
            sender_name="ana",
            text="Approve",
            provider_message_id="D024BE91L:1548426417.840180",
            sent_at=datetime(2019, 1, 25, 14, 26, 57, 840180, tzinfo=UTC),
            raw_type="action",
            action="hl:req_01JXYZ:a",
            in_reply_to="1548261231.000200",
        )
    ]
    assert ADAPTER.ack_for(found) is None  # any 2xx answers a Slack press


def test_a_press_on_a_message_in_a_thread_stays_in_the_thread() -> None:
    request = fake.slack_block_action(
        CREDS, value="hl:q:2", label="Tuesday", user_id="U1", channel_id="C1",
        message_ts="1548261231.000200", thread_ts="1548261000.000100",
    )  # fmt: skip
    (message,) = received(request)
    assert (message.thread_id, message.in_reply_to, message.action) == (
        "1548261000.000100",
        "1548261231.000200",
        "hl:q:2",
    )


def test_a_wrongly_signed_button_press_is_refused() -> None:
    request = fake.slack_block_action(
        CREDS, value="hl:q:1", label="Yes", user_id="U1", channel_id="C1", message_ts="1548261231.000200",
        secret="not-the-signing-secret",
    )  # fmt: skip
    with pytest.raises(Unauthorized, match="X-Slack-Signature does not match"):
        ADAPTER.receive(CREDS, request.callback())
    good = fake.slack_block_action(
        CREDS, value="hl:q:1", label="Yes", user_id="U1", channel_id="C1", message_ts="1548261231.000200"
    )
    assert [m.action for m in received(good)] == ["hl:q:1"]
    tampered = good._replace(body=good.body.replace(b"U1", b"U2"))
    with pytest.raises(Unauthorized, match="X-Slack-Signature does not match"):
        ADAPTER.receive(CREDS, tampered.callback())


def test_other_interactions_are_not_messages() -> None:
    press = fake.slack_block_action(
        CREDS, value="hl:q:1", label="Yes", user_id="U1", channel_id="C1", message_ts="1548261231.000200"
    )
    payload = json.loads(press.callback().form["payload"])
    select = {**payload, "actions": [{"type": "static_select", "action_id": "pick", "block_id": "b",
                                      "selected_option": {"value": "x"}, "action_ts": "1548426417.840180"}]}  # fmt: skip
    shortcut = {"type": "shortcut", "callback_id": "do", "trigger_id": "1.2.3", "user": payload["user"]}
    for other in (select, shortcut):
        body = urlencode({"payload": json.dumps(other)}).encode()
        request = fake.signed("slack", CREDS, body)
        request.headers["content-type"] = fake.FORM
        assert ADAPTER.receive(CREDS, request.callback()) == []
