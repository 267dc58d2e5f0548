"""Checking incoming webhook signatures, in constant time.

Accepted: Standard Webhooks (``webhook-id``, ``webhook-timestamp``, ``webhook-signature: v1,<base64>``; timestamp
within 5 minutes) and GitHub's ``X-Hub-Signature-256: sha256=<hex HMAC of the body>``. Replays (a repeated
``webhook-id``, or GitHub's ``X-GitHub-Delivery``) are refused by the caller using :attr:`Verified.delivery_id`.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from herald.core.errors import Unauthorized
from herald.core.security import fresh_timestamp, verify_standard_webhook


@dataclass(frozen=True, slots=True)
class Verified:
    scheme: str  # "standard" or "github"
    delivery_id: str | None


def github_signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, headers: dict[str, str], body: bytes, *, now: float | None = None) -> Verified:
    """Raise Unauthorized unless the request carries a valid, fresh signature made with ``secret``."""
    if "webhook-signature" in headers:
        msg_id = headers.get("webhook-id", "")
        stamp = fresh_timestamp(headers.get("webhook-timestamp", ""), "webhook-timestamp", now=now)
        if not msg_id or not verify_standard_webhook(
            secret, msg_id, stamp, body, headers["webhook-signature"]
        ):
            raise Unauthorized("webhook-signature does not match")
        return Verified("standard", msg_id)
    given = headers.get("x-hub-signature-256")
    if given:
        if not hmac.compare_digest(github_signature(secret, body).encode(), given.encode()):
            raise Unauthorized("X-Hub-Signature-256 does not match")
        return Verified("github", headers.get("x-github-delivery"))
    raise Unauthorized("no signature: send Standard Webhooks headers or X-Hub-Signature-256")
