"""Seed 002's loop, closed: monitors, schedules and triggers wake their agent, and the answer reaches a person.

Each example is sent as seed 002 writes it, with the agent as an external callback agent, an LLM agent and the
development echo agent. An answer with no recipient goes to the agent's default recipient; with none, it is kept
and the task ends ``answered``, never silently dropped.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import select

from herald.producers.monitors import analysis
from herald.runtime import Runtime
from herald.storage.models import Message
from tests.conftest import webhook_channel
from tests.integration.agents.conftest import Fakes, llm_agent, register

SLACK = {"platform": "slack", "recipient_id": "C12345"}
KINDS = ("external", "llm", "echo")


def agent_body(agent_id: str, kind: str, *, default_recipient: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {"id": agent_id, "maturity_level": "AUTONOMOUS"}
    if kind == "external":
        body["callback_url"] = "https://agent.example/hook"
    elif kind == "llm":
        body = llm_agent(agent_id)
    if default_recipient:
        body["default_recipient"] = SLACK
    return body


def expected_answer(kind: str, agent_id: str, task: str) -> str:
    return {"external": "On it.", "llm": "Answer from the model.",
            "echo": f"[simulated] {agent_id} received: {task}"}[kind]  # fmt: skip


async def prepare(
    client: httpx.AsyncClient, auth: dict[str, str], fakes: Fakes, agent_id: str, kind: str
) -> None:
    await webhook_channel(client, auth, "slack")
    await register(client, auth, agent_body(agent_id, kind))
    fakes.llm.script([{"kind": "reply", "content": "Answer from the model."}])


async def sent_by(rt: Runtime, agent_id: str) -> list[Message]:
    async with rt.sessions() as session:
        return list((await session.execute(select(Message).where(Message.agent_id == agent_id))).scalars())


@pytest.mark.parametrize("kind", KINDS)
async def test_a_schedule_task_reaches_the_default_recipient(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, fakes: Fakes, kind: str
) -> None:
    await prepare(client, auth, fakes, "report-agent", kind)
    body = {"name": "Daily Report", "workspace_id": "ws-456", "agent_id": "report-agent",
            "task_description": "Generate daily metrics report", "cron_expression": "0 9 * * *",
            "timezone": "America/New_York"}  # fmt: skip
    created = await client.post("/api/proactive/schedules", json=body, headers=auth)
    assert created.status_code == 201, created.text
    ran = (await client.post(f"/api/proactive/schedules/{created.json()['id']}/run", headers=auth)).json()

    execution = ran["execution"]
    answer = expected_answer(kind, "report-agent", "Generate daily metrics report")
    assert (execution["outcome"], execution["error"], execution["answer"]) == ("queued", None, answer)
    [message] = await sent_by(rt, "report-agent")
    assert (message.id, message.content, message.recipient_id) == (execution["message_id"], answer, "C12345")
    assert message.governance_metadata.get("simulated", False) is (kind == "echo")
    if kind == "external":
        assert len(fakes.callbacks) == 1
    runs = (await client.get("/api/v1/agents/report-agent/runs", headers=auth)).json()["items"]
    assert [(r["woken_by"], r["status"], r["simulated"]) for r in runs] == [
        ("schedule", "completed", kind == "echo")
    ]


@pytest.mark.parametrize("kind", KINDS)
async def test_a_trigger_task_reaches_the_default_recipient(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, fakes: Fakes, kind: str
) -> None:
    await prepare(client, auth, fakes, "agent-456", kind)
    body = {"name": "Webhook Trigger", "workspace_id": "ws-789", "trigger_type": "webhook", "config": {},
            "agent_id": "agent-456", "task_template": "Process: {event}"}  # fmt: skip
    created = await client.post("/api/proactive/triggers", json=body, headers=auth)
    assert created.status_code == 201, created.text
    fired = await client.post(f"/api/proactive/triggers/{created.json()['id']}/fire",
                              json={"payload": {"event": "deployment", "version": "v1.2.3"}}, headers=auth)  # fmt: skip
    assert fired.status_code == 200, fired.text
    firing = fired.json()
    answer = expected_answer(kind, "agent-456", "Process: deployment")
    assert (firing["outcome"], firing["error"], firing["answer"]) == ("queued", None, answer)
    [message] = await sent_by(rt, "agent-456")
    assert (message.content, message.recipient_id) == (answer, "C12345")


# Seed 002's monitor examples as written (REST example, data-model example, SDK example), with the value pushed.
SEED_MONITORS = [
    ({"name": "Stock Price Monitor", "agent_id": "trading-agent-123", "workspace_id": "ws-456",
      "condition": "AAPL stock price > 150", "action": "Send alert and analyze", "check_interval": 300},
     "AAPL stock price", 162.5),
    ({"name": "API Response Time Monitor", "agent_id": "performance-agent", "workspace_id": "ws-123",
      "condition": "API response time > 500ms", "action": "Investigate slow endpoints", "check_interval": 300},
     "API response time", 740),
    ({"name": "System Health Check", "agent_id": "health-agent", "workspace_id": "ws-123",
      "condition": "CPU usage > 80%", "action": "Investigate and optimize", "check_interval": 60},
     "CPU usage", 93),
]  # fmt: skip


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("body", "metric", "value"), SEED_MONITORS, ids=lambda v: v["name"] if isinstance(v, dict) else ""
)
async def test_a_monitor_alert_wakes_its_agent_with_the_action(
    client: httpx.AsyncClient,
    auth: dict[str, str],
    rt: Runtime,
    fakes: Fakes,
    kind: str,
    body: dict[str, Any],
    metric: str,
    value: float,
) -> None:
    agent_id = body["agent_id"]
    await prepare(client, auth, fakes, agent_id, kind)
    created = await client.post("/api/proactive/monitors", json=body, headers=auth)
    assert created.status_code == 201, created.text
    monitor_id = created.json()["id"]
    pushed = await client.post(
        "/api/v1/monitoring/values", json={"name": metric, "value": value}, headers=auth
    )
    assert pushed.status_code == 201, pushed.text
    checked = (await client.post(f"/api/proactive/monitors/{monitor_id}/check", headers=auth)).json()
    assert checked["state"] == "firing"
    assert await analysis.run_due(rt) == 1

    [alert] = (await client.get(f"/api/proactive/monitors/{monitor_id}/history", headers=auth)).json()[
        "items"
    ]
    shown = {"AAPL stock price": "162.5", "API response time": "740ms", "CPU usage": "93%"}[metric]
    task = f"{body['action']}\n\nMonitor {body['name']!r} is firing: {body['condition']} (value now {shown})."
    answer = expected_answer(kind, agent_id, task)
    assert (alert["status"], alert["error"], alert["answer"]) == ("queued", None, answer)
    [message] = await sent_by(rt, agent_id)
    assert (message.content, message.recipient_id, alert["message_ids"]) == (answer, "C12345", [message.id])
    if kind == "external":
        [request] = fakes.callbacks
        data = httpx.Response(200, content=request.content).json()["data"]
        assert (data["value"], data["action"], data["condition"]) == (
            value,
            body["action"],
            body["condition"],
        )
    if kind == "llm":
        assert body["action"] in fakes.model_requests()[0]["messages"][1]["content"]


async def test_a_seed_000_monitor_with_an_action_wakes_its_agent_and_notifies_its_platforms(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, fakes: Fakes
) -> None:
    await prepare(client, auth, fakes, "ops-agent", "echo")
    body = {"agent_id": "ops-agent", "name": "Inbox", "condition_type": "inbox_volume",
            "threshold_config": {"metric": "unread_count", "operator": ">", "value": 100},
            "platforms": [{"platform": "slack", "recipient_id": "C99999"}], "action": "Triage the inbox"}  # fmt: skip
    created = await client.post("/api/v1/monitoring/condition/create", json=body, headers=auth)
    assert created.status_code == 201, created.text
    await client.post("/api/v1/monitoring/values", json={"name": "unread_count", "value": 150}, headers=auth)
    await client.post(f"/api/proactive/monitors/{created.json()['id']}/check", headers=auth)
    assert await analysis.run_due(rt) == 1
    messages = await sent_by(rt, "ops-agent")
    # the alert notice, then the agent's answer, both to the monitor's own platform
    assert [m.recipient_id for m in messages] == ["C99999", "C99999"]
    assert messages[1].content.startswith("[simulated] ops-agent received: Triage the inbox")


async def test_an_answer_with_nowhere_to_go_is_kept(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, fakes: Fakes
) -> None:
    await register(client, auth, agent_body("backup-agent", "echo", default_recipient=False))
    body = {"name": "Weekly Backup", "workspace_id": "ws-123", "agent_id": "backup-agent",
            "task_description": "Backup all databases", "cron_expression": "0 0 * * 0", "timezone": "UTC"}  # fmt: skip
    created = (await client.post("/api/proactive/schedules", json=body, headers=auth)).json()
    execution = (await client.post(f"/api/proactive/schedules/{created['id']}/run", headers=auth)).json()[
        "execution"
    ]
    assert execution["outcome"] == "answered"
    assert execution["answer"] == "[simulated] backup-agent received: Backup all databases"
    assert await sent_by(rt, "backup-agent") == []


async def test_an_agent_with_no_callback_and_no_model_fails_clearly_outside_development(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, fakes: Fakes
) -> None:
    rt.settings = rt.settings.model_copy(update={"env": "production"})
    await register(client, auth, agent_body("ghost", "echo"))
    body = {"name": "n", "workspace_id": "w", "agent_id": "ghost", "task_description": "t",
            "cron_expression": "0 0 * * 0", "timezone": "UTC"}  # fmt: skip
    created = (await client.post("/api/proactive/schedules", json=body, headers=auth)).json()
    execution = (await client.post(f"/api/proactive/schedules/{created['id']}/run", headers=auth)).json()[
        "execution"
    ]
    assert execution["outcome"] == "callback_failed"
    assert "no callback_url and no model" in execution["error"]


async def test_a_monitor_without_platforms_or_action_says_why_it_failed(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, fakes: Fakes
) -> None:
    await register(client, auth, agent_body("quiet-agent", "echo"))
    body = {"name": "CPU", "agent_id": "quiet-agent", "condition": "CPU usage > 80%", "check_interval": 60}
    monitor_id = (await client.post("/api/proactive/monitors", json=body, headers=auth)).json()["id"]
    await client.post("/api/v1/monitoring/values", json={"name": "CPU usage", "value": 99}, headers=auth)
    await client.post(f"/api/proactive/monitors/{monitor_id}/check", headers=auth)
    [alert] = (await client.get(f"/api/proactive/monitors/{monitor_id}/history", headers=auth)).json()[
        "items"
    ]
    assert alert["status"] == "failed"
    assert "no platforms to notify and no action" in alert["error"]
