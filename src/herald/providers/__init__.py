"""Providers: one package per provider, each exporting ``PROVIDERS``; this module lists the packages once.

Adding a provider is its own package (``send.py``, optionally ``inbound.py``, ``receipts.py``, ``fake.py`` and an
``__init__.py`` declaring its :class:`~herald.providers.registry.Provider`) plus one line in ``PACKAGES`` below.
"""

from __future__ import annotations

from herald.core.platforms import PLATFORMS
from herald.providers import (
    apprise,
    devinbox,
    discord,
    google_chat,
    line,
    messenger,
    resend,
    sendgrid,
    signal,
    slack,
    smtp,
    teams,
    telegram,
    twilio,
    webhook,
    whatsapp_cloud,
)
from herald.providers.base import Action, Channel, ChannelConfig, OutboundMessage
from herald.providers.inbound.base import InboundAdapter
from herald.providers.receipts import Parser
from herald.providers.registry import Provider, Registry

PACKAGES = (
    devinbox,
    webhook,
    slack,
    discord,
    teams,
    google_chat,
    signal,
    telegram,
    whatsapp_cloud,
    messenger,
    line,
    twilio,
    sendgrid,
    resend,
    smtp,
    apprise,
)  # a new provider: its package, and one line here

REGISTRY = Registry(provider for package in PACKAGES for provider in package.PROVIDERS)


def provider_class(name: str) -> type[Channel] | None:
    provider = REGISTRY.get(name)
    return None if provider is None else provider.adapter


def providers() -> list[str]:
    return REGISTRY.names()


def inbound_adapter(name: str) -> InboundAdapter | None:
    provider = REGISTRY.get(name)
    return None if provider is None else provider.inbound


def receipts_parser(name: str) -> Parser | None:
    provider = REGISTRY.get(name)
    return None if provider is None else provider.receipts


def register(adapter: type[Channel]) -> Provider:
    """Register an adapter at run time (tests, plugins); refused if its name is taken."""
    return REGISTRY.add(Provider(adapter))


__all__ = [
    "PLATFORMS",
    "REGISTRY",
    "Action",
    "Channel",
    "ChannelConfig",
    "OutboundMessage",
    "Provider",
    "inbound_adapter",
    "provider_class",
    "providers",
    "receipts_parser",
    "register",
]
