"""Discord: a bot posts to a channel with ``POST /api/v10/channels/{channel_id}/messages``.

Content is capped at 2,000 characters per message (the pipeline splits longer text and sends the parts in order);
the id is the message's snowflake. Errors are ``{"code": ..., "message": ...}`` with Discord's own codes (10003 Unknown
Channel, 50001 Missing Access, 50013 Missing Permissions, 50035 Invalid Form Body); a 429 says how long to wait in
``Retry-After`` (whole seconds) and in the body's ``retry_after`` (float seconds, preferred).
"""

from __future__ import annotations

from typing import ClassVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator

from herald.core.errors import PermanentDeliveryError, RetryableDeliveryError
from herald.providers.base import Channel, OutboundMessage, parse_retry_after
from herald.providers.http import call, json_body, origin, raise_for_status

MAX_CONTENT = 2_000


class DiscordBotCredentials(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    bot_token: str = Field(
        min_length=10, repr=False, description="the bot's token (sent as Authorization: Bot ...)"
    )
    public_key: str | None = Field(
        default=None, repr=False, description="for inbound interactions (Ed25519, hex)"
    )

    @field_validator("bot_token")
    @classmethod
    def _strip_scheme(cls, value: str) -> str:
        value = value.strip()
        return value.removeprefix("Bot ").strip()


def raise_for_discord(response: httpx.Response, provider: str) -> None:
    """Discord's error classes: 429 (retry-after from the body, else the header) and 5xx retryable, other 4xx
    permanent, with Discord's error code and message in the reason."""
    status = response.status_code
    if 200 <= status < 300:
        return
    body = json_body(response)
    code, text = body.get("code"), body.get("message")
    reason = " ".join(str(part) for part in (code or None, text) if part) or None
    if status == 429:
        retry_after = body.get("retry_after")
        wait = (
            float(retry_after)
            if isinstance(retry_after, int | float) and not isinstance(retry_after, bool) and retry_after >= 0
            else parse_retry_after(response.headers.get("retry-after"))
        )
        scope = " (global)" if body.get("global") is True else ""
        raise RetryableDeliveryError(
            f"{provider} answered HTTP 429{scope}" + (f": {reason}" if reason else ""), retry_after=wait
        )
    raise_for_status(response, provider, reason)


def message_id(response: httpx.Response, provider: str) -> str:
    """The ``id`` of the message object Discord answers with."""
    snowflake = json_body(response).get("id")
    if not snowflake:
        raise PermanentDeliveryError(f"{provider}: HTTP {response.status_code} without a message id")
    return str(snowflake)


class DiscordBotChannel(Channel):
    provider = "discord_bot"
    platforms: ClassVar[frozenset[str]] = frozenset({"discord"})
    credentials_model = DiscordBotCredentials
    max_length = MAX_CONTENT
    split_long = True
    rate_per_second = 50.0  # Discord's global limit per bot; per-route buckets come back in the headers
    default_origin = "https://discord.com"

    async def send(self, message: OutboundMessage) -> str:
        creds = DiscordBotCredentials.model_validate(self.config.credentials)
        url = (
            f"{origin(self.config.base_url, self.default_origin)}"
            f"/api/v10/channels/{quote(message.recipient_id, safe='')}/messages"
        )
        response = await call(
            self.http, self.provider, "POST", url,
            json={"content": message.content}, headers={"authorization": f"Bot {creds.bot_token}"},
        )  # fmt: skip
        raise_for_discord(response, self.provider)
        return message_id(response, self.provider)
