"""Discord: a bot (REST, signed interactions) and channel webhooks, one fake."""

from __future__ import annotations

from herald.providers.discord import inbound
from herald.providers.discord.bot import DiscordBotChannel
from herald.providers.discord.webhook import DiscordWebhookChannel
from herald.providers.registry import Provider

PROVIDERS = (
    Provider(DiscordBotChannel, inbound=inbound.ADAPTER, fake="herald.providers.discord.fake"),
    Provider(DiscordWebhookChannel, fake="herald.providers.discord.fake"),
)
