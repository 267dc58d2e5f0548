"""The dev inbox: keeps what a provider would have been sent, for development."""

from __future__ import annotations

from herald.providers.devinbox.send import DevInboxChannel
from herald.providers.registry import Provider

PROVIDERS = (Provider(DevInboxChannel),)
