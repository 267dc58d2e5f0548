"""Generic outgoing HTTP webhook, signed in the Standard Webhooks format.

The receiver gets ``{"type": "message.send", "timestamp": ..., "data": {...}}`` with ``webhook-id`` (the message
id, stable across retries), ``webhook-timestamp`` and ``webhook-signature: v1,<base64 HMAC-SHA256>``.
"""

from __future__ import annotations

import json
import time
from typing import ClassVar

import httpx
from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field

from herald.core.errors import PermanentDeliveryError, RetryableDeliveryError
from herald.core.security import standard_webhook_signature
from herald.providers.base import Channel, OutboundMessage, parse_retry_after
from herald.providers.http import call

_THROTTLED = {429, 502, 503, 504}


class WebhookCredentials(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: AnyHttpUrl = Field(repr=False)  # may carry a token in its path or query
    secret: str = Field(min_length=16, repr=False)


class WebhookChannel(Channel):
    provider = "webhook"
    platforms: ClassVar[frozenset[str]] = frozenset({"*"})
    credentials_model = WebhookCredentials

    async def send(self, message: OutboundMessage) -> str:
        creds = WebhookCredentials.model_validate(self.config.credentials)
        timestamp = int(time.time())
        body = json.dumps(
            {
                "type": "message.send",
                "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp)),
                "data": {
                    "id": message.id,
                    "platform": message.platform,
                    "recipient_id": message.recipient_id,
                    "subject": message.subject,
                    "content": message.content,
                    "attempt": message.attempt,
                },
            },
            separators=(",", ":"),
        ).encode()
        headers = {
            "content-type": "application/json",
            "webhook-id": message.id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": standard_webhook_signature(creds.secret, message.id, timestamp, body),
        }
        response = await call(self.http, self.provider, "POST", str(creds.url), content=body, headers=headers)
        return self._classify(response, message.id)

    @staticmethod
    def _classify(response: httpx.Response, message_id: str) -> str:
        status = response.status_code
        if 200 <= status < 300:
            try:
                payload = response.json()
            except ValueError:
                return message_id
            receipt = payload.get("id") if isinstance(payload, dict) else None
            return str(receipt) if receipt else message_id
        reason = f"webhook answered HTTP {status}"
        if status in _THROTTLED or status >= 500:
            raise RetryableDeliveryError(
                reason, retry_after=parse_retry_after(response.headers.get("retry-after"))
            )
        if status == 410:
            raise PermanentDeliveryError(reason + " (gone: endpoint disabled)")
        raise PermanentDeliveryError(reason)
