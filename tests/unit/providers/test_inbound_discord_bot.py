"""Discord interactions: Ed25519 over timestamp + body with the application's public key, a verified PING
handshake, slash commands parsed into messages, other interaction types skipped, a deferred acknowledgement."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from herald.core.errors import Unauthorized
from herald.fakes import inbound as fake
from herald.providers import inbound_adapter
from herald.providers.inbound import InboundMessage, Reply

ADAPTER = inbound_adapter("discord_bot")
assert ADAPTER is not None
PRIVATE = Ed25519PrivateKey.generate()
PUBLIC = PRIVATE.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()
CREDS = {"bot_token": "discord-bot-token-0123", "public_key": PUBLIC}
SEED = PRIVATE.private_bytes_raw().hex()
USER = {
    "id": "53908232506183680",
    "username": "mason",
    "global_name": "Mason",
    "discriminator": "0",
    "avatar": None,
}


def interaction(**fields: Any) -> dict[str, Any]:
    return {
        "type": 2, "id": "786008729715212338", "application_id": "775799577604522054", "token": "A_UNIQUE_TOKEN",
        "version": 1, "channel_id": "645027906669510667", "guild_id": "290926798626357999",
        "member": {"user": USER, "nick": None, "roles": ["539082325061836999"], "permissions": "2147483647"},
        "data": {"id": "771825006014889984", "name": "blep", "type": 1,
                 "options": [{"type": 3, "name": "animal", "value": "animal_dog"}]},
        **fields,
    }  # fmt: skip


def signed(payload: dict[str, Any], **options: Any) -> fake.FakeInbound:
    return fake.signed("discord_bot", CREDS, payload, secret=SEED, **options)


def test_the_ping_is_answered_only_when_signed() -> None:
    ping = {
        "id": "786008729715212339",
        "application_id": "775799577604522054",
        "type": 1,
        "token": "t",
        "version": 1,
    }
    assert ADAPTER.receive(CREDS, signed(ping).callback()) == Reply(200, '{"type":1}', "application/json")
    assert ADAPTER.handshake(CREDS, signed(ping).callback()) == Reply(200, '{"type":1}', "application/json")
    other_seed, _ = fake.discord_key_pair()
    forged = fake.signed("discord_bot", CREDS, ping, secret=other_seed).callback()
    with pytest.raises(Unauthorized):
        ADAPTER.handshake(CREDS, forged)


def received(request: fake.FakeInbound, creds: dict[str, str] = CREDS) -> list[InboundMessage]:
    found = ADAPTER.receive(creds, request.callback())
    assert isinstance(found, list)
    return found


def test_a_slash_command_is_verified_and_parsed() -> None:
    # Discord's documented snowflake example: 175928847299117063 was made at 2016-04-30 11:18:25.796 UTC.
    (message,) = received(signed(interaction(id="175928847299117063")))
    assert message == InboundMessage(
        conversation_key="645027906669510667",
        sender_id="53908232506183680",
        sender_name="Mason",
        text="/blep animal:animal_dog",
        provider_message_id="175928847299117063",
        sent_at=datetime(2016, 4, 30, 11, 18, 25, 796000, tzinfo=UTC),
        reply_token="775799577604522054/A_UNIQUE_TOKEN",
        raw_type="command",
    )


def test_a_dm_command_with_a_subcommand_and_a_file() -> None:
    data = {
        "id": "1", "name": "ticket", "type": 1,
        "options": [{"type": 1, "name": "open", "options": [
            {"type": 3, "name": "title", "value": "printer on fire"},
            {"type": 4, "name": "priority", "value": 1},
            {"type": 5, "name": "urgent", "value": True},
            {"type": 11, "name": "photo", "value": "1065"},
        ]}],
        "resolved": {"attachments": {"1065": {"id": "1065", "filename": "fire.png", "size": 100, "content_type": "image/png",
                                              "url": "https://cdn.discordapp.com/attachments/1/1065/fire.png"}}},
    }  # fmt: skip
    payload = interaction(data=data, user=USER)
    del payload["member"], payload["guild_id"]
    (message,) = ADAPTER.parse(CREDS, signed(payload).callback())
    assert message.text == "/ticket open title:printer on fire priority:1 urgent:true"
    assert message.sender_id == USER["id"]
    assert message.attachments == ({"kind": "image", "ref": "https://cdn.discordapp.com/attachments/1/1065/fire.png", "mime_type": "image/png", "name": "fire.png"},)  # fmt: skip


def test_builder_round_trip_with_the_test_key() -> None:
    creds = {"bot_token": "discord-bot-token-0123", "public_key": fake.DISCORD_TEST_PUBLIC_KEY}
    request = fake.discord_bot(creds, text="what is up", sender_name="Ada", guild_id=None)
    (message,) = received(request, creds)
    assert (message.text, message.sender_name) == ("/ask text:what is up", "Ada")


def test_select_menus_and_modals_are_not_messages_and_autocomplete_is_answered() -> None:
    select = interaction(type=3, data={"custom_id": "pick", "component_type": 3, "values": ["a"]})
    modal = interaction(type=5, data={"custom_id": "form", "components": []})
    assert ADAPTER.receive(CREDS, signed(select).callback()) == []
    assert ADAPTER.receive(CREDS, signed(modal).callback()) == []
    autocomplete = interaction(type=4)
    assert ADAPTER.receive(CREDS, signed(autocomplete).callback()) == Reply.json(
        {"type": 8, "data": {"choices": []}}
    )


def test_a_wrong_key_is_refused() -> None:
    other_seed, _ = fake.discord_key_pair()
    with pytest.raises(Unauthorized, match="X-Signature-Ed25519 does not match"):
        ADAPTER.receive(CREDS, fake.signed("discord_bot", CREDS, interaction(), secret=other_seed).callback())


def test_a_changed_timestamp_is_refused() -> None:
    request = signed(interaction())
    request.headers["x-signature-timestamp"] = str(int(request.headers["x-signature-timestamp"]) + 1)
    with pytest.raises(Unauthorized):
        ADAPTER.verify(CREDS, request.callback())


@pytest.mark.parametrize("age", [3600, -3600, 301])
def test_a_correctly_signed_interaction_outside_five_minutes_is_refused(age: int) -> None:
    request = signed(interaction(), signed_at=int(time.time()) - age)
    # The signature is valid (it is checked first and passes); only the age refuses it.
    with pytest.raises(Unauthorized, match="X-Signature-Timestamp is more than 5 minutes from now"):
        ADAPTER.receive(CREDS, request.callback())
    ping = {"id": "786008729715212339", "application_id": "775799577604522054", "type": 1, "token": "t"}
    with pytest.raises(Unauthorized, match="X-Signature-Timestamp"):
        ADAPTER.handshake(CREDS, signed(ping, signed_at=int(time.time()) - age).callback())


def test_an_interaction_signed_within_five_minutes_is_taken() -> None:
    assert len(received(signed(interaction(), signed_at=int(time.time()) - 290))) == 1


@pytest.mark.parametrize("name", ["x-signature-ed25519", "x-signature-timestamp"])
def test_missing_signature_headers_are_refused(name: str) -> None:
    request = signed(interaction())
    del request.headers[name]
    with pytest.raises(Unauthorized, match="missing"):
        ADAPTER.receive(CREDS, request.callback())


def test_a_malformed_signature_or_key_is_refused() -> None:
    request = signed(interaction())
    request.headers["x-signature-ed25519"] = "zz"
    with pytest.raises(Unauthorized):
        ADAPTER.receive(CREDS, request.callback())
    with pytest.raises(Unauthorized, match="not a hex Ed25519 public key"):
        ADAPTER.receive({**CREDS, "public_key": "abc"}, signed(interaction()).callback())


def test_a_channel_without_public_key_takes_no_inbound() -> None:
    with pytest.raises(Unauthorized, match="this channel has no public_key configured; inbound is off"):
        ADAPTER.receive({"bot_token": "discord-bot-token-0123"}, signed(interaction()).callback())


def test_the_acknowledgement_defers_the_answer() -> None:
    assert ADAPTER.ack == Reply(200, '{"type":5}', "application/json")


def test_a_button_press_is_verified_and_parsed() -> None:
    request = fake.discord_component(
        CREDS,
        custom_id="hl:req_01JXYZ:a",
        label="Approve",
        user_id="53908232506183680",
        user_name="Mason",
        channel_id="645027906669510667",
        message_id="1100000000000000042",
        interaction_id="175928847299117063",
        token="A_UNIQUE_TOKEN",
        secret=SEED,
    )
    found = received(request)
    assert found == [
        InboundMessage(
            conversation_key="645027906669510667",
            sender_id="53908232506183680",
            sender_name="Mason",
            text="Approve",
            provider_message_id="175928847299117063",
            sent_at=datetime(2016, 4, 30, 11, 18, 25, 796000, tzinfo=UTC),
            reply_token="775799577604522054/A_UNIQUE_TOKEN",
            raw_type="action",
            action="hl:req_01JXYZ:a",
            in_reply_to="1100000000000000042",
        )
    ]
    assert ADAPTER.ack_for(found) == Reply(200, '{"type":6}', "application/json")


def test_a_press_in_a_dm_without_the_label_in_the_message_uses_the_custom_id() -> None:
    creds = {"bot_token": "discord-bot-token-0123", "public_key": fake.DISCORD_TEST_PUBLIC_KEY}
    request = fake.discord_component(
        creds, custom_id="hl:q:2", user_id="80351110224678912", user_name="Nelly",
        channel_id="1100000000000000007", message_id="1100000000000000043", guild_id=None,
    )  # fmt: skip
    (message,) = received(request, creds)
    assert (message.text, message.action, message.sender_id, message.sender_name, message.in_reply_to) == (
        "hl:q:2", "hl:q:2", "80351110224678912", "Nelly", "1100000000000000043",
    )  # fmt: skip


def test_a_wrongly_signed_button_press_is_refused() -> None:
    other_seed, other_public = fake.discord_key_pair()
    request = fake.discord_component(
        CREDS, custom_id="hl:q:1", user_id="1", channel_id="2", message_id="3", secret=other_seed
    )
    with pytest.raises(Unauthorized, match="X-Signature-Ed25519 does not match"):
        ADAPTER.receive(CREDS, request.callback())
    other_creds = {**CREDS, "public_key": other_public}
    assert [m.action for m in received(request, other_creds)] == ["hl:q:1"]


def test_commands_are_still_deferred_and_presses_acknowledged_without_a_new_message() -> None:
    command = received(signed(interaction()))
    press = received(
        fake.discord_component(
            CREDS, custom_id="hl:q:1", label="Yes", user_id="1", channel_id="2", message_id="3", secret=SEED
        )
    )
    assert ADAPTER.ack_for(command) == Reply(200, '{"type":5}', "application/json")
    assert ADAPTER.ack_for(press) == Reply(200, '{"type":6}', "application/json")
