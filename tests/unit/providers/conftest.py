"""Contract-test harness: an adapter talks over loopback HTTP to the in-package fake providers, served by
uvicorn on a free port for the test (real sockets, so timeouts and connection errors are real too)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn

from herald.core.outbound_http import AiohttpTransport
from herald.fakes import FakeState, create_fake_app
from herald.pipeline.parts import Delivery
from herald.providers import ChannelConfig, OutboundMessage, provider_class
from herald.providers.base import Channel
from herald.providers.fakebase import Behaviour


@dataclass
class Fake:
    state: FakeState
    http: httpx.AsyncClient
    origin: str

    def script(self, provider: str, *behaviours: Behaviour) -> None:
        self.state.scripts[provider].extend(behaviours)

    def requests(self, provider: str) -> list[Any]:
        return [r for r in self.state.requests if r.provider == provider]

    def adapter(
        self, provider: str, platform: str, credentials: dict[str, Any], base_url: str | None = ""
    ) -> Channel:
        cls = provider_class(provider)
        assert cls is not None, provider
        config = ChannelConfig(
            id="chn_test", tenant_id="ten_test", platform=platform, provider=provider,
            credentials=credentials, base_url=self.origin if base_url == "" else base_url,
        )  # fmt: skip
        return cls(config, self.http)


@contextlib.asynccontextmanager
async def serve_fakes(state: FakeState) -> AsyncIterator[str]:
    """Run the fake providers on 127.0.0.1 and a free port; yield their origin."""
    config = uvicorn.Config(
        create_fake_app(state), host="127.0.0.1", port=0, log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@pytest.fixture
async def fake() -> AsyncIterator[Fake]:
    state = FakeState()
    # The transport Runtime.http sends through, so timeouts and connection failures map as in production.
    client = httpx.AsyncClient(transport=AiohttpTransport(), timeout=httpx.Timeout(0.5))
    async with serve_fakes(state) as origin, client as http:
        yield Fake(state, http, origin)


async def send_split(adapter: Channel, message: OutboundMessage) -> list[str]:
    """Send ``message`` as the pipeline does: split by the channel's declarations, one call per part (LINE: per
    five parts); return the provider id of every part."""
    delivery = Delivery(adapter, message, adapter.parts_of(message.content))
    await delivery.run()
    return delivery.ids


def outbound(recipient: str, content: str = "Hello", **extra: Any) -> OutboundMessage:
    return OutboundMessage(id="msg_1", tenant_id="ten_test", platform=extra.pop("platform", "slack"),
                           recipient_id=recipient, content=content, **extra)  # fmt: skip
