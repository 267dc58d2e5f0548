"""Google Chat incoming webhooks."""

from __future__ import annotations

from herald.providers.google_chat.send import GoogleChatWebhookChannel
from herald.providers.registry import Provider

PROVIDERS = (Provider(GoogleChatWebhookChannel, fake="herald.providers.google_chat.fake"),)
