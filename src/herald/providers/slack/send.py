"""Slack: ``chat.postMessage`` with a bot token.

Slack answers HTTP 200 with ``{"ok": false, "error": ...}`` for most failures, so the error name decides the
class; rate limiting is HTTP 429 with ``Retry-After``. The message id is ``ts`` (unique within the channel).
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from herald.core.errors import PermanentDeliveryError, RetryableDeliveryError
from herald.providers.base import Channel, OutboundMessage
from herald.providers.http import call, json_body, origin, raise_for_status

RETRYABLE_ERRORS = frozenset(
    {"ratelimited", "rate_limited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)


class SlackCredentials(BaseModel):
    model_config = ConfigDict(extra="forbid")

    bot_token: str = Field(min_length=10, repr=False, description="xoxb-... with chat:write")
    signing_secret: str | None = Field(default=None, repr=False, description="for inbound events")


class SlackChannel(Channel):
    provider = "slack"
    platforms: ClassVar[frozenset[str]] = frozenset({"slack"})
    credentials_model = SlackCredentials
    max_length = 40_000
    recipient_rate_per_second = 1.0  # about one message per second per channel
    burst = 3.0
    default_origin = "https://slack.com"

    async def send(self, message: OutboundMessage) -> str:
        creds = SlackCredentials.model_validate(self.config.credentials)
        payload = {"channel": message.recipient_id, "text": message.content}
        thread = (message.reply_context or {}).get("thread_id")
        if thread:  # the person wrote in a thread: answer there
            payload["thread_ts"] = str(thread)
        response = await call(
            self.http, self.provider, "POST",
            f"{origin(self.config.base_url, self.default_origin)}/api/chat.postMessage",
            json=payload,
            headers={"authorization": f"Bearer {creds.bot_token}"},
        )  # fmt: skip
        raise_for_status(response, self.provider)
        body = json_body(response)
        if body.get("ok") is True and body.get("ts"):
            return str(body["ts"])
        error = str(body.get("error") or "malformed answer")
        if error in RETRYABLE_ERRORS:
            raise RetryableDeliveryError(f"slack: {error}")
        raise PermanentDeliveryError(f"slack: {error}")
