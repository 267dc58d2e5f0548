"""Digests end to end: matching messages are held, then sent as one message when the window ends or the cap is
reached; CRITICAL and non-matching messages go as usual; an INTERN's message joins only once approved."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import select

from herald.pipeline.worker import Worker
from herald.producers import digests
from herald.runtime import Runtime
from herald.storage.models import Digest, Event
from herald.storage.types import utcnow
from tests.conftest import make_agent, new_tenant, send_body
from tests.integration.test_dashboard import sign_in

SEND = "/api/v1/messaging/proactive/send"
RULES = "/api/v1/digest-rules"
LATER = timedelta(seconds=3601)


async def rule(client: httpx.AsyncClient, auth: dict[str, str], **fields: Any) -> dict[str, Any]:
    body = {
        "name": "ops digest",
        "platform": "slack",
        "recipient_id": "C12345",
        "window_seconds": 3600,
        **fields,
    }
    response = await client.post(RULES, json=body, headers=auth)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def send(client: httpx.AsyncClient, auth: dict[str, str], content: str, **extra: Any) -> dict[str, Any]:
    response = await client.post(SEND, json=send_body("agent_auto", content=content, **extra), headers=auth)
    assert response.status_code == 201, response.text
    message: dict[str, Any] = response.json()
    return message


async def message(client: httpx.AsyncClient, auth: dict[str, str], message_id: str) -> dict[str, Any]:
    response = await client.get(f"/api/v1/messages/{message_id}", headers=auth)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_window_flush_sends_one_digest_listing_the_held_messages(
    rt: Runtime, client: httpx.AsyncClient, auth: dict[str, str], worker: Worker
) -> None:
    await make_agent(client, auth, "agent_auto", "AUTONOMOUS")
    await rule(
        client, auth, body="{{ count }} updates\n{% for m in messages %}* {{ m.content }}\n{% endfor %}"
    )
    held = [await send(client, auth, f"build {n} passed") for n in (1, 2, 3)]
    assert {m["status"] for m in held} == {"held"}
    assert len({m["digest_id"] for m in held}) == 1
    assert await worker.drain() == 0  # held messages are not in the outbox

    assert await digests.flush_due(rt) == 0  # the window is still open
    assert await digests.flush_due(rt, now=utcnow() + LATER) == 1

    after = [await message(client, auth, m["id"]) for m in held]
    assert {m["status"] for m in after} == {"digested"}
    digest_id = after[0]["digest_message_id"]
    assert digest_id is not None
    assert {m["digest_message_id"] for m in after} == {digest_id}
    digest = await message(client, auth, digest_id)
    assert digest["content"] == "3 updates\n* build 1 passed\n* build 2 passed\n* build 3 passed\n"
    assert (digest["status"], digest["platform"], digest["recipient_id"]) == ("queued", "slack", "C12345")
    assert digest["agent_id"] == "agent_auto"
    assert digest["governance_metadata"]["digest_id"] == held[0]["digest_id"]
    assert digest["governance_metadata"]["message_count"] == 3
    assert await worker.drain() == 1  # ONE message leaves
    assert (await message(client, auth, digest_id))["status"] == "sent"
    async with rt.sessions() as session:
        events = (
            (await session.execute(select(Event).where(Event.type == "message.digested"))).scalars().all()
        )
    assert sorted(e.subject_id for e in events) == sorted(m["id"] for m in held)
    assert await digests.flush_due(rt, now=utcnow() + LATER) == 0  # nothing twice
    await sign_in(client, auth, "/")
    page = await client.get(f"/messages/{held[0]['id']}")
    assert f'href="/messages/{digest_id}"' in page.text  # the dashboard links the digest that carried it


async def test_cap_flushes_at_once_and_the_next_message_opens_a_new_digest(
    rt: Runtime, client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await make_agent(client, auth, "agent_auto", "AUTONOMOUS")
    await rule(client, auth, max_messages=2)
    first, second, third = [await send(client, auth, f"update {n}") for n in (1, 2, 3)]
    assert first["digest_id"] == second["digest_id"] != third["digest_id"]

    assert await digests.flush_due(rt) == 1  # the full one is due now; the window of the next is open
    assert (await message(client, auth, first["id"]))["status"] == "digested"
    assert (await message(client, auth, second["id"]))["status"] == "digested"
    assert (await message(client, auth, third["id"]))["status"] == "held"
    digest = await message(client, auth, (await message(client, auth, first["id"]))["digest_message_id"])
    assert digest["content"] == "2 updates:\n- update 1\n- update 2\n"  # the default template


async def test_critical_and_non_matching_messages_go_as_usual(
    rt: Runtime, client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await make_agent(client, auth, "agent_auto", "AUTONOMOUS")
    await rule(client, auth, message_type="build")
    critical = await send(client, auth, "prod is down", priority="CRITICAL",
                          governance_metadata={"message_type": "build"})  # fmt: skip
    other_type = await send(client, auth, "hello", governance_metadata={"message_type": "chat"})
    untyped = await send(client, auth, "hello")
    elsewhere = await send(
        client, auth, "x", recipient_id="C99999", governance_metadata={"message_type": "build"}
    )
    held = await send(client, auth, "build ok", governance_metadata={"message_type": "build"})
    for m in (critical, other_type, untyped, elsewhere):
        assert (m["status"], m["digest_id"]) == ("queued", None)
    assert held["status"] == "held"
    await digests.flush_due(rt, now=utcnow() + LATER)
    assert (await message(client, auth, untyped["id"]))["status"] == "queued"


async def test_intern_message_joins_only_after_approval_and_a_rejected_one_never(
    rt: Runtime, client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await make_agent(client, auth, "agent_intern", "INTERN")
    await rule(client, auth, agent_id="agent_intern")
    body = send_body("agent_intern", content="approve me")
    waiting = (await client.post(SEND, json=body, headers=auth)).json()
    refused = (await client.post(SEND, json={**body, "content": "reject me"}, headers=auth)).json()
    assert waiting["status"] == refused["status"] == "pending_approval"
    assert await digests.flush_due(rt, now=utcnow() + LATER) == 0  # nothing joined before a human decided

    approved = await client.post(f"/api/v1/messaging/proactive/approve/{waiting['id']}", headers=auth)
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "held"
    assert approved.json()["digest_id"] is not None
    rejected = await client.post(f"/api/v1/messaging/proactive/reject/{refused['id']}", headers=auth)
    assert (rejected.json()["status"], rejected.json()["digest_id"]) == ("rejected", None)

    assert await digests.flush_due(rt, now=utcnow() + LATER) == 1
    digested = await message(client, auth, waiting["id"])
    assert digested["status"] == "digested"
    digest = await message(client, auth, digested["digest_message_id"])
    assert "approve me" in digest["content"]
    assert "reject me" not in digest["content"]
    assert digest["status"] == "queued"  # approved once: the digest does not wait for a second approval
    assert (await message(client, auth, refused["id"]))["status"] == "rejected"


async def test_a_cancelled_held_message_is_left_out_and_an_empty_digest_sends_nothing(
    rt: Runtime, client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await make_agent(client, auth, "agent_auto", "AUTONOMOUS")
    await rule(client, auth)
    only = await send(client, auth, "soon cancelled")
    cancelled = await client.post(f"/api/v1/messages/{only['id']}/cancel", headers=auth)
    assert cancelled.json()["status"] == "cancelled"
    assert await digests.flush_due(rt, now=utcnow() + LATER) == 1
    async with rt.sessions() as session:
        batch = (await session.execute(select(Digest))).scalar_one()
    assert (batch.status, batch.message_id) == ("closed", None)
    history = (await client.get("/api/v1/messaging/proactive/history", headers=auth)).json()["items"]
    assert [m["id"] for m in history] == [only["id"]]


async def test_a_digest_that_cannot_be_rendered_releases_its_messages_one_by_one(
    rt: Runtime, client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await make_agent(client, auth, "agent_auto", "AUTONOMOUS")
    # Renders for the one-message sample the rule is checked with, fails for a digest of two.
    await rule(client, auth, body="{% if count > 1 %}{{ messages[5].content }}{% endif %}{{ count }}")
    held = [await send(client, auth, f"m{n}") for n in (1, 2)]
    assert {m["status"] for m in held} == {"held"}
    assert await digests.flush_due(rt, now=utcnow() + LATER) == 1
    assert {(await message(client, auth, m["id"]))["status"] for m in held} == {"queued"}
    audit = (await client.get("/api/v1/audit?action=digest.released", headers=auth)).json()["items"]
    assert sorted(audit[0]["detail"]["message_ids"]) == sorted(m["id"] for m in held)


async def test_two_concurrent_flush_passes_send_one_digest(
    rt: Runtime, client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await make_agent(client, auth, "agent_auto", "AUTONOMOUS")
    await rule(client, auth)
    held = [await send(client, auth, f"n{n}") for n in range(5)]
    later = utcnow() + LATER
    done = await asyncio.gather(*(digests.flush_due(rt, now=later) for _ in range(2)))
    assert sorted(done) == [0, 1]
    history = (await client.get("/api/v1/messaging/proactive/history", headers=auth)).json()["items"]
    digests_sent = [m for m in history if m["governance_metadata"].get("digest_id")]
    assert len(digests_sent) == 1
    assert {(await message(client, auth, m["id"]))["digest_message_id"] for m in held} == {
        digests_sent[0]["id"]
    }


async def test_rules_crud_validates_and_is_tenant_scoped(
    rt: Runtime, client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    created = await rule(client, auth, subject="{{ count }} updates", max_messages=10)
    assert (created["window_seconds"], created["max_messages"], created["enabled"]) == (3600, 10, True)
    rule_url = f"{RULES}/{created['id']}"
    for bad, field in (
        ({"window_seconds": 0}, "window_seconds"),
        ({"max_messages": 1}, "max_messages"),
        ({"platform": "pigeon"}, "platform"),
        ({"body": "{% for m in messages %}"}, "body"),
        ({"body": "{{ nobody }}"}, "body"),
        ({"subject": "{{ messages[0].nope }}"}, "subject"),
    ):
        response = await client.post(RULES, json={"name": "bad", "window_seconds": 60, **bad}, headers=auth)
        assert response.status_code == 422, (bad, response.text)
        assert response.json()["errors"][0]["field"].endswith(field), response.json()
    for null in ("name", "window_seconds", "body", "enabled"):
        response = await client.patch(rule_url, json={null: None}, headers=auth)
        assert response.status_code == 422, response.text
        assert response.json()["errors"][0]["field"].endswith(null)
    patched = await client.patch(rule_url, json={"recipient_id": None, "window_seconds": 60}, headers=auth)
    assert patched.status_code == 200, patched.text
    assert (patched.json()["recipient_id"], patched.json()["window_seconds"]) == (None, 60)
    listed = (await client.get(RULES, headers=auth)).json()["items"]
    assert [r["id"] for r in listed] == [created["id"]]

    other = await new_tenant(rt, "globex")
    assert (await client.get(rule_url, headers=other)).status_code == 404
    assert (await client.patch(rule_url, json={"name": "x"}, headers=other)).status_code == 404
    assert (await client.delete(rule_url, headers=other)).status_code == 404
    assert (await client.get(RULES, headers=other)).json()["items"] == []

    assert (await client.delete(rule_url, headers=auth)).status_code == 204
    assert (await client.get(rule_url, headers=auth)).status_code == 404
    audit = (await client.get("/api/v1/audit?object_type=digest_rule", headers=auth)).json()["items"]
    assert {e["action"] for e in audit} >= {
        "digest_rule.created",
        "digest_rule.updated",
        "digest_rule.deleted",
    }


async def test_a_disabled_rule_holds_nothing(
    rt: Runtime, client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await make_agent(client, auth, "agent_auto", "AUTONOMOUS")
    created = await rule(client, auth)
    assert (await send(client, auth, "held"))["status"] == "held"
    await client.patch(f"{RULES}/{created['id']}", json={"enabled": False}, headers=auth)
    assert (await send(client, auth, "not held"))["status"] == "queued"


async def test_messages_joining_during_a_flush_are_never_stranded(
    rt: Runtime, client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await make_agent(client, auth, "agent_auto", "AUTONOMOUS")
    await rule(client, auth)
    first = await send(client, auth, "first")
    later = utcnow() + LATER
    sends = [send(client, auth, f"racing {n}") for n in range(6)]
    await asyncio.gather(digests.flush_due(rt, now=later), *sends)
    await digests.flush_due(rt, now=utcnow() + 2 * LATER)  # whatever joined a new batch is sent now
    history = (await client.get("/api/v1/messaging/proactive/history", headers=auth)).json()["items"]
    ours = [m for m in history if not m["governance_metadata"].get("digest_id")]
    assert len(ours) == 7
    assert {m["status"] for m in ours} == {"digested"}  # none left held in a batch already sent
    async with rt.sessions() as session:
        batches = (await session.execute(select(Digest))).scalars().all()
    assert {b.status for b in batches} == {"sent"}
    assert sum(b.count for b in batches) == 7
    assert first["id"] in {m["id"] for m in ours}


async def test_many_messages_join_one_batch_over_one_connection(
    rt: Runtime, client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    """PostgreSQL plans a connection's prepared statement generically from its sixth execution on; the join's
    ON CONFLICT must still name the open-batch index then (a bound parameter in its WHERE did not)."""
    await make_agent(client, auth, "agent_auto", "AUTONOMOUS")
    await rule(client, auth)
    held = [await send(client, auth, f"n{n}") for n in range(12)]
    assert {m["status"] for m in held} == {"held"}
    async with rt.sessions() as session:
        batches = (await session.execute(select(Digest))).scalars().all()
    assert [b.count for b in batches] == [12]
