"""Discord interactions endpoint (slash commands and button presses), for ``discord_bot`` channels.

Each request is signed with Ed25519 over ``X-Signature-Timestamp`` + raw body; ``X-Signature-Ed25519`` is checked
against the application's ``public_key`` (hex). Discord sends wrongly signed requests on purpose and drops endpoints
that accept them, so even the PING handshake (``type`` 1, answered ``{"type": 1}``) is verified first. A correctly
signed request whose timestamp is more than 5 minutes from now is refused too: without that window a captured
interaction could be replayed forever.

An APPLICATION_COMMAND (``type`` 2) becomes one message whose text is the command as the person typed it,
``/name [subcommand] option:value ...``; the conversation is the channel, the sender ``member.user`` (in a
server) or ``user`` (in a DM), and the time comes from the interaction's snowflake id. ``reply_token`` is
``{application_id}/{interaction token}``, the path of the interaction webhook under ``/api/v10/webhooks/`` that
sends follow-ups (valid 15 minutes). Discord wants an answer within 3 seconds, so ``ack`` defers it
(``{"type": 5}``, "thinking..."). Autocomplete requests get an empty choice list.

A MESSAGE_COMPONENT (``type`` 3) press of a button becomes a message with ``action`` the button's ``custom_id``,
the text its label (found in the pressed message's components, else the custom_id), ``in_reply_to`` the pressed
message's id, and the interaction's id, time and ``reply_token`` as for commands. A batch of presses is answered
with ``action_ack``, DEFERRED_UPDATE_MESSAGE (``{"type": 6}``): taken, no new message, the message edited later
(``update_sent``). Select menus, modals and other interaction types are not messages.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from herald.core.errors import Unauthorized
from herald.core.security import fresh_timestamp
from herald.providers.inbound.base import (
    Attachment,
    Credentials,
    InboundAdapter,
    InboundMessage,
    Reply,
    attachment,
    dicts,
    from_epoch,
    header,
    kind_of,
    loads,
    maybe_json,
    obj,
    secret,
)
from herald.providers.receipts import CallbackRequest

PROVIDER = "discord_bot"
PING, APPLICATION_COMMAND, MESSAGE_COMPONENT, AUTOCOMPLETE = 1, 2, 3, 4
BUTTON = 2  # component_type of a button press
SUBCOMMAND_TYPES = (1, 2)  # SUB_COMMAND and SUB_COMMAND_GROUP options nest further options
ATTACHMENT_OPTION = 11
DISCORD_EPOCH_MS = 1_420_070_400_000
DEFERRED = Reply.json({"type": 5})
DEFERRED_UPDATE = Reply.json({"type": 6})


@functools.lru_cache(maxsize=256)
def _public_key(hex_key: str) -> Ed25519PublicKey:
    try:
        return Ed25519PublicKey.from_public_bytes(bytes.fromhex(hex_key))
    except ValueError as exc:
        raise Unauthorized("this channel's public_key is not a hex Ed25519 public key") from exc


def verify(credentials: Credentials, request: CallbackRequest) -> None:
    key = _public_key(secret(credentials, "public_key"))
    given = header(request, "X-Signature-Ed25519")
    stamp = header(request, "X-Signature-Timestamp")
    try:
        key.verify(bytes.fromhex(given), stamp.encode() + request.body)
    except (InvalidSignature, ValueError) as exc:
        raise Unauthorized("X-Signature-Ed25519 does not match") from exc
    fresh_timestamp(stamp, "X-Signature-Timestamp")


def handshake(credentials: Credentials, request: CallbackRequest) -> Reply | None:
    payload = maybe_json(request.body)
    kind = payload.get("type") if isinstance(payload, dict) else None
    if kind not in (PING, AUTOCOMPLETE):
        return None
    verify(credentials, request)
    if kind == PING:
        return Reply.json({"type": 1})
    return Reply.json({"type": 8, "data": {"choices": []}})


def _words(options: Any, files: dict[str, Any], found: list[Attachment]) -> list[str]:
    """The options as typed (``name:value``), subcommands by name; attachment options become attachments."""
    words: list[str] = []
    for option in dicts(options):
        name = str(option.get("name") or "")
        value = option.get("value")
        if option.get("type") in SUBCOMMAND_TYPES:
            words += [name, *_words(option.get("options"), files, found)]
        elif option.get("type") == ATTACHMENT_OPTION:
            file = obj(files.get(str(value)))
            if file.get("url"):
                mime = file.get("content_type")
                found.append(attachment(kind_of(mime), str(file["url"]), mime, file.get("filename")))
        elif value is not None:
            words.append(f"{name}:{value if isinstance(value, str) else json.dumps(value)}")
    return words


def _snowflake_time(snowflake: str) -> float | None:
    """Seconds since 1970 from a snowflake id: its top 42 bits are milliseconds since Discord's 2015 epoch."""
    try:
        return ((int(snowflake) >> 22) + DISCORD_EPOCH_MS) / 1000
    except ValueError:
        return None


