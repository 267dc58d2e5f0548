"""Agents named in requests (herald.pipeline.enrolment): development registers an unknown one on first use, at
HERALD_DEV_AGENT_LEVEL, audited as agent.auto_registered, whichever producer names it; keys that may not register
agents, and production, get the 422 that says how to register it."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from herald.admin.tenants import create_api_key, get_or_create_tenant
from herald.runtime import Runtime
from tests.conftest import in_production, make_agent, send_body

SEND = "/api/v1/messaging/proactive/send"
CREATED = {
    "send": (SEND, send_body("named")),
    "schedule": (
        "/api/v1/messaging/schedule/create",
        {"agent_id": "named", "platform": "telegram", "recipient_id": "123456789", "template": "Hi {{date}}",
         "cron_expression": "0 9 * * *"},
    ),
    "monitor": (
        "/api/v1/monitoring/condition/create",
        {"agent_id": "named", "name": "m", "condition_type": "inbox_volume",
         "threshold_config": {"metric": "unread_count", "operator": ">", "value": 1}},
    ),
    "task monitor": (
        "/api/proactive/monitors",
        {"agent_id": "named", "name": "m", "condition": "cpu > 80", "check_interval": 300},
    ),
    "task schedule": (
        "/api/proactive/schedules",
        {"agent_id": "named", "name": "s", "task_description": "t", "cron_expression": "0 9 * * *"},
    ),
    "trigger": (
        "/api/proactive/triggers",
        {"agent_id": "named", "name": "t", "trigger_type": "manual", "task_template": "x"},
    ),
    "routing rule": ("/api/v1/routing-rules", {"agent_id": "named"}),
}  # fmt: skip


async def agent(client: httpx.AsyncClient, auth: dict[str, str], agent_id: str) -> httpx.Response:
    return await client.get(f"/api/v1/agents/{agent_id}", headers=auth)


async def audited(client: httpx.AsyncClient, auth: dict[str, str], agent_id: str) -> list[dict[str, Any]]:
    response = await client.get(
        "/api/v1/audit", params={"object_id": agent_id, "action": "agent.auto_registered"}, headers=auth
    )
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def key(rt: Runtime, **options: Any) -> dict[str, str]:
    """Another key of tenant "acme" (the ``auth`` fixture's tenant)."""
    async with rt.sessions.begin() as session:
        tenant = await get_or_create_tenant(session, "acme")
        secret = await create_api_key(session, tenant, **options)
    return {"Authorization": f"Bearer {secret}"}


@pytest.mark.parametrize("producer", list(CREATED))
async def test_every_producer_registers_the_agent_it_names_in_development(
    client: httpx.AsyncClient, auth: dict[str, str], producer: str
) -> None:
    assert (await agent(client, auth, "named")).status_code == 404
    endpoint, body = CREATED[producer]
    response = await client.post(endpoint, json=body, headers=auth)
    assert response.status_code == 201, response.text
    registered = (await agent(client, auth, "named")).json()
    assert (registered["id"], registered["maturity_level"]) == ("named", "SUPERVISED")
    [entry] = await audited(client, auth, "named")
    assert entry["detail"]["maturity_level"] == "SUPERVISED"
    assert entry["actor"].startswith("api_key:")
    again = await client.post(endpoint, json=body, headers=auth)  # known now: no second registration
    assert again.status_code == 201, again.text
    assert len(await audited(client, auth, "named")) == 1


async def test_the_registered_agent_is_governed_at_its_level(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    sent = await client.post(SEND, json=send_body("fresh"), headers=auth)
    assert sent.status_code == 201, sent.text
    assert sent.json()["status"] == "queued"  # SUPERVISED: sent, flagged for review
    review = await client.get("/api/v1/audit", params={"needs_review": True}, headers=auth)
    assert [e["object_id"] for e in review.json()["items"]] == [sent.json()["id"]]


@pytest.mark.parametrize("settings_overrides", [{"dev_agent_level": "intern"}])
async def test_the_level_is_herald_dev_agent_level(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    sent = await client.post(SEND, json=send_body("trainee"), headers=auth)
    assert sent.status_code == 201, sent.text
    assert sent.json()["status"] == "pending_approval"
    assert (await agent(client, auth, "trainee")).json()["maturity_level"] == "INTERN"


async def test_an_agent_already_registered_keeps_its_level(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await make_agent(client, auth, "pupil", "STUDENT")
    refused = await client.post(SEND, json=send_body("pupil"), headers=auth)
    assert refused.status_code == 403
    assert await audited(client, auth, "pupil") == []


async def test_bulk_registers_each_named_agent_once(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    items = [send_body(f"bulk_{i % 2}", content=f"item {i}") for i in range(6)]
    response = await client.post("/api/v1/messages/bulk", json={"messages": items}, headers=auth)
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 6
    for name in ("bulk_0", "bulk_1"):
        assert len(await audited(client, auth, name)) == 1


async def test_a_refused_request_registers_nothing(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    body = send_body("half_way", content="Hello {{nobody}}")
    response = await client.post(SEND, json=body, headers=auth)
    assert response.status_code == 422
    assert (await agent(client, auth, "half_way")).status_code == 404
    assert await audited(client, auth, "half_way") == []


async def test_a_key_bound_to_an_agent_never_registers_another(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    await make_agent(client, auth, "bound", "AUTONOMOUS")
    bound = await key(rt, agent_id="bound")
    refused = await client.post(SEND, json=send_body("other"), headers=bound)
    assert refused.status_code == 403
    endpoint, body = CREATED["schedule"]
    unknown = await client.post(endpoint, json=body, headers=bound)
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["field"] == "agent_id"
    assert (await agent(client, auth, "other")).status_code == 404
    assert (await agent(client, auth, "named")).status_code == 404


async def test_a_key_that_may_not_register_agents_gets_the_422(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    reader = await key(rt, is_admin=False)
    response = await client.post(SEND, json=send_body("unseen"), headers=reader)
    assert response.status_code == 422
    assert "POST /api/v1/agents" in response.json()["detail"]
    assert (await agent(client, auth, "unseen")).status_code == 404


@pytest.mark.parametrize("producer", list(CREATED))
async def test_production_answers_422_naming_the_field_and_how_to_register(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, producer: str
) -> None:
    in_production(rt)
    endpoint, body = CREATED[producer]
    response = await client.post(endpoint, json=body, headers=auth)
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["errors"][0]["field"] == "agent_id"
    assert 'POST /api/v1/agents {"id": "named", "maturity_level": "SUPERVISED"}' in problem["detail"]
    assert (await agent(client, auth, "named")).status_code == 404
