"""``Idempotency-Key``: the same key and body replay the first response; another body is a 409; keys are per
tenant; a failed request does not use up its key; concurrent retries create one object."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text

from herald.admin.tenants import create_api_key, get_or_create_tenant
from herald.runtime import Runtime
from herald.storage.models import Agent, IdempotencyRecord, Message
from tests.conftest import make_agent, new_tenant, send_body

PROACTIVE = "/api/v1/messaging/proactive"
SEND = f"{PROACTIVE}/send"
SCHEDULE = f"{PROACTIVE}/schedule"


def keyed(headers: dict[str, str], key: str) -> dict[str, str]:
    return {**headers, "Idempotency-Key": key}


async def count(rt: Runtime, model: type[Any]) -> int:
    async with rt.sessions() as session:
        total: int = (await session.execute(select(func.count()).select_from(model))).scalar_one()
    return total


async def history(client: httpx.AsyncClient, headers: dict[str, str]) -> list[str]:
    response = await client.get(f"{PROACTIVE}/history", headers=headers)
    assert response.status_code == 200, response.text
    return [m["id"] for m in response.json()["items"]]


def assert_conflict_on_key(response: httpx.Response) -> None:
    assert response.status_code == 409, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 409
    assert problem["title"]
    assert problem["detail"]
    assert [e["field"] for e in problem["errors"]] == ["Idempotency-Key"]
    assert "idempotent-replayed" not in response.headers


@pytest.fixture
async def agent(client: httpx.AsyncClient, auth: dict[str, str]) -> str:
    await make_agent(client, auth, "agent_idem", "AUTONOMOUS")
    return "agent_idem"


# --- messages ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", [SEND, SCHEDULE])
async def test_same_key_and_body_replays_the_first_response(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, agent: str, endpoint: str
) -> None:
    body = send_body(agent, scheduled_for="2030-01-01T00:00:00Z")
    first = await client.post(endpoint, json=body, headers=keyed(auth, "order-42"))
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    for _ in range(2):
        again = await client.post(endpoint, json=body, headers=keyed(auth, "order-42"))
        assert again.status_code == 201, again.text
        assert again.headers["idempotent-replayed"] == "true"
        assert again.json() == first.json()
    assert await history(client, auth) == [first.json()["id"]]
    assert await count(rt, Message) == 1
    accepted = (await client.get("/api/v1/audit?action=message.accepted", headers=auth)).json()["items"]
    assert [e["object_id"] for e in accepted] == [first.json()["id"]]


async def test_replay_answers_as_first_time_even_after_state_changed(
    client: httpx.AsyncClient, auth: dict[str, str], agent: str
) -> None:
    body = send_body(agent, scheduled_for="2030-01-01T00:00:00Z")
    first = await client.post(SEND, json=body, headers=keyed(auth, "k-state"))
    cancelled = await client.post(f"/api/v1/messages/{first.json()['id']}/cancel", headers=auth)
    assert cancelled.json()["status"] == "cancelled"
    # Even if the agent is now blocked, the retry is answered with the recorded 201 and creates nothing.
    await client.patch(f"/api/v1/agents/{agent}", json={"maturity_level": "STUDENT"}, headers=auth)
    again = await client.post(SEND, json=body, headers=keyed(auth, "k-state"))
    assert again.status_code == 201, again.text
    assert again.json() == first.json()
    assert again.json()["status"] == "queued"
    assert await history(client, auth) == [first.json()["id"]]


async def test_equivalent_bodies_are_the_same_request(
    client: httpx.AsyncClient, auth: dict[str, str], agent: str
) -> None:
    """Key order, defaults spelled out, and normalised values do not make a body different."""
    first = await client.post(SEND, json=send_body(agent, priority="high"), headers=keyed(auth, "k-eq"))
    reordered = dict(reversed(list(send_body(agent, priority="HIGH", timezone="UTC").items())))
    again = await client.post(SEND, json=reordered, headers=keyed(auth, "k-eq"))
    assert again.status_code == 201, again.text
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]


async def test_same_key_with_another_body_is_409(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, agent: str
) -> None:
    first = await client.post(SEND, json=send_body(agent, content="one"), headers=keyed(auth, "k-1"))
    assert first.status_code == 201, first.text
    for changed in (
        send_body(agent, content="two"),
        send_body(agent, content="one", recipient_id="C99999"),
        send_body(agent, content="one", priority="LOW"),
    ):
        assert_conflict_on_key(await client.post(SEND, json=changed, headers=keyed(auth, "k-1")))
    assert await history(client, auth) == [first.json()["id"]]
    assert await count(rt, Message) == 1


async def test_same_key_on_another_endpoint_is_409(
    client: httpx.AsyncClient, auth: dict[str, str], agent: str
) -> None:
    body = send_body(agent, scheduled_for="2030-01-01T00:00:00Z")
    first = await client.post(SEND, json=body, headers=keyed(auth, "k-ep"))
    assert first.status_code == 201, first.text
    assert_conflict_on_key(await client.post(SCHEDULE, json=body, headers=keyed(auth, "k-ep")))
    agent_body = {"id": "agent_other", "maturity_level": "INTERN"}
    assert_conflict_on_key(await client.post("/api/v1/agents", json=agent_body, headers=keyed(auth, "k-ep")))
    assert (await client.get("/api/v1/agents/agent_other", headers=auth)).status_code == 404


async def test_without_a_key_every_request_creates(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, agent: str
) -> None:
    ids = {(await client.post(SEND, json=send_body(agent), headers=auth)).json()["id"] for _ in range(2)}
    assert len(ids) == 2
    assert await count(rt, IdempotencyRecord) == 0


async def test_tenants_use_the_same_key_independently(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, agent: str
) -> None:
    other = await new_tenant(rt, "other")
    await make_agent(client, other, agent, "AUTONOMOUS")
    a = await client.post(SEND, json=send_body(agent, content="for A"), headers=keyed(auth, "shared-key"))
    b = await client.post(SEND, json=send_body(agent, content="for B"), headers=keyed(other, "shared-key"))
    assert a.status_code == b.status_code == 201
    assert "idempotent-replayed" not in b.headers
    assert a.json()["id"] != b.json()["id"]
    assert b.json()["content"] == "for B"
    # Even the identical body is a fresh request for the other tenant, and each replays its own.
    b_same = await client.post(SEND, json=send_body(agent, content="for A"), headers=keyed(other, "k-same"))
    a_same = await client.post(SEND, json=send_body(agent, content="for A"), headers=keyed(auth, "k-same"))
    assert "idempotent-replayed" not in a_same.headers
    assert a_same.json()["id"] != b_same.json()["id"]
    a_replay = await client.post(
        SEND, json=send_body(agent, content="for A"), headers=keyed(auth, "shared-key")
    )
    assert a_replay.json()["id"] == a.json()["id"]
    assert set(await history(client, auth)) == {a.json()["id"], a_same.json()["id"]}
    assert set(await history(client, other)) == {b.json()["id"], b_same.json()["id"]}


async def test_a_failed_request_does_not_use_up_its_key(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    body = send_body("agent_late")
    # A key that may not register agents: with it, an unknown agent stays a 422 in development too.
    async with rt.sessions.begin() as session:
        secret = await create_api_key(session, await get_or_create_tenant(session, "acme"), is_admin=False)
    sender = {"Authorization": f"Bearer {secret}"}
    failed = await client.post(SEND, json=body, headers=keyed(sender, "k-retry"))
    assert failed.status_code == 422, failed.text  # no such agent yet
    await make_agent(client, auth, "agent_late", "STUDENT")
    blocked = await client.post(SEND, json=body, headers=keyed(sender, "k-retry"))
    assert blocked.status_code == 403, blocked.text
    await client.patch("/api/v1/agents/agent_late", json={"maturity_level": "AUTONOMOUS"}, headers=auth)
    created = await client.post(SEND, json=body, headers=keyed(sender, "k-retry"))
    assert created.status_code == 201, created.text
    assert "idempotent-replayed" not in created.headers
    assert await history(client, auth) == [created.json()["id"]]


async def test_key_length_is_checked(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, agent: str
) -> None:
    for key in ("", "k" * 201):
        response = await client.post(SEND, json=send_body(agent), headers=keyed(auth, key))
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert [e["field"] for e in response.json()["errors"]] == ["Idempotency-Key"]
    assert await count(rt, Message) == 0
    longest = await client.post(SEND, json=send_body(agent), headers=keyed(auth, "k" * 200))
    assert longest.status_code == 201, longest.text


# --- agents ------------------------------------------------------------------------------------------------


async def test_agent_creation_is_idempotent(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    body = {"id": "agent_k", "name": "K", "maturity_level": "SUPERVISED"}
    first = await client.post("/api/v1/agents", json=body, headers=keyed(auth, "agent-key"))
    assert first.status_code == 201, first.text
    again = await client.post("/api/v1/agents", json=body, headers=keyed(auth, "agent-key"))
    assert again.status_code == 201, again.text  # a replay, not "already exists"
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    # Without the key the same body is a genuine duplicate.
    duplicate = await client.post("/api/v1/agents", json=body, headers=auth)
    assert duplicate.status_code == 409, duplicate.text
    assert [e["field"] for e in duplicate.json()["errors"]] == ["id"]
    changed = {**body, "maturity_level": "AUTONOMOUS"}
    assert_conflict_on_key(
        await client.post("/api/v1/agents", json=changed, headers=keyed(auth, "agent-key"))
    )
    assert (await client.get("/api/v1/agents/agent_k", headers=auth)).json()["maturity_level"] == "SUPERVISED"
    assert await count(rt, Agent) == 1
    created = (await client.get("/api/v1/audit?action=agent.created", headers=auth)).json()["items"]
    assert [e["object_id"] for e in created] == ["agent_k"]


async def test_channel_creation_is_idempotent(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    body = {"platform": "slack", "provider": "devinbox", "name": "dev"}
    first = await client.post("/api/v1/channels", json=body, headers=keyed(auth, "chan"))
    again = await client.post("/api/v1/channels", json=body, headers=keyed(auth, "chan"))
    assert first.status_code == again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert [c["id"] for c in (await client.get("/api/v1/channels", headers=auth)).json()["items"]] == [
        first.json()["id"]
    ]
    assert_conflict_on_key(
        await client.post("/api/v1/channels", json={**body, "name": "other"}, headers=keyed(auth, "chan"))
    )


# --- concurrent retries ------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def racing(rt: Runtime, table: str, writers: int) -> AsyncIterator[None]:
    """On PostgreSQL, hold writes to ``table`` until ``writers`` requests wait on a lock, then let them race.

    Every request has then read "no such key" before any commits, which is the race a client's quick retry
    causes. On SQLite (BEGIN IMMEDIATE serialises writers) this only runs the requests concurrently.
    """
    if rt.dialect != "postgresql":
        yield
        return
    async with rt.engine.connect() as holder:
        await holder.execute(text(f"LOCK TABLE {table} IN EXCLUSIVE MODE"))
        yield
        async with rt.engine.connect() as probe:
            for _ in range(250):
                waiting = (
                    await probe.execute(
                        text(
                            "SELECT count(*) FROM pg_stat_activity "
                            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                        )
                    )
                ).scalar_one()
                await probe.rollback()  # statistics are a snapshot per transaction: take a fresh one
                if waiting >= writers:
                    break
                await asyncio.sleep(0.02)
        await holder.rollback()


async def test_concurrent_retries_of_a_send_create_one_message(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, agent: str
) -> None:
    body = send_body(agent, content="exactly once")
    headers = keyed(auth, "k-race")
    async with racing(rt, "messages", writers=3):
        tasks = [asyncio.create_task(client.post(SEND, json=body, headers=headers)) for _ in range(3)]
    responses = await asyncio.gather(*tasks)
    assert [r.status_code for r in responses] == [201, 201, 201], [r.text for r in responses]
    assert len({r.json()["id"] for r in responses}) == 1
    assert sorted(r.headers.get("idempotent-replayed", "") for r in responses) == ["", "true", "true"]
    assert await count(rt, Message) == 1
    assert await count(rt, IdempotencyRecord) == 1


@pytest.mark.postgres_only
async def test_concurrent_retries_of_an_agent_create_replay(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    body = {"id": "agent_race", "maturity_level": "INTERN"}
    headers = keyed(auth, "k-agent-race")
    async with racing(rt, "agents", writers=2):
        tasks = [
            asyncio.create_task(client.post("/api/v1/agents", json=body, headers=headers)) for _ in range(2)
        ]
    responses = await asyncio.gather(*tasks)
    assert [r.status_code for r in responses] == [201, 201], [r.text for r in responses]
    assert sorted(r.headers.get("idempotent-replayed", "") for r in responses) == ["", "true"]
    assert await count(rt, Agent) == 1
