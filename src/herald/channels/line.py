"""LINE Messaging API: push message with a channel access token.

``POST /v2/bot/message/push`` with ``{"to": <user, group or room id>, "messages": [{"type": "text", "text": ...}]}``
(at most 5 messages a request). Text over 5,000 characters is split into chunks and up to 5 chunks go in each
request, in order. The id is ``sentMessages[0].id`` (every sent message's id, joined with ``,``, when split).

**Retry key.** Every request carries ``X-Line-Retry-Key``, a UUID derived (uuid5) from the Herald message id and
the index of the chunk group, so the key is the same on every attempt of the same message and LINE executes the
request once however often the worker retries it. A 409 answer means an earlier attempt with that key was
already accepted: that is a success, identified by the ``x-line-accepted-request-id`` header (else the key).

Errors ``{"message", "details": [{"message", "property"}]}``: 400/401/403 permanent; 429 retryable with
``Retry-After``, except the monthly message quota (permanent until next month); 5xx retryable with the same key.
"""

from __future__ import annotations

import uuid
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from herald.channels.base import Channel, OutboundMessage, parse_retry_after, split_text
from herald.channels.http import call, json_body, origin
from herald.errors import PermanentDeliveryError, RetryableDeliveryError

MESSAGES_PER_REQUEST = 5
# Namespace of Herald's LINE retry keys (a fixed, arbitrary UUID: changing it would break in-flight retries).
RETRY_KEY_NAMESPACE = uuid.UUID("6f1f7a52-3c2e-5d0b-9a53-1c1e4b9f2a10")


class LineCredentials(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel_access_token: str = Field(
        min_length=10, repr=False, description="long-lived or v2.1 channel token"
    )
    channel_secret: str | None = Field(default=None, repr=False, description="for inbound x-line-signature")


def retry_key(message_id: str, group: int) -> str:
    """The X-Line-Retry-Key of one request: stable across attempts of the same message and chunk group."""
    return str(uuid.uuid5(RETRY_KEY_NAMESPACE, f"{message_id}/{group}"))


class LineChannel(Channel):
    provider = "line"
    platforms: ClassVar[frozenset[str]] = frozenset({"line"})
    credentials_model = LineCredentials
    max_length = 5000
    split_long = True
    default_origin = "https://api.line.me"

    async def send(self, message: OutboundMessage) -> str:
        creds = LineCredentials.model_validate(self.config.credentials)
        url = f"{origin(self.config.base_url, self.default_origin)}/v2/bot/message/push"
        chunks = split_text(message.content, self.max_length)
        ids: list[str] = []
        for group, start in enumerate(range(0, len(chunks), MESSAGES_PER_REQUEST)):
            texts = chunks[start : start + MESSAGES_PER_REQUEST]
            ids.extend(
                await self._push(
                    url, creds.channel_access_token, message, texts, retry_key(message.id, group)
                )
            )
        return ",".join(ids)

    async def _push(
        self, url: str, token: str, message: OutboundMessage, texts: list[str], key: str
    ) -> list[str]:
        response = await call(
            self.http, self.provider, "POST", url,
            json={"to": message.recipient_id, "messages": [{"type": "text", "text": text} for text in texts]},
            headers={"authorization": f"Bearer {token}", "x-line-retry-key": key},
        )  # fmt: skip
        if response.status_code == 409:  # this retry key was accepted before: the messages went out
            return [response.headers.get("x-line-accepted-request-id") or key]
        body = json_body(response)
        if response.is_success:
            sent = body.get("sentMessages")
            ids = (
                [str(m["id"]) for m in sent if isinstance(m, dict) and m.get("id")]
                if isinstance(sent, list)
                else []
            )
            if not ids:
                raise PermanentDeliveryError("line: malformed answer (no sentMessages[0].id)")
            return ids
        status = response.status_code
        reason = f"line: HTTP {status}: {_describe(body)}"
        if status == 429:
            if "monthly limit" in str(body.get("message", "")).lower():
                raise PermanentDeliveryError(reason)  # the monthly quota is spent until next month
            raise RetryableDeliveryError(
                reason, retry_after=parse_retry_after(response.headers.get("retry-after"))
            )
        if status >= 500:
            raise RetryableDeliveryError(
                reason, retry_after=parse_retry_after(response.headers.get("retry-after"))
            )
        raise PermanentDeliveryError(reason)


def _describe(body: dict[str, Any]) -> str:
    text = str(body.get("message") or "no message")
    details = body.get("details")
    if isinstance(details, list):
        parts = [
            f"{d.get('property')}: {d.get('message')}" if d.get("property") else str(d.get("message"))
            for d in details
            if isinstance(d, dict)
        ]
        if parts:
            text += " (" + "; ".join(parts) + ")"
    return text
