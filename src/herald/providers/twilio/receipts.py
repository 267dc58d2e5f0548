"""Twilio status callbacks: form posts signed with ``X-Twilio-Signature``.

The signature is base64(HMAC-SHA1(auth token, the full URL Twilio called + every POST parameter's name and value,
sorted by name)). Twilio does not say whether the URL it signs carries the scheme's default port, and a proxy in
front of Herald may add or drop it (``https://h:443/...`` against ``https://h/...``), so, as Twilio's own
``RequestValidator`` does, the signature is accepted over the URL with or without the default port.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from herald.core.errors import Unauthorized, ValidationFailed
from herald.providers.receipts import CallbackRequest, Receipt

_STATUS = {"delivered": "delivered", "read": "read", "undelivered": "failed", "failed": "failed"}


def twilio_signature(auth_token: str, url: str, params: dict[str, str]) -> str:
    data = url + "".join(f"{key}{params[key]}" for key in sorted(params))
    digest = hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


_DEFAULT_PORTS = {"https": 443, "http": 80}


def url_forms(url: str) -> list[str]:
    """``url`` as received, plus the same URL with its scheme's default port (``:443``, ``:80``) added when it has
    none, or removed when it has it: the two forms Twilio's validator checks."""
    parts = urlsplit(url)
    default = _DEFAULT_PORTS.get(parts.scheme.lower())
    try:
        port = parts.port
    except ValueError:  # not a number: no other form to try
        return [url]
    if default is None:
        return [url]
    if port is None:
        return [url, urlunsplit(parts._replace(netloc=f"{parts.netloc}:{default}"))]
    if port == default:
        return [url, urlunsplit(parts._replace(netloc=parts.netloc.rsplit(":", 1)[0]))]
    return [url]


def verify(credentials: Mapping[str, Any], request: CallbackRequest) -> None:
    """Raise Unauthorized unless X-Twilio-Signature matches; shared by receipts and inbound messages."""
    token = str(credentials.get("auth_token") or "")
    given = request.headers.get("x-twilio-signature", "").encode()
    matches = [
        hmac.compare_digest(twilio_signature(token, form, request.form).encode(), given)
        for form in url_forms(request.url)
    ]
    if not token or not any(matches):
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
