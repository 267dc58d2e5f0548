"""LINE Messaging API: push message with a channel access token.

``POST /v2/bot/message/push`` with ``{"to": <user, group or room id>, "messages": [{"type": "text", "text": ...}]}``
(at most 5 messages a request). The pipeline splits text over 5,000 characters into parts; LINE declares
``parts_per_call = 5``, so up to five consecutive parts go in one request, in order, and a request succeeds or
fails for all of them together. The id of each part is its ``sentMessages[i].id``.

**Retry key.** Every request carries ``X-Line-Retry-Key``, a UUID derived (uuid5) from the Herald message id and
the index of the request's first part, so the key is the same on every attempt of the same request and LINE
executes it once however often the worker retries it. A 409 answer means an earlier attempt with that key was
already accepted: that is a success, identified by the ``x-line-accepted-request-id`` header (else the key),
which then stands for each of the request's parts.

Errors ``{"message", "details": [{"message", "property"}]}``: 400/401/403 permanent; 429 retryable with
``Retry-After``, except the monthly message quota (permanent until next month); 5xx retryable with the same key.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from herald.core.errors import PermanentDeliveryError, RetryableDeliveryError
from herald.providers.base import Channel, OutboundMessage, parse_retry_after
from herald.providers.http import call, json_body, origin

MESSAGES_PER_REQUEST = 5
# Namespace of Herald's LINE retry keys (a fixed, arbitrary UUID: changing it would break in-flight retries).
RETRY_KEY_NAMESPACE = uuid.UUID("6f1f7a52-3c2e-5d0b-9a53-1c1e4b9f2a10")


class LineCredentials(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel_access_token: str = Field(
        min_length=10, repr=False, description="long-lived or v2.1 channel token"
    )
    channel_secret: str | None = Field(default=None, repr=False, description="for inbound x-line-signature")


def retry_key(message_id: str, part: int) -> str:
    """The X-Line-Retry-Key of one request, named by its first part: stable across attempts of that request.

    A message that fits in one request keeps part 0, the key Herald always gave it. (The pipeline resumes a split
    message at a request boundary, so the same first part always carries the same texts.)
    """
    return str(uuid.uuid5(RETRY_KEY_NAMESPACE, f"{message_id}/{part}"))


class LineChannel(Channel):
    provider = "line"
    platforms: ClassVar[frozenset[str]] = frozenset({"line"})
    credentials_model = LineCredentials
    max_length = 5000
    split_long = True
    parts_per_call = MESSAGES_PER_REQUEST
    default_origin = "https://api.line.me"

    async def send(self, message: OutboundMessage) -> str:
        (sent,) = await self.send_parts(message, [message.content])
        return sent

    async def send_parts(self, message: OutboundMessage, texts: Sequence[str]) -> list[str]:
        """One push carrying ``texts`` (up to five consecutive parts); one id per text."""
        creds = LineCredentials.model_validate(self.config.credentials)
        url = f"{origin(self.config.base_url, self.default_origin)}/v2/bot/message/push"
        key = retry_key(message.id, message.part)
        response = await call(
            self.http, self.provider, "POST", url,
            json={"to": message.recipient_id, "messages": [{"type": "text", "text": text} for text in texts]},
            headers={"authorization": f"Bearer {creds.channel_access_token}", "x-line-retry-key": key},
        )  # fmt: skip
        if response.status_code == 409:  # this retry key was accepted before: the messages went out
            return [response.headers.get("x-line-accepted-request-id") or key] * len(texts)
        body = json_body(response)
        if response.is_success:
            sent = body.get("sentMessages")
            ids = (
                [str(m["id"]) for m in sent if isinstance(m, dict) and m.get("id")]
                if isinstance(sent, list)
                else []
            )
            if len(ids) != len(texts):
                raise PermanentDeliveryError(
                    f"line: malformed answer ({len(ids)} sentMessages ids for {len(texts)} messages)"
                )
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
