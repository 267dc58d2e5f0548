"""Schedules and monitors managed from the dashboard (herald.web.dashboard.manage, .previews): a rule's next runs
previewed through the API's own parser, a monitor tested before it is saved, both created, changed and removed
through the API in this process. On SQLite and PostgreSQL, through the httpx ASGI client."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest

from herald.core.natural import next_runs
from herald.runtime import Runtime
from tests.conftest import make_agent, new_tenant
from tests.integration.dashboard.test_manage import field_errors
from tests.integration.test_dashboard import sign_in

SCHEDULES = "/api/v1/messaging/schedule"


def schedule_form(token: str, **rule: str) -> dict[str, str]:
    return {
        "csrf_token": token, "agent_id": "ops", "platform": "slack", "recipient_id": "C12345",
        "template": "Standup!", "name": "standup", "timezone": "Europe/London", **rule,
    }  # fmt: skip


async def schedules_named(
    client: httpx.AsyncClient, auth: dict[str, str], name: str
) -> list[dict[str, object]]:
    items = (await client.get(f"{SCHEDULES}/list", headers=auth)).json()["items"]
    return [s for s in items if s["name"] == name]


async def test_a_schedule_is_created_by_cron_and_by_natural_language_from_the_form(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await make_agent(client, auth, "ops", "AUTONOMOUS")
    token = await sign_in(client, auth)
    listed = await client.get("/schedules")
    assert 'href="/manage/schedules/new"' in listed.text
    form = await client.get("/manage/schedules/new")
    assert form.status_code == 200
    assert 'data-schedule-preview="/manage/schedules/preview"' in form.text
    assert 'name="_preview"' in form.text

    by_cron = await client.post(
        "/manage/schedules/new", data=schedule_form(token, cron_expression="30 9 * * 1-5")
    )
    assert by_cron.status_code == 303, by_cron.text
    assert "Created schedule standup." in (await client.get(by_cron.headers["location"])).text
    by_words = schedule_form(token, natural_language_schedule="every monday at 2:30pm", name="weekly")
    assert (await client.post("/manage/schedules/new", data=by_words)).status_code == 303
    [cron] = await schedules_named(client, auth, "standup")
    [words] = await schedules_named(client, auth, "weekly")
    assert (cron["cron_expression"], cron["timezone"]) == ("30 9 * * 1-5", "Europe/London")
    assert (words["cron_expression"], words["natural_language_schedule"]) == (
        "30 14 * * 1",
        "every monday at 2:30pm",
    )
    managed = await client.get("/manage/schedules")
    assert str(cron["id"]) in managed.text

    # Editing moves the rule (ScheduleRuleChange), in words; removing cancels.
    edit = await client.get(f"/manage/schedules/{cron['id']}/edit")
    assert edit.status_code == 200
    assert 'value="30 9 * * 1-5"' in edit.text
    moved = await client.post(
        f"/manage/schedules/{cron['id']}/edit",
        data={"csrf_token": token, "natural_language_schedule": "every day at 7am", "timezone": "Asia/Tokyo"},
    )
    assert moved.status_code == 303, moved.text
    changed = (await client.get(f"{SCHEDULES}/{cron['id']}", headers=auth)).json()
    assert (changed["cron_expression"], changed["timezone"]) == ("0 7 * * *", "Asia/Tokyo")
    gone = await client.post(f"/manage/schedules/{cron['id']}/delete", data={"csrf_token": token})
    assert gone.status_code == 303
    assert (await client.get(f"{SCHEDULES}/{cron['id']}", headers=auth)).json()["status"] == "cancelled"
    assert await schedules_named(client, auth, "standup") == []


@pytest.mark.parametrize(
    ("rule", "field"),
    [
        ({"cron_expression": "61 * * * *"}, "cron_expression"),
        ({"natural_language_schedule": "whenever the moon is blue"}, "natural_language_schedule"),
    ],
)
async def test_a_bad_rule_is_refused_beside_its_field_on_save_and_on_preview(
    client: httpx.AsyncClient, auth: dict[str, str], rule: dict[str, str], field: str
) -> None:
    await make_agent(client, auth, "ops", "AUTONOMOUS")
    token = await sign_in(client, auth)
    saved = await client.post("/manage/schedules/new", data=schedule_form(token, **rule))
    assert saved.status_code == 200  # the form again, with the API's error beside the field
    assert field in field_errors(saved.text), field_errors(saved.text)
    previewed = await client.post(
        "/manage/schedules/new", data={**schedule_form(token, **rule), "_preview": "1"}
    )
    assert previewed.status_code == 200
    assert field in field_errors(previewed.text)
    assert "Next 5 runs" not in previewed.text
    assert (await client.get(f"{SCHEDULES}/list", headers=auth)).json()["items"] == []


async def test_the_preview_button_shows_the_next_five_runs_without_saving(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await make_agent(client, auth, "ops", "AUTONOMOUS")
    token = await sign_in(client, auth)
    form = {**schedule_form(token, cron_expression="0 9 * * *", timezone="America/New_York"), "_preview": "1"}
    shown = await client.post("/manage/schedules/new", data=form)
    assert shown.status_code == 200, shown.text
    assert "Next 5 runs (America/New_York)" in shown.text
    assert shown.text.count("09:00 E") == 5  # 09:00 EST/EDT, the zone's wall time
    assert 'value="0 9 * * *"' in shown.text  # the form as posted, to save next
    assert (await client.get(f"{SCHEDULES}/list", headers=auth)).json()["items"] == []


async def test_the_live_preview_answers_the_next_five_runs_in_the_chosen_zone(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await sign_in(client, auth)
    cron = await client.get(
        "/manage/schedules/preview", params={"cron_expression": "30 14 * * 1", "timezone": "Asia/Kolkata"}
    )
    assert cron.status_code == 200, cron.text
    body = cron.json()
    assert body["title"] == "Next 5 runs (Asia/Kolkata)"
    times = [datetime.fromisoformat(t) for t in body["times"]]
    assert len(times) == 5
    for moment in times:
        local = moment.astimezone(ZoneInfo("Asia/Kolkata"))
        assert (local.weekday(), local.hour, local.minute) == (0, 14, 30)
    assert times == next_runs("30 14 * * 1", timezone="Asia/Kolkata", after=times[0] - timedelta(seconds=1))
    assert all("IST" in line for line in body["lines"])

    words = await client.get(
        "/manage/schedules/preview",
        params={"natural_language_schedule": "every weekday at 9am", "timezone": "Europe/Paris"},
    )
    assert words.status_code == 200, words.text
    assert "cron 0 9 * * 1-5" in words.json()["description"]
    for iso in words.json()["times"]:
        local = datetime.fromisoformat(iso).astimezone(ZoneInfo("Europe/Paris"))
        assert (local.weekday() < 5, local.hour, local.minute) == (True, 9, 0)

    for params, field in [
        ({"cron_expression": "not cron"}, "cron_expression"),
        ({"natural_language_schedule": "whenever the moon is blue"}, "natural_language_schedule"),
        ({"cron_expression": "0 9 * * *", "timezone": "Mars/Olympus"}, "timezone"),
        ({"cron_expression": "0 9 * * *", "natural_language_schedule": "daily at 9"}, "cron_expression"),
        ({}, ""),
    ]:
        refused = await client.get("/manage/schedules/preview", params=params)
        assert refused.status_code == 200, (params, refused.text)  # 200: no console error while typing
        assert refused.json()["ok"] is False
        assert field in refused.json()["errors"], (params, refused.json())


async def test_the_live_preview_needs_a_session(client: httpx.AsyncClient) -> None:
    answer = await client.get("/manage/schedules/preview", params={"cron_expression": "0 9 * * *"})
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/login")


async def test_a_monitor_from_a_preset_and_one_written_and_tested_before_saving(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    token = await sign_in(client, auth)
    assert 'href="/manage/monitors/new"' in (await client.get("/monitors")).text
    form = await client.get("/manage/monitors/new")
    assert form.status_code == 200
    assert "High Inbox Volume" in form.text
    assert 'action="/manage/monitors/preset"' in form.text

    preset = await client.post(
        "/manage/monitors/preset", data={"csrf_token": token, "preset_name": "Queue Depth", "name": "Depth"}
    )
    assert preset.status_code == 303, preset.text
    monitors = (await client.get("/api/v1/monitoring/condition/list", headers=auth)).json()["items"]
    assert [(m["name"], m["threshold_config"]["metric"]) for m in monitors] == [("Depth", "queue_depth")]
    unknown = await client.post("/manage/monitors/preset", data={"csrf_token": token, "preset_name": "Nope"})
    assert unknown.status_code == 303
    assert "no preset" in (await client.get(unknown.headers["location"])).text

    pushed = await client.post("/api/v1/monitoring/values", json={"name": "cpu", "value": 95}, headers=auth)
    assert pushed.status_code == 201
    written = {
        "csrf_token": token, "name": "CPU hot", "condition_type": "metric",
        "threshold_config": '{"metric": "cpu", "operator": ">", "value": 80}', "check_interval_seconds": "60",
    }  # fmt: skip
    tested = await client.post("/manage/monitors/new", data={**written, "_preview": "1"})
    assert tested.status_code == 200, tested.text
    assert "Test: it would fire now" in tested.text
    assert "Current value: 95" in tested.text
    assert len((await client.get("/api/v1/monitoring/condition/list", headers=auth)).json()["items"]) == 1

    calm = {**written, "threshold_config": '{"metric": "cpu", "operator": ">", "value": 99}', "_preview": "1"}
    assert "Test: it would not fire now" in (await client.post("/manage/monitors/new", data=calm)).text
    wrong = {**written, "condition_type": "crystal_ball", "_preview": "1"}
    refused = await client.post("/manage/monitors/new", data=wrong)
    assert refused.status_code == 200
    assert "condition_type" in field_errors(refused.text), field_errors(refused.text)

    created = await client.post("/manage/monitors/new", data=written)
    assert created.status_code == 303, created.text
    monitors = (await client.get("/api/v1/monitoring/condition/list", headers=auth)).json()["items"]
    cpu = next(m for m in monitors if m["name"] == "CPU hot")
    edit = await client.get(f"/manage/monitors/{cpu['id']}/edit")
    assert edit.status_code == 200
    assert 'data-field="condition"' not in edit.text  # a condition is not rewritten as free text
    saved = await client.post(
        f"/manage/monitors/{cpu['id']}/edit",
        data={"csrf_token": token, "name": "CPU very hot", "check_interval": "120", "throttle_seconds": "60"},
    )
    assert saved.status_code == 303, saved.text
    changed = (await client.get(f"/api/proactive/monitors/{cpu['id']}", headers=auth)).json()
    assert (changed["name"], changed["check_interval_seconds"], changed["throttle_seconds"]) == (
        "CPU very hot",
        120,
        60,
    )
    assert changed["threshold_config"] == {"metric": "cpu", "operator": ">", "value": 80}
    gone = await client.post(f"/manage/monitors/{cpu['id']}/delete", data={"csrf_token": token})
    assert gone.status_code == 303
    assert (await client.get(f"/api/proactive/monitors/{cpu['id']}", headers=auth)).status_code == 404


async def test_the_api_tests_an_unsaved_monitor_without_storing_it(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await client.post("/api/v1/monitoring/values", json={"name": "cpu", "value": 42}, headers=auth)
    body = {
        "name": "CPU",
        "condition_type": "metric",
        "threshold_config": {"metric": "cpu", "operator": ">", "value": 40},
    }
    answer = await client.post("/api/v1/monitoring/condition/test", json=body, headers=auth)
    assert answer.status_code == 200, answer.text
    assert (answer.json()["triggered"], answer.json()["current_value"], answer.json()["monitor_id"]) == (
        True,
        42,
        "",
    )
    assert (await client.get("/api/v1/monitoring/condition/list", headers=auth)).json()["items"] == []
    refused = await client.post(
        "/api/v1/monitoring/condition/test", json={**body, "error_policy": "shrug"}, headers=auth
    )
    assert refused.status_code == 422  # checked as a create is
    assert refused.json()["errors"][0]["field"] == "error_policy"
    # An agent named in a test is not registered by it (development registers agents on first use of a create).
    named = await client.post(
        "/api/v1/monitoring/condition/test", json={**body, "agent_id": "newcomer"}, headers=auth
    )
    assert named.status_code in (200, 422), named.text
    assert (await client.get("/api/v1/agents/newcomer", headers=auth)).status_code == 404
    assert (await client.get("/api/v1/monitoring/condition/list", headers=auth)).json()["items"] == []


async def test_schedule_and_monitor_forms_need_the_token(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await make_agent(client, auth, "ops", "AUTONOMOUS")
    token = await sign_in(client, auth)
    form = schedule_form(token, cron_expression="0 9 * * *")
    del form["csrf_token"]
    assert (await client.post("/manage/schedules/new", data=form)).status_code == 403
    assert (await client.post("/manage/schedules/new", data={**form, "_preview": "1"})).status_code == 403
    assert (
        await client.post("/manage/monitors/preset", data={"preset_name": "Queue Depth"})
    ).status_code == 403
    elsewhere = await client.post(
        "/manage/monitors/preset", data={"csrf_token": token, "preset_name": "Queue Depth"},
        headers={"Origin": "https://evil.example"},
    )  # fmt: skip
    assert elsewhere.status_code == 403
    assert (await client.get(f"{SCHEDULES}/list", headers=auth)).json()["items"] == []
    assert (await client.get("/api/v1/monitoring/condition/list", headers=auth)).json()["items"] == []


async def test_another_tenant_gets_404_for_our_schedules_and_monitors(
    rt: Runtime,
    client: httpx.AsyncClient,
    browser_b: httpx.AsyncClient,
    auth: dict[str, str],
) -> None:
    await make_agent(client, auth, "ops", "AUTONOMOUS")
    body = {
        "agent_id": "ops",
        "platform": "slack",
        "recipient_id": "C12345",
        "template": "Hi",
        "cron_expression": "0 9 * * *",
    }
    schedule_id = (await client.post(f"{SCHEDULES}/create", json=body, headers=auth)).json()["id"]
    monitor = {
        "name": "Ours",
        "condition_type": "metric",
        "threshold_config": {"metric": "cpu", "operator": ">", "value": 1},
    }
    monitor_id = (
        await client.post("/api/v1/monitoring/condition/create", json=monitor, headers=auth)
    ).json()["id"]
    token_b = await sign_in(browser_b, await new_tenant(rt, "globex"))

    for key, object_id in (("schedules", schedule_id), ("monitors", monitor_id)):
        assert object_id not in (await browser_b.get(f"/manage/{key}")).text
        assert (await browser_b.get(f"/manage/{key}/{object_id}/edit")).status_code == 404
        assert (
            await browser_b.post(f"/manage/{key}/{object_id}/delete", data={"csrf_token": token_b})
        ).status_code == 404
    moved = await browser_b.post(
        f"/manage/schedules/{schedule_id}/edit", data={"csrf_token": token_b, "cron_expression": "0 10 * * *"}
    )
    assert moved.status_code == 404
    previewed = await browser_b.post(
        f"/manage/schedules/{schedule_id}/edit",
        data={"csrf_token": token_b, "cron_expression": "0 10 * * *", "_preview": "1"},
    )
    assert previewed.status_code == 404
    renamed = await browser_b.post(
        f"/manage/monitors/{monitor_id}/edit", data={"csrf_token": token_b, "name": "Theirs"}
    )
    assert renamed.status_code == 404
    ours = (await client.get(f"{SCHEDULES}/{schedule_id}", headers=auth)).json()
    assert (ours["cron_expression"], ours["status"]) == ("0 9 * * *", "active")
    assert (await client.get(f"/api/proactive/monitors/{monitor_id}", headers=auth)).json()["name"] == "Ours"
