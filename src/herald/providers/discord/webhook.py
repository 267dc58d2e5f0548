"""Discord: an incoming webhook, ``POST https://discord.com/api/webhooks/{id}/{token}?wait=true``.

The webhook URL (credentials) is the secret and names the channel, so ``recipient_id`` is not used. With
``wait=true`` Discord answers 200 with the message object (without it, 204 and no id). Errors and rate limits are
Discord's as for bots; 404 with code 10015 (Unknown Webhook) means the webhook was deleted: permanent. One call
sends one message of at most 2,000 characters (the pipeline splits longer text).
"""

from __future__ import annotations

import re
from typing import ClassVar
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator

from herald.providers.base import Channel, OutboundMessage
from herald.providers.discord.bot import MAX_CONTENT, message_id, raise_for_discord
from herald.providers.http import call, rebase

WEBHOOK_HOSTS = frozenset({"discord.com", "discordapp.com", "ptb.discord.com", "canary.discord.com"})
_WEBHOOK_PATH = re.compile(r"/api(?:/v\d+)?/webhooks/\d+/[A-Za-z0-9_-]+/?")


class DiscordWebhookCredentials(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    webhook_url: str = Field(
        repr=False,
        description="https://discord.com/api/webhooks/{id}/{token} (channel settings, Integrations)",
    )

    @field_validator("webhook_url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        value = value.strip()
        parts = urlsplit(value)
        if (
            parts.scheme != "https"
            or parts.hostname not in WEBHOOK_HOSTS
            or not _WEBHOOK_PATH.fullmatch(parts.path)
        ):
            raise ValueError(
                "webhook_url must be a Discord webhook URL: https://discord.com/api/webhooks/{id}/{token}"
            )
        return value


class DiscordWebhookChannel(Channel):
    provider = "discord_webhook"
    platforms: ClassVar[frozenset[str]] = frozenset({"discord"})
    credentials_model = DiscordWebhookCredentials
    max_length = MAX_CONTENT
    split_long = True
    default_origin = "https://discord.com"

    async def send(self, message: OutboundMessage) -> str:
        creds = DiscordWebhookCredentials.model_validate(self.config.credentials)
        # wait=true makes Discord answer with the message (and its id); the URL's own query (thread_id) stays.
        url = httpx.URL(rebase(creds.webhook_url, self.config.base_url)).copy_merge_params({"wait": "true"})
        response = await call(self.http, self.provider, "POST", str(url), json={"content": message.content})
        raise_for_discord(response, self.provider)
        return message_id(response, self.provider)
