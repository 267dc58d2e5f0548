"""The outbound guard in production: URLs aimed at loopback, private or link-local addresses are refused when
saved (a 422 naming the field) unless allow-listed, and at send time (redirect hops included) as a permanent
failure, for URLs saved before the guard existed."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from herald.core.netguard import BlockedDestination
from herald.events import dispatcher
from herald.pipeline.worker import Worker
from herald.producers import callbacks
from herald.producers.monitors import sources
from herald.producers.monitors.conditions import Leaf, Threshold
from herald.runtime import Runtime
from herald.storage.models import Agent, EventDelivery, EventSubscription
from herald.storage.models import Channel as ChannelRow
from tests.conftest import WEBHOOK_SECRET, make_agent, send_body, use_transport, webhook_channel

PUBLIC = "93.184.215.14"  # an address literal: no DNS needed, and public
BLOCKED = "destination 10.0.0.1 is a private address; allow it with HERALD_OUTBOUND_ALLOW"


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"env": "production"}


@pytest.fixture(autouse=True)
def no_settle(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dispatcher, "SETTLE", timedelta(0))


def errors(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 422, response.text
    return {error["field"]: error["message"] for error in response.json()["errors"]}


def use_guarded_transport(
    rt: Runtime, handler: Callable[[httpx.Request], httpx.Response]
) -> list[httpx.Request]:
    """``use_transport``, keeping the runtime's guard hook on the replacement client."""
    assert rt.outbound.active
    assert rt.http.event_hooks["request"] == [rt.outbound.check_request]
    seen = use_transport(rt, handler)
    rt.http.event_hooks = {"request": [rt.outbound.check_request]}
    return seen


