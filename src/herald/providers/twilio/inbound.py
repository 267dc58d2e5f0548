"""Twilio inbound SMS, MMS and WhatsApp messages (form POSTs to the channel's webhook URL).

The ``X-Twilio-Signature`` check (HMAC-SHA1 with ``auth_token`` over the full URL plus the sorted form parameters)
is the one delivery receipts use, shared from :mod:`herald.providers.twilio.receipts`. An inbound message has ``Body``
(possibly empty for media-only MMS) and ``From``; a status callback on the same URL (``MessageStatus`` other than
``received``, no ``Body``) is a receipt, not a message, and is skipped. Media are ``MediaUrl{i}`` references. Twilio
sends no message timestamp, so ``sent_at`` is when Herald received it. ``ack`` is an empty TwiML ``<Response/>``:
Twilio expects XML back and would otherwise log a content-type warning.
"""

from __future__ import annotations

from datetime import UTC, datetime

from herald.providers.inbound.base import (
    Credentials,
    InboundAdapter,
    InboundMessage,
    Reply,
    attachment,
    header,
    kind_of,
    no_handshake,
    secret,
)
from herald.providers.receipts import CallbackRequest
from herald.providers.twilio import receipts

PROVIDER = "twilio"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
MAX_MEDIA = 10  # Twilio delivers at most 10 media per MMS


def verify(credentials: Credentials, request: CallbackRequest) -> None:
    secret(credentials, "auth_token")
    header(request, "X-Twilio-Signature")
    receipts.verify(credentials, request)


def parse(credentials: Credentials, request: CallbackRequest) -> list[InboundMessage]:
    form = request.form
    sid = form.get("MessageSid") or form.get("SmsMessageSid") or form.get("SmsSid")
    status = form.get("MessageStatus") or form.get("SmsStatus") or "received"
    sender = form.get("From", "")
    if "Body" not in form or status != "received" or not sid or not sender:
        return []
    try:
        count = min(int(form.get("NumMedia") or 0), MAX_MEDIA)
    except ValueError:
        count = 0
    attachments = tuple(
        attachment(
            kind_of(form.get(f"MediaContentType{i}")), form[f"MediaUrl{i}"], form.get(f"MediaContentType{i}")
        )
        for i in range(count)
        if form.get(f"MediaUrl{i}")
    )
    text = form["Body"]
    if not (text or attachments):
        return []
    return [
        InboundMessage(
            conversation_key=sender,  # "+14155551212", or "whatsapp:+14155551212" for WhatsApp
            sender_id=sender,
            sender_name=form.get("ProfileName") or None,
            text=text,
            attachments=attachments,
            provider_message_id=sid,
            sent_at=datetime.now(UTC),
            raw_type=form.get("MessageType")
            or ("text" if text or not attachments else attachments[0]["kind"]),
        )
    ]


ADAPTER = InboundAdapter(
    PROVIDER, "auth_token", verify, no_handshake, parse, ack=Reply(200, EMPTY_TWIML, "text/xml")
)
