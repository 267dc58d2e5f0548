"""Approvers and policies through the API: validated field by field, an admin's to change, each tenant's own;
a key bound to an agent can neither change who approves it nor approve; ask_human over MCP does not wait."""

from __future__ import annotations

import httpx
import pytest

from herald.admin.tenants import create_api_key, get_or_create_tenant
from herald.agents.tools.invoke import call_as_agent
from herald.runtime import Runtime
from tests.conftest import new_tenant
from tests.integration.humans.conftest import World, agent, approver, channel, hold, policy


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "Ada", "addresses": []}, "addresses"),
        ({"name": "Ada", "addresses": [{"platform": "pager", "recipient_id": "1"}]}, "addresses.0.platform"),
        ({"name": "Ada", "addresses": [{"platform": "sms", "recipient_id": "555"}]}, "addresses.0.recipient_id"),
        ({"name": "", "addresses": [{"platform": "slack", "recipient_id": "U0ADA00001"}]}, "name"),
        ({"name": "Ada", "addresses": [{"platform": "slack", "recipient_id": "U0ADA00001", "x": 1}]},
         "addresses.0.x"),
    ],
)  # fmt: skip
async def test_a_malformed_approver_is_a_422_naming_the_field(
    client: httpx.AsyncClient, auth: dict[str, str], body: dict[str, object], field: str
) -> None:
    response = await client.post("/api/v1/approvers", json=body, headers=auth)
    assert response.status_code == 422, response.text
    assert field in [e["field"] for e in response.json()["errors"]]


async def test_policies_are_checked_against_the_tenants_approvers(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    ada = await approver(client, auth, "Ada", {"platform": "slack", "recipient_id": "U0ADA00001"})
    other = await new_tenant(rt, "globex")
    theirs = await approver(client, other, "Gil", {"platform": "slack", "recipient_id": "U0GIL00001"})
    cases = [
        ({"approver_ids": [theirs]}, "approver_ids"),  # another tenant's approver is unknown here
        ({"approver_ids": [ada], "quorum": 2}, "quorum"),
        ({"approver_ids": [ada], "escalate_to": [ada]}, "escalate_after_seconds"),
        ({"approver_ids": [ada], "priorities": ["URGENTISH"]}, "priorities.0"),
    ]
    for rules, field in cases:
        response = await client.post("/api/v1/approval-policies", json={"name": "p", **rules}, headers=auth)
        assert response.status_code == 422, (rules, response.text)
        assert field in [e["field"] for e in response.json()["errors"]], response.text
    assert (await client.get(f"/api/v1/approvers/{theirs}", headers=auth)).status_code == 404
    created = await policy(client, auth, [ada], priorities=["high"])
    listed = (await client.get("/api/v1/approval-policies", headers=auth)).json()["items"]
    assert [(p["id"], p["priorities"]) for p in listed] == [(created, ["HIGH"])]
    in_use = await client.delete(f"/api/v1/approvers/{ada}", headers=auth)
    assert in_use.status_code == 422
    assert (await client.delete(f"/api/v1/approval-policies/{created}", headers=auth)).status_code == 204
    assert (await client.delete(f"/api/v1/approvers/{ada}", headers=auth)).status_code == 204


async def test_a_key_bound_to_an_agent_cannot_change_approvers_or_approve(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, world: World
) -> None:
    await channel(client, auth, "slack")
    await agent(client, auth)
    async with rt.sessions.begin() as session:
        tenant = await get_or_create_tenant(session, "acme")
        bound = {"Authorization": f"Bearer {await create_api_key(session, tenant, agent_id='writer')}"}
    body = {"name": "Me", "addresses": [{"platform": "slack", "recipient_id": "U0ME000001"}]}
    assert (await client.post("/api/v1/approvers", json=body, headers=bound)).status_code == 403
    message_id = await hold(client, auth, "slack", "C0CUSTOMER")
    approved = await client.post(f"/api/v1/messaging/proactive/approve/{message_id}", json={}, headers=bound)
    assert approved.status_code == 403
    detail = (await client.get(f"/api/v1/messages/{message_id}", headers=auth)).json()
    assert detail["status"] == "pending_approval"


async def test_ask_human_over_mcp_answers_at_once_with_the_questions_id(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, world: World
) -> None:
    await channel(client, auth, "slack")
    await agent(client, auth, level="SUPERVISED")
    ada = await approver(client, auth, "Ada", {"platform": "slack", "recipient_id": "U0ADA00001"})
    async with rt.sessions() as session:
        tenant = await get_or_create_tenant(session, "acme")
    result, outcome = await call_as_agent(
        rt,
        tenant.id,
        "writer",
        "ask_human",
        {"question": "Ship it?", "options": ["Yes", "No"], "approver_ids": [ada]},
    )
    assert outcome == "ok", result
    assert result["wait"] is False
    assert result["status"] == "pending"
    found, _ = await call_as_agent(
        rt, tenant.id, "writer", "get_question", {"question_id": result["question_id"]}
    )
    assert found["status"] == "pending"
    assert found["question"] == "Ship it?"
