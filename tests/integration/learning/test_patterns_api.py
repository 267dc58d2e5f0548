"""GET /api/proactive/patterns: the tenant's patterns only, filtered by agent and kind."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from herald.runtime import Runtime
from herald.storage.models import Tenant
from tests.conftest import new_tenant
from tests.integration.learning.history import History, showing


async def _history(rt: Runtime, name: str) -> History:
    async with rt.sessions() as session:
        tenant_id = (await session.execute(select(Tenant.id).where(Tenant.name == name))).scalar_one()
    return History(tenant_id)


async def test_patterns_answer_the_tenants_own_findings(
    rt: Runtime, client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    h = await _history(rt, "acme")
    showing(h)
    await h.write(rt)
    other = await new_tenant(rt, "globex")

    response = await client.get("/api/proactive/patterns", headers=auth)
    assert response.status_code == 200, response.text
    body = response.json()
    kinds = {p["kind"] for p in body["patterns"]}
    assert "promotion_candidate" in kinds
    assert "failing_channel" in kinds
    assert body["computed_at"]
    promotion = next(p for p in body["patterns"] if p["kind"] == "promotion_candidate")
    assert set(promotion) == {"kind", "key", "summary", "confidence", "evidence", "facts", "agent_id"}
    assert promotion["agent_id"] == "intern1"

    mine = (await client.get("/api/proactive/patterns", params={"agent_id": "intern1"}, headers=auth)).json()
    assert [p["kind"] for p in mine["patterns"]] == ["promotion_candidate"]
    failing = await client.get("/api/proactive/patterns", params={"kind": "failing_channel"}, headers=auth)
    assert {p["kind"] for p in failing.json()["patterns"]} == {"failing_channel"}

    elsewhere = await client.get("/api/proactive/patterns", headers=other)
    assert elsewhere.status_code == 200
    assert elsewhere.json()["patterns"] == []


async def test_patterns_refuse_an_unknown_kind_and_a_missing_key(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    bad = await client.get("/api/proactive/patterns", params={"kind": "horoscope"}, headers=auth)
    assert bad.status_code == 422
    assert "kind" in bad.text
    assert (await client.get("/api/proactive/patterns")).status_code == 401
