"""Resend's webhooks (Svix, i.e. Standard Webhooks: HMAC-SHA256 over ``id.timestamp.body``); timestamps older
than 5 minutes are refused."""

from __future__ import annotations

from typing import Any

from herald.core import jsonbody
from herald.core.errors import Unauthorized
from herald.core.security import fresh_timestamp, verify_standard_webhook
from herald.providers.receipts import CallbackRequest, Receipt

_RESEND = {"email.delivered": "delivered", "email.opened": "read", "email.bounced": "failed"}


async def parse(credentials: dict[str, Any], request: CallbackRequest) -> list[Receipt]:
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
