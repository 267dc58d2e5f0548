"""Resend: ``POST /emails`` with a Bearer API key; one plain-text email per message, its attachments as
``attachments: [{"filename", "content" (base64)}]`` (Resend infers the type from the file name); ``headers``
carries Herald's ``Message-ID`` and, for a conversation reply, ``In-Reply-To`` and ``References``.

The ``Idempotency-Key`` header is Herald's message id, so a retry after a timeout cannot send the email twice
(Resend keeps keys for 24 hours). The message id is ``id``. Errors are ``{"statusCode", "message", "name"}``:
validation_error, missing_api_key, invalid_api_key and other 4xx are permanent; rate_limit_exceeded (429,
``retry-after``) and 5xx are retryable.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from herald.core.errors import PermanentDeliveryError, RetryableDeliveryError
from herald.providers import mailthread
from herald.providers.base import (
    STORED,
    Channel,
    OutboundMessage,
    parse_retry_after,
    standard_webhook_secret,
)
from herald.providers.http import call, json_body, origin

EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
DEFAULT_SUBJECT = "Message"
USER_AGENT = "herald/0.1"
# The daily sending quota is exhausted: nothing will go out before the quota window moves on, so this is
# permanent-ish; we still retry (an upgraded plan or the next day lifts it) but only after an hour.
DAILY_QUOTA_RETRY_AFTER = 3_600.0
# Another request with the same Idempotency-Key is still being processed: ask again shortly.
RETRYABLE_NAMES = frozenset({"rate_limit_exceeded", "concurrent_idempotent_requests"})


class ResendCredentials(BaseModel):
    model_config = ConfigDict(extra="forbid")

    api_key: str = Field(min_length=10, repr=False, description="re_... with sending access")
    from_email: str = Field(pattern=EMAIL_PATTERN, description="an address on a verified domain")
    from_name: str | None = None
    webhook_secret: str | None = Field(
        default=None, repr=False, description="whsec_... of the webhook, for receipts"
    )

    @field_validator("webhook_secret")
    @classmethod
    def _standard(cls, value: str | None, info: ValidationInfo) -> str | None:
        return standard_webhook_secret(value, info)


class ResendChannel(Channel):
    provider = "resend"
    platforms: ClassVar[frozenset[str]] = frozenset({"email"})
    read_receipts: ClassVar[frozenset[str]] = frozenset({"email"})  # "email.opened"
    credentials_model = ResendCredentials
    split_long = False
    takes_attachments = True
    rate_per_second = 2.0  # Resend's default: 2 requests per second per team
    default_origin = "https://api.resend.com"

    async def send(self, message: OutboundMessage) -> str:
        creds = ResendCredentials.model_validate(self.config.credentials, context=STORED)
        sender = f"{creds.from_name} <{creds.from_email}>" if creds.from_name else creds.from_email
        body: dict[str, Any] = {
            "from": sender,
            "to": [message.recipient_id],
            "subject": mailthread.reply_subject(message.subject, message.reply_context) or DEFAULT_SUBJECT,
            "text": message.content,
            # Herald's own Message-ID, so a reply's In-Reply-To leads back to this message; threading for replies.
            "headers": {
                "Message-ID": mailthread.message_id(message.id, creds.from_email),
                **mailthread.thread_headers(message.reply_context),
            },
        }
        if message.attachments:
            body["attachments"] = [{"filename": a.filename, "content": a.base64} for a in message.attachments]
        response = await call(
            self.http, self.provider, "POST", f"{origin(self.config.base_url, self.default_origin)}/emails",
            json=body,
            headers={
                "authorization": f"Bearer {creds.api_key}",
                "idempotency-key": message.id,  # stable across retries of this message
                "user-agent": USER_AGENT,
            },
        )  # fmt: skip
        answer = json_body(response)
        status = response.status_code
        if 200 <= status < 300:
            if answer.get("id"):
                return str(answer["id"])
            raise PermanentDeliveryError(f"resend answered HTTP {status} without an id")
        name = str(answer.get("name") or "")
        detail = ": ".join(part for part in (name, str(answer.get("message") or "")) if part)
        text = f"resend answered HTTP {status}" + (f": {detail}" if detail else "")
        if name == "daily_quota_exceeded":
            raise RetryableDeliveryError(text, retry_after=DAILY_QUOTA_RETRY_AFTER)
        if status == 429 or status >= 500 or name in RETRYABLE_NAMES:
            raise RetryableDeliveryError(
                text, retry_after=parse_retry_after(response.headers.get("retry-after"))
            )
        raise PermanentDeliveryError(text)
