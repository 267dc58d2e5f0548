"""The in-process event bus, the event list and the live stream (server-sent events)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
import uvicorn
from sqlalchemy import select

from herald.events import bus
from herald.runtime import Runtime
from herald.storage.models import Tenant
from herald.web.api.app import create_app
from tests.conftest import make_agent, new_tenant, send_body

PROACTIVE = "/api/v1/messaging/proactive/send"


@pytest.fixture(autouse=True)
def no_settle(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bus, "SETTLE", timedelta(0))


async def send(client: httpx.AsyncClient, auth: dict[str, str], content: str) -> str:
    response = await client.post(PROACTIVE, json=send_body(content=content), headers=auth)
    assert response.status_code in (200, 201, 202), response.text
    message_id: str = response.json()["id"]
    return message_id


async def test_subscribers_get_their_tenants_events_of_their_types(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    other = await new_tenant(rt, "globex")
    for headers in (auth, other):
        await make_agent(client, headers, "agent_123", "AUTONOMOUS")
    tenant_id = await tenant_named(rt, "acme")
    async with rt.bus.subscribe(tenant_id=tenant_id, types=frozenset({"message.queued"})) as subscription:
        await send(client, other, "not yours")
        mine = await send(client, auth, "yours")
        event = await asyncio.wait_for(subscription.queue.get(), 5)
    assert (event.type, event.subject_id, event.tenant_id) == ("message.queued", mine, tenant_id)
    assert subscription.queue.empty()


async def tenant_named(rt: Runtime, name: str) -> str:
    async with rt.sessions() as session:
        tenant_id: str = (await session.execute(select(Tenant.id).where(Tenant.name == name))).scalar_one()
    return tenant_id


async def test_event_list_is_per_tenant_and_pages_after_an_id(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    other = await new_tenant(rt, "globex")
    for headers in (auth, other):
        await make_agent(client, headers, "agent_123", "AUTONOMOUS")
    ids = [await send(client, auth, f"m{i}") for i in range(3)]
    await send(client, other, "theirs")
    first = (await client.get("/api/v1/events?types=message.queued&limit=2", headers=auth)).json()
    assert [i["data"]["id"] for i in first["items"]] == ids[:2]
    rest = (
        await client.get(f"/api/v1/events?types=message.queued&after={first['next_cursor']}", headers=auth)
    ).json()
    assert [i["data"]["id"] for i in rest["items"]] == ids[2:]
    assert rest["next_cursor"] is None


@contextlib.asynccontextmanager
async def serving(rt: Runtime) -> AsyncIterator[str]:
    app = create_app(rt.settings, runtime=rt, run_worker=False)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def next_event(lines: AsyncIterator[str]) -> dict[str, str]:
    fields: dict[str, str] = {}
    async for line in lines:
        if not line:
            if "data" in fields:
                return fields
            fields = {}
        elif not line.startswith(":"):
            key, _, value = line.partition(": ")
            fields[key] = value
    raise AssertionError("stream ended")


async def test_stream_sends_events_live_and_resumes_after_last_event_id(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    await make_agent(client, auth, "agent_123", "AUTONOMOUS")
    async with serving(rt) as origin, httpx.AsyncClient(base_url=origin, timeout=10) as http:
        url = "/api/v1/events/stream?types=message.queued"
        async with http.stream("GET", url, headers=auth) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            lines = response.aiter_lines()
            assert await anext(lines) == ": connected"
            first = await send(client, auth, "live")
            event = await asyncio.wait_for(next_event(lines), 5)
        assert event["event"] == "message.queued"
        assert json.loads(event["data"])["data"]["id"] == first
        missed = await send(client, auth, "while away")
        async with http.stream("GET", url, headers={**auth, "Last-Event-ID": event["id"]}) as response:
            replayed = await asyncio.wait_for(next_event(response.aiter_lines()), 5)
        assert json.loads(replayed["data"])["data"]["id"] == missed
        assert (await http.get(url)).status_code == 401
