"""Suggestions from patterns (issue 20): each kind, from a constructed pattern, accepted through the API, creates
or changes the right object through the direct call's service; dismissed ones stay away for their window and
come back after it; open ones are refreshed in place and go stale with their pattern; tenants are isolated."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from herald.admin.tenants import create_api_key, get_or_create_tenant
from herald.fakes import FakeLLMState, FakeState, create_fake_app
from herald.learning import model, suggestions
from herald.learning.model import Pattern
from herald.pipeline import templates
from herald.runtime import Runtime
from herald.storage.models import AuditEntry, Schedule, Suggestion, Tenant
from herald.storage.types import utcnow
from tests.conftest import make_agent, new_tenant, webhook_channel

BASE = "/api/proactive/suggestions"


def detector(*patterns: Pattern) -> suggestions.Detector:
    """A stand-in for herald.learning.patterns.detect that finds exactly ``patterns``."""

    async def detect(sessions: Any, tenant_id: str, **_: Any) -> list[Pattern]:
        return list(patterns)

    return detect


def pattern(kind: str, key: str, by: str | None = None, **facts: Any) -> Pattern:
    """A pattern as the detectors make it; ``by`` is the agent it is about (None: the tenant's)."""
    return Pattern(kind=kind, key=key, summary=f"{kind} found", confidence=0.9, evidence={}, facts=facts,
                   agent_id=by)  # fmt: skip


def repeated(agent_id: str = "reporter") -> Pattern:
    return pattern(
        model.REPEATED_SEND, f"repeated_send:{agent_id}:slack:C777", agent_id, agent_id=agent_id,
        platform="slack", recipient_id="C777", contact_id=None, content="Morning numbers are in.", subject=None,
        hour=9, minute=30, weekdays=[1, 2, 3, 4, 5], timezone="Europe/Paris", cron="30 9 * * 1-5", count=6,
    )  # fmt: skip


async def tenant_id(rt: Runtime, name: str = "acme") -> str:
    async with rt.sessions() as session:
        found = await session.scalar(select(Tenant.id).where(Tenant.name == name))
    assert found is not None
    return found


async def refresh(
    rt: Runtime, *patterns: Pattern, name: str = "acme", **kw: Any
) -> suggestions.RefreshCounts:
    return await suggestions.refresh(rt, await tenant_id(rt, name), detector=detector(*patterns), **kw)


async def only_open(client: httpx.AsyncClient, auth: dict[str, str]) -> dict[str, Any]:
    listed = await client.get(BASE, headers=auth)
    assert listed.status_code == 200, listed.text
    (item,) = listed.json()["items"]
    assert item["status"] == "open"
    return dict(item)


async def accept(client: httpx.AsyncClient, auth: dict[str, str], suggestion_id: str) -> dict[str, Any]:
    accepted = await client.post(f"{BASE}/{suggestion_id}/accept", headers=auth)
    assert accepted.status_code == 200, accepted.text
    body = dict(accepted.json())
    assert body["status"] == "accepted"
    assert body["accepted_by"].startswith("api_key:")
    assert body["accepted_at"] is not None
    return body


async def audited(rt: Runtime, action: str, object_id: str) -> int:
    async with rt.sessions() as session:
        rows = await session.scalars(
            select(AuditEntry).where(AuditEntry.action == action, AuditEntry.object_id == object_id)
        )
        return len(rows.all())


async def test_make_schedule_creates_the_recurring_schedule_once(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    await make_agent(client, auth, "reporter", "AUTONOMOUS")
    counts = await refresh(rt, repeated())
    assert (counts.patterns, counts.created) == (1, 1)
    item = await only_open(client, auth)
    assert item["kind"] == "make_schedule"
    change = item["change"]
    assert (change["action"], change["object"], change["id"]) == ("create", "schedule", None)
    assert (change["method"], change["path"]) == ("POST", "/api/v1/messaging/schedule/create")

    done = await accept(client, auth, item["id"])
    schedule = (await client.get(f"/api/v1/messaging/schedule/{done['result_id']}", headers=auth)).json()
    assert (schedule["cron_expression"], schedule["timezone"]) == ("30 9 * * 1-5", "Europe/Paris")
    assert (schedule["agent_id"], schedule["platform"], schedule["recipient_id"]) == (
        "reporter",
        "slack",
        "C777",
    )
    assert (schedule["template"], schedule["schedule_type"]) == ("Morning numbers are in.", "recurring")
    assert await audited(rt, "suggestion.accepted", item["id"]) == 1
    assert await audited(rt, "schedule.created", done["result_id"]) == 1  # the service's own audit, as direct

    again = await client.post(f"{BASE}/{item['id']}/accept", headers=auth)
    assert again.status_code == 409
    # The schedule exists now: the same pattern found again suggests nothing.
    assert (await refresh(rt, repeated())).created == 0
    assert (await client.get(BASE, headers=auth)).json()["items"] == []


async def test_send_at_hour_moves_the_recipients_schedule(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    best = pattern(model.BEST_HOUR, "best_hour:slack:C777", platform="slack", recipient_id="C777",
                   contact_id=None, hour=14, timezone="UTC", samples=40, median_response_seconds=95.0)  # fmt: skip
    assert (await refresh(rt, best)).created == 0  # no schedule to that person: nothing to move
    await make_agent(client, auth, "reporter", "AUTONOMOUS")
    body = {"agent_id": "reporter", "platform": "slack", "recipient_id": "C777", "template": "Numbers",
            "cron_expression": "15 9 * * *", "timezone": "UTC"}  # fmt: skip
    created = await client.post("/api/v1/messaging/schedule/create", json=body, headers=auth)
    assert created.status_code == 201, created.text
    schedule_id = created.json()["id"]

    await refresh(rt, best)
    item = await only_open(client, auth)
    assert item["kind"] == "send_at_hour"
    assert item["change"]["id"] == schedule_id
    assert item["change"]["body"] == {"cron_expression": "15 14 * * *", "timezone": "UTC"}
    done = await accept(client, auth, item["id"])
    assert done["result_id"] == schedule_id
    moved = (await client.get(f"/api/v1/messaging/schedule/{schedule_id}", headers=auth)).json()
    assert moved["cron_expression"] == "15 14 * * *"
    assert moved["next_run"].endswith("14:15:00+00:00")
    assert await audited(rt, "schedule.rescheduled", schedule_id) == 1
    assert (await refresh(rt, best)).created == 0  # already at the best hour


async def test_add_hysteresis_updates_the_monitor(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    await make_agent(client, auth, "watcher", "AUTONOMOUS")
    body = {"name": "CPU", "agent_id": "watcher", "condition": "CPU usage > 80%", "check_interval": 60}
    monitor = (await client.post("/api/proactive/monitors", json=body, headers=auth)).json()
    noisy = pattern(model.NOISY_MONITOR, f"noisy_monitor:{monitor['id']}", monitor_id=monitor["id"], name="CPU",
                    flaps=4, window_seconds=7200, median_firing_seconds=45)  # fmt: skip
    await refresh(rt, noisy)
    item = await only_open(client, auth)
    assert item["kind"] == "add_hysteresis"
    # Twice the median flap (90 s) rounded up to a minute; one notice per cycle (7200 s / 4 flaps).
    assert item["change"]["body"] == {"for_seconds": 120, "throttle_seconds": 1800}
    assert item["change"]["path"] == f"/api/proactive/monitors/{monitor['id']}"
    await accept(client, auth, item["id"])
    changed = (await client.get(f"/api/proactive/monitors/{monitor['id']}", headers=auth)).json()
    assert (changed["for_seconds"], changed["throttle_seconds"]) == (120, 1800)
    assert (await refresh(rt, noisy)).created == 0  # the monitor has that hysteresis now


async def test_add_fallback_to_a_contact_and_to_the_policy(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    person = {"name": "Dana", "addresses": {"sms": "+15551234567", "email": "dana@example.com"}}
    contact = (await client.post("/api/v1/contacts", json=person, headers=auth)).json()
    failing = pattern(model.FAILING_CHANNEL, f"failing_channel:recipient:{contact['id']}", scope="recipient",
                      channel_id=None, platform="sms", recipient_id="+15551234567", contact_id=contact["id"],
                      attempts=10, failures=7, failure_rate=0.7)  # fmt: skip
    await refresh(rt, failing)
    item = await only_open(client, auth)
    assert (item["kind"], item["change"]["object"]) == ("add_fallback", "contact")
    await accept(client, auth, item["id"])
    dana = (await client.get(f"/api/v1/contacts/{contact['id']}", headers=auth)).json()
    assert dana["channel_order"] == ["sms", "email"]

    await webhook_channel(client, auth, "slack")
    overall = pattern(model.FAILING_CHANNEL, "failing_channel:overall:email", scope="overall", channel_id=None,
                      platform="email", recipient_id=None, contact_id=None, attempts=50, failures=30,
                      failure_rate=0.6)  # fmt: skip
    await refresh(rt, overall)
    item = await only_open(client, auth)
    assert (item["change"]["object"], item["change"]["method"]) == ("delivery_policy", "PUT")
    await accept(client, auth, item["id"])
    policy = (await client.get("/api/v1/delivery-policy", headers=auth)).json()
    assert policy["priority_routes"]["LOW"] == ["email", "slack"]
    assert policy["priority_routes"]["CRITICAL"] == ["voice", "sms", "whatsapp", "email", "slack"]


async def test_promote_agent_needs_an_admin_key(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    await make_agent(client, auth, "helper", "INTERN")
    candidate = pattern(model.PROMOTION_CANDIDATE, "promotion_candidate:helper", "helper", agent_id="helper",
                        level="INTERN", next_level="SUPERVISED", approved_unchanged=20)  # fmt: skip
    await refresh(rt, candidate)
    item = await only_open(client, auth)
    assert item["change"]["body"] == {"maturity_level": "SUPERVISED"}
    async with rt.sessions.begin() as session:
        reader = await create_api_key(session, await get_or_create_tenant(session, "acme"), is_admin=False)
    refused = await client.post(f"{BASE}/{item['id']}/accept", headers={"Authorization": f"Bearer {reader}"})
    assert refused.status_code == 403, refused.text
    assert refused.json()["errors"][0]["field"] == "maturity_level"
    agent = (await client.get("/api/v1/agents/helper", headers=auth)).json()
    assert agent["maturity_level"] == "INTERN"
    assert (await only_open(client, auth))["id"] == item["id"]  # still open: nothing was changed

    await accept(client, auth, item["id"])
    agent = (await client.get("/api/v1/agents/helper", headers=auth)).json()
    assert agent["maturity_level"] == "SUPERVISED"
    assert await audited(rt, "agent.updated", "helper") == 1
    assert (await refresh(rt, candidate)).created == 0  # no longer at the pattern's level


async def test_dismissed_stays_away_for_its_window_then_comes_back(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    await make_agent(client, auth, "reporter", "AUTONOMOUS")
    await refresh(rt, repeated())
    item = await only_open(client, auth)
    dismissed = await client.post(f"{BASE}/{item['id']}/dismiss", json={"for_days": 7}, headers=auth)
    assert dismissed.status_code == 200, dismissed.text
    assert dismissed.json()["status"] == "dismissed"
    assert dismissed.json()["dismissed_by"].startswith("api_key:")
    assert await audited(rt, "suggestion.dismissed", item["id"]) == 1
    assert (await client.post(f"{BASE}/{item['id']}/accept", headers=auth)).status_code == 409

    now = utcnow()
    for later in (now, now + timedelta(days=6, hours=23)):
        counts = await refresh(rt, repeated(), now=later)
        assert (counts.created, counts.suppressed) == (0, 1)
    assert (await client.get(BASE, headers=auth)).json()["items"] == []
    assert (await refresh(rt, repeated(), now=now + timedelta(days=7, minutes=1))).created == 1
    back = await only_open(client, auth)
    assert back["id"] != item["id"]
    assert back["key"] == item["key"]

    # Without a body: the configured default (30 days).
    plain = await client.post(f"{BASE}/{back['id']}/dismiss", headers=auth)
    until = plain.json()["dismissed_until"]
    assert until[:10] == (utcnow() + timedelta(days=rt.settings.suggestion_dismiss_days)).date().isoformat()
    everything = (await client.get(BASE, params={"status": "all"}, headers=auth)).json()["items"]
    assert [s["status"] for s in everything] == ["dismissed", "dismissed"]


async def test_refreshed_in_place_and_stale_when_the_pattern_goes(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    await make_agent(client, auth, "reporter", "AUTONOMOUS")
    first = await refresh(rt, repeated())
    again = await refresh(rt, repeated())
    assert (again.created, again.refreshed, again.ids) == (0, 1, first.ids)
    gone = await refresh(rt)
    assert gone.stale == 1
    stale = (await client.get(BASE, params={"status": "stale"}, headers=auth)).json()["items"]
    assert [s["id"] for s in stale] == first.ids
    assert (await client.post(f"{BASE}/{first.ids[0]}/accept", headers=auth)).status_code == 409
    # An unanswered conversation is a pattern only: no suggestion comes of it.
    talk = pattern(model.UNANSWERED_CONVERSATION, "unanswered_conversation:c1", conversation_id="c1",
                   platform="slack", user_id="U1", last_inbound_at=utcnow().isoformat(), waiting_seconds=900)  # fmt: skip
    assert (await refresh(rt, talk)).created == 0


async def test_another_tenants_suggestion_is_not_found(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    await make_agent(client, auth, "reporter", "AUTONOMOUS")
    (made,) = (await refresh(rt, repeated())).ids
    other = await new_tenant(rt, "globex")
    assert (await client.get(f"{BASE}/{made}", headers=other)).status_code == 404
    assert (await client.post(f"{BASE}/{made}/accept", headers=other)).status_code == 404
    assert (await client.post(f"{BASE}/{made}/dismiss", headers=other)).status_code == 404
    assert (await client.get(BASE, headers=other)).json()["items"] == []
    assert (await client.get(f"{BASE}/{made}", headers=auth)).json()["status"] == "open"


async def test_refresh_on_demand_and_the_loop_takes_each_tenant_once_per_interval(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    await make_agent(client, auth, "reporter", "AUTONOMOUS")
    monkeypatch.setattr(suggestions, "default_detector", lambda: detector(repeated()))
    answered = await client.post(f"{BASE}/refresh", headers=auth)
    assert answered.status_code == 200, answered.text
    assert (answered.json()["patterns"], answered.json()["created"]) == (1, 1)

    now = utcnow()
    assert await suggestions.run_pass(rt, now=now) == 1  # acme, enrolled and due at once
    assert await suggestions.run_pass(rt, now=now + timedelta(minutes=1)) == 0  # not due again yet
    later = now + timedelta(seconds=rt.settings.suggestion_refresh_seconds + 1)
    assert await suggestions.run_pass(rt, now=later) == 1
    async with rt.sessions() as session:
        rows = (await session.scalars(select(Suggestion))).all()
    assert [r.status for r in rows] == ["open"]  # refreshed in place each time, never duplicated


async def test_each_change_is_the_direct_api_call_it_names(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    """Called directly, ``method path body`` makes the same change accepting would (a 2xx, the same result)."""
    await make_agent(client, auth, "reporter", "AUTONOMOUS")
    body = {"name": "CPU", "agent_id": "reporter", "condition": "CPU usage > 80%", "check_interval": 60}
    monitor = (await client.post("/api/proactive/monitors", json=body, headers=auth)).json()
    noisy = pattern(model.NOISY_MONITOR, f"noisy_monitor:{monitor['id']}", monitor_id=monitor["id"], name="CPU",
                    flaps=3, window_seconds=600, median_firing_seconds=200)  # fmt: skip
    await refresh(rt, repeated(), noisy)
    listed = (await client.get(BASE, headers=auth)).json()["items"]
    assert sorted(s["kind"] for s in listed) == ["add_hysteresis", "make_schedule"]
    for item in listed:
        change = item["change"]
        direct = await client.request(change["method"], change["path"], json=change["body"], headers=auth)
        assert direct.status_code in (200, 201), direct.text
    changed = (await client.get(f"/api/proactive/monitors/{monitor['id']}", headers=auth)).json()
    assert changed["for_seconds"] == 420
    # Made directly, so nothing is left to suggest: both go stale.
    assert (await refresh(rt, repeated(), noisy)).stale == 2


async def test_a_schedules_rule_changes_by_patch(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    """The call send_at_hour names: a recurring schedule's rule (cron or words) and time zone, checked."""
    await make_agent(client, auth, "reporter", "AUTONOMOUS")
    body = {"agent_id": "reporter", "platform": "slack", "recipient_id": "C777", "template": "Numbers",
            "cron_expression": "0 9 * * *"}  # fmt: skip
    schedule = (await client.post("/api/v1/messaging/schedule/create", json=body, headers=auth)).json()
    path = f"/api/v1/messaging/schedule/{schedule['id']}"
    words = await client.patch(path, json={"natural_language_schedule": "every day at 5pm",
                                           "timezone": "Asia/Tokyo"}, headers=auth)  # fmt: skip
    assert words.status_code == 200, words.text
    assert (words.json()["cron_expression"], words.json()["timezone"]) == ("0 17 * * *", "Asia/Tokyo")
    bad = await client.patch(path, json={"cron_expression": "61 * * * *"}, headers=auth)
    assert (bad.status_code, bad.json()["errors"][0]["field"]) == (422, "cron_expression")
    once = await client.patch(path, json={"natural_language_schedule": "tomorrow at 3pm"}, headers=auth)
    assert (once.status_code, once.json()["errors"][0]["field"]) == (422, "natural_language_schedule")
    other = await new_tenant(rt, "globex")
    assert (await client.patch(path, json={"timezone": "UTC"}, headers=other)).status_code == 404
    one_time = {**body, "cron_expression": None, "natural_language_schedule": "tomorrow at 3pm"}
    made = (await client.post("/api/v1/messaging/schedule/create", json=one_time, headers=auth)).json()
    refused = await client.patch(
        f"/api/v1/messaging/schedule/{made['id']}", json={"timezone": "UTC"}, headers=auth
    )
    assert refused.status_code == 409


async def test_two_accepts_at_once_make_one_change(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    await make_agent(client, auth, "reporter", "AUTONOMOUS")
    (made,) = (await refresh(rt, repeated())).ids
    answers = await asyncio.gather(*(client.post(f"{BASE}/{made}/accept", headers=auth) for _ in range(2)))
    assert sorted(a.status_code for a in answers) == [200, 409]
    async with rt.sessions() as session:
        assert len((await session.scalars(select(Schedule))).all()) == 1


async def test_an_llm_agent_may_write_the_explanation_and_the_template_stays_when_it_fails(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    model_state = FakeLLMState()
    fake = httpx.ASGITransport(app=create_fake_app(FakeState(), llm_state=model_state))
    rt.http = httpx.AsyncClient(transport=fake)
    body = {"id": "writer", "maturity_level": "INTERN", "kind": "llm", "api_key": "sk-test-123",
            "llm": {"base_url": "http://llm.fake/v1", "model": "fake-model"}}  # fmt: skip
    assert (await client.post("/api/v1/agents", json=body, headers=auth)).status_code == 201
    candidate = pattern(model.PROMOTION_CANDIDATE, "promotion_candidate:writer", "writer", agent_id="writer",
                        level="INTERN", next_level="SUPERVISED", approved_unchanged=20)  # fmt: skip
    model_state.script([{"kind": "permanent", "status": 400}])
    await refresh(rt, candidate)
    item = await only_open(client, auth)
    assert item["explained_by"] == "template"
    assert item["explanation"].startswith("The last 20 messages of writer")
    assert item["change"]["body"] == {"maturity_level": "SUPERVISED"}  # the suggestion never depends on it

    await client.post(f"{BASE}/{item['id']}/dismiss", json={"for_days": 1}, headers=auth)
    model_state.script([{"content": "Twenty reviewed messages in a row went out unchanged."}])
    await refresh(rt, candidate, now=utcnow() + timedelta(days=2))
    item = await only_open(client, auth)
    assert item["explanation"] == "Twenty reviewed messages in a row went out unchanged."
    assert item["explained_by"] == "llm:fake-model"
    sent = model_state.requests[-1].json
    assert "approved_unchanged" in sent["messages"][-1]["content"]  # the facts, for the model to stay on them
    await refresh(rt, candidate, now=utcnow() + timedelta(days=2))
    assert len(model_state.requests) == 2  # asked once per change, not at every refresh
    assert (await only_open(client, auth))["explained_by"] == "llm:fake-model"


async def test_one_tenant_failing_does_not_hold_the_others_back(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    other = await new_tenant(rt, "globex")
    for headers in (auth, other):
        await make_agent(client, headers, "reporter", "AUTONOMOUS")
    broken = await tenant_id(rt, "acme")

    async def detect(sessions: Any, tenant: str, **_: Any) -> list[Pattern]:
        if tenant == broken:
            raise RuntimeError("this tenant's history cannot be read")
        return [repeated()]

    assert await suggestions.run_pass(rt, detector=detect) == 2
    assert (await client.get(BASE, headers=auth)).json()["items"] == []
    assert len((await client.get(BASE, headers=other)).json()["items"]) == 1


async def test_content_is_kept_literally_and_a_malformed_pattern_is_skipped(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    await make_agent(client, auth, "reporter", "AUTONOMOUS")
    facts = {**repeated().facts, "content": "Use {{ code }} at {% now %}"}
    braces = pattern(model.REPEATED_SEND, "repeated_send:braces", "reporter", **facts)
    broken = pattern(model.NOISY_MONITOR, "noisy_monitor:nothing")  # none of the facts its kind promises
    counts = await refresh(rt, broken, braces)
    assert (counts.patterns, counts.created) == (2, 1)
    item = await only_open(client, auth)
    done = await accept(client, auth, item["id"])
    async with rt.sessions() as session:
        schedule = await session.get(Schedule, done["result_id"])
        assert schedule is not None
        assert schedule.template is not None
    rendered = templates.render(schedule.template, {}, now=utcnow(), timezone="UTC", field="template")
    assert rendered == "Use {{ code }} at {% now %}"
