"""Campaigns end to end: a tenant's own database (SQLite here, MariaDB once) read by a campaign whose runs
create messages through the pipeline, on SQLite and PostgreSQL Herald databases."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiomysql
import httpx
import pytest
from sqlalchemy import func, select

from herald.pipeline.worker import Worker
from herald.producers.campaigns import runner
from herald.runtime import Runtime
from herald.storage.models import AuditEntry, Campaign, CampaignRun, Message
from tests.conftest import make_agent, new_tenant, required_server, use_transport, webhook_channel
from tests.integration.test_dashboard import sign_in
from tests.integration.test_data_sources import MARIADB_HOST, _maria

CAMPAIGNS = "/api/v1/campaigns"
_counter = itertools.count()
CUSTOMERS = [
    # id, first_name, phone, email, timezone, contact_id
    (1, "Ada", "+447700900001", "ada@example.com", "Europe/London", None),
    (2, "Bob", None, "bob@example.com", "America/Chicago", None),
    (3, "Cy", "+447700900003", None, "Asia/Tokyo", None),
    (4, "Di", None, None, "UTC", None),  # no address: a failure
]


def tenant_db(path: Path, customers: list[tuple[Any, ...]] = CUSTOMERS) -> str:
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE customers (customer_id INTEGER PRIMARY KEY, first_name TEXT, phone TEXT, email TEXT, "
            "timezone TEXT, contact_id TEXT)"
        )
        conn.executemany("INSERT INTO customers VALUES (?, ?, ?, ?, ?, ?)", customers)
        conn.execute("CREATE TABLE communication_queue (id INTEGER PRIMARY KEY, first_name TEXT, email TEXT)")
    conn.close()
    return f"sqlite:///{path}"


def add_rows(path: Path, sql: str, rows: list[tuple[Any, ...]]) -> None:
    with sqlite3.connect(path) as conn:
        conn.executemany(sql, rows)
    conn.close()


async def data_source(client: httpx.AsyncClient, auth: dict[str, str], url: str) -> str:
    response = await client.post("/api/v1/data-sources", json={"name": "dealer db", "url": url}, headers=auth)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def body(source_id: str, **overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "name": "Spring reminder",
        "agent_id": "dealer-agent",
        "data_source_id": source_id,
        "audience_query": "SELECT customer_id, first_name, phone, email, timezone, contact_id FROM customers "
        "WHERE :today IS NOT NULL ORDER BY customer_id",
        "schedule": "every day at 9am",
        "timezone": "America/Chicago",
        "event_type": "spring_reminder",
        "channels": [{"platform": "sms", "address_column": "phone"},
                     {"platform": "email", "address_column": "email"}],
        "timezone_column": "timezone",
        "variables": {"dealership_name": "Riverside Power", "dealership_phone": "(555) 010-2300",
                      "equipment_model": "your mower", "booking_url": "https://dealer.example/book"},
        "dedupe_key": ["customer_id"],
        "dedupe_period": "ever",
    }  # fmt: skip
    values.update(overrides)
    return values


@pytest.fixture
async def source(client: httpx.AsyncClient, auth: dict[str, str], tmp_path: Path) -> str:
    await make_agent(client, auth, "dealer-agent", "AUTONOMOUS")
    return await data_source(client, auth, tenant_db(tmp_path / "dealer.db"))


async def create(client: httpx.AsyncClient, auth: dict[str, str], payload: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(CAMPAIGNS, json=payload, headers=auth)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def run(client: httpx.AsyncClient, auth: dict[str, str], campaign_id: str) -> dict[str, Any]:
    response = await client.post(f"{CAMPAIGNS}/{campaign_id}/run", headers=auth)
    assert response.status_code == 200, response.text
    done: dict[str, Any] = response.json()
    return done


def field_of(response: httpx.Response) -> str:
    return str(response.json()["errors"][0]["field"])


async def messages(rt: Runtime) -> list[Message]:
    async with rt.sessions() as session:
        return list((await session.execute(select(Message).order_by(Message.recipient_id))).scalars())


# -- create and validate ---------------------------------------------------------------------------------------


async def test_create_get_list_patch_delete_are_audited(
    client: httpx.AsyncClient, auth: dict[str, str], source: str, rt: Runtime
) -> None:
    created = await create(client, auth, body(source))
    assert created["cron_expression"] == "0 9 * * *"
    assert created["status"] == "active"
    assert created["next_run"] is not None
    got = (await client.get(f"{CAMPAIGNS}/{created['id']}", headers=auth)).json()
    assert got["channels"][1] == {"platform": "email", "address_column": "email"}
    listed = (await client.get(f"{CAMPAIGNS}?limit=1", headers=auth)).json()
    assert [c["id"] for c in listed["items"]] == [created["id"]]
    assert listed["next_cursor"] == created["id"]
    patched = await client.patch(
        f"{CAMPAIGNS}/{created['id']}", json={"schedule": "0 10 * * 1"}, headers=auth
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["cron_expression"] == "0 10 * * 1"
    bad = await client.patch(f"{CAMPAIGNS}/{created['id']}", json={"dedupe_key": ["nope"]}, headers=auth)
    assert bad.status_code == 422
    assert field_of(bad) == "dedupe_key.0"
    assert (await client.delete(f"{CAMPAIGNS}/{created['id']}", headers=auth)).status_code == 204
    assert (await client.get(f"{CAMPAIGNS}/{created['id']}", headers=auth)).status_code == 404
    async with rt.sessions() as session:
        actions = set((await session.execute(
            select(AuditEntry.action).where(AuditEntry.object_id == created["id"]))).scalars())  # fmt: skip
    assert {"campaign.created", "campaign.updated", "campaign.deleted"} <= actions


async def test_create_is_idempotent(client: httpx.AsyncClient, auth: dict[str, str], source: str) -> None:
    headers = {**auth, "Idempotency-Key": "camp-1"}
    first = await client.post(CAMPAIGNS, json=body(source), headers=headers)
    again = await client.post(CAMPAIGNS, json=body(source), headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"agent_id": "nobody"}, "agent_id"),
        ({"data_source_id": "dsr_missing"}, "data_source_id"),
        ({"audience_query": "DELETE FROM customers"}, "audience_query"),
        ({"audience_query": "SELECT 1; SELECT 2"}, "audience_query"),
        ({"audience_query": "SELECT * FROM no_such_table"}, "audience_query"),
        ({"event_type": "no_such_event"}, "event_type"),
        ({"channels": [{"platform": "pigeon", "address_column": "phone"}]}, "channels.0.platform"),
        ({"channels": [{"platform": "sms", "address_column": "fax"}]}, "channels.0.address_column"),
        ({"dedupe_key": ["customer_id", "vin"]}, "dedupe_key.1"),
        ({"dedupe_key": []}, "dedupe_key"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"timezone_column": "zone"}, "timezone_column"),
        ({"schedule": "whenever it feels right"}, "schedule"),
        ({"variables": {}}, "variables"),
        ({"queue": {"table": "communication_queue", "cursor": "id"}}, "audience_query"),
        ({"compose": {"enhance": True}}, "compose"),
    ],
)
async def test_bad_campaigns_are_422_naming_the_field(
    client: httpx.AsyncClient, auth: dict[str, str], source: str, overrides: dict[str, Any], field: str
) -> None:
    response = await client.post(CAMPAIGNS, json=body(source, **overrides), headers=auth)
    assert response.status_code == 422, response.text
    assert field_of(response) == field, response.json()


async def test_another_tenants_campaign_and_data_source_are_hidden(
    client: httpx.AsyncClient, auth: dict[str, str], source: str, rt: Runtime
) -> None:
    created = await create(client, auth, body(source))
    other = await new_tenant(rt, "globex")
    await make_agent(client, other, "dealer-agent", "AUTONOMOUS")
    for method, path in [("GET", ""), ("PATCH", ""), ("DELETE", ""), ("POST", "/run"), ("POST", "/preview"),
                         ("POST", "/pause"), ("GET", "/runs")]:  # fmt: skip
        kwargs: dict[str, Any] = {"json": {}} if method == "PATCH" else {}
        response = await client.request(method, f"{CAMPAIGNS}/{created['id']}{path}", headers=other, **kwargs)
        assert response.status_code == 404, (method, path, response.text)
    stolen = await client.post(CAMPAIGNS, json=body(source), headers=other)
    assert stolen.status_code == 422
    assert field_of(stolen) == "data_source_id"


# -- preview and runs ------------------------------------------------------------------------------------------


async def test_preview_renders_a_sample_and_sends_nothing(
    client: httpx.AsyncClient, auth: dict[str, str], source: str, rt: Runtime
) -> None:
    created = await create(client, auth, body(source))
    response = await client.post(f"{CAMPAIGNS}/{created['id']}/preview", json={"sample": 2}, headers=auth)
    assert response.status_code == 200, response.text
    preview = response.json()
    assert preview["audience"] == 4
    assert preview["failed"] == 1
    assert preview["deduped"] == 0
    assert preview["failures"][0] == {"key": "4", "reason": "no address in phone, email"}
    first, second = preview["sample"]
    assert first["platform"] == "sms"
    assert first["recipient_id"] == "+447700900001"
    assert first["fallback"] == [{"platform": "email", "recipient_id": "ada@example.com"}]
    assert "Ada" in first["content"]
    assert "Riverside Power" in first["content"]
    assert second["platform"] == "email"
    assert second["subject"]
    assert await messages(rt) == []


async def test_run_creates_messages_then_the_second_run_is_all_deduped(
    client: httpx.AsyncClient, auth: dict[str, str], source: str, rt: Runtime
) -> None:
    created = await create(client, auth, body(source))
    first = await run(client, auth, created["id"])
    assert first["status"] == "completed", first
    assert (first["audience"], first["created"], first["failed"], first["deduped"]) == (4, 3, 1, 0)
    sent = await messages(rt)
    assert [(m.platform, m.recipient_id) for m in sent] == [
        ("sms", "+447700900001"), ("sms", "+447700900003"), ("email", "bob@example.com")]  # fmt: skip
    assert all(m.status == "queued" and m.content_path == "template" for m in sent)
    assert "Bob" in sent[2].content
    assert sent[2].subject
    assert sent[0].route_plan[1]["platform"] == "email"  # SMS first, email as its fallback
    second = await run(client, auth, created["id"])
    assert (second["audience"], second["created"], second["deduped"]) == (4, 0, 3)
    assert len(await messages(rt)) == 3
    runs = (await client.get(f"{CAMPAIGNS}/{created['id']}/runs?limit=1", headers=auth)).json()
    assert runs["items"][0]["id"] == second["id"]
    assert runs["next_cursor"] == second["id"]
    one = (await client.get(f"{CAMPAIGNS}/{created['id']}/runs/{first['id']}", headers=auth)).json()
    assert one["created"] == 3
    assert one["finished_at"] is not None


async def test_dedupe_per_period_sends_again_in_the_next_period(
    client: httpx.AsyncClient, auth: dict[str, str], source: str, rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    created = await create(client, auth, body(source, dedupe_period="month"))
    assert (await run(client, auth, created["id"]))["created"] == 3
    assert (await run(client, auth, created["id"]))["created"] == 0
    later = datetime.now(UTC) + timedelta(days=40)
    monkeypatch.setattr(runner, "utcnow", lambda: later)
    assert (await run(client, auth, created["id"]))["created"] == 3


async def test_quiet_hours_delay_in_the_recipients_own_zone(
    client: httpx.AsyncClient, auth: dict[str, str], source: str, rt: Runtime
) -> None:
    """Quiet hours around now in Tokyo: only Cy (Asia/Tokyo) waits; the others' evenings are elsewhere."""
    tokyo = datetime.now(ZoneInfo("Asia/Tokyo"))
    window = {"start": (tokyo - timedelta(hours=1)).strftime("%H:%M"),
              "end": (tokyo + timedelta(hours=2)).strftime("%H:%M")}  # fmt: skip
    policy = {"timezone": "UTC", "quiet_hours": window}
    assert (await client.put("/api/v1/delivery-policy", json=policy, headers=auth)).status_code == 200
    created = await create(client, auth, body(source))
    done = await run(client, auth, created["id"])
    delayed = {m.recipient_id for m in await messages(rt) if m.run_at > m.created_at}
    assert "+447700900003" in delayed
    assert done["quiet_hours"] == len(delayed)
    tokyo_delay = next(m for m in await messages(rt) if m.recipient_id == "+447700900003")
    assert tokyo_delay.run_at - tokyo_delay.created_at > timedelta(hours=1, minutes=50)


