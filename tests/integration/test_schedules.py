"""Schedules end to end: seed 000's and seed 002's APIs, execution through the governed pipeline, pause and
resume without replay, misfires, and two schedulers that never fire one run twice."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import func, select, update

from herald.core.security import verify_standard_webhook
from herald.producers.schedules import scheduler, service
from herald.runtime import Runtime
from herald.storage.models import Message, Schedule, ScheduleExecution
from tests.conftest import in_production, make_agent, use_transport

BASE = "/api/v1/messaging/schedule"


@pytest.fixture
async def bot(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    await make_agent(client, auth, "agent_123", "AUTONOMOUS")


def daily(**overrides: Any) -> dict[str, Any]:
    body = {
        "agent_id": "agent_123", "platform": "telegram", "recipient_id": "123456789",
        "template": "Daily report for {{date}}: {{summary}}", "schedule_type": "recurring",
        "cron_expression": "0 9 * * *", "timezone": "America/New_York",
        "template_variables": {"summary": "Sales: $10k, Tasks: 5 completed"},
    }  # fmt: skip
    body.update(overrides)
    return body


async def create(client: httpx.AsyncClient, auth: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(f"{BASE}/create", json=body, headers=auth)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def make_due(rt: Runtime, schedule_id: str, ago: timedelta = timedelta(seconds=5)) -> datetime:
    due = datetime.now(UTC) - ago
    async with rt.sessions.begin() as session:
        await session.execute(update(Schedule).where(Schedule.id == schedule_id).values(next_run=due))
    return due


@pytest.mark.usefixtures("bot")
async def test_seed_000_cron_schedule_is_created_with_its_next_runs(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    created = await create(client, auth, daily())
    next_run = datetime.fromisoformat(created["next_run"]).astimezone(ZoneInfo("America/New_York"))
    assert (next_run.hour, next_run.minute) == (9, 0)
    assert created["description"] == "Daily at 9:00 AM"
    assert created["active"] is True
    runs = [datetime.fromisoformat(t) for t in created["next_runs"]]
    assert len(runs) == 5
    assert all(
        b - a in (timedelta(hours=23), timedelta(hours=24), timedelta(hours=25))
        for a, b in zip(runs, runs[1:], strict=False)
    )
    listed = (await client.get(f"{BASE}/list?agent_id=agent_123&active=true", headers=auth)).json()["items"]
    assert [s["id"] for s in listed] == [created["id"]]


@pytest.mark.usefixtures("bot")
async def test_natural_language_schedule(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    body = daily(cron_expression=None, natural_language_schedule="every monday at 9am", template="Weekly summary: {{week}}",
                 template_variables={"week": "48"})  # fmt: skip
    created = await create(client, auth, body)
    assert created["cron_expression"] == "0 9 * * 1"
    assert datetime.fromisoformat(created["next_run"]).astimezone(ZoneInfo("America/New_York")).weekday() == 0


async def test_parse_nl_seed_example_and_next_runs(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    answer = (
        await client.post(f"{BASE}/parse-nl", json={"schedule": "every day at 9am"}, headers=auth)
    ).json()
    assert (answer["schedule"], answer["cron_expression"], answer["description"]) == (
        "every day at 9am", "0 9 * * *", "Daily at 9:00 AM",
    )  # fmt: skip
    pinned = await client.post(
        f"{BASE}/parse-nl",
        json={"schedule": "every day at 9am", "timezone": "Europe/London", "from": "2026-10-23T12:00:00Z"},
        headers=auth,
    )
    assert pinned.json()["next_runs"] == [
        "2026-10-24T09:00:00+01:00", "2026-10-25T09:00:00+00:00", "2026-10-26T09:00:00+00:00",
        "2026-10-27T09:00:00+00:00", "2026-10-28T09:00:00+00:00",
    ]  # fmt: skip
    once = (await client.post(f"{BASE}/parse-nl", json={"schedule": "tomorrow at 3pm", "timezone": "UTC",
                                                         "from": "2026-11-24T10:00:00Z"}, headers=auth)).json()  # fmt: skip
    assert once["run_at"] == "2026-11-25T15:00:00+00:00"
    bad = await client.post(f"{BASE}/parse-nl", json={"schedule": "every blue moon"}, headers=auth)
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "schedule"


@pytest.mark.usefixtures("bot")
@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"cron_expression": "61 * * * *"}, "cron_expression"),
        ({"timezone": "Mars/Olympus_Mons"}, "timezone"),
        ({"schedule_type": "one-time", "cron_expression": None, "run_at": "2020-01-01T00:00:00Z"}, "run_at"),
        ({"template": "Hello {{name}}"}, "template"),
        ({"template": "Hello {{name"}, "template"),
        ({"natural_language_schedule": "whenever", "cron_expression": None}, "natural_language_schedule"),
        ({"agent_id": "ghost"}, "agent_id"),
        ({"recipient_id": "not-a-chat"}, "recipient_id"),
        ({"schedule_type": "sometimes"}, "schedule_type"),
    ],
)
async def test_bad_input_is_422_naming_the_field(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, overrides: dict[str, Any], field: str
) -> None:
    if field == "agent_id":
        in_production(rt)  # development registers "ghost" (tests/integration/test_enrolment.py)
    response = await client.post(f"{BASE}/create", json=daily(**overrides), headers=auth)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == field


@pytest.mark.usefixtures("bot")
async def test_due_schedule_sends_through_the_pipeline_and_advances(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    created = await create(client, auth, daily())
    due = await make_due(rt, created["id"])
    counts = (await client.post(f"{BASE}/_execute-due", headers=auth)).json()
    assert counts == {"sent": 1, "failed": 0, "skipped": 0}
    history = (await client.get(f"{BASE}/history/executions?limit=10", headers=auth)).json()["items"]
    assert [(h["schedule_id"], h["outcome"]) for h in history] == [(created["id"], "queued")]
    message = (await client.get(f"/api/v1/messages/{history[0]['message_id']}", headers=auth)).json()
    local_date = due.astimezone(ZoneInfo("America/New_York")).strftime("%Y-%m-%d")
    assert message["content"] == f"Daily report for {local_date}: Sales: $10k, Tasks: 5 completed"
    after = (await client.get(f"{BASE}/{created['id']}", headers=auth)).json()
    assert datetime.fromisoformat(after["next_run"]) > datetime.now(UTC)
    assert after["run_count"] == 1
    again = (await client.post(f"{BASE}/_execute-due", headers=auth)).json()
    assert again == {"sent": 0, "failed": 0, "skipped": 0}


async def test_intern_schedules_wait_for_approval_and_students_fail(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    await make_agent(client, auth, "intern", "INTERN")
    await make_agent(client, auth, "student", "STUDENT")
    held = await create(client, auth, daily(agent_id="intern"))
    blocked = await create(client, auth, daily(agent_id="student"))
    await make_due(rt, held["id"])
    await make_due(rt, blocked["id"])
    counts = (await client.post(f"{BASE}/_execute-due", headers=auth)).json()
    assert counts == {"sent": 1, "failed": 1, "skipped": 0}
    queue = (await client.get("/api/v1/messaging/proactive/queue?agent_id=intern", headers=auth)).json()[
        "items"
    ]
    assert len(queue) == 1
    history = {
        h["schedule_id"]: h
        for h in (await client.get(f"{BASE}/history/executions", headers=auth)).json()["items"]
    }
    assert history[held["id"]]["outcome"] == "pending_approval"
    assert history[blocked["id"]]["outcome"] == "failed"
    assert "STUDENT" in history[blocked["id"]]["error"]


@pytest.mark.usefixtures("bot")
async def test_paused_schedules_do_not_run_and_resume_does_not_replay(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    created = await create(client, auth, daily(cron_expression="*/5 * * * *"))
    paused = (await client.post(f"{BASE}/{created['id']}/pause", headers=auth)).json()
    assert paused["active"] is False
    await make_due(rt, created["id"], ago=timedelta(hours=3))
    assert (await client.post(f"{BASE}/_execute-due", headers=auth)).json()["sent"] == 0
    resumed = (await client.post(f"{BASE}/{created['id']}/resume", headers=auth)).json()
    assert datetime.fromisoformat(resumed["next_run"]) > datetime.now(UTC)
    assert (await client.post(f"{BASE}/_execute-due", headers=auth)).json()["sent"] == 0
    assert (await client.post(f"{BASE}/{created['id']}/resume", headers=auth)).status_code == 409
    cancelled = await client.delete(f"{BASE}/{created['id']}", headers=auth)
    assert cancelled.json()["status"] == "cancelled"
    assert (await client.get(f"{BASE}/list", headers=auth)).json()["items"] == []


@pytest.mark.usefixtures("bot")
async def test_misfire_policy_skip_or_run_once(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    skip = await create(client, auth, daily())
    once = await create(client, auth, daily(misfire_policy="run_once"))
    late = await create(client, auth, daily(misfire_grace_seconds=7200))
    for schedule in (skip, once, late):
        await make_due(rt, schedule["id"], ago=timedelta(hours=1))
    counts = (await client.post(f"{BASE}/_execute-due", headers=auth)).json()
    assert counts == {"sent": 2, "failed": 0, "skipped": 1}
    history = {
        h["schedule_id"]: h
        for h in (await client.get(f"{BASE}/history/executions", headers=auth)).json()["items"]
    }
    assert history[skip["id"]]["outcome"] == "missed"
    assert "missed by" in history[skip["id"]]["error"]
    assert history[once["id"]]["outcome"] == "queued"
    assert history[late["id"]]["outcome"] == "queued"


@pytest.mark.usefixtures("bot")
async def test_one_time_schedule_runs_once_then_completes(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    when = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    created = await create(client, auth, daily(schedule_type="one-time", cron_expression=None, run_at=when))
    assert created["schedule_type"] == "one_time"
    await make_due(rt, created["id"])
    assert (await client.post(f"{BASE}/_execute-due", headers=auth)).json()["sent"] == 1
    done = (await client.get(f"{BASE}/{created['id']}", headers=auth)).json()
    assert (done["status"], done["next_run"]) == ("completed", None)
    nl = await create(
        client, auth, daily(schedule_type=None, cron_expression=None, natural_language_schedule="in 2 hours")
    )
    assert nl["schedule_type"] == "one_time"


async def test_seed_002_task_schedule_calls_the_agent_signed_and_sends_its_answer(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    seen = use_transport(rt, lambda _: httpx.Response(200, json={"reply": "Daily metrics: all green"}))
    agent = (await client.post("/api/v1/agents", json={"id": "report-agent", "maturity_level": "AUTONOMOUS",
                                                        "callback_url": "https://agent.example/cb"}, headers=auth)).json()  # fmt: skip
    secret = agent["callback_secret"]
    assert secret.startswith("whsec_")
    assert "callback_secret" not in (await client.get("/api/v1/agents/report-agent", headers=auth)).json()
    body = {"name": "Daily Report", "workspace_id": "ws-456", "agent_id": "report-agent",
            "task_description": "Generate daily metrics report", "cron_expression": "0 9 * * *",
            "timezone": "America/New_York", "platform": "slack", "recipient_id": "C12345"}  # fmt: skip
    created = await client.post("/api/proactive/schedules", json=body, headers=auth)
    assert created.status_code == 201, created.text
    schedule = created.json()
    assert (schedule["is_active"], schedule["task_description"]) == (True, "Generate daily metrics report")
    listed = (await client.get("/api/proactive/schedules", headers=auth)).json()["items"]
    assert [s["id"] for s in listed] == [schedule["id"]]

    ran = await client.post(f"/api/proactive/schedules/{schedule['id']}/run", headers=auth)
    assert ran.status_code == 200, ran.text
    (request,) = seen
    assert str(request.url) == "https://agent.example/cb"
    assert verify_standard_webhook(secret, request.headers["webhook-id"], int(request.headers["webhook-timestamp"]),
                                   request.content, request.headers["webhook-signature"])  # fmt: skip
    payload = json.loads(request.content)
    assert (payload["type"], payload["data"]["task"]) == ("schedule.task", "Generate daily metrics report")
    execution = ran.json()["execution"]
    assert execution["outcome"] == "queued"
    message = (await client.get(f"/api/v1/messages/{execution['message_id']}", headers=auth)).json()
    assert (message["content"], message["recipient_id"]) == ("Daily metrics: all green", "C12345")
    assert (await client.post(f"/api/proactive/schedules/{schedule['id']}/pause", headers=auth)).json()[
        "is_active"
    ] is False
    assert (await client.post(f"/api/proactive/schedules/{schedule['id']}/resume", headers=auth)).json()[
        "is_active"
    ] is True
    assert (
        await client.delete(f"/api/proactive/schedules/{schedule['id']}", headers=auth)
    ).status_code == 204


@pytest.mark.usefixtures("bot")
async def test_seed_002_schedules_of_a_workspace_are_all_reached_by_paging(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    """The workspace filter is part of the query, before the limit: page after page holds only the
    workspace's schedules, and following the cursor reaches every one of them exactly once."""
    made: dict[str, list[str]] = {"ws-a": [], "ws-b": []}
    for i in range(7):
        for workspace in ("ws-b", "ws-a"):  # interleaved: the other workspace's ids sit between ours
            body = {"name": f"{workspace} {i}", "workspace_id": workspace, "agent_id": "agent_123",
                    "task_description": "report", "cron_expression": "0 9 * * *"}  # fmt: skip
            created = await client.post("/api/proactive/schedules", json=body, headers=auth)
            assert created.status_code == 201, created.text
            made[workspace].append(created.json()["id"])
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(10):
        params = {"workspace_id": "ws-a", "limit": "3", **({"cursor": cursor} if cursor else {})}
        answer = (await client.get("/api/proactive/schedules", params=params, headers=auth)).json()
        assert len(answer["items"]) <= 3
        assert {s["workspace_id"] for s in answer["items"]} <= {"ws-a"}
        seen += [s["id"] for s in answer["items"]]
        cursor = answer["next_cursor"]
        if cursor is None:
            break
    assert seen == made["ws-a"]
    everything = (await client.get("/api/proactive/schedules", params={"limit": "100"}, headers=auth)).json()
    assert len(everything["items"]) == 14


