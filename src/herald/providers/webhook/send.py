"""Generic outgoing HTTP webhook, signed in the Standard Webhooks format.

The receiver gets ``{"type": "message.send", "timestamp": ..., "data": {...}}`` with ``webhook-id`` (the message
id, stable across retries), ``webhook-timestamp`` and ``webhook-signature: v1,<base64 HMAC-SHA256>``. The secret is given as ``whsec_<base64>``,
the string receivers pass to their Standard Webhooks library; the HMAC key is its decoded bytes.
"""

from __future__ import annotations

import json
import time
from typing import ClassVar

import httpx
from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from herald.core.errors import PermanentDeliveryError, RetryableDeliveryError
from herald.core.security import standard_webhook_signature
from herald.providers.base import (
    STORED,
    Channel,
    OutboundMessage,
    parse_retry_after,
    standard_webhook_secret,
)
from herald.providers.http import call

_THROTTLED = {429, 502, 503, 504}


class WebhookCredentials(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: AnyHttpUrl = Field(repr=False)  # may carry a token in its path or query
    secret: str = Field(
        repr=False, description="whsec_ + base64 of 16 to 64 random bytes (the Standard Webhooks form)"
    )

    @field_validator("secret")
    @classmethod
    def _standard(cls, value: str, info: ValidationInfo) -> str:
        return standard_webhook_secret(value, info)


class WebhookChannel(Channel):
    provider = "webhook"
    platforms: ClassVar[frozenset[str]] = frozenset({"*"})
    credentials_model = WebhookCredentials

    async def send(self, message: OutboundMessage) -> str:
        creds = WebhookCredentials.model_validate(self.config.credentials, context=STORED)
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
