"""Telegram Bot API: ``sendMessage`` with a bot token.

The token is part of the path (``/bot<token>/sendMessage``), so it never appears in error text here. Failures
answer ``{"ok": false, "error_code", "description", "parameters": {"retry_after"}}``: 429 (flood control) and
5xx are retryable, with ``parameters.retry_after`` or else the ``Retry-After`` header; everything else (400 chat
not found, 401 bad token, 403 blocked or deactivated) is permanent. One call sends one message of at most 4,096
characters (the pipeline splits longer text and sends the parts in order); the id is ``result.message_id``
(unique within the chat). A reply quotes the message it answers.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from herald.core.errors import PermanentDeliveryError, RetryableDeliveryError
from herald.providers.base import Channel, OutboundMessage, parse_retry_after
from herald.providers.http import call, json_body, origin


class TelegramCredentials(BaseModel):
    model_config = ConfigDict(extra="forbid")

    bot_token: str = Field(
        min_length=10, pattern=r"^[^/\s?#]+$", repr=False, description="123456:ABC-... from @BotFather"
    )
    secret_token: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9_-]{1,256}$", repr=False,
        description="setWebhook secret_token, checked on inbound updates (X-Telegram-Bot-Api-Secret-Token)",
    )  # fmt: skip


class TelegramChannel(Channel):
    provider = "telegram"
    platforms: ClassVar[frozenset[str]] = frozenset({"telegram"})
    credentials_model = TelegramCredentials
    max_length = 4096
    split_long = True
    rate_per_second = 30.0  # about 30 messages per second per bot
    recipient_rate_per_second = 1.0  # about one message per second per chat
    burst = 3.0
    default_origin = "https://api.telegram.org"

    async def send(self, message: OutboundMessage) -> str:
        creds = TelegramCredentials.model_validate(self.config.credentials)
        url = f"{origin(self.config.base_url, self.default_origin)}/bot{creds.bot_token}/sendMessage"
        payload: dict[str, Any] = {"chat_id": message.recipient_id, "text": message.content}
        reply_to = message.reply_to()
        if reply_to is not None and reply_to.isdigit():
            # A reply quotes the message it answers; if that message is gone, send anyway.
            payload["reply_parameters"] = {"message_id": int(reply_to), "allow_sending_without_reply": True}
        response = await call(self.http, self.provider, "POST", url, json=payload)
        body = json_body(response)
        if response.is_success and body.get("ok") is True:
            result = body.get("result")
            message_id = result.get("message_id") if isinstance(result, dict) else None
            if message_id is None:
                raise PermanentDeliveryError("telegram: malformed answer (no result.message_id)")
            return str(message_id)
        code = _int(body.get("error_code")) or response.status_code
        description = str(body.get("description") or "no description")
        reason = f"telegram: {code} {description}"
        if code == 429 or code >= 500 or response.status_code == 429 or response.status_code >= 500:
            raise RetryableDeliveryError(
                reason, retry_after=_retry_after(body, response.headers.get("retry-after"))
            )
        raise PermanentDeliveryError(reason)


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _retry_after(body: dict[str, Any], header: str | None) -> float | None:
    parameters = body.get("parameters")
    if isinstance(parameters, dict):
        value = parameters.get("retry_after")
        if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
            return float(value)
    return parse_retry_after(header)