async def test_sms_failing_or_missing_falls_back_to_email(
    client: httpx.AsyncClient, auth: dict[str, str], source: str, rt: Runtime, worker: Worker
) -> None:
    use_transport(rt, lambda _: httpx.Response(400, json={"error": "unknown recipient"}))
    await webhook_channel(client, auth, "sms")
    created = await create(client, auth, body(source))
    await run(client, auth, created["id"])
    await worker.drain()
    by_first = {m.route_plan[0]["recipient_id"]: m for m in await messages(rt)}
    ada = by_first["+447700900001"]
    assert (ada.status, ada.platform, ada.recipient_id) == ("sent", "email", "ada@example.com")
    inbox = (await client.get("/api/v1/devinbox?platform=email", headers=auth)).json()["items"]
    (to_ada,) = [m for m in inbox if m["recipient_id"] == "ada@example.com"]
    # The email after SMS failed is the email template's, subject and body, not the SMS text.
    assert to_ada["subject"] == "Get your your mower ready for spring"
    assert to_ada["content"].startswith("Hi Ada,\n\nThe mowing season is around the corner.")
    assert "Reply STOP" not in to_ada["content"]
    bob = by_first["bob@example.com"]  # no phone: email from the start
    assert (bob.status, bob.platform) == ("sent", "email")
    cy = by_first["+447700900003"]  # no email to fall back to
    assert cy.status == "failed"


