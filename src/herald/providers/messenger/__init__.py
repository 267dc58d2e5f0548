"""Messenger Send API (Meta Graph) and its signed webhooks."""

from __future__ import annotations

from herald.providers.messenger import inbound
from herald.providers.messenger.send import MessengerChannel
from herald.providers.registry import Provider

PROVIDERS = (Provider(MessengerChannel, inbound=inbound.ADAPTER, fake="herald.providers.graph_fake"),)
