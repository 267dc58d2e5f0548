"""SendGrid's Event Webhook: ECDSA P-256 over timestamp + body; timestamps older than 5 minutes are refused."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key

from herald.core import jsonbody
from herald.core.errors import Unauthorized
from herald.core.security import fresh_timestamp
from herald.providers.receipts import CallbackRequest, Receipt

_SENDGRID = {"delivered": "delivered", "open": "read", "bounce": "failed", "dropped": "failed"}


async def parse(credentials: dict[str, Any], request: CallbackRequest) -> list[Receipt]:
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
