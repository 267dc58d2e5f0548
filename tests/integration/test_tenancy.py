"""Tenant isolation (another tenant's objects do not exist: 404, never 403) and write-only channel credentials."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from herald.pipeline.worker import Worker
from herald.runtime import Runtime
from herald.storage.models import Channel as ChannelRow
from herald.storage.models import IdempotencyRecord
from tests.conftest import in_production, make_agent, new_tenant, send_body

PROACTIVE = "/api/v1/messaging/proactive"
SEND = f"{PROACTIVE}/send"
SECRET = "whsec_c3VwZXJzZWNyZXR2YWx1ZTEyMzQ1Njc4OTA="  # base64 of supersecretvalue1234567890
HOOK_URL = "http://127.0.0.1:9/hook"
WEBHOOK_CHANNEL = {
    "platform": "webhook",
    "provider": "webhook",
    "name": "ops hook",
    "credentials": {"url": HOOK_URL, "secret": SECRET},
}


@dataclass
class TenantA:
    pending: str  # an INTERN message awaiting approval
    queued: str  # a scheduled AUTONOMOUS message, still cancellable
    sent: str  # an AUTONOMOUS message delivered to the dev inbox
    channel: str  # a devinbox channel for slack


@pytest.fixture
async def other(rt: Runtime) -> dict[str, str]:
    return await new_tenant(rt, "other")


@pytest.fixture
async def tenant_a(client: httpx.AsyncClient, auth: dict[str, str], worker: Worker) -> TenantA:
    await make_agent(client, auth, "agent_a_intern", "INTERN")
    await make_agent(client, auth, "agent_a_auto", "AUTONOMOUS")
    channel = await client.post(
        "/api/v1/channels",
        json={"platform": "slack", "provider": "devinbox", "name": "a-slack"},
        headers=auth,
    )
    assert channel.status_code == 201, channel.text
    pending = await client.post(SEND, json=send_body("agent_a_intern", content="pending for A"), headers=auth)
    sent = await client.post(SEND, json=send_body("agent_a_auto", content="sent by A"), headers=auth)
    assert await worker.drain() == 1
    queued = await client.post(
        SEND,
        json=send_body("agent_a_auto", content="later for A", scheduled_for="2030-01-01T00:00:00Z"),
        headers=auth,
    )
    for response in (pending, sent, queued):
        assert response.status_code == 201, response.text
    return TenantA(pending.json()["id"], queued.json()["id"], sent.json()["id"], channel.json()["id"])


def assert_not_found(response: httpx.Response) -> None:
    assert response.status_code == 404, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 404


async def status_of(client: httpx.AsyncClient, headers: dict[str, str], message_id: str) -> str:
    response = await client.get(f"/api/v1/messages/{message_id}", headers=headers)
    assert response.status_code == 200, response.text
    status: str = response.json()["status"]
    return status


# --- messages ----------------------------------------------------------------------------------------------


async def test_other_tenant_cannot_read_or_decide_on_a_message(
    client: httpx.AsyncClient, auth: dict[str, str], other: dict[str, str], tenant_a: TenantA
) -> None:
    for message_id in (tenant_a.pending, tenant_a.queued, tenant_a.sent):
        assert_not_found(await client.get(f"/api/v1/messages/{message_id}", headers=other))
        assert_not_found(
            await client.post(
                f"{PROACTIVE}/approve/{message_id}", json={"approver_user_id": "mallory"}, headers=other
            )
        )
        assert_not_found(
            await client.post(f"{PROACTIVE}/reject/{message_id}", json={"reason": "x"}, headers=other)
        )
        assert_not_found(await client.post(f"/api/v1/messages/{message_id}/cancel", headers=other))
    # Nothing changed for A.
    assert await status_of(client, auth, tenant_a.pending) == "pending_approval"
    assert await status_of(client, auth, tenant_a.queued) == "queued"
    assert await status_of(client, auth, tenant_a.sent) == "sent"
    audit_a = (await client.get("/api/v1/audit", headers=auth)).json()["items"]
    actions = {e["action"] for e in audit_a}
    assert "message.accepted" in actions
    assert actions.isdisjoint({"message.approved", "message.rejected", "message.cancelled"})
    assert (await client.get("/api/v1/audit", headers=other)).json()["items"] == []


async def test_not_found_for_another_tenant_reads_like_not_found_at_all(
    client: httpx.AsyncClient, other: dict[str, str], tenant_a: TenantA
) -> None:
    """The answer for A's id and for an id nobody has differ only in the id: no existence oracle."""
    theirs = await client.get(f"/api/v1/messages/{tenant_a.pending}", headers=other)
    nobody = await client.get("/api/v1/messages/msg_nobody", headers=other)
    assert theirs.status_code == nobody.status_code == 404
    assert theirs.json()["title"] == nobody.json()["title"]
    assert theirs.json()["detail"].replace(tenant_a.pending, "X") == nobody.json()["detail"].replace(
        "msg_nobody", "X"
    )


