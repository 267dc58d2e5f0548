"""The request Herald's webhook channel sends, rebuilt for the peers' jobs (stdlib only, so every venv has it).

Same JSON envelope, same Standard Webhooks headers and signature as ``herald.providers.webhook.send``, and the
same httpx client limits as ``herald.runtime.Runtime.http``, so a peer's job does the work Herald's channel does.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
from typing import Any

SECRET_PREFIX = "whsec_"
# Herald's Runtime: httpx.Timeout(send_timeout_seconds=15, connect=5), Limits(200 connections, 50 keep-alive).
TIMEOUT_SECONDS = 15.0
CONNECT_SECONDS = 5.0
MAX_CONNECTIONS = 200
MAX_KEEPALIVE = 50


def sink_url() -> str:
    return os.environ.get("BENCH_SINK_URL", "")  # unset in w2, whose jobs post nothing


def secret() -> str:
    return os.environ["BENCH_WEBHOOK_SECRET"]


def signature(secret_value: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>``, the key being the decoded ``whsec_`` part."""
    key = base64.b64decode(secret_value.removeprefix(SECRET_PREFIX))
    digest = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def build(message: dict[str, Any], secret_value: str) -> tuple[bytes, dict[str, str]]:
    """Body and headers for one message (``id``, ``platform``, ``recipient_id``, ``content``), attempt 1."""
    timestamp = int(time.time())
    body = json.dumps(
        {
            "type": "message.send",
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp)),
            "data": {
                "id": message["id"],
                "platform": message["platform"],
                "recipient_id": message["recipient_id"],
                "subject": None,
                "content": message["content"],
                "attempt": 1,
            },
        },
        separators=(",", ":"),
    ).encode()
    headers = {
        "content-type": "application/json",
        "webhook-id": message["id"],
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(secret_value, message["id"], timestamp, body),
    }
    return body, headers


def client_kwargs() -> dict[str, Any]:
    """What ``httpx.Client`` / ``httpx.AsyncClient`` gets, as Herald's Runtime configures its client."""
    import httpx

    return {
        "timeout": httpx.Timeout(TIMEOUT_SECONDS, connect=CONNECT_SECONDS),
        "limits": httpx.Limits(max_connections=MAX_CONNECTIONS, max_keepalive_connections=MAX_KEEPALIVE),
    }


def check(status: int) -> None:
    """A job whose POST was not answered 2xx fails (and its queue retries it, as Herald's channel would)."""
    if not 200 <= status < 300:
        raise RuntimeError(f"sink answered HTTP {status}")


def message(prefix: str, i: int) -> dict[str, Any]:
    """The i-th bench message of a trial: its id is what the sink counts."""
    return {
        "id": f"{prefix}{i}",
        "platform": "webhook",
        "recipient_id": f"R{i % 97:05d}",
        "content": f"Bench message {i}: the nightly report is ready.",
    }


def valid(payload: Any) -> dict[str, Any] | None:
    """The four fields a single-send endpoint checks (non-empty strings), or None when one is wrong."""
    if not isinstance(payload, dict):
        return None
    fields = ("agent_id", "platform", "recipient_id", "content")
    if not all(isinstance(payload.get(f), str) and payload[f] for f in fields):
        return None
    return {f: payload[f] for f in fields}