async def test_opted_out_contacts_are_counted_and_not_sent(
    client: httpx.AsyncClient, auth: dict[str, str], tmp_path: Path, rt: Runtime
) -> None:
    await make_agent(client, auth, "dealer-agent", "AUTONOMOUS")
    contact = await client.post("/api/v1/contacts", json={"name": "Ada", "addresses": {"email": "ada@example.com"},
                                                          "opt_outs": ["sms", "email"]}, headers=auth)  # fmt: skip
    partly = await client.post("/api/v1/contacts", json={"name": "Bob", "addresses": {"email": "bob@example.com"},
                                                         "opt_outs": ["sms"]}, headers=auth)  # fmt: skip
    rows = [(1, "Ada", "+447700900001", "ada@example.com", "UTC", contact.json()["id"]),
            (2, "Bob", "+447700900002", "bob@example.com", "UTC", partly.json()["id"])]  # fmt: skip
    source = await data_source(client, auth, tenant_db(tmp_path / "opt.db", rows))
    created = await create(client, auth, body(source))
    done = await run(client, auth, created["id"])
    assert (done["opted_out"], done["created"]) == (1, 1)
    (only,) = await messages(rt)
    assert (only.platform, only.recipient_id) == ("email", "bob@example.com")


async def test_pause_and_resume(client: httpx.AsyncClient, auth: dict[str, str], source: str) -> None:
    created = await create(client, auth, body(source))
    paused = (await client.post(f"{CAMPAIGNS}/{created['id']}/pause", headers=auth)).json()
    assert paused["status"] == "paused"
    assert paused["next_runs"] == []
    assert (await client.post(f"{CAMPAIGNS}/{created['id']}/pause", headers=auth)).status_code == 409
    resumed = (await client.post(f"{CAMPAIGNS}/{created['id']}/resume", headers=auth)).json()
    assert resumed["status"] == "active"
    assert len(resumed["next_runs"]) == 5