async def test_owner_can_still_decide_after_the_other_tenant_tried(
    client: httpx.AsyncClient, auth: dict[str, str], other: dict[str, str], tenant_a: TenantA
) -> None:
    await client.post(f"{PROACTIVE}/approve/{tenant_a.pending}", headers=other)
    approved = await client.post(
        f"{PROACTIVE}/approve/{tenant_a.pending}", json={"approver_user_id": "alice"}, headers=auth
    )
    assert approved.status_code == 200, approved.text
    assert approved.json()["approved_by"] == "alice"
    cancelled = await client.post(f"/api/v1/messages/{tenant_a.queued}/cancel", headers=auth)
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"


async def test_listings_show_only_the_callers_tenant(
    client: httpx.AsyncClient, auth: dict[str, str], other: dict[str, str], tenant_a: TenantA
) -> None:
    paths = [
        f"{PROACTIVE}/history",
        f"{PROACTIVE}/queue",
        "/api/v1/devinbox",
        "/api/v1/audit",
        "/api/v1/agents",
        "/api/v1/channels",
    ]
    for path in paths:
        mine = await client.get(path, headers=auth)
        assert mine.status_code == 200, mine.text
        assert mine.json()["items"], f"control: A sees its own items on {path}"
        theirs = await client.get(path, headers=other)
        assert theirs.status_code == 200, theirs.text
        assert theirs.json() == {"items": [], "next_cursor": None}, path


async def test_listing_filters_do_not_cross_tenants(
    client: httpx.AsyncClient, other: dict[str, str], tenant_a: TenantA
) -> None:
    queries = [
        f"{PROACTIVE}/history?agent_id=agent_a_auto",
        f"{PROACTIVE}/history?status=sent",
        f"{PROACTIVE}/history?recipient_id=C12345",
        f"{PROACTIVE}/queue?agent_id=agent_a_intern",
        f"/api/v1/audit?object_id={tenant_a.pending}",
        "/api/v1/audit?action=message.accepted",
        "/api/v1/devinbox?platform=slack&recipient_id=C12345",
        "/api/v1/channels?platform=slack",
    ]
    for query in queries:
        response = await client.get(query, headers=other)
        assert response.status_code == 200, response.text
        assert response.json()["items"] == [], query


async def test_a_cursor_from_another_tenant_reveals_nothing(
    client: httpx.AsyncClient, other: dict[str, str], tenant_a: TenantA
) -> None:
    for path in (f"{PROACTIVE}/history", "/api/v1/audit", "/api/v1/devinbox"):
        response = await client.get(f"{path}?cursor=zzzzzzzz", headers=other)
        assert response.status_code == 200, response.text
        assert response.json()["items"] == [], path


async def test_both_tenants_see_their_own_messages_only(
    client: httpx.AsyncClient, auth: dict[str, str], other: dict[str, str], tenant_a: TenantA, worker: Worker
) -> None:
    await make_agent(client, other, "agent_b", "AUTONOMOUS")
    b_message = await client.post(SEND, json=send_body("agent_b", content="from B"), headers=other)
    assert b_message.status_code == 201, b_message.text
    assert await worker.drain() == 1
    b_history = (await client.get(f"{PROACTIVE}/history", headers=other)).json()["items"]
    assert [m["id"] for m in b_history] == [b_message.json()["id"]]
    a_history = (await client.get(f"{PROACTIVE}/history", headers=auth)).json()["items"]
    assert {m["id"] for m in a_history} == {tenant_a.pending, tenant_a.queued, tenant_a.sent}
    b_inbox = (await client.get("/api/v1/devinbox", headers=other)).json()["items"]
    assert [i["content"] for i in b_inbox] == ["from B"]
    a_inbox = (await client.get("/api/v1/devinbox", headers=auth)).json()["items"]
    assert [i["content"] for i in a_inbox] == ["sent by A"]
    assert_not_found(await client.get(f"/api/v1/messages/{b_message.json()['id']}", headers=auth))


# --- agents and channels -----------------------------------------------------------------------------------


