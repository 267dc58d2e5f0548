"""Signed links for deciding by email.

A link names one delivery (one approver's copy of one request) and when it stops working, signed with a key
derived from HERALD_SECRET_KEY for this purpose alone. Opening it (GET) only shows a confirmation page, because
mail scanners and link previews open every link; only the page's POST decides, and only once: the delivery
records its answer, so a replayed POST is refused.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

from herald.core.errors import Unauthorized
from herald.core.security import derive_key

PURPOSE = "approval-links"


def _signature(secret_key: str, payload: str) -> str:
    digest = hmac.new(derive_key(secret_key, PURPOSE), payload.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def sign(secret_key: str, delivery_id: str, expires_at: float) -> str:
    payload = f"{delivery_id}.{int(expires_at)}"
    return f"{payload}.{_signature(secret_key, payload)}"


def verify(secret_key: str, token: str, *, now: float | None = None) -> str:
    """The delivery id the token names; Unauthorized when it is forged, malformed or out of date."""
    parts = token.split(".")
    if len(parts) != 3 or not parts[1].isdigit():
        raise Unauthorized("this link is not a Herald approval link")
    payload = f"{parts[0]}.{parts[1]}"
    if not hmac.compare_digest(_signature(secret_key, payload).encode(), parts[2].encode()):
        raise Unauthorized("this link's signature does not match")
    if int(parts[1]) < (time.time() if now is None else now):
        raise Unauthorized("this link has expired")
    return parts[0]