def _name(member: dict[str, Any], user: dict[str, Any]) -> str | None:
    """The name shown in the server: nickname, else display name, else username."""
    return str(member.get("nick") or user.get("global_name") or user.get("username") or "") or None


def parse(credentials: Credentials, request: CallbackRequest) -> list[InboundMessage]:
    interaction = obj(loads(request.body))
    data = obj(interaction.get("data"))
    user = obj(obj(interaction.get("member")).get("user")) or obj(interaction.get("user"))
    channel = str(interaction.get("channel_id") or obj(interaction.get("channel")).get("id") or "")
    interaction_id = str(interaction.get("id") or "")
    if interaction.get("type") == MESSAGE_COMPONENT:
        return _press(interaction, data, user, channel, interaction_id)
    if interaction.get("type") != APPLICATION_COMMAND or not (
        data.get("name") and user.get("id") and channel and interaction_id
    ):
        return []
    attachments: list[Attachment] = []
    files = obj(obj(data.get("resolved")).get("attachments"))
    words = [f"/{data['name']}", *_words(data.get("options"), files, attachments)]
    if data.get("target_id"):  # user and message context-menu commands name what they were used on
        words.append(f"target:{data['target_id']}")
    return [
        InboundMessage(
            conversation_key=channel,
            sender_id=str(user["id"]),
            sender_name=_name(obj(interaction.get("member")), user),
            text=" ".join(words),
            attachments=tuple(attachments),
            provider_message_id=interaction_id,
            sent_at=from_epoch(_snowflake_time(interaction_id)),
            reply_token=_reply_token(interaction),
            raw_type="command",
        )
    ]


def _reply_token(interaction: dict[str, Any]) -> str | None:
    app, token = interaction.get("application_id"), interaction.get("token")
    return f"{app}/{token}" if app and token else None


def _label(components: Any, custom_id: str) -> str | None:
    """The label of the button ``custom_id`` among a message's components (action rows nest their buttons)."""
    for component in dicts(components):
        if component.get("custom_id") == custom_id and component.get("label"):
            return str(component["label"])
        found = _label(component.get("components"), custom_id)
        if found:
            return found
    return None


def _press(
    interaction: dict[str, Any], data: dict[str, Any], user: dict[str, Any], channel: str, interaction_id: str
) -> list[InboundMessage]:
    """A button press: the pressed button's custom_id, answering the message it is on."""
    custom_id = data.get("custom_id")
    if data.get("component_type", BUTTON) != BUTTON or not isinstance(custom_id, str) or not custom_id:
        return []
    if not (user.get("id") and channel and interaction_id):
        return []
    message = obj(interaction.get("message"))
    return [
        InboundMessage(
            conversation_key=channel,
            sender_id=str(user["id"]),
            sender_name=_name(obj(interaction.get("member")), user),
            text=_label(message.get("components"), custom_id) or custom_id,
            provider_message_id=interaction_id,
            sent_at=from_epoch(_snowflake_time(interaction_id)),
            reply_token=_reply_token(interaction),
            raw_type="action",
            action=custom_id,
            in_reply_to=str(message["id"]) if message.get("id") else None,
        )
    ]


ADAPTER = InboundAdapter(
    PROVIDER, "public_key", verify, handshake, parse, ack=DEFERRED, action_ack=DEFERRED_UPDATE
)
