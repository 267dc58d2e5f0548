"""The runtime: everything a process shares (engine, caches, HTTP client, channels), built once."""

from __future__ import annotations

import logging
import time
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from herald.admin.keys import KeyCache
from herald.agents.dispatch import Dispatcher
from herald.core.caching import TTLCache
from herald.core.config import Settings
from herald.core.errors import PermanentDeliveryError
from herald.core.metrics import Metrics
from herald.core.netguard import OutboundGuard
from herald.core.outbound_http import outbound_client
from herald.core.security import CredentialBox
from herald.events.bus import EventBus
from herald.humans.decisions import Humans
from herald.pipeline.governance import GovernanceCache
from herald.pipeline.library import TemplateCache
from herald.pipeline.routing.circuit import CircuitView
from herald.pipeline.routing.measured import MeasuredRouting
from herald.pipeline.waker import INBOUND_CHANNEL, Waker
from herald.producers.callbacks import AgentCaller, Interceptor
from herald.providers import Channel, ChannelConfig, provider_class
from herald.providers.devinbox.send import DevInboxChannel, DevInboxStore
from herald.storage.datasources import DataSourceEngines
from herald.storage.engine import create_engine
from herald.storage.models import Channel as ChannelRow
from herald.storage.sessions import session_factory

_CHANNEL_TTL = 5.0  # short: enabling or disabling an interface reaches every process within it


def _quiet_http_logs() -> None:
    """httpx logs every request URL at INFO; some providers put tokens in the URL (Telegram's bot token,
    webhook URLs), so those lines stay off unless asked for with DEBUG on these loggers explicitly."""
    for name in ("httpx", "httpcore"):
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.WARNING)


class Runtime:
    def __init__(self, settings: Settings, engine: AsyncEngine | None = None) -> None:
        _quiet_http_logs()
        self.settings = settings
        self.engine = engine or create_engine(
            settings.async_database_url, pool_size=settings.database_pool_size
        )
        self.sessions: async_sessionmaker[AsyncSession] = session_factory(self.engine)
        self.governance = GovernanceCache()
        self.credentials = CredentialBox(settings.secret_key)
        self.outbound = OutboundGuard(settings)
        # httpx's API over aiohttp's pool (herald.core.outbound_http): the guard runs as a request hook (every
        # redirect hop too) and again on the addresses each new connection resolves to; proxies from the
        # environment (HTTP(S)_PROXY / NO_PROXY) still apply.
        self.http: httpx.AsyncClient = outbound_client(settings, self.outbound)
        self.devinbox = DevInboxStore(self.sessions)
        self.waker = Waker()
        self.inbound_waker = Waker(INBOUND_CHANNEL)  # stored inbound messages wait for routing
        self.metrics = Metrics()
        self.bus = EventBus(self.sessions)
        # How producers wake an agent of any kind (herald.producers.callbacks.AgentCaller).
        self.agents: AgentCaller = Dispatcher(self)
        # What inbound routing asks first: is this a decision or an answer for a person's request?
        self.humans: Interceptor = Humans(self)
        self._channels: dict[str, tuple[Channel, float]] = {}
        # Tenants' delivery policies and default channels, read on every accepted message.
        self.lookups: TTLCache[tuple[str, ...], Any] = TTLCache(ttl=5.0)
        # Channels' circuit states as acceptance orders routes by them (the worker reads them afresh).
        self.circuit_views: TTLCache[str, CircuitView] = TTLCache(ttl=1.0)
        # Channel figures for measured routing (kept 30 s per tenant) and the random source its exploring uses.
        self.measured = MeasuredRouting()
        # Tenants' template overrides (herald.pipeline.library): a change reaches every process within 5 s.
        self.templates = TemplateCache()
        # Who each API key is, trusted for half a second (a revocation reaches every process within that).
        self.key_cache = KeyCache()
        # Engines of tenants' own databases (herald.storage.datasources), disposed when a source changes.
        self.data_sources = DataSourceEngines()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def devinbox_channel(self, tenant_id: str, platform: str) -> DevInboxChannel:
        config = ChannelConfig(
            id=None, tenant_id=tenant_id, platform=platform, provider="devinbox", credentials={}
        )
        return DevInboxChannel(config, self.devinbox)

    async def channel(self, channel_id: str) -> Channel:
        """The adapter for a configured channel, with decrypted credentials cached briefly."""
        cached = self._channels.get(channel_id)
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        async with self.sessions() as session:
            row = (
                await session.execute(select(ChannelRow).where(ChannelRow.id == channel_id))
            ).scalar_one_or_none()
        if row is None:
            raise PermanentDeliveryError(f"channel {channel_id} no longer exists")
        adapter = self.build_channel(row)
        self._channels[channel_id] = (adapter, time.monotonic() + _CHANNEL_TTL)
        return adapter

    def build_channel(self, row: ChannelRow) -> Channel:
        if row.provider == "devinbox":
            return self.devinbox_channel(row.tenant_id, row.platform)
        cls = provider_class(row.provider)
        if cls is None:
            raise PermanentDeliveryError(f"provider {row.provider!r} is not available in this Herald")
        config = ChannelConfig(
            id=row.id,
            tenant_id=row.tenant_id,
            platform=row.platform,
            provider=row.provider,
            credentials=self.credentials.open(row.credentials),
            base_url=row.base_url,
            cost_per_message=row.cost_per_message,
            rate_per_second=row.rate_per_second,
            recipient_rate_per_second=row.recipient_rate_per_second,
            enabled=row.enabled,
        )
        return cls(config, self.http, outbound=self.outbound)

    def forget_channel(self, channel_id: str) -> None:
        self._channels.pop(channel_id, None)
        self.lookups.clear()

    async def close(self) -> None:
        await self.bus.close()
        await self.waker.close()
        await self.inbound_waker.close()
        await self.http.aclose()
        await self.data_sources.close()
        await self.engine.dispose()
