"""``POST /api/v1/messages/bulk``: 10,000 items with exact accounting, per-item errors naming the field, per-item
idempotency keys (replay, conflict, reuse in one request, keys per tenant), limits, tenant isolation, lookups
made once per request rather than once per item, and batched inserts that stay inside the transaction."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import httpx
import pytest
from sqlalchemy import Table, event, func, select

from herald.admin.tenants import create_api_key, get_or_create_tenant
from herald.pipeline.worker import Worker
from herald.runtime import Runtime
from herald.storage.bulk import COPY_THRESHOLD, insert_rows
from herald.storage.models import AuditEntry, Event, Message
from tests.conftest import make_agent, new_tenant, send_body, use_transport, webhook_channel

BULK = "/api/v1/messages/bulk"


def item(i: int, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "agent_id": "bot",
        "platform": "sms",
        "recipient_id": f"+4477009{i % 100_000:05d}",
        "content": f"Your parcel {i} is out for delivery",
        "priority": "HIGH",
    }
    body.update(overrides)
    return body


async def bulk(client: httpx.AsyncClient, auth: dict[str, str], items: list[Any]) -> dict[str, Any]:
    response = await client.post(BULK, json={"messages": items}, headers=auth, timeout=120)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def scalar(rt: Runtime, query: Any) -> Any:
    async with rt.sessions() as session:
        return (await session.execute(query)).scalar_one()


@pytest.fixture
async def agents(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    for agent_id, level in (("bot", "AUTONOMOUS"), ("intern", "INTERN"), ("pupil", "STUDENT")):
        await make_agent(client, auth, agent_id, level)


# Every kind of bad item, at a known index: (index, item, status, field).
BAD: list[tuple[int, Any, int, str | None]] = [
    (3, {k: v for k, v in item(3).items() if k != "content"}, 422, "content"),
    (10, item(10, colour="blue"), 422, "colour"),
    (17, item(17, priority="URGENT"), 422, "priority"),
    (25, "not an object", 422, None),
    (31, item(31, timezone="Mars/Olympus"), 422, "timezone"),
    (42, item(42, recipient_id="+1"), 422, "recipient_id"),
    (57, item(57, platform="pager"), 422, "platform"),
    (63, item(63, agent_id="ghost"), 422, "agent_id"),
    (77, item(77, agent_id="pupil"), 403, "agent_id"),
    (88, item(88, content="Hello {{name}}"), 422, "content"),
    (9_999, item(9_999, fallback=[{"platform": "email", "recipient_id": "not-an-address"}]), 422, "fallback.0.recipient_id"),
]  # fmt: skip


@pytest.mark.usefixtures("agents")
async def test_ten_thousand_items_with_some_invalid_are_accounted_exactly(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    # A key that may not register agents, so "ghost" stays unknown (an admin key registers it in development:
    # tests/integration/test_enrolment.py).
    async with rt.sessions.begin() as session:
        sender = await create_api_key(session, await get_or_create_tenant(session, "acme"), is_admin=False)
    items: list[Any] = [item(i) for i in range(10_000)]
    for index in range(5, 10_000, 1000):
        items[index] = item(index, agent_id="intern")  # held for approval, still accepted
    items[100] = item(100, content="Hi {{name}}, today is {{date}}", template_variables={"name": "Ada"})
    for index, bad, _, _ in BAD:
        items[index] = bad

    body = await bulk(client, {"Authorization": f"Bearer {sender}"}, items)

    assert (body["accepted"], body["rejected"], body["replayed"]) == (10_000 - len(BAD), len(BAD), 0)
    assert [entry["index"] for entry in body["items"]] == list(range(10_000))
    errors = {entry["index"]: entry["error"] for entry in body["items"] if "error" in entry}
    assert {i: (e["status"], e["field"]) for i, e in errors.items()} == {i: (s, f) for i, _, s, f in BAD}
    assert all(e["detail"] for e in errors.values())
    assert "E.164" in errors[42]["detail"]
    assert errors[10]["errors"] == [{"field": "colour", "message": "Extra inputs are not permitted"}]
    accepted = [entry for entry in body["items"] if "id" in entry]
    assert len({entry["id"] for entry in accepted}) == len(accepted)
    statuses = Counter(entry["status"] for entry in accepted)
    assert statuses == {"queued": len(accepted) - 10, "pending_approval": 10}

    # The database holds exactly what the answer says, with an audit entry and an event per message.
    assert await scalar(rt, select(func.count()).select_from(Message)) == len(accepted)
    async with rt.sessions() as session:
        by_status = dict(
            (await session.execute(select(Message.status, func.count()).group_by(Message.status))).all()
        )
        accepted_audit = (
            await session.execute(select(func.count()).where(AuditEntry.action == "message.accepted"))
        ).scalar_one()
        blocked_audit = (
            await session.execute(select(func.count()).where(AuditEntry.action == "message.blocked"))
        ).scalar_one()
        events = dict((await session.execute(select(Event.type, func.count()).group_by(Event.type))).all())
        rendered = (
            await session.execute(select(Message.content).where(Message.id == body["items"][100]["id"]))
        ).scalar_one()
    assert by_status == statuses
    assert accepted_audit == len(accepted)
    assert blocked_audit == 1  # the STUDENT's refused item is on record, like a refused single send
    assert events == {"message.queued": statuses["queued"], "approval.requested": 10, "message.blocked": 1}
    assert rendered.startswith("Hi Ada, today is 20")


@pytest.mark.usefixtures("agents")
async def test_accepted_items_are_delivered_by_the_worker(
    client: httpx.AsyncClient, auth: dict[str, str], worker: Worker
) -> None:
    body = await bulk(client, auth, [item(i) for i in range(30)])
    assert body["accepted"] == 30
    assert await worker.drain() == 30
    inbox = (await client.get("/api/v1/devinbox?platform=sms&limit=100", headers=auth)).json()["items"]
    assert sorted(m["message_id"] for m in inbox) == sorted(entry["id"] for entry in body["items"])


@pytest.mark.usefixtures("agents")
async def test_item_idempotency_keys_replay_conflict_and_are_per_tenant(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    keyed = [item(i, idempotency_key=f"order-{i}") for i in range(5)]
    first = await bulk(client, auth, [*keyed, item(5)])
    assert (first["accepted"], first["replayed"]) == (6, 0)
    ids = [entry["id"] for entry in first["items"]]

    # The same request again: keyed items answer their original ids; the unkeyed one is a new message.
    again = await bulk(client, auth, [*keyed, item(5)])
    assert (again["accepted"], again["rejected"], again["replayed"]) == (6, 0, 5)
    assert [entry["id"] for entry in again["items"][:5]] == ids[:5]
    assert all(entry["replayed"] is True for entry in again["items"][:5])
    assert again["items"][5]["id"] != ids[5]
    assert await scalar(rt, select(func.count()).select_from(Message)) == 7

    mixed = await bulk(client, auth, [
        item(0, content="another text", idempotency_key="order-0"),  # the key was used for another item
        item(6, idempotency_key="dup"),
        item(7, idempotency_key="dup"),  # the same key twice in one request
        item(8, recipient_id="+1", idempotency_key="order-8"),  # fails: its key is not used up
    ])  # fmt: skip
    assert (mixed["accepted"], mixed["rejected"]) == (1, 3)
    errors = {entry["index"]: entry["error"] for entry in mixed["items"] if "error" in entry}
    assert {i: (e["status"], e["field"]) for i, e in errors.items()} == {
        0: (409, "idempotency_key"), 2: (409, "idempotency_key"), 3: (422, "recipient_id"),
    }  # fmt: skip
    assert "item 1" in errors[2]["detail"]
    retried = await bulk(client, auth, [item(8, idempotency_key="order-8")])
    assert (retried["accepted"], retried["replayed"]) == (1, 0)

    # Keys belong to a tenant: another tenant's "order-0" is its own new message.
    other = await new_tenant(rt, "globex")
    await make_agent(client, other, "bot", "AUTONOMOUS")
    theirs = await bulk(client, other, [keyed[0]])
    assert (theirs["accepted"], theirs["replayed"]) == (1, 0)
    assert theirs["items"][0]["id"] != ids[0]

    # A key used by a single send is bound to that request: a bulk item cannot replay it, and the reverse.
    single = await client.post(
        "/api/v1/messaging/proactive/send",
        json=send_body("bot"),
        headers={**auth, "Idempotency-Key": "single-1"},
    )
    assert single.status_code == 201, single.text
    crossed = await bulk(client, auth, [item(9, idempotency_key="single-1")])
    assert crossed["items"][0]["error"]["status"] == 409
    reverse = await client.post(
        "/api/v1/messaging/proactive/send",
        json=send_body("bot"),
        headers={**auth, "Idempotency-Key": "order-1"},
    )
    assert reverse.status_code == 409, reverse.text


@pytest.mark.usefixtures("agents")
async def test_request_limits_and_malformed_bodies(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    too_many = await client.post(BULK, json={"messages": [item(0)] * 10_001}, headers=auth, timeout=60)
    assert too_many.status_code == 413, too_many.text
    assert too_many.headers["content-type"] == "application/problem+json"
    assert too_many.json()["errors"] == [{"field": "messages", "message": too_many.json()["detail"]}]
    assert "10000" in too_many.json()["detail"]

    for payload, field in (
        ({"messages": []}, "messages"),
        ({}, "messages"),
        ({"messages": "x"}, "messages"),
        ([item(0)], "messages"),
        ({"messages": [item(0)], "defaults": {}}, "defaults"),
    ):
        response = await client.post(BULK, json=payload, headers=auth)
        assert response.status_code == 422, (payload, response.text)
        assert [e["field"] for e in response.json()["errors"]] == [field]
    broken = await client.post(
        BULK, content=b"{not json", headers={**auth, "content-type": "application/json"}
    )
    assert broken.status_code == 422
    assert broken.json()["errors"][0]["field"] == "body"
    assert (await client.post(BULK, json={"messages": [item(0)]})).status_code == 401


@pytest.mark.usefixtures("agents")
async def test_tenants_see_only_their_own_bulk_messages(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    other = await new_tenant(rt, "globex")
    await make_agent(client, other, "bot", "AUTONOMOUS")
    contact = await client.post(
        "/api/v1/contacts", json={"name": "Ada", "addresses": {"sms": "+447700900123"}}, headers=auth
    )
    assert contact.status_code == 201, contact.text
    contact_id = contact.json()["id"]

    ours = await bulk(
        client, auth, [item(1), item(2, platform=None, recipient_id=None, contact_id=contact_id)]
    )
    assert ours["accepted"] == 2
    message_id = ours["items"][0]["id"]
    theirs = await bulk(client, other, [item(3, platform=None, recipient_id=None, contact_id=contact_id)])
    assert theirs["items"][0]["error"]["field"] == "contact_id"  # our contact is unknown to them
    assert (await client.get(f"/api/v1/messages/{message_id}", headers=other)).status_code == 404
    assert (await client.get(f"/api/v1/messages/{message_id}/report", headers=other)).status_code == 404
    history = (await client.get("/api/v1/messaging/proactive/history", headers=other)).json()["items"]
    assert history == []


@pytest.mark.usefixtures("agents")
async def test_lookups_are_made_once_per_request_not_per_item(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    """A configured channel (circuit state), a named channel and contacts: each read once for 1,000 items."""
    use_transport(rt, lambda _: httpx.Response(200, json={"id": "remote"}))
    channel = await webhook_channel(client, auth, platform="sms")
    contacts = []
    for n in range(3):
        response = await client.post(
            "/api/v1/contacts", json={"name": f"c{n}", "addresses": {"sms": f"+44770090012{n}"}}, headers=auth
        )
        contacts.append(response.json()["id"])
    items = [
        item(i, channel_id=channel["id"]) if i % 2 else item(i, platform=None, recipient_id=None, contact_id=contacts[i % 3])
        for i in range(1_000)
    ]  # fmt: skip
    await bulk(client, auth, [item(0)])  # warm the key cache and the agent's level
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(rt.engine.sync_engine, "before_cursor_execute", count)
    try:
        body = await bulk(client, auth, items)
    finally:
        event.remove(rt.engine.sync_engine, "before_cursor_execute", count)
    assert body["accepted"] == 1_000, [e for e in body["items"] if "error" in e][:3]
    assert len(statements) < 25, statements


async def test_large_batches_commit_and_roll_back_with_the_transaction(rt: Runtime) -> None:
    """Batches past the COPY threshold (PostgreSQL's COPY path) belong to the caller's transaction, and columns a
    row leaves out get their defaults on both paths."""
    table = AuditEntry.__table__
    assert isinstance(table, Table)
    rows = [
        {"id": f"aud_{i:06d}", "tenant_id": "ten_x", "actor": "test", "action": "test.row", "object_type": "t",
         "object_id": str(i), "detail": {"n": i}}
        for i in range(COPY_THRESHOLD + 5)
    ]  # fmt: skip

    async def insert_then_fail() -> None:
        async with rt.sessions.begin() as session:
            await insert_rows(session, table, rows)
            raise RuntimeError("roll back")

    with pytest.raises(RuntimeError, match="roll back"):
        await insert_then_fail()
    assert await scalar(rt, select(func.count()).select_from(AuditEntry)) == 0
    async with rt.sessions.begin() as session:
        await insert_rows(session, table, rows)
    async with rt.sessions() as session:
        stored = (await session.execute(select(AuditEntry).where(AuditEntry.object_id == "7"))).scalar_one()
    assert (stored.detail, stored.needs_review, stored.created_at.tzinfo is not None) == (
        {"n": 7},
        False,
        True,
    )
    assert await scalar(rt, select(func.count()).select_from(AuditEntry)) == len(rows)


@pytest.mark.postgres_only
@pytest.mark.usefixtures("agents")
async def test_concurrent_requests_with_the_same_keys_create_each_message_once(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    items = [item(i, idempotency_key=f"k-{i}") for i in range(300)]
    answers = await asyncio.gather(*(bulk(client, auth, items[::step]) for step in (1, -1, 1)))
    assert await scalar(rt, select(func.count()).select_from(Message)) == 300
    ids = {entry["id"] for answer in answers for entry in answer["items"]}
    assert len(ids) == 300  # every answer names the one message of each key
    assert sum(answer["replayed"] for answer in answers) == 600