async def test_due_campaigns_are_queued_by_the_scheduler_and_run_by_the_runner(
    client: httpx.AsyncClient, auth: dict[str, str], source: str, rt: Runtime
) -> None:
    created = await create(client, auth, body(source))
    paused = await create(client, auth, body(source, name="paused one", enabled=False))
    async with rt.sessions.begin() as session:
        for cid in (created["id"], paused["id"]):
            (await session.get(Campaign, cid)).next_run = datetime.now(UTC) - timedelta(seconds=1)  # type: ignore[union-attr]
    queued = await runner.run_due(rt)
    assert len(queued) == 1
    assert await runner.run_due(rt) == []  # its next run moved on
    assert await runner.work(rt) == 1
    runs = (await client.get(f"{CAMPAIGNS}/{created['id']}/runs", headers=auth)).json()["items"]
    assert [(r["trigger"], r["status"], r["created"]) for r in runs] == [("schedule", "completed", 3)]
    fresh = (await client.get(f"{CAMPAIGNS}/{created['id']}", headers=auth)).json()
    assert datetime.fromisoformat(fresh["next_run"]) > datetime.now(UTC)


@pytest.mark.postgres_only
async def test_two_schedulers_never_run_a_campaign_twice(
    client: httpx.AsyncClient, auth: dict[str, str], source: str, rt: Runtime, tmp_path: Path
) -> None:
    ids = [(await create(client, auth, body(source, name=f"c{i}")))["id"] for i in range(6)]
    async with rt.sessions.begin() as session:
        for cid in ids:
            (await session.get(Campaign, cid)).next_run = datetime.now(UTC) - timedelta(seconds=1)  # type: ignore[union-attr]
    other = Runtime(rt.settings)
    try:
        queued = await asyncio.gather(runner.run_due(rt, limit=2), runner.run_due(other, limit=2),
                                      runner.run_due(rt), runner.run_due(other))  # fmt: skip
        worked = await asyncio.gather(runner.work(rt, limit=3), runner.work(other, limit=3),
                                      runner.work(rt), runner.work(other))  # fmt: skip
    finally:
        await other.close()
    assert sorted(r for batch in queued for r in batch) == sorted({r for batch in queued for r in batch})
    assert sum(len(batch) for batch in queued) == 6
    assert sum(worked) == 6
    async with rt.sessions() as session:
        per_campaign = dict((await session.execute(
            select(CampaignRun.campaign_id, func.count()).group_by(CampaignRun.campaign_id))).all())  # fmt: skip
    assert per_campaign == dict.fromkeys(ids, 1)
    assert len(await messages(rt)) == 6 * 3  # each campaign's own ledger: three people each


