"""Monitors end to end: pushed metrics, the alert lifecycle (pending, firing, throttled repeats, hysteresis,
resolved), no-data handling, composites, snooze and mute windows, governance, and both seeds' APIs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from herald.producers.monitors import engine
from herald.runtime import Runtime
from herald.storage.models import Monitor
from tests.conftest import make_agent

BASE = "/api/v1/monitoring"


@pytest.fixture
async def bot(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    await make_agent(client, auth, "agent_123", "AUTONOMOUS")


def inbox_monitor(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "agent_id": "agent_123", "name": "High Inbox Alert", "condition_type": "inbox_volume",
        "threshold_config": {"metric": "unread_count", "operator": ">", "value": 100},
        "platforms": [{"platform": "slack", "recipient_id": "C12345"}], "check_interval_seconds": 300,
        "alert_template": "High inbox volume: {{value}} unread messages (threshold: {{threshold}})",
    }  # fmt: skip
    body.update(overrides)
    return body


async def create(client: httpx.AsyncClient, auth: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(f"{BASE}/condition/create", json=body, headers=auth)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def push(client: httpx.AsyncClient, auth: dict[str, str], name: str, value: float) -> None:
    response = await client.post(f"{BASE}/values", json={"name": name, "value": value}, headers=auth)
    assert response.status_code == 201, response.text


async def tick(rt: Runtime, monitor_id: str) -> None:
    """Make the monitor due now and run one pass."""
    async with rt.sessions.begin() as session:
        await session.execute(
            update(Monitor).where(Monitor.id == monitor_id).values(next_check_at=datetime.now(UTC))
        )
    await engine.run_due(rt)


async def state(client: httpx.AsyncClient, auth: dict[str, str], monitor_id: str) -> str:
    body = (await client.get(f"/api/proactive/monitors/{monitor_id}", headers=auth)).json()
    result: str = body["state"]
    return result


async def alerts(client: httpx.AsyncClient, auth: dict[str, str], monitor_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = (
        await client.get(f"{BASE}/alerts?monitor_id={monitor_id}", headers=auth)
    ).json()["items"]
    return list(reversed(items))


@pytest.mark.usefixtures("bot")
async def test_fires_once_then_resolves(client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime) -> None:
    monitor = await create(client, auth, inbox_monitor())
    await push(client, auth, "unread_count", 125)
    await tick(rt, monitor["id"])
    assert await state(client, auth, monitor["id"]) == "firing"
    await tick(rt, monitor["id"])  # still firing, inside the throttle window: no repeat
    fired = await alerts(client, auth, monitor["id"])
    assert [a["kind"] for a in fired] == ["firing"]
    message = (await client.get(f"/api/v1/messages/{fired[0]['message_ids'][0]}", headers=auth)).json()
    assert message["content"] == "High inbox volume: 125 unread messages (threshold: 100)"
    await push(client, auth, "unread_count", 40)
    await tick(rt, monitor["id"])
    assert await state(client, auth, monitor["id"]) == "resolved"
    assert [a["kind"] for a in await alerts(client, auth, monitor["id"])] == ["firing", "resolved"]
    figures = (await client.get(f"{BASE}/metrics", headers=auth)).json()
    assert (figures["total_monitors"], figures["active_monitors"], figures["total_alerts"]) == (1, 1, 2)


@pytest.mark.usefixtures("bot")
async def test_repeats_after_the_throttle_window(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    monitor = await create(client, auth, inbox_monitor(throttle_seconds=0))
    await push(client, auth, "unread_count", 500)
    await tick(rt, monitor["id"])
    await tick(rt, monitor["id"])
    assert [a["kind"] for a in await alerts(client, auth, monitor["id"])] == ["firing", "repeat"]


@pytest.mark.usefixtures("bot")
async def test_for_seconds_keeps_it_pending_first(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    monitor = await create(client, auth, inbox_monitor(for_seconds=60))
    await push(client, auth, "unread_count", 500)
    await tick(rt, monitor["id"])
    assert await state(client, auth, monitor["id"]) == "pending"
    assert await alerts(client, auth, monitor["id"]) == []
    async with rt.sessions.begin() as session:
        await session.execute(
            update(Monitor)
            .where(Monitor.id == monitor["id"])
            .values(pending_since=datetime.now(UTC) - timedelta(seconds=61))
        )
    await tick(rt, monitor["id"])
    assert await state(client, auth, monitor["id"]) == "firing"


@pytest.mark.usefixtures("bot")
async def test_hysteresis_with_a_clear_threshold(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    config = {"metric": "unread_count", "operator": ">", "value": 100, "clear_value": 90}
    monitor = await create(client, auth, inbox_monitor(threshold_config=config))
    for value, expected in ((120, "firing"), (95, "firing"), (85, "resolved")):
        await push(client, auth, "unread_count", value)
        await tick(rt, monitor["id"])
        assert await state(client, auth, monitor["id"]) == expected, value


@pytest.mark.usefixtures("bot")
async def test_no_data_is_kept_or_treated_as_firing(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    kept = await create(client, auth, inbox_monitor())
    loud = await create(client, auth, inbox_monitor(no_data_policy="firing"))
    await tick(rt, kept["id"])
    await tick(rt, loud["id"])
    assert await state(client, auth, kept["id"]) == "no_data"
    assert await state(client, auth, loud["id"]) == "firing"


@pytest.mark.usefixtures("bot")
async def test_composite_and(client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime) -> None:
    body = inbox_monitor(
        name="Critical System Alert", condition_type="composite", threshold_config=None, composite_logic="AND",
        composite_conditions=[
            {"condition_type": "inbox_volume", "threshold_config": {"metric": "unread_count", "operator": ">", "value": 100}},
            {"condition_type": "task_backlog", "threshold_config": {"metric": "pending_tasks", "operator": ">", "value": 50}},
        ],
        alert_template="Both: {{threshold}}",
    )  # fmt: skip
    monitor = await create(client, auth, body)
    await push(client, auth, "unread_count", 150)
    await push(client, auth, "pending_tasks", 10)
    await tick(rt, monitor["id"])
    assert await state(client, auth, monitor["id"]) == "ok"
    await push(client, auth, "pending_tasks", 60)
    await tick(rt, monitor["id"])
    assert await state(client, auth, monitor["id"]) == "firing"


async def test_a_monitor_without_an_agent_sends_as_the_tenant(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    # Seed 000's composite body, which names no agent; no agent is registered in this test at all.
    body = {
        "name": "Critical System Alert", "condition_type": "composite", "composite_logic": "AND",
        "composite_conditions": [
            {"condition_type": "inbox_volume", "threshold_config": {"metric": "unread_count", "operator": ">", "value": 100}},
            {"condition_type": "task_backlog", "threshold_config": {"metric": "pending_tasks", "operator": ">", "value": 50}},
        ],
        "platforms": [{"platform": "slack", "recipient_id": "C12345"}],
    }  # fmt: skip
    monitor = await create(client, auth, body)
    assert monitor["agent_id"] is None
    await push(client, auth, "unread_count", 150)
    await push(client, auth, "pending_tasks", 60)
    await tick(rt, monitor["id"])
    [fired] = await alerts(client, auth, monitor["id"])
    assert (fired["kind"], fired["status"]) == ("firing", "queued")
    message = (await client.get(f"/api/v1/messages/{fired['message_ids'][0]}", headers=auth)).json()
    assert (message["agent_id"], message["status"], message["recipient_id"]) == (None, "queued", "C12345")
    assert (await client.get("/api/v1/agents", headers=auth)).json()["items"] == []


async def test_an_action_needs_an_agent(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    body = {k: v for k, v in inbox_monitor(action="Investigate").items() if k != "agent_id"}
    response = await client.post(f"{BASE}/condition/create", json=body, headers=auth)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "agent_id"


@pytest.mark.usefixtures("bot")
async def test_test_endpoint_has_seed_000_shape_and_no_side_effects(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    monitor = await create(client, auth, inbox_monitor())
    await push(client, auth, "unread_count", 125)
    result = (await client.post(f"{BASE}/condition/{monitor['id']}/test", headers=auth)).json()
    assert (result["monitor_id"], result["monitor_name"], result["condition_type"]) == (
        monitor["id"], "High Inbox Alert", "inbox_volume",
    )  # fmt: skip
    assert (result["triggered"], result["current_value"]) == (True, 125)
    assert result["threshold"] == {"metric": "unread_count", "operator": ">", "value": 100}
    assert "timestamp" in result
    assert await state(client, auth, monitor["id"]) == "ok"
    assert await alerts(client, auth, monitor["id"]) == []


@pytest.mark.usefixtures("bot")
async def test_presets_and_apply(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    names = [p["name"] for p in (await client.get(f"{BASE}/presets", headers=auth)).json()["presets"]]
    assert {"High Inbox Volume", "Task Backlog Alert", "Delivery Error Rate", "Queue Depth"} <= set(names)
    applied = await client.post(f"{BASE}/presets/apply", json={"agent_id": "agent_123", "preset_name": "High Inbox Volume",
                                                               "platforms": [{"platform": "slack", "recipient_id": "C12345"}]},
                                headers=auth)  # fmt: skip
    assert applied.status_code == 201, applied.text
    assert applied.json()["threshold_config"] == {"metric": "unread_count", "operator": ">", "value": 100}
    listed = (await client.get(f"{BASE}/condition/list?status=active", headers=auth)).json()["items"]
    assert [m["name"] for m in listed] == ["High Inbox Volume"]


@pytest.mark.usefixtures("bot")
@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"condition_type": "telepathy"}, "condition_type"),
        (
            {"threshold_config": {"metric": "unread_count", "operator": "=~", "value": 1}},
            "threshold_config.operator",
        ),
        (
            {"threshold_config": {"metric": "unread_count", "operator": ">", "value": "lots"}},
            "threshold_config.value",
        ),
        (
            {
                "condition_type": "composite",
                "threshold_config": None,
                "composite_logic": "AND",
                "composite_conditions": [],
            },
            "composite_conditions",
        ),
        ({"alert_template": "{{nonsense}}"}, "alert_template"),
        ({"platforms": [{"platform": "sms", "recipient_id": "12"}]}, "platforms.0.recipient_id"),
        ({"no_data_policy": "panic"}, "no_data_policy"),
    ],
)
async def test_bad_input_is_422_naming_the_field(
    client: httpx.AsyncClient, auth: dict[str, str], overrides: dict[str, Any], field: str
) -> None:
    response = await client.post(f"{BASE}/condition/create", json=inbox_monitor(**overrides), headers=auth)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == field


@pytest.mark.usefixtures("bot")
async def test_snooze_suppresses_and_mute_windows_delay(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    snoozed = await create(client, auth, inbox_monitor())
    until = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert (
        await client.post(f"{BASE}/condition/{snoozed['id']}/snooze", json={"until": until}, headers=auth)
    ).status_code == 200
    now_utc = datetime.now(UTC)
    window = {"start": (now_utc - timedelta(hours=1)).strftime("%H:%M"), "end": (now_utc + timedelta(hours=1)).strftime("%H:%M"),
              "timezone": "UTC"}  # fmt: skip
    muted = await create(client, auth, inbox_monitor(mute_windows=[window]))
    await push(client, auth, "unread_count", 999)
    await tick(rt, snoozed["id"])
    await tick(rt, muted["id"])
    assert await alerts(client, auth, snoozed["id"]) == []
    (held,) = await alerts(client, auth, muted["id"])
    assert held["status"] == "muted"
    message = (await client.get(f"/api/v1/messages/{held['message_ids'][0]}", headers=auth)).json()
    assert datetime.fromisoformat(message["run_at"]) > datetime.now(UTC) + timedelta(minutes=50)


async def test_intern_alerts_wait_for_approval(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    await make_agent(client, auth, "intern", "INTERN")
    monitor = await create(client, auth, inbox_monitor(agent_id="intern"))
    await push(client, auth, "unread_count", 999)
    await tick(rt, monitor["id"])
    (alert,) = await alerts(client, auth, monitor["id"])
    assert alert["status"] == "pending_approval"


@pytest.mark.usefixtures("bot")
async def test_seed_002_free_text_monitor(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    body = {"name": "System Health Check", "agent_id": "agent_123", "workspace_id": "ws-123",
            "condition": "CPU usage > 80%", "action": "Investigate and optimize", "check_interval": 60,
            "platforms": [{"platform": "slack", "recipient_id": "C12345"}]}  # fmt: skip
    created = await client.post("/api/proactive/monitors", json=body, headers=auth)
    assert created.status_code == 201, created.text
    monitor = created.json()
    assert (monitor["condition"], monitor["is_active"]) == ("CPU usage > 80%", True)
    await push(client, auth, "CPU usage", 93)
    checked = (await client.post(f"/api/proactive/monitors/{monitor['id']}/check", headers=auth)).json()
    assert checked["state"] == "firing"
    history = (await client.get(f"/api/proactive/monitors/{monitor['id']}/history", headers=auth)).json()[
        "items"
    ]
    assert [h["kind"] for h in history] == ["firing"]
    patched = await client.patch(
        f"/api/proactive/monitors/{monitor['id']}", json={"condition": "CPU usage > 95%"}, headers=auth
    )
    assert patched.json()["condition"] == "CPU usage > 95%"
    assert (await client.post(f"/api/proactive/monitors/{monitor['id']}/pause", headers=auth)).json()[
        "is_active"
    ] is False
    assert (await client.delete(f"/api/proactive/monitors/{monitor['id']}", headers=auth)).status_code == 204
    assert (await client.get(f"/api/proactive/monitors/{monitor['id']}", headers=auth)).status_code == 404
    bad = await client.post(
        "/api/proactive/monitors", json={**body, "condition": "when the stars align"}, headers=auth
    )
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "condition"


@pytest.mark.usefixtures("bot")
async def test_seed_002_monitors_of_a_workspace_are_all_reached_by_paging(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    made: dict[str, list[str]] = {"ws-a": [], "ws-b": []}
    for i in range(7):
        for workspace in ("ws-b", "ws-a"):
            body = {"name": f"{workspace} {i}", "agent_id": "agent_123", "workspace_id": workspace,
                    "condition": "CPU usage > 80%"}  # fmt: skip
            created = await client.post("/api/proactive/monitors", json=body, headers=auth)
            assert created.status_code == 201, created.text
            made[workspace].append(created.json()["id"])
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(10):
        params = {"workspace_id": "ws-a", "limit": "3", **({"cursor": cursor} if cursor else {})}
        answer = (await client.get("/api/proactive/monitors", params=params, headers=auth)).json()
        assert {m["workspace_id"] for m in answer["items"]} <= {"ws-a"}
        seen += [m["id"] for m in answer["items"]]
        cursor = answer["next_cursor"]
        if cursor is None:
            break
    assert seen == made["ws-a"]


@pytest.mark.usefixtures("bot")
async def test_a_failing_source_is_an_error_state_not_a_crash(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    from tests.conftest import use_transport

    use_transport(rt, lambda _: httpx.Response(503))
    body = inbox_monitor(condition_type="api_metrics", url="https://status.example/metrics", json_path="data.errors",
                         threshold_config={"metric": "errors", "operator": ">", "value": 5})  # fmt: skip
    broken = await create(client, auth, body)
    healthy = await create(client, auth, inbox_monitor())
    await push(client, auth, "unread_count", 500)
    await engine.run_due(rt)
    assert await state(client, auth, broken["id"]) == "error"
    detail = (await client.get(f"/api/proactive/monitors/{broken['id']}", headers=auth)).json()
    assert "503" in detail["last_error"]
    assert await state(client, auth, healthy["id"]) == "firing"


@pytest.mark.postgres_only
@pytest.mark.usefixtures("bot")
async def test_two_processes_never_check_one_monitor_twice(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    import asyncio

    from sqlalchemy import func, select

    from herald.storage.models import MonitorAlert

    ids = [(await create(client, auth, inbox_monitor(name=f"m{i}")))["id"] for i in range(30)]
    await push(client, auth, "unread_count", 500)
    runtimes = [Runtime(rt.settings), Runtime(rt.settings)]
    try:
        counts = await asyncio.gather(*(engine.run_due(r, limit=4) for r in runtimes for _ in range(5)))
        counts += await asyncio.gather(*(engine.run_due(r, limit=100) for r in runtimes))
    finally:
        for r in runtimes:
            await r.close()
    assert sum(counts) == len(ids)
    async with rt.sessions() as session:
        fired = (await session.execute(select(func.count(MonitorAlert.id)))).scalar_one()
    assert fired == len(ids)
