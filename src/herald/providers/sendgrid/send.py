"""SendGrid: ``POST /v3/mail/send`` with a Bearer API key; one plain-text email per message, its attachments as
``attachments: [{"content" (base64), "filename", "type", "disposition": "attachment"}]``; ``headers`` carries
Herald's ``Message-ID`` and, for a conversation reply, ``In-Reply-To`` and ``References`` (the subject is then
``Re: ...``).

Success is HTTP 202 with an empty body; the message id is the ``X-Message-Id`` response header (the prefix of
the ``sg_message_id`` in event webhooks). 400/401/403/413 are permanent; 429 waits until ``X-RateLimit-Reset``
(epoch seconds) and 5xx are retryable.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

import httpx
from pydantic import BaseModel, ConfigDict, Field

from herald.core.errors import PermanentDeliveryError, RetryableDeliveryError
from herald.providers import mailthread
from herald.providers.base import Channel, OutboundMessage, parse_retry_after
from herald.providers.http import call, json_body, origin

EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
DEFAULT_SUBJECT = "Message"


class SendGridCredentials(BaseModel):
    model_config = ConfigDict(extra="forbid")

    api_key: str = Field(min_length=10, repr=False, description="SG.... with Mail Send permission")
    from_email: str = Field(pattern=EMAIL_PATTERN, description="a verified sender identity")
    from_name: str | None = None
    webhook_public_key: str | None = Field(
        default=None, description="the Event Webhook's verification key (base64 ECDSA P-256), for receipts"
    )


class SendGridChannel(Channel):
    provider = "sendgrid"
    platforms: ClassVar[frozenset[str]] = frozenset({"email"})
    read_receipts: ClassVar[frozenset[str]] = frozenset({"email"})  # an "open" event
    credentials_model = SendGridCredentials
    split_long = False
    takes_attachments = True
    default_origin = "https://api.sendgrid.com"

    async def send(self, message: OutboundMessage) -> str:
        creds = SendGridCredentials.model_validate(self.config.credentials)
        sender: dict[str, str] = {"email": creds.from_email}
        if creds.from_name:
            sender["name"] = creds.from_name
        body: dict[str, Any] = {
            "personalizations": [{"to": [{"email": message.recipient_id}]}],
            "from": sender,
            "subject": mailthread.reply_subject(message.subject, message.reply_context) or DEFAULT_SUBJECT,
            "content": [{"type": "text/plain", "value": message.content}],
            # Herald's own Message-ID, so a reply's In-Reply-To leads back to this message; threading for replies.
            "headers": {
                "Message-ID": mailthread.message_id(message.id, creds.from_email),
                **mailthread.thread_headers(message.reply_context),
            },
        }
        if message.attachments:
            body["attachments"] = [
                {
                    "content": a.base64,
                    "filename": a.filename,
                    "type": a.content_type,
                    "disposition": "attachment",
                }
                for a in message.attachments
            ]
        response = await call(
            self.http, self.provider, "POST",
            f"{origin(self.config.base_url, self.default_origin)}/v3/mail/send",
            json=body, headers={"authorization": f"Bearer {creds.api_key}"},
        )  # fmt: skip
        status = response.status_code
        if 200 <= status < 300:
            message_id = str(response.headers.get("x-message-id") or "")
            if message_id:
                return message_id
            raise PermanentDeliveryError(f"sendgrid answered HTTP {status} without X-Message-Id")
        text = f"sendgrid answered HTTP {status}" + (f": {reason}" if (reason := _reason(response)) else "")
        if status == 429 or status >= 500:
            raise RetryableDeliveryError(text, retry_after=_retry_after(response))
        raise PermanentDeliveryError(text)


def _reason(response: httpx.Response) -> str | None:
    errors = json_body(response).get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        first = errors[0]
        field = f" ({first['field']})" if first.get("field") else ""
        return f"{first.get('message') or 'error'}{field}"
    return None


def _retry_after(response: httpx.Response) -> float | None:
    """Seconds until ``X-RateLimit-Reset`` (Unix time), else ``Retry-After``."""
    reset = response.headers.get("x-ratelimit-reset")
    if reset:
        try:
            value = float(reset)
        except ValueError:
            value = -1.0
        if value >= 1_000_000_000:  # a Unix time, as SendGrid sends it
            return max(0.0, value - time.time())
        if value >= 0:  # some proxies give seconds from now instead
            return value
    return parse_retry_after(response.headers.get("retry-after"))
