"""Email receipts: SendGrid's Event Webhook (ECDSA P-256 over timestamp + body) and Resend's webhooks (Svix,
i.e. Standard Webhooks: HMAC-SHA256 over ``id.timestamp.body``). Both refuse timestamps older than 5 minutes."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key

from herald import jsonbody
from herald.errors import Unauthorized
from herald.receipts import CallbackRequest, Receipt
from herald.security import fresh_timestamp, verify_standard_webhook

_SENDGRID = {"delivered": "delivered", "open": "read", "bounce": "failed", "dropped": "failed"}
_RESEND = {"email.delivered": "delivered", "email.opened": "read", "email.bounced": "failed"}


async def parse_sendgrid(credentials: dict[str, Any], request: CallbackRequest) -> list[Receipt]:
    key_text = str(credentials.get("webhook_public_key") or "")
    timestamp = request.headers.get("x-twilio-email-event-webhook-timestamp", "")
    signature = request.headers.get("x-twilio-email-event-webhook-signature", "")
    if not key_text:
        raise Unauthorized("the channel has no webhook_public_key to check SendGrid's signature")
    fresh_timestamp(timestamp, "X-Twilio-Email-Event-Webhook-Timestamp")
    try:
        key = load_der_public_key(base64.b64decode(key_text))
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise Unauthorized("webhook_public_key is not an ECDSA key")
        key.verify(base64.b64decode(signature), timestamp.encode() + request.body, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError, binascii.Error) as exc:
        raise Unauthorized("the SendGrid event signature does not match") from exc
    events = jsonbody.parse(request.body)
    receipts = []
    for item in events if isinstance(events, list) else []:
        status = _SENDGRID.get(str(item.get("event")))
        sg_id = str(item.get("sg_message_id") or "")
        if status and sg_id:
            # sg_message_id is the X-Message-Id the send returned, plus a ".filter..." suffix.
            receipts.append(
                Receipt(sg_id.split(".", 1)[0], status, item.get("reason") if status == "failed" else None)
            )
    return receipts


async def parse_resend(credentials: dict[str, Any], request: CallbackRequest) -> list[Receipt]:
    secret = str(credentials.get("webhook_secret") or "")
    msg_id = request.headers.get("svix-id", "")
    timestamp = request.headers.get("svix-timestamp", "")
    signature = request.headers.get("svix-signature", "")
    if not secret:
        raise Unauthorized("the channel has no webhook_secret to check Resend's signature")
    stamp = fresh_timestamp(timestamp, "svix-timestamp")
    if not msg_id or not verify_standard_webhook(secret, msg_id, stamp, request.body, signature):
        raise Unauthorized("the Resend webhook signature does not match")
    event = jsonbody.parse(request.body)
    if not isinstance(event, dict):
        return []
    status = _RESEND.get(str(event.get("type")))
    email_id = str((event.get("data") or {}).get("email_id") or "")
    if not status or not email_id:
        return []
    return [Receipt(email_id, status, "the email bounced" if status == "failed" else None)]
