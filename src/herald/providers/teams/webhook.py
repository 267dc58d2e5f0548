"""Microsoft Teams: a legacy Office 365 connector incoming webhook (being retired; prefer ``teams_workflow``).

The webhook URL (credentials) is the secret and names the channel, so ``recipient_id`` is not used. Body
``{"text": ...}``; success is HTTP 200 with the body ``1``. The connector wraps most failures from Teams in a 200
whose body is an error text (``Webhook message delivery failed with error: Microsoft Teams endpoint returned HTTP
error 413 ...``), so anything but ``1`` is a failure: a wrapped 429 or 5xx is retryable, the rest permanent.
There is no message id, so the Herald message id stands in for one.
"""

from __future__ import annotations

import re
from typing import ClassVar
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator

from herald.core.errors import PermanentDeliveryError, RetryableDeliveryError
from herald.providers.base import Channel, OutboundMessage
from herald.providers.http import call, raise_for_status, rebase
from herald.providers.teams.workflow import MAX_TEXT, check_size

_WRAPPED_STATUS = re.compile(r"returned HTTP error (\d{3})")


class TeamsWebhookCredentials(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    webhook_url: str = Field(
        repr=False, description="https://<tenant>.webhook.office.com/webhookb2/.../IncomingWebhook/.../..."
    )

    @field_validator("webhook_url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        value = value.strip()
        parts = urlsplit(value)
        if parts.scheme != "https" or "/IncomingWebhook/" not in parts.path:
            raise ValueError(
                "webhook_url must be an Office 365 connector URL: https://<tenant>.webhook.office.com/webhookb2/"
                "<group>@<tenant>/IncomingWebhook/<id>/<owner>"
            )
        return value


def classify(response: httpx.Response, provider: str) -> None:
    """Raise unless the connector answered 200 with ``1``."""
    text = response.text.strip()
    raise_for_status(response, provider, text[:300] or None)
    if text == "1":
        return
    reason = f"{provider}: {text[:300] or 'empty answer'}"
    wrapped = _WRAPPED_STATUS.search(text)
    if wrapped and (wrapped.group(1) == "429" or wrapped.group(1).startswith("5")):
        raise RetryableDeliveryError(reason)
    raise PermanentDeliveryError(reason)


class TeamsWebhookChannel(Channel):
    provider = "teams_webhook"
    platforms: ClassVar[frozenset[str]] = frozenset({"teams"})
    credentials_model = TeamsWebhookCredentials
    max_length = MAX_TEXT
    rate_per_second = 4.0  # throttled past about 4 requests per second

    async def send(self, message: OutboundMessage) -> str:
        creds = TeamsWebhookCredentials.model_validate(self.config.credentials)
        payload = {"text": message.content}
        check_size(payload, self.provider)
        response = await call(
            self.http, self.provider, "POST", rebase(creds.webhook_url, self.config.base_url), json=payload
        )
        classify(response, self.provider)
        return message.id
