"""LINE Messaging API inbound webhooks.

``X-Line-Signature`` is base64(HMAC-SHA256(channel_secret, raw body)). A webhook carries ``events[]``; only
``type: "message"`` events are messages (follows, unsends, postbacks are not). The conversation is where a reply
goes: the group or room when the message came from one, else the user. ``replyToken`` is kept because a reply
with it does not count against the monthly message quota (it is single-use and short-lived). Events in ``standby`` mode are
skipped: another module owns the chat then. The console's "Verify" button sends an empty ``events`` list.
Media are message ids (content is fetched from ``/v2/bot/message/{id}/content``) or the external URL LINE gives.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
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

PROVIDER = "line"
MEDIA = {"image": "image", "video": "video", "audio": "audio", "file": "document"}
SOURCE_KEYS = {"user": "userId", "group": "groupId", "room": "roomId"}


def signature(channel_secret: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(channel_secret.encode(), body, hashlib.sha256).digest()).decode()


def verify(credentials: Credentials, request: CallbackRequest) -> None:
    key = secret(credentials, "channel_secret")
    if not same(signature(key, request.body), header(request, "X-Line-Signature")):
        raise Unauthorized("X-Line-Signature does not match")


def _content(message: dict[str, Any]) -> tuple[str, list[Attachment]]:
    kind = str(message.get("type") or "")
    if kind == "text":
        return str(message.get("text") or ""), []
    if kind in MEDIA:
        provider = obj(message.get("contentProvider"))
        ref = provider.get("originalContentUrl") if provider.get("type") == "external" else message.get("id")
        return "", [attachment(MEDIA[kind], str(ref), name=message.get("fileName"))] if ref else []
    if kind == "sticker" and message.get("stickerId"):
        return "", [attachment("sticker", f"{message.get('packageId')}/{message['stickerId']}")]
    if kind == "location" and "latitude" in message:
        return "", [geo(message["latitude"], message.get("longitude"), message.get("title"))]
    return "", []


def parse(credentials: Credentials, request: CallbackRequest) -> list[InboundMessage]:
    payload = obj(loads(request.body))
    found: list[InboundMessage] = []
    for event in dicts(payload.get("events")):
        message = obj(event.get("message"))
        source = obj(event.get("source"))
        conversation = str(source.get(SOURCE_KEYS.get(str(source.get("type")), "userId")) or "")
        if event.get("type") != "message" or event.get("mode") == "standby" or not message.get("id"):
            continue
        text, attachments = _content(message)
        if not conversation or not (text or attachments):
            continue
        found.append(
            InboundMessage(
                conversation_key=conversation,
                sender_id=str(source.get("userId") or ""),  # absent for some group members on old clients
                text=text,
                attachments=tuple(attachments),
                provider_message_id=str(message["id"]),
                sent_at=from_epoch(event.get("timestamp"), scale=1000),
                reply_token=str(event.get("replyToken") or "") or None,
                raw_type=str(message.get("type")),
            )
        )
    return found


ADAPTER = InboundAdapter(PROVIDER, "channel_secret", verify, no_handshake, parse)
