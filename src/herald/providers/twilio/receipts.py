"""Twilio status callbacks: form posts signed with ``X-Twilio-Signature``.

The signature is base64(HMAC-SHA1(auth token, the full URL Twilio called + every POST parameter's name and value,
sorted by name)).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from herald.core.errors import Unauthorized, ValidationFailed
from herald.providers.receipts import CallbackRequest, Receipt

_STATUS = {"delivered": "delivered", "read": "read", "undelivered": "failed", "failed": "failed"}


def twilio_signature(auth_token: str, url: str, params: dict[str, str]) -> str:
    data = url + "".join(f"{key}{params[key]}" for key in sorted(params))
    digest = hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def verify(credentials: Mapping[str, Any], request: CallbackRequest) -> None:
    """Raise Unauthorized unless X-Twilio-Signature matches; shared by receipts and inbound messages."""
    token = str(credentials.get("auth_token") or "")
    given = request.headers.get("x-twilio-signature", "")
    expected = twilio_signature(token, request.url, request.form)
    if not token or not hmac.compare_digest(expected.encode(), given.encode()):
        raise Unauthorized("X-Twilio-Signature does not match")


async def parse(credentials: dict[str, Any], request: CallbackRequest) -> list[Receipt]:
    verify(credentials, request)
    sid = request.form.get("MessageSid") or request.form.get("SmsSid")
    status = request.form.get("MessageStatus") or request.form.get("SmsStatus")
    if not sid or not status:
        raise ValidationFailed("a status callback needs MessageSid and MessageStatus", field="MessageStatus")
    mapped = _STATUS.get(status)
    if mapped is None:
        return []  # queued, sending, sent, accepted...: nothing new for Herald
    error = request.form.get("ErrorCode")
    return [Receipt(sid, mapped, f"twilio error {error}" if error else None)]
