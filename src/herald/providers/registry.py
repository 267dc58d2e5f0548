"""The provider registry: everything Herald knows about one provider, declared once.

A :class:`Provider` bundles a provider's outgoing adapter (which also declares its credentials, limits and
length), its inbound webhook adapter (verification and parsing), its delivery-receipt parser and its fake
server. Each provider package exports ``PROVIDERS``; :mod:`herald.providers` lists the packages once, and every
lookup (the worker's adapters, the webhook endpoint, receipts, the fake server) reads this one registry.
Recipient forms belong to platforms, not providers: they live in :mod:`herald.core.platforms`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from herald.providers.base import Channel
from herald.providers.inbound.base import InboundAdapter
from herald.providers.receipts import Parser

if TYPE_CHECKING:
    from fastapi import APIRouter

    from herald.providers.fakebase import FakeState

FakeRouter = Callable[["FakeState"], "APIRouter"]


@dataclass(frozen=True)
class Provider:
    """One provider: its adapter class and, where the provider has them, inbound, receipts and a fake."""

    adapter: type[Channel]
    inbound: InboundAdapter | None = None
    receipts: Parser | None = None
    fake: str | None = None
    """The module serving this provider's fake (its ``router``), named rather than imported: the fakes pull in
    FastAPI, which a worker process never needs, so they load only when a fake server is built."""

    @property
    def name(self) -> str:
        return self.adapter.provider


class Registry:
    """Providers by name; explicit (no folder scanning) and refusing a name registered twice."""

    def __init__(self, providers: Iterable[Provider] = ()) -> None:
        self._by_name: dict[str, Provider] = {}
        for provider in providers:
            self.add(provider)

    def add(self, provider: Provider) -> Provider:
        if provider.name in self._by_name:
            raise ValueError(f"channel provider {provider.name!r} is registered twice")
        if provider.inbound is not None and provider.inbound.provider != provider.name:
            raise ValueError(f"{provider.name}: its inbound adapter is for {provider.inbound.provider!r}")
        self._by_name[provider.name] = provider
        return provider

    def get(self, name: str) -> Provider | None:
        return self._by_name.get(name)

    def names(self) -> list[str]:
        return sorted(self._by_name)

    def fakes(self) -> list[FakeRouter]:
        """Each fake server once (one fake may serve several providers of one vendor), imported now."""
        modules = dict.fromkeys(p.fake for p in self._by_name.values() if p.fake is not None)
        routers: list[FakeRouter] = [importlib.import_module(name).router for name in modules]
        return routers
