"""Discord: a bot (REST, signed interactions) and channel webhooks, one fake."""

from __future__ import annotations

from herald.providers.discord import fake, inbound
from herald.providers.discord.bot import DiscordBotChannel
from herald.providers.discord.webhook import DiscordWebhookChannel
from herald.providers.registry import Provider

PROVIDERS = (
    Provider(DiscordBotChannel, inbound=inbound.ADAPTER, fake=fake.router),
    Provider(DiscordWebhookChannel, fake=fake.router),
)
