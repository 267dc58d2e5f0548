"""API keys after creation: listed without secrets, revoked by admin keys, refused everywhere within a second."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from herald.admin.tenants import create_api_key, get_or_create_tenant
from herald.agents import mcp
from herald.runtime import Runtime
from herald.storage.models import AuditEntry
from herald.web.api.app import create_app
from tests.conftest import new_tenant

KEYS = "/api/v1/keys"


async def add_key(rt: Runtime, tenant: str = "acme", **options: Any) -> dict[str, str]:
    async with rt.sessions.begin() as session:
        key = await create_api_key(session, await get_or_create_tenant(session, tenant), **options)
    return {"Authorization": f"Bearer {key}"}


async def key_id_of(client: httpx.AsyncClient, admin: dict[str, str], headers: dict[str, str]) -> str:
    prefix = headers["Authorization"].removeprefix("Bearer ")[:10]
    listed = (await client.get(KEYS, headers=admin)).json()["items"]
    (found,) = [k["id"] for k in listed if k["prefix"] == prefix]
    return str(found)


@pytest.fixture
async def second_client(rt: Runtime) -> AsyncIterator[tuple[Runtime, httpx.AsyncClient]]:
    """Another process's view: its own Runtime (engine, key cache) on the same database."""
    other = Runtime(rt.settings)
    app = create_app(other.settings, runtime=other, run_worker=False)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://herald.test") as c:
        yield other, c
    await other.close()


async def test_keys_are_listed_without_the_key_or_its_hash(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    reader = await add_key(rt, name="reader", is_admin=False)
    await new_tenant(rt, "other")
    response = await client.get(KEYS, headers=auth)
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert len(items) == 2  # not the other tenant's
    assert set(items[0]) == {"id", "name", "prefix", "is_admin", "agent_id", "created_at", "revoked_at"}
    assert [(k["name"], k["is_admin"], k["revoked_at"]) for k in items] == [
        ("", True, None),
        ("reader", False, None),
    ]
    secrets = {auth["Authorization"].removeprefix("Bearer "), reader["Authorization"].removeprefix("Bearer ")}
    assert not any(s in response.text for s in secrets)
    assert "hash" not in response.text
    assert (await client.get(KEYS, headers=reader)).status_code == 403


async def test_revoking_a_key_is_admin_only_audited_and_tenant_scoped(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    reader = await add_key(rt, name="reader", is_admin=False)
    other = await new_tenant(rt, "other")
    reader_id = await key_id_of(client, auth, reader)
    other_id = await key_id_of(client, other, other)
    assert (await client.delete(f"{KEYS}/{reader_id}", headers=reader)).status_code == 403
    assert (await client.delete(f"{KEYS}/{other_id}", headers=auth)).status_code == 404
    assert (await client.delete(f"{KEYS}/key_nope", headers=auth)).status_code == 404
    assert (await client.get(KEYS, headers=other)).status_code == 200  # untouched

    assert (await client.delete(f"{KEYS}/{reader_id}", headers=auth)).status_code == 204
    refused = await client.get("/api/v1/agents", headers=reader)
    assert refused.status_code == 401  # at once in the process that revoked it
    assert (await client.delete(f"{KEYS}/{reader_id}", headers=auth)).status_code == 204  # no change
    listed = {k["id"]: k for k in (await client.get(KEYS, headers=auth)).json()["items"]}
    assert listed[reader_id]["revoked_at"] is not None
    async with rt.sessions() as session:
        audits = (
            (await session.execute(select(AuditEntry).where(AuditEntry.object_id == reader_id)))
            .scalars()
            .all()
        )
    assert [(a.action, a.object_type, a.detail["name"]) for a in audits] == [
        ("api_key.revoked", "api_key", "reader")
    ]
    assert audits[0].actor.startswith("api_key:key_")


async def test_the_last_admin_key_is_kept_and_a_key_may_revoke_itself(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    own_id = await key_id_of(client, auth, auth)
    last = await client.delete(f"{KEYS}/{own_id}", headers=auth)
    assert last.status_code == 409, last.text
    assert "last admin key" in last.json()["detail"]
    spare = await add_key(rt, name="spare")
    assert (await client.delete(f"{KEYS}/{own_id}", headers=auth)).status_code == 204
    assert (await client.get(KEYS, headers=auth)).status_code == 401
    spare_id = await key_id_of(client, spare, spare)
    assert (await client.delete(f"{KEYS}/{spare_id}", headers=spare)).status_code == 409


async def test_a_revocation_reaches_another_process_within_a_second(
    client: httpx.AsyncClient,
    auth: dict[str, str],
    rt: Runtime,
    second_client: tuple[Runtime, httpx.AsyncClient],
) -> None:
    other_rt, elsewhere = second_client
    victim = await add_key(rt, name="leaving", is_admin=False)
    victim_id = await key_id_of(client, auth, victim)
    # The other process has the key cached, and keeps using it.
    assert (await elsewhere.get("/api/v1/agents", headers=victim)).status_code == 200
    assert (await elsewhere.get("/api/v1/agents", headers=victim)).status_code == 200
    assert (await client.delete(f"{KEYS}/{victim_id}", headers=auth)).status_code == 204
    revoked_at = time.monotonic()
    while True:
        status = (await elsewhere.get("/api/v1/agents", headers=victim)).status_code
        elapsed = time.monotonic() - revoked_at
        if status == 401:
            break
        assert status == 200
        assert elapsed < 1.0, "the other process still accepts the revoked key after a second"
        await asyncio.sleep(0.02)
    assert elapsed < 1.0
    # The MCP endpoint asks the same cache.
    assert await mcp.principal_of_key(other_rt, victim["Authorization"].removeprefix("Bearer ")) is None


async def test_concurrent_requests_with_an_uncached_key_share_one_lookup(
    rt: Runtime, auth: dict[str, str]
) -> None:
    key = auth["Authorization"].removeprefix("Bearer ")
    lookups = 0
    real = rt.sessions

    def counting() -> Any:
        nonlocal lookups
        lookups += 1
        return real()

    principals = await asyncio.gather(*(rt.key_cache.principal(counting, key) for _ in range(50)))  # type: ignore[arg-type]
    assert lookups == 1
    assert len({p.key_id for p in principals if p is not None}) == 1
