"""The retention job: overdue verifications expire, old verifications and send records go, finished messages
older than the tenant's retention period go with their attempts, approvals and dev inbox copies; what is
still in flight, recent, or in a tenant without a period stays."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from sqlalchemy import func, select, update

from herald.admin import retention
from herald.admin.tenants import create_api_key
from herald.cli import main
from herald.core.background import run_loop
from herald.pipeline.worker import Worker
from herald.runtime import Runtime
from herald.storage.models import (
    Approval,
    Attempt,
    AuditEntry,
    DevInboxMessage,
    Event,
    Message,
    OtpSend,
    OtpVerification,
    Tenant,
)
from herald.storage.types import utcnow
from tests.conftest import SECRET, make_agent, new_tenant, send_body

SEND = "/api/v1/messaging/proactive/send"


async def count(rt: Runtime, model: Any, *where: Any) -> int:
    async with rt.sessions() as session:
        query = select(func.count()).select_from(model).where(*where)
        return int((await session.execute(query)).scalar_one())


async def test_retention_policy_is_set_per_tenant(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    async with rt.sessions.begin() as session:
        tenant = (await session.execute(select(Tenant).where(Tenant.name == "acme"))).scalar_one()
        plain = {"Authorization": f"Bearer {await create_api_key(session, tenant, is_admin=False)}"}
    refused = await client.put("/api/v1/retention-policy", json={"message_retention_days": 1}, headers=plain)
    assert refused.status_code == 403  # it deletes history: admin keys only
    assert (await client.get("/api/v1/retention-policy", headers=auth)).json() == {
        "message_retention_days": None
    }
    bad = await client.put("/api/v1/retention-policy", json={"message_retention_days": 0}, headers=auth)
    assert (bad.status_code, bad.json()["errors"][0]["field"]) == (422, "message_retention_days")
    ok = await client.put("/api/v1/retention-policy", json={"message_retention_days": 30}, headers=auth)
    assert ok.json() == {"message_retention_days": 30}
    assert (await client.get("/api/v1/retention-policy", headers=auth)).json() == {
        "message_retention_days": 30
    }


async def test_finished_messages_past_the_period_go_with_what_hangs_off_them(
    client: httpx.AsyncClient, auth: dict[str, str], worker: Worker, rt: Runtime
) -> None:
    await make_agent(client, auth, "bot", "AUTONOMOUS")
    await make_agent(client, auth, "intern", "INTERN")
    await client.put("/api/v1/retention-policy", json={"message_retention_days": 30}, headers=auth)
    sent = (await client.post(SEND, json=send_body("bot"), headers=auth)).json()
    recent = (await client.post(SEND, json=send_body("bot"), headers=auth)).json()
    rejected = (await client.post(SEND, json=send_body("intern"), headers=auth)).json()
    waiting = (await client.post(SEND, json=send_body("intern"), headers=auth)).json()
    reject = f"/api/v1/messaging/proactive/reject/{rejected['id']}"
    assert (await client.post(reject, json={"approver_user_id": "u1"}, headers=auth)).status_code == 200
    assert await worker.drain() == 2

    other = await new_tenant(rt, "globex")  # keeps everything: no period set
    await make_agent(client, other, "bot", "AUTONOMOUS")
    kept = (await client.post(SEND, json=send_body("bot"), headers=other)).json()
    assert await worker.drain() == 1

    later = utcnow() + timedelta(days=31)
    async with rt.sessions.begin() as session:  # finished only yesterday, as seen from "later"
        await session.execute(
            update(Message).where(Message.id == recent["id"]).values(updated_at=later - timedelta(days=1))
        )
    audit_before = await count(rt, AuditEntry)

    counts = await retention.purge(rt, later)
    assert (counts.messages_deleted, counts.devinbox_deleted) == (2, 2)
    async with rt.sessions() as session:
        left = set((await session.execute(select(Message.id))).scalars())
    assert left == {recent["id"], waiting["id"], kept["id"]}
    assert await count(rt, Attempt, Attempt.message_id == sent["id"]) == 0
    assert await count(rt, Approval) == 0
    assert await count(rt, Attempt) == 2  # the recent one's and the other tenant's
    assert await count(rt, DevInboxMessage) == 1  # the other tenant's copy
    assert await count(rt, AuditEntry) == audit_before  # the record of what happened stays

    assert (await retention.purge(rt, later)).total == 0


async def test_otp_verifications_expire_and_then_go(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    old = (await client.post("/api/v1/otp/send", json={"phone": "+447700900123"}, headers=auth)).json()
    fresh = (await client.post("/api/v1/otp/send", json={"phone": "+447700900124"}, headers=auth)).json()
    async with rt.sessions.begin() as session:
        await session.execute(
            update(OtpVerification)
            .where(OtpVerification.id == old["id"])
            .values(expires_at=utcnow() - timedelta(minutes=1))
        )

    counts = await retention.purge(rt)
    assert (counts.verifications_expired, counts.verifications_deleted, counts.otp_sends_deleted) == (1, 0, 0)
    status = (await client.get(f"/api/v1/otp/{old['id']}", headers=auth)).json()["status"]
    assert status == "expired"
    message = (await client.get(f"/api/v1/messages/{old['message_ids'][0]}", headers=auth)).json()
    assert message["status"] == "cancelled"  # a code past its time is not sent any more
    async with rt.sessions() as session:
        events = list(
            (await session.execute(select(Event.type).where(Event.subject_id == old["id"]))).scalars()
        )
    assert events == ["otp.sent", "otp.expired"]

    a_day_on = utcnow() + timedelta(hours=24)  # the old one expired a day ago, every send is a day old
    counts = await retention.purge(rt, a_day_on)
    assert (counts.verifications_expired, counts.verifications_deleted, counts.otp_sends_deleted) == (1, 1, 2)
    assert (await client.get(f"/api/v1/otp/{old['id']}", headers=auth)).status_code == 404
    assert (await client.get(f"/api/v1/otp/{fresh['id']}", headers=auth)).json()["status"] == "expired"

    counts = await retention.purge(rt, a_day_on + timedelta(minutes=11))
    assert (counts.verifications_deleted, counts.otp_sends_deleted) == (1, 0)
    assert await count(rt, OtpVerification) == await count(rt, OtpSend) == 0


@pytest.mark.parametrize("settings_overrides", [{"otp_retention_hours": 0}])
async def test_the_otp_retention_is_configurable(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    await client.post("/api/v1/otp/send", json={"phone": "+447700900123"}, headers=auth)
    counts = await retention.purge(rt, utcnow() + timedelta(minutes=11))
    # Gone at once; its send record stays a day, the longest send window a tenant may set.
    assert (counts.verifications_expired, counts.verifications_deleted, counts.otp_sends_deleted) == (1, 1, 0)
    assert await count(rt, OtpSend) == 1


async def test_the_scheduler_loop_runs_it(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    await client.post("/api/v1/otp/send", json={"phone": "+447700900123"}, headers=auth)
    async with rt.sessions.begin() as session:
        await session.execute(update(OtpVerification).values(expires_at=utcnow() - timedelta(seconds=1)))

    async def stored_status() -> str:
        async with rt.sessions() as session:
            return str((await session.execute(select(OtpVerification.status))).scalar_one())

    stop = asyncio.Event()
    loop = asyncio.create_task(run_loop(replace(retention.LOOPS[0], interval=0.05), rt, stop))
    for _ in range(200):
        if await stored_status() == "expired":
            break
        await asyncio.sleep(0.02)
    stop.set()
    await loop
    assert await stored_status() == "expired"


def test_herald_purge_runs_it_once(database_url: str, tmp_path: Path) -> None:
    env = {"HERALD_DATABASE_URL": database_url, "HERALD_SECRET_KEY": SECRET, "HERALD_DATA_DIR": str(tmp_path)}
    result = CliRunner().invoke(main, ["purge"], env=env)
    assert result.exit_code == 0, result.output
    assert "verifications_expired: 0" in result.output
    assert "messages_deleted: 0" in result.output