async def test_other_tenant_cannot_read_or_change_an_agent(
    client: httpx.AsyncClient, auth: dict[str, str], other: dict[str, str], tenant_a: TenantA, rt: Runtime
) -> None:
    assert_not_found(await client.get("/api/v1/agents/agent_a_auto", headers=other))
    assert_not_found(
        await client.patch("/api/v1/agents/agent_a_auto", json={"maturity_level": "STUDENT"}, headers=other)
    )
    agent = (await client.get("/api/v1/agents/agent_a_auto", headers=auth)).json()
    assert agent["maturity_level"] == "AUTONOMOUS"
    # B cannot speak as A's agent either: for B it does not exist, a 422 in production...
    development = rt.settings
    in_production(rt)
    response = await client.post(SEND, json=send_body("agent_a_auto"), headers=other)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "agent_id"
    # ...while development registers B's own agent of that name, leaving A's as it was.
    rt.settings = development
    response = await client.post(SEND, json=send_body("agent_a_auto"), headers=other)
    assert response.status_code == 201, response.text
    theirs = (await client.get("/api/v1/agents/agent_a_auto", headers=other)).json()
    assert theirs["maturity_level"] == "SUPERVISED"
    assert (await client.get("/api/v1/agents/agent_a_auto", headers=auth)).json()[
        "maturity_level"
    ] == "AUTONOMOUS"


async def test_other_tenant_cannot_read_delete_or_use_a_channel(
    client: httpx.AsyncClient, auth: dict[str, str], other: dict[str, str], tenant_a: TenantA
) -> None:
    assert_not_found(await client.get(f"/api/v1/channels/{tenant_a.channel}", headers=other))
    assert_not_found(await client.delete(f"/api/v1/channels/{tenant_a.channel}", headers=other))
    assert (await client.get(f"/api/v1/channels/{tenant_a.channel}", headers=auth)).status_code == 200
    await make_agent(client, other, "agent_b", "AUTONOMOUS")
    response = await client.post(SEND, json=send_body("agent_b", channel_id=tenant_a.channel), headers=other)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "channel_id"
    assert (await client.get(f"{PROACTIVE}/history", headers=other)).json()["items"] == []


async def test_same_agent_id_in_two_tenants_is_two_agents(
    client: httpx.AsyncClient, auth: dict[str, str], other: dict[str, str]
) -> None:
    await make_agent(client, auth, "shared", "AUTONOMOUS")
    await make_agent(client, other, "shared", "STUDENT")  # no 409: ids are per tenant
    assert (await client.get("/api/v1/agents/shared", headers=auth)).json()["maturity_level"] == "AUTONOMOUS"
    assert (await client.get("/api/v1/agents/shared", headers=other)).json()["maturity_level"] == "STUDENT"

    # Governance (and its cache) is per tenant: A's level never leaks into B's decision or back.
    assert (await client.post(SEND, json=send_body("shared"), headers=auth)).status_code == 201
    assert (await client.post(SEND, json=send_body("shared"), headers=other)).status_code == 403
    patched = await client.patch(
        "/api/v1/agents/shared", json={"maturity_level": "AUTONOMOUS"}, headers=other
    )
    assert patched.status_code == 200, patched.text
    await client.patch("/api/v1/agents/shared", json={"maturity_level": "STUDENT"}, headers=auth)
    assert (await client.post(SEND, json=send_body("shared"), headers=auth)).status_code == 403
    assert (await client.post(SEND, json=send_body("shared"), headers=other)).status_code == 201

    a_changes = (await client.get("/api/v1/audit?action=agent.updated", headers=auth)).json()["items"]
    b_changes = (await client.get("/api/v1/audit?action=agent.updated", headers=other)).json()["items"]
    assert [e["detail"]["maturity_level"] for e in a_changes] == [["AUTONOMOUS", "STUDENT"]]
    assert [e["detail"]["maturity_level"] for e in b_changes] == [["STUDENT", "AUTONOMOUS"]]
    assert len((await client.get(f"{PROACTIVE}/history", headers=auth)).json()["items"]) == 1
    assert len((await client.get(f"{PROACTIVE}/history", headers=other)).json()["items"]) == 1


# --- credentials -------------------------------------------------------------------------------------------


def assert_no_secret(response: httpx.Response) -> None:
    assert SECRET not in response.text, response.request.url
    assert SECRET not in str(response.headers)


