"""Telegram Bot API inbound updates (webhook set with ``setWebhook(url, secret_token=...)``).

Telegram does not sign the body; it repeats the ``secret_token`` in ``X-Telegram-Bot-Api-Secret-Token`` on every
update, compared here in constant time with the channel's ``secret_token``. Messages are ``update.message`` (private
chats and groups) and ``update.channel_post`` (channels, where the sender is the channel itself); edits
(``edited_message``, ``edited_channel_post``), callback queries, member changes and service messages are skipped.
Telegram's ``message_id`` is only unique within a chat, so the provider message id is ``{chat_id}:{message_id}``.
Media are ``file_id`` references (``getFile`` fetches them later with the bot token).
"""

from __future__ import annotations

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


def parse(credentials: Credentials, request: CallbackRequest) -> list[InboundMessage]:
    update = obj(loads(request.body))
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
    thread = message.get("message_thread_id") if message.get("is_topic_message") else None
    return [
        InboundMessage(
            conversation_key=str(chat["id"]),
            sender_id=str(sender.get("id", chat["id"])),
            sender_name=_name(sender),
            text=text,
            attachments=tuple(attachments),
            provider_message_id=f"{chat['id']}:{message['message_id']}",
            sent_at=from_epoch(message.get("date")),
            thread_id=str(thread) if thread is not None else None,
            raw_type="text" if message.get("text") or not attachments else attachments[0]["kind"],
        )
    ]


ADAPTER = InboundAdapter(PROVIDER, "secret_token", verify, no_handshake, parse)
