"""WhatsApp Cloud API inbound messages (Meta webhooks).

Subscription: GET ``hub.mode=subscribe&hub.verify_token=...&hub.challenge=...`` is answered with the challenge when
the token is the channel's ``verify_token`` (403 otherwise, as Meta expects). Events: POSTs signed
``X-Hub-Signature-256: sha256=<hex HMAC-SHA256(app_secret, raw body)>`` (the check is shared with receipts); messages
are ``entry[].changes[].value.messages[]`` with the sender's profile name in ``value.contacts[]``. Statuses,
reactions and system notices in the same payload are not messages and are skipped. Media stays a reference:
``image.id`` etc. are media ids to fetch with the access token later.

A tap on a reply button or list row (``type == "interactive"`` with a ``button_reply`` or ``list_reply``) and on a
template's quick-reply button (``type == "button"``) is a message with ``raw_type`` "action": ``action`` is the
button's id (``payload`` for a template button), the text its title. Every message with ``context.id`` (a quoted
reply, and every tap, whose context is the message that carried the buttons) has ``in_reply_to`` = that wamid,
bare, as Herald stores the ids of the WhatsApp messages it sends.
"""

from __future__ import annotations

from typing import Any

from herald.providers import meta_webhooks
from herald.providers.inbound.base import (
    Attachment,
    Credentials,
    InboundAdapter,
    InboundMessage,
    attachment,
    dicts,
    from_epoch,
    geo,
    loads,
    obj,
)
from herald.providers.receipts import CallbackRequest

PROVIDER = "whatsapp_cloud"
MEDIA = ("image", "video", "audio", "document", "sticker")


verify = meta_webhooks.verify
handshake = meta_webhooks.handshake


def _action(message: dict[str, Any]) -> tuple[str, str] | None:
    """(button id, title) of a tap on a reply button, list row or template quick-reply button, else None."""
    kind = str(message.get("type") or "")
    body = obj(message.get(kind))
    if kind == "interactive" and body.get("type") in ("button_reply", "list_reply"):
        reply = obj(body.get(str(body["type"])))
        value, title = reply.get("id"), reply.get("title")
    elif kind == "button":  # a quick-reply button of a template message
        value, title = body.get("payload"), body.get("text")
    else:
        return None
    if not value:
        return None
    return str(value), str(title or value)


def _content(message: dict[str, Any]) -> tuple[str, list[Attachment]]:
    kind = str(message.get("type") or "")
    body = obj(message.get(kind))
    if kind == "text":
        return str(body.get("body") or ""), []
    if kind in MEDIA and body.get("id"):
        item = attachment(kind, str(body["id"]), body.get("mime_type"), body.get("filename"))
        return str(body.get("caption") or ""), [item]
    if kind == "location" and "latitude" in body:
        return "", [geo(body["latitude"], body.get("longitude"), body.get("name"))]
    if kind == "button":  # a template quick-reply button without a payload: the text is what was "said"
        return str(body.get("text") or ""), []
    return "", []


def parse(credentials: Credentials, request: CallbackRequest) -> list[InboundMessage]:
    payload = obj(loads(request.body))
    found: list[InboundMessage] = []
    for entry in dicts(payload.get("entry")):
        for change in dicts(entry.get("changes")):
            value = obj(change.get("value"))
            names = {
                str(c.get("wa_id")): str(obj(c.get("profile")).get("name") or "") or None
                for c in dicts(value.get("contacts"))
            }
            for message in dicts(value.get("messages")):
                action = _action(message)
                text, attachments = (action[1], []) if action else _content(message)
                sender = str(message.get("from") or "")
                if not sender or not message.get("id") or not (text or attachments):
                    continue  # reactions, system notices, unsupported types: nothing to answer
                replied = obj(message.get("context")).get("id")  # the wamid of the message answered
                found.append(
                    InboundMessage(
                        conversation_key=sender,
                        sender_id=sender,
                        sender_name=names.get(sender),
                        text=text,
                        attachments=tuple(attachments),
                        provider_message_id=str(message["id"]),
                        sent_at=from_epoch(message.get("timestamp")),
                        raw_type="action" if action else str(message.get("type")),
                        action=action[0] if action else None,
                        in_reply_to=str(replied) if replied else None,
                    )
                )
    return found


ADAPTER = InboundAdapter(PROVIDER, "app_secret", verify, handshake, parse)