# -- governance: an INTERN's run is approved or rejected as a whole --------------------------------------------


async def test_intern_run_waits_for_one_approval_then_sends_everything(
    client: httpx.AsyncClient, auth: dict[str, str], tmp_path: Path, rt: Runtime
) -> None:
    await make_agent(client, auth, "dealer-agent", "INTERN")
    source = await data_source(client, auth, tenant_db(tmp_path / "intern.db"))
    created = await create(client, auth, body(source))
    held = await run(client, auth, created["id"])
    assert held["status"] == "pending_approval"
    assert held["preview"]["audience"] == 4
    assert len(held["preview"]["sample"]) == 3
    assert await messages(rt) == []
    decided = await client.post(f"{CAMPAIGNS}/{created['id']}/runs/{held['id']}/approve",
                                json={"approver_user_id": "manager@dealer"}, headers=auth)  # fmt: skip
    assert decided.status_code == 200, decided.text
    assert decided.json()["status"] == "completed"
    assert decided.json()["created"] == 3
    sent = await messages(rt)
    assert len(sent) == 3
    assert all(m.status == "queued" and m.approved_by == "manager@dealer" for m in sent)
    async with rt.sessions() as session:
        accepted = (await session.execute(select(AuditEntry).where(
            AuditEntry.action == "message.accepted", AuditEntry.object_id == sent[0].id))).scalar_one()  # fmt: skip
        approval = (await session.execute(select(AuditEntry).where(
            AuditEntry.action == "campaign.run.approved"))).scalar_one()  # fmt: skip
    assert accepted.detail["approved_as_part_of"] == f"campaign_run:{held['id']}"
    assert accepted.detail["approver"] == "manager@dealer"
    assert approval.detail["approver"] == "manager@dealer"
    again = await client.post(f"{CAMPAIGNS}/{created['id']}/runs/{held['id']}/approve", headers=auth)
    assert again.status_code == 409


