"""Telegram Bot API: sendMessage, updates checked by secret token."""

from __future__ import annotations

from herald.providers.registry import Provider
from herald.providers.telegram import inbound
from herald.providers.telegram.send import TelegramChannel

PROVIDERS = (Provider(TelegramChannel, inbound=inbound.ADAPTER, fake="herald.providers.telegram.fake"),)
