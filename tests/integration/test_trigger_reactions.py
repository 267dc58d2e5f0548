"""Schedule and monitor triggers fire from the events their schedules and monitors write, once per event."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest

from herald.producers.triggers import reactions
from herald.runtime import Runtime
from tests.conftest import make_agent
from tests.integration.test_monitors import BASE as MONITORS
from tests.integration.test_monitors import create as create_monitor
from tests.integration.test_monitors import inbox_monitor, push, tick
from tests.integration.test_schedules import BASE as SCHEDULES
from tests.integration.test_schedules import daily, make_due


@pytest.fixture(autouse=True)
def no_settle(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reactions, "SETTLE", timedelta(0))


@pytest.fixture
async def bot(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    await make_agent(client, auth, "agent_123", "AUTONOMOUS")


async def trigger(client: httpx.AsyncClient, auth: dict[str, str], **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"name": "Escalate", "trigger_type": "monitor", "config": {}, "agent_id": "agent_123",
                            "task_template": "{monitor_name} is at {value}",
                            "action": {"type": "message", "platform": "slack", "recipient_id": "C0NCALL1"}}  # fmt: skip
    body.update(overrides)
    response = await client.post("/api/proactive/triggers", json=body, headers=auth)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def history(client: httpx.AsyncClient, auth: dict[str, str], trigger_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = (
        await client.get(f"/api/proactive/triggers/{trigger_id}/history", headers=auth)
    ).json()["items"]
    return items


async def react_all(rt: Runtime) -> None:
    """Run passes until the reader has nothing new (the first pass only creates its cursor)."""
    for _ in range(3):
        await reactions.react(rt)


@pytest.mark.usefixtures("bot")
async def test_monitor_trigger_fires_when_its_monitor_fires_and_only_once(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    await reactions.react(rt)  # the reader starts before anything happens
    monitor = await create_monitor(client, auth, inbox_monitor())
    other = await create_monitor(client, auth, inbox_monitor(name="Other"))
    created = await trigger(client, auth, config={"monitor_id": monitor["id"]})
    await push(client, auth, "unread_count", 150)
    await tick(rt, monitor["id"])
    await tick(rt, other["id"])
    await react_all(rt)
    fired = await history(client, auth, created["id"])
    assert [(f["source"], f["task"], f["outcome"]) for f in fired] == [
        ("monitor", "High Inbox Alert is at 150.0", "queued")
    ]
    message = (await client.get(f"/api/v1/messages/{fired[0]['message_id']}", headers=auth)).json()
    assert (message["platform"], message["recipient_id"]) == ("slack", "C0NCALL1")
    # Handing the same events over again (a crash before the cursor moved) fires nothing more.
    async with rt.sessions.begin() as session:
        from sqlalchemy import update

        from herald.storage.models import EventCursor

        await session.execute(
            update(EventCursor).where(EventCursor.name == "triggers").values(last_event_id="")
        )
    await react_all(rt)
    assert len(await history(client, auth, created["id"])) == 1


@pytest.mark.usefixtures("bot")
async def test_resolved_state_is_opt_in(client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime) -> None:
    monitor = await create_monitor(client, auth, inbox_monitor())
    firing_only = await trigger(client, auth, config={"monitor_id": monitor["id"]})
    both = await trigger(client, auth, config={"monitor_id": monitor["id"], "states": ["firing", "resolved"]})
    await push(client, auth, "unread_count", 150)
    await tick(rt, monitor["id"])
    await push(client, auth, "unread_count", 5)
    await tick(rt, monitor["id"])
    await react_all(rt)
    assert len(await history(client, auth, firing_only["id"])) == 1
    assert len(await history(client, auth, both["id"])) == 2


@pytest.mark.usefixtures("bot")
async def test_schedule_trigger_fires_when_its_schedule_runs(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    response = await client.post(f"{SCHEDULES}/create", json=daily(), headers=auth)
    schedule = response.json()
    created = await trigger(client, auth, trigger_type="schedule", config={"schedule_id": schedule["id"]},
                            task_template="Schedule {schedule_id} ran: {outcome}")  # fmt: skip
    await make_due(rt, schedule["id"])
    assert (await client.post(f"{SCHEDULES}/_execute-due", headers=auth)).json()["sent"] == 1
    await react_all(rt)
    fired = await history(client, auth, created["id"])
    assert [(f["source"], f["task"]) for f in fired] == [
        ("schedule", f"Schedule {schedule['id']} ran: queued")
    ]


@pytest.mark.usefixtures("bot")
async def test_events_before_the_trigger_existed_do_not_fire_it(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    monitor = await create_monitor(client, auth, inbox_monitor())
    await push(client, auth, "unread_count", 150)
    await tick(rt, monitor["id"])
    created = await trigger(client, auth)
    await react_all(rt)
    assert await history(client, auth, created["id"]) == []


@pytest.mark.usefixtures("bot")
@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"config": {"monitor_id": "mon_nope"}}, "config.monitor_id"),
        ({"config": {"states": ["exploded"]}}, "config.states"),
        ({"trigger_type": "schedule", "config": {"schedule_id": "sch_nope"}}, "config.schedule_id"),
    ],
)
async def test_unknown_sources_are_422(
    client: httpx.AsyncClient, auth: dict[str, str], overrides: dict[str, Any], field: str
) -> None:
    body: dict[str, Any] = {"name": "x", "trigger_type": "monitor", "config": {}, "agent_id": "agent_123",
                            "task_template": "t"}  # fmt: skip
    body.update(overrides)
    response = await client.post("/api/proactive/triggers", json=body, headers=auth)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == field


async def test_a_tenant_cannot_follow_another_tenants_monitor(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    from tests.conftest import new_tenant

    await make_agent(client, auth, "agent_123", "AUTONOMOUS")
    monitor = await create_monitor(client, auth, inbox_monitor())
    other = await new_tenant(rt, "globex")
    await make_agent(client, other, "agent_123", "AUTONOMOUS")
    body = {"name": "x", "trigger_type": "monitor", "config": {"monitor_id": monitor["id"]}, "agent_id": "agent_123",
            "task_template": "t"}  # fmt: skip
    response = await client.post("/api/proactive/triggers", json=body, headers=other)
    assert response.status_code == 422
    assert MONITORS  # the monitors API the helpers above use


async def test_an_agent_trigger_is_called_after_the_cursor_moves_not_while_holding_it(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    from herald.producers.triggers import service
    from tests.conftest import use_transport

    response = await client.post("/api/v1/agents", json={"id": "agent_123", "maturity_level": "AUTONOMOUS",
                                                         "callback_url": "https://agent.example/hook"}, headers=auth)  # fmt: skip
    assert response.status_code == 201
    calls = use_transport(rt, lambda _: httpx.Response(200, json={}))
    monitor = await create_monitor(client, auth, inbox_monitor())
    created = await trigger(client, auth, config={"monitor_id": monitor["id"]}, action={"type": "agent"})
    await push(client, auth, "unread_count", 150)
    await tick(rt, monitor["id"])
    await react_all(rt)
    assert [f["outcome"] for f in await history(client, auth, created["id"])] == ["dispatching"]
    assert calls == []  # reading events never waits on an agent
    assert await service.recover(rt) == 1
    assert [f["outcome"] for f in await history(client, auth, created["id"])] == ["completed"]
    assert len(calls) == 1