async def test_callback_url_to_a_private_address_is_refused_naming_the_field(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    for url, reason in (
        ("http://127.0.0.1/hook", "127.0.0.1 is a loopback address"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local address"),
        ("http://[::1]:8080/", "::1 is a loopback address"),
    ):
        body = {"id": "bot", "maturity_level": "AUTONOMOUS", "callback_url": url}
        refused = errors(await client.post("/api/v1/agents", json=body, headers=auth))
        assert refused == {"callback_url": f"destination {reason}; allow it with HERALD_OUTBOUND_ALLOW"}
    await make_agent(client, auth, "bot", "AUTONOMOUS")
    patched = await client.patch(
        "/api/v1/agents/bot", json={"callback_url": "http://10.0.0.1/"}, headers=auth
    )
    assert errors(patched) == {"callback_url": BLOCKED}
    assert (await client.get("/api/v1/agents/bot", headers=auth)).json()["callback_url"] is None


@pytest.mark.parametrize("settings_overrides", [{"env": "production", "outbound_allow": "127.0.0.1/32"}])
async def test_allow_listed_addresses_pass(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    body = {"id": "bot", "maturity_level": "AUTONOMOUS", "callback_url": "http://127.0.0.1:9000/hook"}
    created = await client.post("/api/v1/agents", json=body, headers=auth)
    assert created.status_code == 201, created.text
    assert errors(
        await client.post("/api/v1/agents", json={**body, "id": "other", "callback_url": "http://127.0.0.2/"},
                          headers=auth)
    ) == {"callback_url": "destination 127.0.0.2 is a loopback address; allow it with HERALD_OUTBOUND_ALLOW"}  # fmt: skip


async def test_other_outgoing_urls_are_checked_when_saved(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    subscription = await client.post(
        "/api/v1/event-subscriptions", json={"url": "http://10.0.0.1/events"}, headers=auth
    )
    assert errors(subscription) == {"url": BLOCKED}

    channel = {"platform": "slack", "provider": "webhook", "name": "relay",
               "credentials": {"url": "http://10.0.0.1/hook", "secret": WEBHOOK_SECRET}}  # fmt: skip
    assert errors(await client.post("/api/v1/channels", json=channel, headers=auth)) == {
        "credentials.url": BLOCKED
    }
    slack = {"platform": "slack", "provider": "slack", "name": "gateway", "base_url": "http://10.0.0.1",
             "credentials": {"bot_token": "xoxb-1-2-abc"}}  # fmt: skip
    assert "base_url" in errors(await client.post("/api/v1/channels", json=slack, headers=auth))
    smtp = {"platform": "email", "provider": "smtp", "name": "mail",
            "credentials": {"host": "127.0.0.1", "port": 25, "from_email": "ops@example.com", "starttls": False}}  # fmt: skip
    refused = errors(await client.post("/api/v1/channels", json=smtp, headers=auth))
    assert "127.0.0.1 is a loopback address" in refused["credentials.host"]

    await make_agent(client, auth, "agent_123", "AUTONOMOUS")
    monitor = {"agent_id": "agent_123", "name": "upstream", "condition_type": "api_metrics",
               "url": "http://169.254.169.254/latest", "json_path": "errors",
               "threshold_config": {"metric": "errors", "operator": ">", "value": 5},
               "platforms": [{"platform": "slack", "recipient_id": "C12345"}]}  # fmt: skip
    refused = errors(await client.post("/api/v1/monitoring/condition/create", json=monitor, headers=auth))
    assert "169.254.169.254 is a link-local address" in refused["condition.url"]
    assert (await client.get("/api/v1/event-subscriptions", headers=auth)).json()["items"] == []
    assert (await client.get("/api/v1/channels", headers=auth)).json()["items"] == []


async def test_a_redirect_to_a_blocked_address_is_refused_at_request_time(rt: Runtime) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == PUBLIC:
            return httpx.Response(302, headers={"location": "http://10.0.0.1/admin"})
        return httpx.Response(200, text="secret inside")

    seen = use_guarded_transport(rt, handler)
    with pytest.raises(BlockedDestination, match=BLOCKED):
        await rt.http.get(f"https://{PUBLIC}/start", follow_redirects=True)
    assert [str(r.url) for r in seen] == [f"https://{PUBLIC}/start"]


async def test_urls_saved_before_the_guard_fail_permanently_at_send_time(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, worker: Worker
) -> None:
    seen = use_guarded_transport(rt, lambda _: httpx.Response(204))
    agent = {"id": "bot", "maturity_level": "AUTONOMOUS", "callback_url": f"https://{PUBLIC}/hook"}
    assert (await client.post("/api/v1/agents", json=agent, headers=auth)).status_code == 201
    subscription = await client.post(
        "/api/v1/event-subscriptions", json={"url": f"https://{PUBLIC}/events", "event_types": ["message.queued"]},
        headers=auth,
    )  # fmt: skip
    assert subscription.status_code == 201, subscription.text
    channel = await webhook_channel(
        client, auth, credentials={"url": f"https://{PUBLIC}/relay", "secret": WEBHOOK_SECRET}
    )
    # What an older Herald accepted (or a since-removed allow-list entry let through):
    async with rt.sessions.begin() as session:
        await session.execute(update(Agent).values(callback_url="http://10.0.0.1/hook"))
        await session.execute(update(EventSubscription).values(url="http://10.0.0.1/events"))
        await session.execute(
            update(ChannelRow).values(
                credentials=rt.credentials.seal({"url": "http://10.0.0.1/relay", "secret": WEBHOOK_SECRET})
            )
        )
    rt.forget_channel(channel["id"])

    # a channel: the message fails at once, without retries
    message = (
        await client.post("/api/v1/messaging/proactive/send", json=send_body("bot"), headers=auth)
    ).json()
    await worker.drain()
    sent = (await client.get(f"/api/v1/messages/{message['id']}", headers=auth)).json()
    assert sent["status"] == "failed"
    assert [(a["outcome"], a["error"]) for a in sent["attempt_log"]] == [("failed", f"webhook: {BLOCKED}")]

    # an event subscription: the delivery fails, not scheduled for another try
    await dispatcher.fan_out(rt)
    await dispatcher.fan_out(rt)
    await dispatcher.send_due(rt)
    async with rt.sessions() as session:
        deliveries = list((await session.execute(select(EventDelivery))).scalars())
    assert [(d.status, d.attempts, d.last_error) for d in deliveries] == [("failed", 1, BLOCKED)]

    # an agent callback: refused on the first try
    async with rt.sessions() as session:
        bot = (await session.execute(select(Agent).where(Agent.id == "bot"))).scalar_one()
    with pytest.raises(callbacks.CallbackFailed, match=BLOCKED):
        await callbacks.call_agent(rt, bot, "task.run", {"task": "x"}, message_id="msg_1")

    # an HTTP monitor source: the reason shows on the monitor
    leaf = Leaf(condition_type="api_metrics", threshold=Threshold(metric="errors", operator=">", value=1.0),
                source={"url": "http://10.0.0.1/metrics", "json_path": "errors"})  # fmt: skip
    context = sources.SourceContext(tenant_id="any", agent_id=None)
    assert await sources.read(rt, context, leaf) == (None, BLOCKED)
    assert seen == []  # nothing left Herald


async def test_no_dev_inbox_channel_in_production(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    response = await client.post("/api/v1/channels", json={"platform": "sms", "provider": "devinbox", "name": "x",
                                                           "credentials": {}}, headers=auth)  # fmt: skip
    assert errors(response) == {"provider": "the dev inbox is for development only"}
