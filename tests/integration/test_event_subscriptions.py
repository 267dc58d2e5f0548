"""Outgoing events: subscriptions receive matching events signed (Standard Webhooks), a subscriber that is down
gets every event once it is back, and the delivery log shows it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import update

from herald.core.security import verify_standard_webhook
from herald.events import dispatcher
from herald.pipeline.worker import Worker
from herald.runtime import Runtime
from herald.storage.models import EventDelivery
from tests.conftest import make_agent, send_body, use_transport


@pytest.fixture(autouse=True)
def no_settle(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dispatcher, "SETTLE", timedelta(0))


async def pump(rt: Runtime) -> None:
    await dispatcher.fan_out(rt)
    await dispatcher.fan_out(rt)
    await dispatcher.send_due(rt)


async def test_subscriber_down_then_up_gets_every_event(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, worker: Worker
) -> None:
    up = {"yes": False}
    seen = use_transport(rt, lambda _: httpx.Response(200) if up["yes"] else httpx.Response(503))
    created = await client.post("/api/v1/event-subscriptions", json={"url": "https://subscriber.example/events",
                                                                     "event_types": ["message.queued", "message.sent"]},
                                headers=auth)  # fmt: skip
    assert created.status_code == 201, created.text
    subscription = created.json()
    secret = subscription["secret"]
    assert "secret" not in (await client.get("/api/v1/event-subscriptions", headers=auth)).json()["items"][0]
    await make_agent(client, auth, "bot", "AUTONOMOUS")
    message = (
        await client.post("/api/v1/messaging/proactive/send", json=send_body("bot"), headers=auth)
    ).json()
    await worker.drain()
    await pump(rt)
    log = (
        await client.get(f"/api/v1/event-subscriptions/{subscription['id']}/deliveries", headers=auth)
    ).json()["items"]
    assert sorted(d["event_type"] for d in log) == ["message.queued", "message.sent"]
    assert {d["status"] for d in log} == {"pending"}
    assert all(d["attempts"] == 1 and d["last_status_code"] == 503 for d in log)

    up["yes"] = True
    async with rt.sessions.begin() as session:  # the retry is due (instead of waiting 5 s)
        await session.execute(update(EventDelivery).values(next_attempt_at=datetime.now(UTC)))
    await pump(rt)
    log = (
        await client.get(f"/api/v1/event-subscriptions/{subscription['id']}/deliveries", headers=auth)
    ).json()["items"]
    assert {d["status"] for d in log} == {"delivered"}
    delivered = [r for r in seen if r.headers.get("webhook-id") and up["yes"]][-2:]
    types = set()
    for request in delivered:
        assert verify_standard_webhook(secret, request.headers["webhook-id"], int(request.headers["webhook-timestamp"]),
                                       request.content, request.headers["webhook-signature"])  # fmt: skip
        payload = json.loads(request.content)
        assert payload["data"]["id"] == message["id"]
        types.add(payload["type"])
    assert types == {"message.queued", "message.sent"}
    await pump(rt)  # nothing is delivered twice
    assert len([d for d in log if d["status"] == "delivered"]) == 2


async def test_gone_disables_and_other_tenants_see_nothing(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, worker: Worker
) -> None:
    from tests.conftest import new_tenant

    use_transport(rt, lambda _: httpx.Response(410))
    subscription = (
        await client.post("/api/v1/event-subscriptions", json={"url": "https://gone.example/e"}, headers=auth)
    ).json()
    await make_agent(client, auth, "bot", "AUTONOMOUS")
    await client.post("/api/v1/messaging/proactive/send", json=send_body("bot"), headers=auth)
    await pump(rt)
    listed = (await client.get("/api/v1/event-subscriptions", headers=auth)).json()["items"]
    assert listed[0]["status"] == "disabled"
    other = await new_tenant(rt, "other")
    assert (
        await client.get(f"/api/v1/event-subscriptions/{subscription['id']}/deliveries", headers=other)
    ).status_code == 404
    bad = await client.post(
        "/api/v1/event-subscriptions",
        json={"url": "https://x.example", "event_types": ["nope"]},
        headers=auth,
    )
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "event_types"


async def test_trigger_and_approval_events_reach_subscribers(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    seen = use_transport(rt, lambda _: httpx.Response(204))
    subscription = (await client.post("/api/v1/event-subscriptions", json={"url": "https://s.example/e",
                                                                           "event_types": ["trigger.fired", "approval.decided"]},
                                      headers=auth)).json()  # fmt: skip
    await make_agent(client, auth, "intern", "INTERN")
    trigger = (await client.post("/api/proactive/triggers", json={"name": "t", "trigger_type": "manual", "agent_id": "intern",
                                                                  "task_template": "Deploy {v}",
                                                                  "action": {"type": "message", "platform": "slack", "recipient_id": "C12345"}},
                                 headers=auth)).json()  # fmt: skip
    fired = (
        await client.post(
            f"/api/proactive/triggers/{trigger['id']}/fire", json={"payload": {"v": "2"}}, headers=auth
        )
    ).json()
    await client.post(
        f"/api/v1/messaging/proactive/approve/{fired['message_id']}",
        json={"approver_user_id": "u1"},
        headers=auth,
    )
    await pump(rt)
    log = (
        await client.get(f"/api/v1/event-subscriptions/{subscription['id']}/deliveries", headers=auth)
    ).json()["items"]
    assert sorted((d["event_type"], d["status"]) for d in log) == [
        ("approval.decided", "delivered"),
        ("trigger.fired", "delivered"),
    ]
    assert {json.loads(r.content)["type"] for r in seen} == {"trigger.fired", "approval.decided"}


@pytest.mark.postgres_only
async def test_an_event_of_a_long_transaction_is_not_skipped_when_it_commits_late(rt: Runtime) -> None:
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import insert, select

    from herald.events import feed
    from herald.storage.audit import event_row
    from herald.storage.models import Event, EventCursor, Tenant

    async with rt.sessions.begin() as session:
        session.add(Tenant(id="ten_long", name="long", delivery_policy={}, otp_policy={}))
    async with rt.sessions.begin() as session:  # the reader's cursor exists
        await feed.claim(session, rt.dialect, "test", settle=timedelta(0), limit=100)
    long = rt.sessions()
    await long.begin()
    early = event_row("ten_long", "message.queued", "msg_early")  # built now, committed much later
    await long.execute(insert(Event), [early])
    later = event_row("ten_long", "message.queued", "msg_later")
    async with rt.sessions.begin() as session:
        await session.execute(insert(Event), [later])
    async with rt.sessions.begin() as session:
        batch = await feed.claim(session, rt.dialect, "test", settle=timedelta(0), limit=100)
        assert [e.id for e in batch.events] == []  # held back: an older id may still commit
        batch.advance()
    await long.commit()
    await long.close()
    seen: list[str] = []
    for _ in range(2):
        async with rt.sessions.begin() as session:
            batch = await feed.claim(session, rt.dialect, "test", settle=timedelta(0), limit=100)
            seen += [e.subject_id for e in batch.events]
            batch.advance()
    assert seen == ["msg_early", "msg_later"]
    async with rt.sessions() as session:
        cursor = (await session.execute(select(EventCursor).where(EventCursor.name == "test"))).scalar_one()
    assert cursor.last_event_id >= later["id"]
    assert datetime.now(UTC) > early["created_at"]
