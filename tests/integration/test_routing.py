"""Delivery policy end to end: contacts and priority routing, fallback chains, quiet hours, circuit breaker,
shared rate limits, cost, the channel test endpoint."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from herald.pipeline.routing import circuit
from herald.pipeline.worker import Worker
from herald.runtime import Runtime
from tests.conftest import make_agent, send_body, use_transport, webhook_channel

SEND = "/api/v1/messaging/proactive/send"


@pytest.fixture
async def bot(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    await make_agent(client, auth, "bot", "AUTONOMOUS")


async def contact(client: httpx.AsyncClient, auth: dict[str, str], **fields: Any) -> dict[str, Any]:
    body = {
        "name": "Ada",
        "addresses": {"sms": "+447700900123", "whatsapp": "447700900123", "email": "ada@example.com"},
    }
    body.update(fields)
    response = await client.post("/api/v1/contacts", json=body, headers=auth)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def by_contact(
    client: httpx.AsyncClient, auth: dict[str, str], contact_id: str, priority: str, **extra: Any
) -> httpx.Response:
    body = {
        "agent_id": "bot",
        "contact_id": contact_id,
        "priority": priority,
        "content": "Your code is 123456",
        **extra,
    }
    return await client.post(SEND, json=body, headers=auth)


async def message(client: httpx.AsyncClient, auth: dict[str, str], message_id: str) -> dict[str, Any]:
    body: dict[str, Any] = (await client.get(f"/api/v1/messages/{message_id}", headers=auth)).json()
    return body


@pytest.mark.usefixtures("bot")
@pytest.mark.parametrize(
    ("priority", "platform"),
    [("CRITICAL", "voice"), ("HIGH", "sms"), ("MEDIUM", "whatsapp"), ("LOW", "email")],
)
async def test_priority_picks_the_platform_seed_003_names(
    client: httpx.AsyncClient, auth: dict[str, str], priority: str, platform: str
) -> None:
    person = await contact(client, auth, addresses={
        "voice": "+447700900123", "sms": "+447700900123", "whatsapp": "447700900123", "email": "ada@example.com",
    })  # fmt: skip
    response = await by_contact(client, auth, person["id"], priority)
    assert response.status_code == 201, response.text
    assert response.json()["platform"] == platform


@pytest.mark.usefixtures("bot")
async def test_opt_outs_and_missing_addresses_are_skipped(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    person = await contact(client, auth, opt_outs=["whatsapp"])
    sent = (await by_contact(client, auth, person["id"], "MEDIUM")).json()
    assert sent["platform"] == "sms"
    assert [s["platform"] for s in sent["route_plan"]] == ["sms", "email"]
    nobody = await contact(client, auth, addresses={"telegram": "123456789"})
    refused = await by_contact(client, auth, nobody["id"], "LOW")
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "contact_id"


@pytest.mark.usefixtures("bot")
async def test_recipient_in_the_wrong_form_is_refused(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    response = await client.post(
        SEND, json=send_body("bot", platform="sms", recipient_id="0770090012"), headers=auth
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "recipient_id"
    assert "E.164" in response.json()["detail"]
    bad = await client.post(
        "/api/v1/contacts", json={"name": "x", "addresses": {"email": "nope"}}, headers=auth
    )
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "addresses.email"


@pytest.mark.usefixtures("bot")
async def test_permanent_failure_falls_back_to_the_next_channel(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, worker: Worker
) -> None:
    use_transport(rt, lambda _: httpx.Response(400))  # the SMS provider refuses; email is the dev inbox
    await webhook_channel(client, auth, "sms")
    person = await contact(client, auth)
    sent = (await by_contact(client, auth, person["id"], "HIGH")).json()
    assert [s["platform"] for s in sent["route_plan"]] == ["sms", "whatsapp", "email"]
    await worker.drain()
    done = await message(client, auth, sent["id"])
    assert done["status"] == "sent"
    assert done["platform"] == "whatsapp"
    assert done["route_step"] == 1
    assert [(a["provider"], a["outcome"]) for a in done["attempt_log"]] == [
        ("webhook", "failed"),
        ("devinbox", "sent"),
    ]
    trail = (
        await client.get(f"/api/v1/audit?object_id={sent['id']}&action=message.fallback", headers=auth)
    ).json()
    assert trail["items"][0]["detail"]["to"] == "whatsapp"


@pytest.mark.usefixtures("bot")
async def test_explicit_fallback_sms_then_email(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, worker: Worker
) -> None:
    use_transport(rt, lambda _: httpx.Response(503))
    await webhook_channel(client, auth, "sms")
    body = send_body("bot", platform="sms", recipient_id="+447700900123",
                     fallback=[{"platform": "email", "recipient_id": "ada@example.com"}])  # fmt: skip
    sent = (await client.post(SEND, json=body, headers=auth)).json()
    await worker.drain()
    done = await message(client, auth, sent["id"])
    assert done["status"] == "sent"
    assert done["platform"] == "email"
    outcomes = [a["outcome"] for a in done["attempt_log"]]
    assert outcomes[-1] == "sent"
    assert set(outcomes[:-1]) <= {"retry", "skipped"}
    inbox = (await client.get("/api/v1/devinbox?platform=email", headers=auth)).json()["items"]
    assert [i["recipient_id"] for i in inbox] == ["ada@example.com"]


def _window_around_now(zone: str) -> dict[str, str]:
    local = datetime.now(ZoneInfo(zone))
    start = (local - timedelta(hours=1)).strftime("%H:%M")
    end = (local + timedelta(hours=2)).strftime("%H:%M")
    return {"start": start, "end": end}


@pytest.mark.usefixtures("bot")
async def test_quiet_hours_delay_until_the_window_ends_but_critical_passes(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    zone = "Asia/Tokyo"
    person = await contact(client, auth, timezone=zone, quiet_hours=_window_around_now(zone))
    held = (await by_contact(client, auth, person["id"], "HIGH")).json()
    run_at = datetime.fromisoformat(held["run_at"])
    assert timedelta(hours=1, minutes=58) <= run_at - datetime.now(UTC) <= timedelta(hours=2, minutes=1)
    urgent = (await by_contact(client, auth, person["id"], "CRITICAL")).json()
    assert datetime.fromisoformat(urgent["run_at"]) <= datetime.now(UTC)


@pytest.mark.usefixtures("bot")
async def test_tenant_default_quiet_hours_apply_to_direct_messages(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    policy = {"timezone": "America/New_York", "quiet_hours": _window_around_now("America/New_York")}
    assert (await client.put("/api/v1/delivery-policy", json=policy, headers=auth)).status_code == 200
    held = (await client.post(SEND, json=send_body("bot"), headers=auth)).json()
    assert datetime.fromisoformat(held["run_at"]) > datetime.now(UTC) + timedelta(hours=1)
    bad = await client.put(
        "/api/v1/delivery-policy", json={"priority_routes": {"URGENT": ["sms"]}}, headers=auth
    )
    assert bad.status_code == 422


@pytest.mark.usefixtures("bot")
async def test_outage_opens_the_circuit_and_nothing_is_lost(
    client: httpx.AsyncClient,
    auth: dict[str, str],
    rt: Runtime,
    worker: Worker,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(circuit, "COOLDOWN", timedelta(seconds=0.3))
    outage = {"down": True}
    use_transport(
        rt, lambda _: httpx.Response(503) if outage["down"] else httpx.Response(200, json={"id": "ok"})
    )
    channel = await webhook_channel(client, auth, "slack")
    ids = [
        (await client.post(SEND, json=send_body("bot", content=f"n{i}"), headers=auth)).json()["id"]
        for i in range(12)
    ]
    await worker.run_once()
    listed = (await client.get("/api/v1/channels", headers=auth)).json()["items"]
    state = next(c for c in listed if c["id"] == channel["id"])["circuit"]
    assert state["state"] == "open"
    assert state["consecutive_failures"] >= circuit.THRESHOLD
    outage["down"] = False
    deadline = time.monotonic() + 20
    statuses: set[str] = set()
    while time.monotonic() < deadline:
        await worker.run_once()
        statuses = {(await message(client, auth, i))["status"] for i in ids}
        if statuses == {"sent"}:
            break
        await asyncio.sleep(0.1)
    assert statuses == {"sent"}
    healed = (await client.get(f"/api/v1/channels/{channel['id']}", headers=auth)).json()["circuit"]
    assert healed["state"] == "closed"


@pytest.mark.usefixtures("bot")
async def test_rate_limit_is_never_exceeded(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    stamps: list[float] = []

    def handler(_: httpx.Request) -> httpx.Response:
        stamps.append(time.monotonic())
        return httpx.Response(200, json={"id": "x"})

    use_transport(rt, handler)
    await webhook_channel(client, auth, "slack", rate_per_second=10)
    for i in range(15):
        await client.post(SEND, json=send_body("bot", recipient_id=f"C{i:05d}"), headers=auth)
    stop = asyncio.Event()
    task = asyncio.create_task(Worker(rt, worker_id="limited").run(stop))
    deadline = time.monotonic() + 15
    while len(stamps) < 15 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    stop.set()
    rt.waker.wake()
    await task
    assert len(stamps) == 15
    rate, burst = 10.0, 10.0  # an owner-set rate gets a one-second bucket
    for i in range(len(stamps)):
        for j in range(i + 1, len(stamps)):
            assert (
                j - i + 1 <= burst + rate * (stamps[j] - stamps[i]) + 1.0
            )  # +1: clock granularity across batches
    assert stamps[-1] - stamps[0] >= (15 - burst - 1) / rate


@pytest.mark.usefixtures("bot")
async def test_per_recipient_limit_defers_without_counting_an_attempt(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, worker: Worker
) -> None:
    use_transport(rt, lambda _: httpx.Response(200, json={"id": "x"}))
    await webhook_channel(client, auth, "slack", recipient_rate_per_second=0.5)
    first = (await client.post(SEND, json=send_body("bot"), headers=auth)).json()
    second = (await client.post(SEND, json=send_body("bot"), headers=auth)).json()
    await worker.run_once()
    a, b = await message(client, auth, first["id"]), await message(client, auth, second["id"])
    assert sorted([a["status"], b["status"]]) == ["queued", "sent"]
    waiting = a if a["status"] == "queued" else b
    assert waiting["attempts"] == 0
    assert datetime.fromisoformat(waiting["run_at"]) > datetime.now(UTC) + timedelta(seconds=1)


@pytest.mark.usefixtures("bot")
async def test_cost_and_delivery_metrics_per_channel(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, worker: Worker
) -> None:
    answers = iter(
        [httpx.Response(200, json={"id": "a"}), httpx.Response(200, json={"id": "b"}), httpx.Response(400)]
    )
    use_transport(rt, lambda _: next(answers))
    channel = await webhook_channel(client, auth, "sms", cost_per_message=0.0075)
    for _ in range(3):
        await client.post(
            SEND, json=send_body("bot", platform="sms", recipient_id="+447700900123"), headers=auth
        )
    await worker.drain()
    figures = (await client.get("/api/v1/metrics/delivery", headers=auth)).json()
    (row,) = [c for c in figures["channels"] if c["channel_id"] == channel["id"]]
    assert (row["sent"], row["failed"], row["success_rate"], row["cost"]) == (2, 1, 0.6667, 0.015)
    assert figures["cost"] == 0.015


async def test_channel_test_endpoint_reports_the_provider_answer(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    answers = iter(
        [httpx.Response(200, json={"id": "remote-9"}), httpx.Response(429, headers={"Retry-After": "3"})]
    )
    use_transport(rt, lambda _: next(answers))
    channel = await webhook_channel(client, auth, "slack")
    ok = (
        await client.post(
            f"/api/v1/channels/{channel['id']}/test", json={"recipient_id": "C12345"}, headers=auth
        )
    ).json()
    assert (ok["ok"], ok["provider_message_id"]) == (True, "remote-9")
    limited = (
        await client.post(
            f"/api/v1/channels/{channel['id']}/test", json={"recipient_id": "C12345"}, headers=auth
        )
    ).json()
    assert (limited["ok"], limited["retryable"], limited["retry_after"]) == (False, True, 3)
    wrong = await client.post(
        f"/api/v1/channels/{channel['id']}/test", json={"recipient_id": "nope"}, headers=auth
    )
    assert wrong.status_code == 422


async def test_channel_test_on_the_dev_inbox_answers_at_once(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    """The test send writes the dev inbox in a session of its own: the route must not hold SQLite's one
    connection (and its write lock) meanwhile, or the send waits out the send timeout."""
    created = await client.post(
        "/api/v1/channels",
        json={"platform": "slack", "provider": "devinbox", "name": "inbox", "credentials": {}},
        headers=auth,
    )
    assert created.status_code == 201, created.text
    started = time.monotonic()
    response = await client.post(
        f"/api/v1/channels/{created.json()['id']}/test",
        json={"recipient_id": "C12345", "content": "ping"},
        headers=auth,
    )
    elapsed = time.monotonic() - started
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["ok"], body["error"]) == (True, None), body
    assert elapsed < 3.0, elapsed
    inbox = (await client.get("/api/v1/devinbox", headers=auth)).json()["items"]
    assert [(m["recipient_id"], m["content"]) for m in inbox] == [("C12345", "ping")]


@pytest.mark.usefixtures("bot")
async def test_acceptance_reads_each_circuit_at_most_once_a_second(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    await webhook_channel(client, auth, "slack")
    reads: list[set[str]] = []
    load = circuit.load

    async def counted(session: Any, channel_ids: set[str], now: datetime) -> dict[str, circuit.CircuitView]:
        reads.append(set(channel_ids))
        return await load(session, channel_ids, now)

    monkeypatch.setattr(circuit, "load", counted)
    for _ in range(3):
        response = await client.post(SEND, json=send_body("bot"), headers=auth)
        assert response.status_code == 201, response.text
    assert len(reads) == 1  # the first send read it; the next two within the second reused the view
    rt.circuit_views.clear()  # as a second passing does
    assert (await client.post(SEND, json=send_body("bot"), headers=auth)).status_code == 201
    assert len(reads) == 2