async def test_intern_run_rejected_sends_nothing(
    client: httpx.AsyncClient, auth: dict[str, str], tmp_path: Path, rt: Runtime
) -> None:
    await make_agent(client, auth, "dealer-agent", "INTERN")
    source = await data_source(client, auth, tenant_db(tmp_path / "intern.db"))
    created = await create(client, auth, body(source))
    held = await run(client, auth, created["id"])
    rejected = await client.post(f"{CAMPAIGNS}/{created['id']}/runs/{held['id']}/reject",
                                 json={"reason": "wrong season"}, headers=auth)  # fmt: skip
    assert rejected.status_code == 200
    assert rejected.json()["status"] == "rejected"
    assert rejected.json()["reason"] == "wrong season"
    assert await messages(rt) == []
    late = await client.post(f"{CAMPAIGNS}/{created['id']}/runs/{held['id']}/approve", headers=auth)
    assert late.status_code == 409
    assert await messages(rt) == []


async def test_student_agent_run_fails_without_messages(
    client: httpx.AsyncClient, auth: dict[str, str], tmp_path: Path, rt: Runtime
) -> None:
    await make_agent(client, auth, "dealer-agent", "STUDENT")
    source = await data_source(client, auth, tenant_db(tmp_path / "student.db"))
    created = await create(client, auth, body(source))
    done = await run(client, auth, created["id"])
    assert done["status"] == "failed"
    assert "STUDENT" in done["error"]
    assert await messages(rt) == []


# -- external queue --------------------------------------------------------------------------------------------


async def test_external_queue_rows_become_one_message_each_once(
    client: httpx.AsyncClient, auth: dict[str, str], tmp_path: Path, rt: Runtime
) -> None:
    await make_agent(client, auth, "dealer-agent", "AUTONOMOUS")
    path = tmp_path / "queue.db"
    source = await data_source(client, auth, tenant_db(path))
    insert = "INSERT INTO communication_queue VALUES (?, ?, ?)"
    add_rows(path, insert, [(1, "Old", "old@example.com"), (2, "Ada", "ada@example.com")])
    payload = body(source, audience_query=None, queue={"table": "communication_queue", "cursor": "id",
                   "start_after": 1}, channels=[{"platform": "email", "address_column": "email"}],
                   timezone_column=None, dedupe_key=[])  # fmt: skip
    created = await create(client, auth, payload)
    first = await run(client, auth, created["id"])
    assert (first["audience"], first["created"]) == (1, 1)  # row 1 is before start_after
    add_rows(path, insert, [(3, "Bob", "bob@example.com"), (4, "Cy", "cy@example.com")])
    second = await run(client, auth, created["id"])
    assert (second["audience"], second["created"], second["deduped"]) == (2, 2, 0)
    assert (await run(client, auth, created["id"]))["audience"] == 0
    got = (await client.get(f"{CAMPAIGNS}/{created['id']}", headers=auth)).json()
    assert got["queue_position"] == 4
    assert sorted(m.recipient_id for m in await messages(rt)) == [
        "ada@example.com", "bob@example.com", "cy@example.com"]  # fmt: skip
    # Even if the cursor were lost, the ledger keeps each row to one message.
    async with rt.sessions.begin() as session:
        (await session.get(Campaign, created["id"])).queue_position = None  # type: ignore[union-attr]
    again = await run(client, auth, created["id"])
    assert (again["audience"], again["created"], again["deduped"]) == (3, 0, 3)


