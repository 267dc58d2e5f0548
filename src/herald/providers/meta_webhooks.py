"""Meta's webhooks, shared by WhatsApp Cloud and Messenger: the GET subscription handshake and the
``X-Hub-Signature-256: sha256=<hex HMAC-SHA256(app_secret, raw body)>`` check on every POST (messages and
statuses alike)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from herald.core.errors import Forbidden, Unauthorized
from herald.providers.inbound.base import Credentials, Reply, header, same, secret
from herald.providers.receipts import CallbackRequest


def hub_signature(app_secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(credentials: Mapping[str, Any], request: CallbackRequest) -> None:
    secret = str(credentials.get("app_secret") or "")
    given = request.headers.get("x-hub-signature-256", "")
    if not secret or not hmac.compare_digest(hub_signature(secret, request.body).encode(), given.encode()):
        raise Unauthorized("X-Hub-Signature-256 does not match (is the channel's app_secret set?)")


def verify(credentials: Credentials, request: CallbackRequest) -> None:
    secret(credentials, "app_secret")
    header(request, "X-Hub-Signature-256")
    verify_signature(credentials, request)


def handshake(credentials: Credentials, request: CallbackRequest) -> Reply | None:
    """Meta's GET subscription check (also used by Messenger); None for anything else."""
    query = dict(parse_qsl(urlsplit(request.url).query, keep_blank_values=True))
    if "hub.mode" not in query and "hub.challenge" not in query:
        return None
    expected = credentials.get("verify_token")
    if not isinstance(expected, str) or not expected:
        raise Forbidden("this channel has no verify_token configured; inbound is off")
    if query.get("hub.mode") != "subscribe" or not same(expected, query.get("hub.verify_token", "")):
        raise Forbidden("hub.verify_token does not match")
    return Reply(200, query.get("hub.challenge", ""))