async def test_agent_that_fails_is_recorded(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    use_transport(rt, lambda _: httpx.Response(403))
    await client.post("/api/v1/agents", json={"id": "a", "maturity_level": "AUTONOMOUS", "callback_url": "https://a.example/cb"},
                      headers=auth)  # fmt: skip
    created = (await client.post("/api/proactive/schedules", json={"name": "n", "agent_id": "a", "task_description": "t",
                                                                   "cron_expression": "0 * * * *"}, headers=auth)).json()  # fmt: skip
    ran = (await client.post(f"/api/proactive/schedules/{created['id']}/run", headers=auth)).json()
    assert ran["execution"]["outcome"] == "callback_failed"
    assert "403" in ran["execution"]["error"]


@pytest.mark.postgres_only
@pytest.mark.usefixtures("bot")
async def test_two_schedulers_never_fire_one_run_twice(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    ids = [(await create(client, auth, daily(recipient_id=str(100000 + i))))["id"] for i in range(60)]
    async with rt.sessions.begin() as session:
        await session.execute(
            update(Schedule)
            .where(Schedule.id.in_(ids))
            .values(next_run=datetime.now(UTC) - timedelta(seconds=1))
        )
    runtimes = [Runtime(rt.settings), Runtime(rt.settings)]
    try:
        results = await asyncio.gather(*(service.run_due(r, limit=7) for r in runtimes for _ in range(6)))
        results += await asyncio.gather(*(service.run_due(r, limit=100) for r in runtimes))
    finally:
        for r in runtimes:
            await r.close()
    assert sum(c.sent for c in results) == 60
    async with rt.sessions() as session:
        executions = (await session.execute(select(func.count(ScheduleExecution.id)))).scalar_one()
        messages = (await session.execute(select(func.count(Message.id)))).scalar_one()
    assert (executions, messages) == (60, 60)


@pytest.mark.usefixtures("bot")
async def test_agent_tasks_left_dispatching_by_a_dead_process_are_dispatched_once_more(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    created = await create(client, auth, daily())
    long_ago, recently = datetime.now(UTC) - timedelta(minutes=10), datetime.now(UTC) - timedelta(minutes=1)
    async with rt.sessions.begin() as session:
        schedule = await session.get(Schedule, created["id"])
        assert schedule is not None
        tenant_id = schedule.tenant_id
        session.add_all(
            ScheduleExecution(id=f"exe_{name}", tenant_id=tenant_id, schedule_id=created["id"],
                              due_at=executed - timedelta(hours=i), executed_at=executed, outcome="dispatching")
            for i, (name, executed) in enumerate([("stuck1", long_ago), ("stuck2", long_ago), ("busy", recently)])
        )  # fmt: skip
    dispatched: list[list[str]] = []

    async def dispatch_tasks(rt: Runtime, ids: list[str]) -> None:
        dispatched.append(sorted(ids))

    monkeypatch.setattr(service, "dispatch_tasks", dispatch_tasks)
    assert await scheduler.redispatch_stuck(rt) == 2
    assert await scheduler.redispatch_stuck(rt) == 0  # stamped as executed now: not stuck again at once
    assert dispatched == [["exe_stuck1", "exe_stuck2"]]