async def test_channel_credentials_are_never_returned(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    created = await client.post("/api/v1/channels", json=WEBHOOK_CHANNEL, headers=auth)
    assert created.status_code == 201, created.text
    channel = created.json()
    assert channel["credentials_set"] == ["secret", "url"]
    assert "credentials" not in channel
    assert HOOK_URL not in created.text  # the URL is a credential too (it often embeds a token)
    assert_no_secret(created)

    responses = [
        await client.get(f"/api/v1/channels/{channel['id']}", headers=auth),
        await client.get("/api/v1/channels", headers=auth),
        await client.get("/api/v1/channels?platform=webhook", headers=auth),
        await client.get("/api/v1/audit", headers=auth),
        await client.get(f"/api/v1/audit?object_id={channel['id']}", headers=auth),
    ]
    for response in responses:
        assert response.status_code == 200, response.text
        assert_no_secret(response)
        assert HOOK_URL not in response.text
    assert responses[0].json()["credentials_set"] == ["secret", "url"]
    assert [c["credentials_set"] for c in responses[1].json()["items"]] == [["secret", "url"]]


async def test_idempotent_replay_of_a_channel_returns_no_credentials(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    headers = {**auth, "Idempotency-Key": "chan-1"}
    first = await client.post("/api/v1/channels", json=WEBHOOK_CHANNEL, headers=headers)
    replay = await client.post("/api/v1/channels", json=WEBHOOK_CHANNEL, headers=headers)
    assert first.status_code == replay.status_code == 201
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json() == first.json()
    assert_no_secret(first)
    assert_no_secret(replay)
    async with rt.sessions() as session:
        records = (await session.execute(select(IdempotencyRecord))).scalars().all()
    assert [r.key for r in records] == ["chan-1"]
    assert SECRET not in repr(records[0].response)
    assert SECRET not in records[0].request_hash


async def test_credential_errors_do_not_echo_the_secret(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    bad_bodies: list[dict[str, Any]] = [
        {**WEBHOOK_CHANNEL, "credentials": {"url": "not a url", "secret": SECRET}},
        {**WEBHOOK_CHANNEL, "credentials": {"url": HOOK_URL, "secret": SECRET, "token": SECRET}},
        {**WEBHOOK_CHANNEL, "credentials": {"url": HOOK_URL, "secret": [SECRET]}},
        {**WEBHOOK_CHANNEL, "platform": "myspace"},
        {**WEBHOOK_CHANNEL, "provider": "nope"},
        {**WEBHOOK_CHANNEL, "name": ""},
    ]
    for body in bad_bodies:
        response = await client.post("/api/v1/channels", json=body, headers=auth)
        assert response.status_code == 422, response.text
        assert_no_secret(response)
    assert (await client.get("/api/v1/channels", headers=auth)).json()["items"] == []


async def test_credentials_are_encrypted_at_rest(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    created = await client.post("/api/v1/channels", json=WEBHOOK_CHANNEL, headers=auth)
    assert created.status_code == 201, created.text
    async with rt.sessions() as session:
        raw = (await session.execute(select(ChannelRow.credentials))).scalar_one()
    stored = bytes(raw)
    assert SECRET.encode() not in stored
    assert HOOK_URL.encode() not in stored
    assert rt.credentials.open(stored) == {"url": HOOK_URL, "secret": SECRET}


async def test_other_tenant_sees_no_credentials_names_or_channel(
    client: httpx.AsyncClient, auth: dict[str, str], other: dict[str, str]
) -> None:
    created = (await client.post("/api/v1/channels", json=WEBHOOK_CHANNEL, headers=auth)).json()
    assert_not_found(await client.get(f"/api/v1/channels/{created['id']}", headers=other))
    listed = await client.get("/api/v1/channels", headers=other)
    assert listed.json()["items"] == []
    assert created["id"] not in listed.text


async def test_only_admin_keys_register_agents_or_change_maturity(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    from herald.admin.tenants import create_api_key, get_or_create_tenant

    await make_agent(client, auth, "agent_123", "INTERN")
    async with rt.sessions.begin() as session:
        tenant = await get_or_create_tenant(session, "acme")
        key = await create_api_key(session, tenant, name="operator", is_admin=False)
    operator = {"Authorization": f"Bearer {key}"}
    promote = await client.patch(
        "/api/v1/agents/agent_123", json={"maturity_level": "AUTONOMOUS"}, headers=operator
    )
    assert promote.status_code == 403
    assert promote.json()["errors"][0]["field"] == "maturity_level"
    register = await client.post(
        "/api/v1/agents", json={"id": "rogue", "maturity_level": "AUTONOMOUS"}, headers=operator
    )
    assert register.status_code == 403
    rename = await client.patch("/api/v1/agents/agent_123", json={"name": "Ops bot"}, headers=operator)
    assert rename.status_code == 200
    assert rename.json()["maturity_level"] == "INTERN"
    sent = await client.post("/api/v1/messaging/proactive/send", json=send_body(), headers=operator)
    assert sent.status_code == 201
