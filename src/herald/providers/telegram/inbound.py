"""Telegram Bot API inbound updates (webhook set with ``setWebhook(url, secret_token=...)``).

Telegram does not sign the body; it repeats the ``secret_token`` in ``X-Telegram-Bot-Api-Secret-Token`` on every
update, compared here in constant time with the channel's ``secret_token``. Messages are ``update.message`` (private
chats and groups) and ``update.channel_post`` (channels, where the sender is the channel itself); edits
(``edited_message``, ``edited_channel_post``), member changes and service messages are skipped.
Telegram's ``message_id`` is only unique within a chat, so the provider message id is ``{chat_id}:{message_id}``;
a reply (``reply_to_message``, other than a forum topic's implicit reply to its first message) has
``in_reply_to`` = ``{chat_id}:{reply_to_message.message_id}``. Media are ``file_id`` references (``getFile``
fetches them later with the bot token).

A press on an inline keyboard button is an ``update.callback_query``: a message with ``action`` = its ``data``
(the button's ``callback_data``), ``raw_type`` "action", the pressed button's text as text, ``in_reply_to`` the
message that carried the keyboard (``{chat_id}:{message_id}``), ``reply_token`` the query id (which
``answerCallbackQuery`` needs) and ``provider_message_id`` ``cbq:{query id}``, unique per press. A callback query
carries no date, so ``sent_at`` is the time it is parsed. Queries without ``data`` (games) or without a
``message`` (buttons on inline-mode messages, which Herald does not send) are skipped.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from herald.core.errors import Unauthorized
from herald.providers.inbound.base import (
    Attachment,
    Credentials,
    InboundAdapter,
    InboundMessage,
    attachment,
    dicts,
    from_epoch,
    geo,
    header,
    loads,
    no_handshake,
    obj,
    same,
    secret,
)
from herald.providers.receipts import CallbackRequest

PROVIDER = "telegram"
MEDIA = ("document", "audio", "voice", "video", "video_note", "animation", "sticker")
KINDS = {"voice": "audio", "video_note": "video", "animation": "video"}


def verify(credentials: Credentials, request: CallbackRequest) -> None:
    expected = secret(credentials, "secret_token")
    if not same(expected, header(request, "X-Telegram-Bot-Api-Secret-Token")):
        raise Unauthorized("X-Telegram-Bot-Api-Secret-Token does not match")


def _attachments(message: dict[str, Any]) -> list[Attachment]:
    found = []
    photos = dicts(message.get("photo"))
    if photos and photos[-1].get("file_id"):  # sizes come smallest first; the last is the original
        found.append(attachment("image", str(photos[-1]["file_id"])))
    for key in MEDIA:
        media = obj(message.get(key))
        if media.get("file_id"):
            kind = KINDS.get(key, key)
            found.append(
                attachment(kind, str(media["file_id"]), media.get("mime_type"), media.get("file_name"))
            )
    location = obj(message.get("location"))
    if "latitude" in location:
        found.append(geo(location["latitude"], location.get("longitude")))
    return found


def _name(person: dict[str, Any]) -> str | None:
    full = " ".join(str(person[k]) for k in ("first_name", "last_name") if person.get(k))
    return full or str(person.get("title") or person.get("username") or "") or None


def _thread(message: dict[str, Any]) -> str | None:
    thread = message.get("message_thread_id") if message.get("is_topic_message") else None
    return str(thread) if thread is not None else None


def _in_reply_to(chat_id: Any, message: dict[str, Any]) -> str | None:
    answered = obj(message.get("reply_to_message")).get("message_id")
    if answered is None:
        return None
    if message.get("is_topic_message") and answered == message.get("message_thread_id"):
        return None  # in a forum topic every message "replies" to the topic's first message
    return f"{chat_id}:{answered}"


def _button_text(message: dict[str, Any], data: str) -> str:
    """The text of the button whose ``callback_data`` is ``data`` on ``message``'s keyboard, else ``data``."""
    rows = obj(message.get("reply_markup")).get("inline_keyboard")
    for row in rows if isinstance(rows, list) else []:
        for button in dicts(row):
            if button.get("callback_data") == data and button.get("text"):
                return str(button["text"])
    return data


def _callback_query(query: dict[str, Any]) -> list[InboundMessage]:
    """A button press; skipped when it names no data, no chat message or no sender."""
    data, message, sender = query.get("data"), obj(query.get("message")), obj(query.get("from"))
    chat_id = obj(message.get("chat")).get("id")
    if not isinstance(data, str) or not data or not query.get("id") or sender.get("id") is None:
        return []
    if chat_id is None or message.get("message_id") is None:
        return []
    return [
        InboundMessage(
            conversation_key=str(chat_id),
            sender_id=str(sender["id"]),
            sender_name=_name(sender),
            text=_button_text(message, data),
            provider_message_id=f"cbq:{query['id']}",
            sent_at=datetime.now(UTC),  # the press is now; message.date is when the keyboard was sent
            thread_id=_thread(message),
            reply_token=str(query["id"]),
            raw_type="action",
            action=data,
            in_reply_to=f"{chat_id}:{message['message_id']}",
        )
    ]


def parse(credentials: Credentials, request: CallbackRequest) -> list[InboundMessage]:
    update = obj(loads(request.body))
    if "callback_query" in update:
        return _callback_query(obj(update["callback_query"]))
    message = obj(update.get("message") or update.get("channel_post"))
    chat = obj(message.get("chat"))
    # In channels there is no "from": the post speaks for the channel (sender_chat).
    sender = obj(message.get("from")) or obj(message.get("sender_chat")) or chat
    if not message or sender.get("is_bot") or chat.get("id") is None or message.get("message_id") is None:
        return []
    text = str(message.get("text") or message.get("caption") or "")
    attachments = _attachments(message)
    if not (text or attachments):
        return []  # service messages: joins, pins, title changes
    return [
        InboundMessage(
            conversation_key=str(chat["id"]),
            sender_id=str(sender.get("id", chat["id"])),
            sender_name=_name(sender),
            text=text,
            attachments=tuple(attachments),
            provider_message_id=f"{chat['id']}:{message['message_id']}",
            sent_at=from_epoch(message.get("date")),
            thread_id=_thread(message),
            raw_type="text" if message.get("text") or not attachments else attachments[0]["kind"],
            in_reply_to=_in_reply_to(chat["id"], message),
        )
    ]


ADAPTER = InboundAdapter(PROVIDER, "secret_token", verify, no_handshake, parse)
