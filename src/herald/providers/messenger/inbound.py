"""Facebook Messenger inbound messages (Meta webhooks, ``object: "page"``).

Verification and the GET ``hub.*`` subscription check are WhatsApp's (same Meta scheme, same ``app_secret`` and
``verify_token`` credential names). Messages are ``entry[].messaging[]`` items with a ``message`` (``mid``,
``text``, ``attachments[]`` of ``{type, payload: {url}}``); the conversation is the sender's page-scoped id (PSID).
Echoes of the page's own messages (``message.is_echo``), deliveries, reads, reactions and edits are skipped.
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
    loads,
    obj,
)
from herald.providers.receipts import CallbackRequest

PROVIDER = "messenger"
verify = meta_webhooks.verify
handshake = meta_webhooks.handshake


def _attachments(message: dict[str, Any]) -> list[Attachment]:
    found = []
    for item in dicts(message.get("attachments")):
        url = obj(item.get("payload")).get("url")
        if url:  # templates and fallbacks without a URL carry nothing to refer to
            found.append(attachment(str(item.get("type") or "file"), str(url)))
    return found


def parse(credentials: Credentials, request: CallbackRequest) -> list[InboundMessage]:
    payload = obj(loads(request.body))
    found: list[InboundMessage] = []
    for entry in dicts(payload.get("entry")):
        for event in dicts(entry.get("messaging")):
            message = obj(event.get("message"))
            sender = str(obj(event.get("sender")).get("id") or "")
            if not message or message.get("is_echo") or not sender or not message.get("mid"):
                continue
            text = str(message.get("text") or "")
            attachments = _attachments(message)
            if not (text or attachments):
                continue
            found.append(
                InboundMessage(
                    conversation_key=sender,
                    sender_id=sender,
                    text=text,
                    attachments=tuple(attachments),
                    provider_message_id=str(message["mid"]),
                    sent_at=from_epoch(event.get("timestamp"), scale=1000),
                    raw_type="text" if text else attachments[0]["kind"],
                )
            )
    return found


ADAPTER = InboundAdapter(PROVIDER, "app_secret", verify, handshake, parse)