@pytest.mark.parametrize(
    ("queue", "field"),
    [
        ({"table": "communication_queue; DROP TABLE x", "cursor": "id"}, "queue.table"),
        ({"table": "communication_queue", "cursor": 'id" --'}, "queue.cursor"),
        ({"table": "communication_queue", "cursor": "nope"}, "queue.cursor"),
        ({"table": "no_such_table", "cursor": "id"}, "queue"),
    ],
)
async def test_queue_names_are_checked_identifiers(
    client: httpx.AsyncClient, auth: dict[str, str], source: str, queue: dict[str, Any], field: str
) -> None:
    add_rows_payload = body(source, audience_query=None, queue=queue, timezone_column=None, dedupe_key=[],
                            channels=[{"platform": "email", "address_column": "email"}])  # fmt: skip
    response = await client.post(CAMPAIGNS, json=add_rows_payload, headers=auth)
    assert response.status_code == 422, response.text
    assert field_of(response) == field


# -- a MariaDB data source -------------------------------------------------------------------------------------


@pytest.fixture
async def mariadb_url() -> Any:
    name = f"camp_{os.getpid()}_{next(_counter)}"
    try:
        await _maria([f"CREATE DATABASE {name}"])
    except (OSError, aiomysql.Error) as exc:
        required_server(f"MariaDB at {MARIADB_HOST}", exc)
    await _maria([
        "CREATE TABLE customers (customer_id int PRIMARY KEY, first_name varchar(50), phone varchar(30), "
        "email varchar(100), timezone varchar(64), contact_id varchar(40))",
        "INSERT INTO customers VALUES (1, 'Ada', '+447700900001', 'ada@example.com', 'Europe/London', NULL),"
        "(2, 'Bob', NULL, 'bob@example.com', 'America/Chicago', NULL)",
        "CREATE TABLE communication_queue (id int PRIMARY KEY, first_name varchar(50), email varchar(100))",
        "INSERT INTO communication_queue VALUES (1, 'Cy', 'cy@example.com'), (2, 'Di', 'di@example.com')",
    ], name)  # fmt: skip
    yield f"mysql://root@{MARIADB_HOST}/{name}"
    await _maria([f"DROP DATABASE IF EXISTS {name}"])


async def test_mariadb_audience_and_queue(
    client: httpx.AsyncClient, auth: dict[str, str], mariadb_url: str, rt: Runtime
) -> None:
    await make_agent(client, auth, "dealer-agent", "AUTONOMOUS")
    source = await data_source(client, auth, mariadb_url)
    audience = await create(client, auth, body(source))
    done = await run(client, auth, audience["id"])
    assert (done["status"], done["audience"], done["created"]) == ("completed", 2, 2)
    assert (await run(client, auth, audience["id"]))["deduped"] == 2
    queue = body(source, name="queue", audience_query=None, queue={"table": "communication_queue", "cursor": "id"},
                 channels=[{"platform": "email", "address_column": "email"}], timezone_column=None, dedupe_key=[])  # fmt: skip
    followed = await create(client, auth, queue)
    assert (await run(client, auth, followed["id"]))["created"] == 2
    assert (await run(client, auth, followed["id"]))["audience"] == 0
    assert len(await messages(rt)) == 4


# -- the dashboard ---------------------------------------------------------------------------------------------


