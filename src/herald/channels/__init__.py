"""Channel registry: provider name to adapter class. Explicit, and refuses duplicate names."""

from __future__ import annotations

from herald.channels.apprise import AppriseChannel
from herald.channels.base import Channel, ChannelConfig, OutboundMessage
from herald.channels.devinbox import DevInboxChannel
from herald.channels.discord_bot import DiscordBotChannel
from herald.channels.discord_webhook import DiscordWebhookChannel
from herald.channels.google_chat_webhook import GoogleChatWebhookChannel
from herald.channels.line import LineChannel
from herald.channels.messenger import MessengerChannel
from herald.channels.resend import ResendChannel
from herald.channels.sendgrid import SendGridChannel
from herald.channels.signal_cli_rest import SignalCliRestChannel
from herald.channels.slack import SlackChannel
from herald.channels.smtp import SmtpChannel
from herald.channels.teams_webhook import TeamsWebhookChannel
from herald.channels.teams_workflow import TeamsWorkflowChannel
from herald.channels.telegram import TelegramChannel
from herald.channels.twilio import TwilioChannel
from herald.channels.webhook import WebhookChannel
from herald.channels.whatsapp_cloud import WhatsAppCloudChannel

PLATFORMS = frozenset(
    {
        "slack", "discord", "teams", "whatsapp", "telegram", "google_chat", "signal",
        "messenger", "line", "sms", "voice", "email", "webhook",
    }
)  # fmt: skip

_REGISTRY: dict[str, type[Channel]] = {}


def register(cls: type[Channel]) -> type[Channel]:
    if cls.provider in _REGISTRY:
        raise ValueError(f"channel provider {cls.provider!r} is registered twice")
    _REGISTRY[cls.provider] = cls
    return cls


def provider_class(provider: str) -> type[Channel] | None:
    return _REGISTRY.get(provider)


def providers() -> list[str]:
    return sorted(_REGISTRY)


# Every adapter, explicitly (no folder scanning). Add new ones at the end of this list.
for _adapter in (
    DevInboxChannel,
    WebhookChannel,
    SlackChannel,
    DiscordBotChannel,
    DiscordWebhookChannel,
    TeamsWorkflowChannel,
    TeamsWebhookChannel,
    GoogleChatWebhookChannel,
    SignalCliRestChannel,
    TelegramChannel,
    WhatsAppCloudChannel,
    MessengerChannel,
    LineChannel,
    TwilioChannel,
    SendGridChannel,
    ResendChannel,
    SmtpChannel,
    AppriseChannel,
):
    register(_adapter)

__all__ = [
    "PLATFORMS",
    "Channel",
    "ChannelConfig",
    "OutboundMessage",
    "provider_class",
    "providers",
    "register",
]
