"""Google Chat: an incoming webhook, ``POST https://chat.googleapis.com/v1/spaces/{SPACE}/messages?key=&token=``.

The webhook URL (credentials) carries the key and token and names the space, so ``recipient_id`` is not used.
The answer is a Message whose ``name`` (``spaces/AAA/messages/BBB``) is the id. Errors are Google's
``{"error": {"code", "message", "status"}}``: 429 (quota) and 5xx retryable, with the wait from ``Retry-After``
or a ``google.rpc.RetryInfo`` detail; 400/401/403/404 permanent. Messages are limited to 32,000 bytes.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator

from herald.core.errors import PermanentDeliveryError, RetryableDeliveryError
from herald.providers.base import Channel, OutboundMessage, parse_retry_after
from herald.providers.http import call, json_body, rebase

MAX_BYTES = 32_000
_WEBHOOK_PATH = re.compile(r"/v1/spaces/[^/]+/messages")
_RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"


class GoogleChatWebhookCredentials(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    webhook_url: str = Field(
        repr=False, description="https://chat.googleapis.com/v1/spaces/{SPACE}/messages?key=KEY&token=TOKEN"
    )

    @field_validator("webhook_url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        value = value.strip()
        parts = urlsplit(value)
        query = parse_qs(parts.query)
        if (
            parts.scheme != "https"
            or parts.hostname != "chat.googleapis.com"
            or not _WEBHOOK_PATH.fullmatch(parts.path)
            or not query.get("key")
            or not query.get("token")
        ):
            raise ValueError(
                "webhook_url must be a Google Chat webhook URL: "
                "https://chat.googleapis.com/v1/spaces/SPACE/messages?key=KEY&token=TOKEN"
            )
        return value


def _retry_delay(error: dict[str, Any]) -> float | None:
    """Seconds from a ``google.rpc.RetryInfo`` detail (``"retryDelay": "7s"``), if there is one."""
    details = error.get("details")
    for detail in details if isinstance(details, list) else []:
        if isinstance(detail, dict) and detail.get("@type") == _RETRY_INFO:
            delay = str(detail.get("retryDelay", "")).removesuffix("s")
            try:
                return max(0.0, float(delay))
            except ValueError:
                return None
    return None


def raise_for_google(response: httpx.Response, provider: str) -> None:
    status = response.status_code
    if 200 <= status < 300:
        return
    error = json_body(response).get("error")
    error = error if isinstance(error, dict) else {}
    reason = ": ".join(str(part) for part in (error.get("status"), error.get("message")) if part)
    text = f"{provider} answered HTTP {status}" + (f": {reason}" if reason else "")
    if status == 429 or status >= 500:
        wait = parse_retry_after(response.headers.get("retry-after"))
        raise RetryableDeliveryError(text, retry_after=wait if wait is not None else _retry_delay(error))
    raise PermanentDeliveryError(text)


class GoogleChatWebhookChannel(Channel):
    provider = "google_chat_webhook"
    platforms: ClassVar[frozenset[str]] = frozenset({"google_chat"})
    credentials_model = GoogleChatWebhookCredentials
    max_length = MAX_BYTES
    default_origin = "https://chat.googleapis.com"

    async def send(self, message: OutboundMessage) -> str:
        creds = GoogleChatWebhookCredentials.model_validate(self.config.credentials)
        size = len(message.content.encode())
        if size > MAX_BYTES:
            raise PermanentDeliveryError(
                f"{self.provider}: message is {size} bytes, over the 32,000-byte limit"
            )
        response = await call(
            self.http, self.provider, "POST", rebase(creds.webhook_url, self.config.base_url),
            json={"text": message.content},
        )  # fmt: skip
        raise_for_google(response, self.provider)
        name = json_body(response).get("name")
        if not name:
            raise PermanentDeliveryError(
                f"{self.provider}: HTTP {response.status_code} without a message name"
            )
        return str(name)