async def test_dashboard_lists_previews_and_decides_a_held_run_with_csrf(
    client: httpx.AsyncClient, auth: dict[str, str], tmp_path: Path, rt: Runtime
) -> None:
    await make_agent(client, auth, "dealer-agent", "INTERN")
    source = await data_source(client, auth, tenant_db(tmp_path / "dash.db"))
    created = await create(client, auth, body(source))
    held = await run(client, auth, created["id"])
    token = await sign_in(client, auth)
    listed = await client.get("/campaigns")
    assert "Spring reminder" in listed.text
    assert "pending approval" in listed.text
    page = await client.get(f"/campaigns/{created['id']}")
    assert "Run awaiting approval" in page.text
    assert "Approve run" in page.text
    fresh = await client.get(f"/campaigns/{created['id']}?preview=1")
    assert "4 in the audience" in fresh.text
    assert "Nothing was sent." in fresh.text
    approve = f"/campaigns/{created['id']}/runs/{held['id']}/approve"
    refused = await client.post(approve, data={"csrf_token": "forged"})
    assert refused.status_code == 403
    assert await messages(rt) == []
    answer = await client.post(approve, data={"csrf_token": token})
    assert answer.status_code == 303
    assert "Run approved: 3 messages created." in (await client.get(answer.headers["location"])).text
    assert len(await messages(rt)) == 3
    paused = await client.post(f"/campaigns/{created['id']}/pause", data={"csrf_token": token})
    assert "Campaign Spring reminder paused." in (await client.get(paused.headers["location"])).text
    other = await new_tenant(rt, "globex")
    async with httpx.AsyncClient(transport=client._transport, base_url="http://herald.test") as browser_b:
        await sign_in(browser_b, other)
        assert (await browser_b.get(f"/campaigns/{created['id']}")).status_code == 404


# -- events --------------------------------------------------------------------------------------------------


async def test_subscribers_get_the_runs_events(
    client: httpx.AsyncClient,
    auth: dict[str, str],
    tmp_path: Path,
    rt: Runtime,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from herald.events import dispatcher
    from tests.integration.test_event_subscriptions import pump

    monkeypatch.setattr(dispatcher, "SETTLE", timedelta(0))  # events are fanned out at once
    await make_agent(client, auth, "dealer-agent", "INTERN")
    source = await data_source(client, auth, tenant_db(tmp_path / "events.db"))
    seen = use_transport(rt, lambda _: httpx.Response(200))
    types = ["campaign.run.pending_approval", "campaign.run.approved", "campaign.run.completed"]
    subscribed = await client.post(
        "/api/v1/event-subscriptions", json={"url": "https://crm.example/events", "event_types": types},
        headers=auth,
    )  # fmt: skip
    assert subscribed.status_code == 201, subscribed.text
    created = await create(client, auth, body(source))
    held = await run(client, auth, created["id"])
    decided = await client.post(
        f"{CAMPAIGNS}/{created['id']}/runs/{held['id']}/approve", json={}, headers=auth
    )
    assert decided.json()["status"] == "completed", decided.text
    await pump(rt)
    got = [r.read() for r in seen if r.url.host == "crm.example"]
    assert sorted(json.loads(b)["type"] for b in got) == sorted(types)


@pytest.mark.parametrize(
    "name", ["priority", "dedupe_period", "timezone", "channels", "variables", "enabled"]
)
async def test_patch_with_null_is_422_naming_the_field(
    client: httpx.AsyncClient, auth: dict[str, str], source: str, name: str
) -> None:
    created = await create(client, auth, body(source))
    response = await client.patch(f"{CAMPAIGNS}/{created['id']}", json={name: None}, headers=auth)
    assert response.status_code == 422, response.text
    assert field_of(response) == name
    cleared = await client.patch(f"{CAMPAIGNS}/{created['id']}", json={"timezone_column": None}, headers=auth)
    assert cleared.status_code == 200, cleared.text
    assert cleared.json()["timezone_column"] is None
