"""Measured channel choice end to end: a failing channel is demoted, then promoted again once it recovers, with a
seeded random source for the exploring; the message shows its order and why; the fixed table is unaffected."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from herald.pipeline.routing.measured import load_stats
from herald.pipeline.worker import Worker
from herald.runtime import Runtime
from herald.storage.audit import event_row
from herald.storage.models import Attempt, Event
from herald.storage.types import utcnow
from tests.conftest import make_agent, use_transport, webhook_channel

SEND = "/api/v1/messaging/proactive/send"
POLICY = "/api/v1/delivery-policy"


@pytest.fixture
async def setup(client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime) -> dict[str, Any]:
    """An agent, a contact with an SMS number and an email address, and a webhook channel for each platform whose
    SMS side answers 400 (a permanent failure, so the message falls back to email at once) while it is down."""
    await make_agent(client, auth, "bot", "AUTONOMOUS")
    health = {"sms_down": False}

    def provider(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/sms" and health["sms_down"]:
            return httpx.Response(400, json={"error": "number unreachable"})
        return httpx.Response(200, json={"id": "ok"})

    use_transport(rt, provider)
    sms = await webhook_channel(client, auth, "sms", cost_per_message=0.02)
    email = await webhook_channel(client, auth, "email")
    body = {"name": "Ada", "addresses": {"sms": "+447700900123", "email": "ada@example.com"}}
    person = (await client.post("/api/v1/contacts", json=body, headers=auth)).json()
    return {"health": health, "contact_id": person["id"], "sms": sms["id"], "email": email["id"]}


async def measured(client: httpx.AsyncClient, auth: dict[str, str], **tuning: Any) -> None:
    body = {"channel_choice": "measured", "measured": tuning}
    answer = await client.put(POLICY, json=body, headers=auth)
    assert answer.status_code == 200, answer.text
    assert answer.json()["channel_choice"] == "measured"


async def send(client: httpx.AsyncClient, auth: dict[str, str], contact_id: str) -> dict[str, Any]:
    body = {"agent_id": "bot", "contact_id": contact_id, "priority": "HIGH", "content": "Your parcel is here"}
    answer = await client.post(SEND, json=body, headers=auth)
    assert answer.status_code == 201, answer.text
    sent: dict[str, Any] = answer.json()
    return sent


def order(message: dict[str, Any]) -> list[str]:
    return [step["platform"] for step in message["route_plan"]]


async def test_a_failing_channel_is_demoted_then_promoted_after_recovery(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, worker: Worker, setup: dict[str, Any]
) -> None:
    rt.measured.random = random.Random(20)
    await measured(client, auth, explore_rate=0.0)
    contact_id = setup["contact_id"]

    # No data yet: the priority table's order (HIGH: SMS before email), and the reason says so.
    first = await send(client, auth, contact_id)
    assert order(first) == ["sms", "email"]
    why = first["route_reason"]
    assert why["mode"] == "measured"
    assert why["order"] == why["prior"] == ["sms", "email"]
    assert why["explored"] is False

    # SMS goes down: every message fails there and falls back to email.
    setup["health"]["sms_down"] = True
    outage = [first["id"]] + [(await send(client, auth, contact_id))["id"] for _ in range(4)]
    await worker.drain()
    for message_id in outage:
        done = (await client.get(f"/api/v1/messages/{message_id}", headers=auth)).json()
        assert (done["status"], done["platform"]) == ("sent", "email")
    rt.measured.forget()  # the figures are kept 30 s per process; read them again now
    demoted = await send(client, auth, contact_id)
    assert order(demoted) == ["email", "sms"]
    assert demoted["route_reason"]["order"] == ["email", "sms"]
    scores = demoted["route_reason"]["scores"]
    assert (scores["sms"]["successes"], scores["sms"]["failures"]) == (0, 5)
    assert scores["email"]["successes"] == 5
    assert scores["email"]["score"] > scores["sms"]["score"]
    shown = (await client.get(f"/api/v1/messages/{demoted['id']}", headers=auth)).json()
    assert shown["route_reason"] == demoted["route_reason"]

    # SMS recovers. Some traffic keeps exploring (the seeded source decides which), so SMS is measured again.
    setup["health"]["sms_down"] = False
    await measured(client, auth, explore_rate=0.5)
    recovery = [await send(client, auth, contact_id) for _ in range(12)]
    await worker.drain()
    explored = [m for m in recovery if m["route_reason"]["explored"]]
    assert explored, "the seeded source explores some of twelve messages"
    assert all(order(m) == ["sms", "email"] for m in explored)
    assert all(order(m) == ["email", "sms"] for m in recovery if not m["route_reason"]["explored"])
    for sent in explored:
        done = (await client.get(f"/api/v1/messages/{sent['id']}", headers=auth)).json()
        assert (done["status"], done["platform"]) == ("sent", "sms")

    # A day later the outage has left the window; the explored successes have not: SMS wins its place back.
    async with rt.sessions.begin() as session:
        await session.execute(
            update(Attempt)
            .where(Attempt.message_id.in_(outage))
            .values(started_at=utcnow() - timedelta(hours=25))
        )
    rt.measured.forget()
    await measured(client, auth, explore_rate=0.0)
    promoted = await send(client, auth, contact_id)
    assert order(promoted) == ["sms", "email"]
    scores = promoted["route_reason"]["scores"]
    assert (scores["sms"]["successes"], scores["sms"]["failures"]) == (len(explored), 0)
    assert scores["sms"]["latency_s"] is not None


async def test_the_seeded_source_makes_the_choices_reproducible(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, setup: dict[str, Any]
) -> None:
    await measured(client, auth, explore_rate=0.5)
    runs = []
    for _ in range(2):
        rt.measured.random = random.Random(7)
        runs.append(
            [(await send(client, auth, setup["contact_id"]))["route_reason"]["explored"] for _ in range(8)]
        )
    assert runs[0] == runs[1]
    assert True in runs[0]
    assert False in runs[0]


async def test_the_fixed_table_is_unaffected(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, worker: Worker, setup: dict[str, Any]
) -> None:
    policy = (await client.get(POLICY, headers=auth)).json()
    assert policy["channel_choice"] == "fixed"
    setup["health"]["sms_down"] = True
    for _ in range(5):
        await send(client, auth, setup["contact_id"])
    await worker.drain()
    rt.measured.forget()
    after = await send(client, auth, setup["contact_id"])
    assert order(after) == ["sms", "email"]  # the table's order, whatever SMS did
    assert after["route_reason"] is None
    # An explicit platform is the caller's choice even when the policy measures.
    await measured(client, auth, explore_rate=0.5)
    body = {"agent_id": "bot", "contact_id": setup["contact_id"], "platform": "sms", "content": "hi"}
    pinned = (await client.post(SEND, json=body, headers=auth)).json()
    assert order(pinned) == ["sms"]
    assert pinned["route_reason"] is None


async def test_the_policy_refuses_unknown_choices_and_bad_tuning(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    bad = await client.put(POLICY, json={"channel_choice": "cheapest"}, headers=auth)
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "channel_choice"
    worse = await client.put(POLICY, json={"measured": {"explore_rate": 2}}, headers=auth)
    assert worse.status_code == 422
    assert worse.json()["errors"][0]["field"] == "measured.explore_rate"


async def test_time_to_delivery_is_the_receipts_lag_and_cost_is_per_message(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, worker: Worker, setup: dict[str, Any]
) -> None:
    await measured(client, auth, explore_rate=0.0)
    first = await send(client, auth, setup["contact_id"])
    second = await send(client, auth, setup["contact_id"])
    await worker.drain()
    async with rt.sessions.begin() as session:
        tenant_id, started = (
            await session.execute(
                select(Attempt.tenant_id, Attempt.started_at).where(Attempt.message_id == first["id"])
            )
        ).one()
        # The provider's receipts for the first message: the first came two minutes after the attempt.
        for lag in (120, 300):
            at = started + timedelta(seconds=lag)
            session.add(Event(**event_row(tenant_id, "message.delivered", first["id"], at=at)))
    async with rt.sessions() as session:
        figures = await load_stats(session, tenant_id, 24)
    sms = figures[setup["sms"]]
    assert (sms.successes, sms.failures) == (2, 0)
    assert sms.cost == pytest.approx(0.02)
    # The mean of the receipt's lag (120 s) and the second message's provider call (milliseconds).
    assert sms.latency_s is not None
    assert 59 < sms.latency_s < 61
    assert setup["email"] not in figures  # nothing went by email
    assert second["route_reason"]["order"] == ["sms", "email"]
