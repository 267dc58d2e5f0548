"""OTP end to end (issue 8): send and verify through the API, delivered by a real provider adapter (Twilio, on
an httpx MockTransport), so the only place a code appears is the request to the provider.

Covered: single use, wrong code, attempt limit, expiry, send limit with Retry-After, resend keeps the code,
constant-time compare, fallback to a voice call that speaks the digits, no code in any stored row or log line,
no approval wait or quiet hours, contacts and email, cancel, per-tenant policy.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import inspect, select, text, update

from herald.admin.tenants import create_api_key
from herald.pipeline.worker import Worker
from herald.producers.otp import codes
from herald.runtime import Runtime
from herald.storage.models import Message, OtpSend, OtpVerification, Tenant
from herald.storage.types import utcnow
from tests.conftest import use_transport

PHONE = "+447700900123"
TOKEN = "twilio-auth-token-123"
SEND = "/api/v1/otp/send"
VERIFY = "/api/v1/otp/verify"

Handler = Callable[[httpx.Request], httpx.Response]


def twilio_ok(request: httpx.Request) -> httpx.Response:
    kind = "CA" if request.url.path.endswith("/Calls.json") else "SM"
    return httpx.Response(201, json={"sid": f"{kind}{len(request.content):08d}", "status": "queued"})


@pytest.fixture
def provider(rt: Runtime) -> list[httpx.Request]:
    """Every request a Twilio channel makes; tests that need another answer call use_transport again."""
    return use_transport(rt, twilio_ok)


async def twilio_channel(client: httpx.AsyncClient, auth: dict[str, str], platform: str = "sms") -> str:
    body = {
        "platform": platform, "provider": "twilio", "name": f"twilio {platform}", "is_default": True,
        "rate_per_second": 1000,  # tests send faster than a real number may
        "credentials": {"account_sid": "AC12345678", "auth_token": TOKEN, "from_number": "+15017122661"},
    }  # fmt: skip
    response = await client.post("/api/v1/channels", json=body, headers=auth)
    assert response.status_code == 201, response.text
    channel_id: str = response.json()["id"]
    return channel_id


@pytest.fixture
async def sms(client: httpx.AsyncClient, auth: dict[str, str], provider: list[httpx.Request]) -> str:
    return await twilio_channel(client, auth)


async def send(client: httpx.AsyncClient, auth: dict[str, str], **body: Any) -> httpx.Response:
    return await client.post(SEND, json={"phone": PHONE, **body}, headers=auth)


async def sent(client: httpx.AsyncClient, auth: dict[str, str], **body: Any) -> dict[str, Any]:
    response = await send(client, auth, **body)
    assert response.status_code == 201, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def verify(client: httpx.AsyncClient, auth: dict[str, str], code: str, **body: Any) -> httpx.Response:
    return await client.post(VERIFY, json={"phone": PHONE, "code": code, **body}, headers=auth)


def spoken(request: httpx.Request) -> str:
    """What the provider was asked to deliver: the SMS body, or the TwiML of a call."""
    form = parse_qs(request.content.decode())
    return (form.get("Body") or form.get("Twiml") or [""])[0]


def code_in(request: httpx.Request) -> str:
    """The code in a provider request (a call spells it "1, 2, 3, 4, 5, 6")."""
    match = re.search(r"\d(?:, \d){3,9}|\d{4,10}", spoken(request))
    assert match, spoken(request)
    return match.group().replace(", ", "")


def wrong(code: str) -> str:
    return "".join(str((int(d) + 1) % 10) for d in code)


async def dump_database(rt: Runtime) -> str:
    """Every row of every table in the database, as text."""
    async with rt.engine.connect() as conn:
        names = await conn.run_sync(lambda sync: inspect(sync).get_table_names())
        rows = [
            f"{name}: {tuple(row)!r}"
            for name in names
            for row in (await conn.execute(text(f'SELECT * FROM "{name}"'))).all()
        ]
    return "\n".join(rows)


@pytest.mark.usefixtures("sms")
async def test_a_code_approves_once_and_only_once(
    client: httpx.AsyncClient, auth: dict[str, str], worker: Worker, provider: list[httpx.Request]
) -> None:
    verification = await sent(client, auth)
    assert verification["status"] == "pending"
    assert verification["channel"] == "sms"
    assert verification["code_length"] == 6
    assert "code" not in verification
    assert await worker.drain() == 1
    [request] = provider
    assert request.url.path.endswith("/Messages.json")
    assert parse_qs(request.content.decode())["To"] == [PHONE]
    code = code_in(request)
    assert len(code) == 6

    approved = await verify(client, auth, code)
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "approved"
    assert approved.json()["valid"] is True
    assert approved.json()["id"] == verification["id"]

    again = await verify(client, auth, code)  # single use
    assert again.status_code == 404
    assert again.headers["content-type"] == "application/problem+json"
    status = (await client.get(f"/api/v1/otp/{verification['id']}", headers=auth)).json()
    assert (status["status"], status["checks"]) == ("approved", 1)


@pytest.mark.usefixtures("sms")
async def test_a_wrong_code_is_refused_and_the_right_one_still_works(
    client: httpx.AsyncClient, auth: dict[str, str], worker: Worker, provider: list[httpx.Request]
) -> None:
    await sent(client, auth)
    await worker.drain()
    code = code_in(provider[0])
    refused = await verify(client, auth, wrong(code))
    assert refused.status_code == 200
    assert (refused.json()["status"], refused.json()["valid"], refused.json()["checks"]) == (
        "pending",
        False,
        1,
    )
    other_length = await verify(client, auth, code + "0")
    assert (other_length.json()["valid"], other_length.json()["checks"]) == (False, 2)
    assert (await verify(client, auth, "12ab")).status_code == 422  # not a code at all: no check counted
    assert (await verify(client, auth, code)).json()["valid"] is True


@pytest.mark.usefixtures("sms")
async def test_five_wrong_checks_end_the_verification(
    client: httpx.AsyncClient, auth: dict[str, str], worker: Worker, provider: list[httpx.Request]
) -> None:
    first = await sent(client, auth)
    await worker.drain()
    code = code_in(provider[0])
    answers = [(await verify(client, auth, wrong(code))).json() for _ in range(5)]
    assert [a["status"] for a in answers] == ["pending"] * 4 + ["max_attempts_reached"]
    assert not any(a["valid"] for a in answers)
    assert (await verify(client, auth, code)).status_code == 404  # the right code no longer helps

    # Not locked out for good: a new send starts a new verification with a new code.
    second = await sent(client, auth)
    assert second["id"] != first["id"]
    await worker.drain()
    assert (await verify(client, auth, code_in(provider[1]))).json()["status"] == "approved"
    audit = (await client.get("/api/v1/audit?action=otp.max_attempts_reached", headers=auth)).json()["items"]
    assert [e["object_id"] for e in audit] == [first["id"]]


@pytest.mark.usefixtures("sms")
async def test_an_expired_code_is_refused(
    client: httpx.AsyncClient,
    auth: dict[str, str],
    worker: Worker,
    provider: list[httpx.Request],
    rt: Runtime,
) -> None:
    verification = await sent(client, auth)
    expires = datetime.fromisoformat(verification["expires_at"])
    assert timedelta(minutes=9, seconds=58) < expires - utcnow() <= timedelta(minutes=10)
    await worker.drain()
    code = code_in(provider[0])
    async with rt.sessions.begin() as session:
        await session.execute(update(OtpVerification).values(expires_at=utcnow() - timedelta(seconds=1)))
    assert (await client.get(f"/api/v1/otp/{verification['id']}", headers=auth)).json()["status"] == "expired"
    assert (await verify(client, auth, code)).status_code == 404
    stored = (await client.get(f"/api/v1/otp/{verification['id']}", headers=auth)).json()
    assert stored["status"] == "expired"
    events = (await client.get(f"/api/v1/audit?object_id={verification['id']}", headers=auth)).json()["items"]
    assert "otp.expired" in {e["action"] for e in events}
    assert (await sent(client, auth))["id"] != verification["id"]  # a new send starts afresh


@pytest.mark.usefixtures("sms")
async def test_a_resend_in_the_window_keeps_the_verification_and_the_code(
    client: httpx.AsyncClient, auth: dict[str, str], worker: Worker, provider: list[httpx.Request]
) -> None:
    first = await sent(client, auth)
    # The same person, spelled otherwise, through the SDK's one "recipient" field; the length stays.
    second = await sent(client, auth, phone=None, recipient="+44 7700 900123", code_length=8)
    assert second["id"] == first["id"]
    assert (second["sends"], second["code_length"], len(second["message_ids"])) == (2, 6, 2)
    assert await worker.drain() == 2
    assert code_in(provider[0]) == code_in(provider[1])
    assert (await verify(client, auth, code_in(provider[0]))).json()["status"] == "approved"
    third = await sent(client, auth)  # after approval, a new verification with its own code
    assert third["id"] != first["id"]


@pytest.mark.usefixtures("sms")
async def test_the_sixth_send_in_ten_minutes_is_refused_until_the_window_moves(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    for _ in range(5):
        await sent(client, auth)
    refused = await send(client, auth)
    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert 590 <= int(refused.headers["retry-after"]) <= 600
    assert (await send(client, auth, phone="+447700900124")).status_code == 201  # others are not affected
    audit = (await client.get("/api/v1/audit?action=otp.send_refused", headers=auth)).json()["items"]
    assert len(audit) == 1
    assert PHONE.lstrip("+") not in str(audit)

    async with rt.sessions.begin() as session:  # the window slides: the oldest send leaves it
        oldest = (await session.execute(select(OtpSend).order_by(OtpSend.sent_at).limit(1))).scalar_one()
        oldest.sent_at = utcnow() - timedelta(minutes=10, seconds=1)
    assert (await send(client, auth)).status_code == 201
    assert (await send(client, auth)).status_code == 429


@pytest.mark.usefixtures("sms")
async def test_codes_are_compared_in_constant_time(
    client: httpx.AsyncClient,
    auth: dict[str, str],
    worker: Worker,
    provider: list[httpx.Request],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await sent(client, auth)
    await worker.drain()
    compared: list[tuple[bytes, bytes]] = []
    real = codes.hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(codes.hmac, "compare_digest", spy)
    assert (await verify(client, auth, wrong(code_in(provider[0])))).json()["valid"] is False
    assert (await verify(client, auth, code_in(provider[0]))).json()["valid"] is True
    assert len(compared) == 2
    assert all(len(a) == len(b) == 64 for a, b in compared)  # digests, not codes, are compared


@pytest.mark.usefixtures("sms")
async def test_no_code_in_any_stored_row_log_line_or_answer(
    client: httpx.AsyncClient,
    auth: dict[str, str],
    worker: Worker,
    provider: list[httpx.Request],
    rt: Runtime,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    for noisy in ("sqlalchemy.engine", "httpx"):  # every SQL statement with its parameters, every HTTP call
        caplog.set_level(logging.DEBUG, logger=noisy)
    # Ten digits: a six-digit code could turn up by chance in timestamps or hex ids, ten cannot.
    subscription = {"url": "https://subscriber.example/herald", "event_types": []}
    assert (
        await client.post("/api/v1/event-subscriptions", json=subscription, headers=auth)
    ).status_code == 201
    keyed = {**auth, "Idempotency-Key": "otp-1"}  # its stored answer is a row too
    first = await client.post(SEND, json={"phone": PHONE, "code_length": 10}, headers=keyed)
    answers = [first]
    queued = (await client.get(f"/api/v1/messages/{first.json()['message_ids'][0]}", headers=auth)).json()
    async with rt.sessions() as session:
        sealed = (await session.execute(select(Message.sealed_content))).scalar_one()
    assert sealed is not None  # the worker's copy, encrypted
    answers.append(await send(client, auth, code_length=10))  # resend
    await worker.drain()
    code = code_in(provider[0])
    assert len(code) == 10
    assert code_in(provider[1]) == code
    answers.append(await verify(client, auth, wrong(code)))
    answers.append(await verify(client, auth, code))
    assert answers[-1].json()["status"] == "approved"
    answers.append(await client.get(f"/api/v1/otp/{first.json()['id']}", headers=auth))
    answers.append(await client.get("/api/v1/messaging/proactive/history", headers=auth))
    answers.append(await client.get(f"/api/v1/messages/{queued['id']}", headers=auth))
    answers.append(await client.get("/api/v1/audit", headers=auth))

    history = answers[-3].json()["items"]
    assert {m["content"] for m in history} == {"Your verification code is **********. Do not share it."}
    assert {m["agent_id"] for m in history} == {None}
    assert {m["status"] for m in history} == {"sent"}

    stored = await dump_database(rt)
    assert "otp_verifications" in stored
    assert "**********" in stored  # the redacted history is there...
    assert code not in stored  # ...and the code is nowhere
    async with rt.sessions() as session:
        assert list((await session.execute(select(Message.sealed_content))).scalars()) == [None, None]
    for answer in answers:
        assert code not in answer.text
    logged = "\n".join(f"{r.getMessage()} {r.exc_text or ''} {r.args!r}" for r in caplog.records)
    assert "INSERT INTO otp_verifications" in logged  # the capture is live and sees the SQL
    assert code not in logged


async def test_a_failed_sms_falls_back_to_a_call_that_speaks_the_digits(
    client: httpx.AsyncClient, auth: dict[str, str], worker: Worker, rt: Runtime
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/Messages.json"):
            return httpx.Response(400, json={"code": 21614, "message": "not a mobile number", "status": 400})
        return twilio_ok(request)

    provider = use_transport(rt, handler)
    await twilio_channel(client, auth, "sms")
    await twilio_channel(client, auth, "voice")
    verification = await sent(client, auth)
    assert verification["channel"] == "sms"
    await worker.drain()
    assert [r.url.path.rsplit("/", 1)[-1] for r in provider] == ["Messages.json", "Calls.json"]
    twiml = spoken(provider[1])
    assert re.search(r"is \d, \d, \d, \d, \d, \d\.", twiml), twiml
    message = (await client.get(f"/api/v1/messages/{verification['message_ids'][0]}", headers=auth)).json()
    assert (message["status"], message["platform"]) == ("sent", "voice")
    assert [step["platform"] for step in message["route_plan"]] == ["sms", "voice", "whatsapp"]
    assert (await verify(client, auth, code_in(provider[1]))).json()["valid"] is True


@pytest.mark.usefixtures("sms")
async def test_a_channel_asked_for_goes_first(
    client: httpx.AsyncClient, auth: dict[str, str], worker: Worker, provider: list[httpx.Request]
) -> None:
    await twilio_channel(client, auth, "voice")
    verification = await sent(client, auth, channel="call")
    assert verification["channel"] == "voice"
    await worker.drain()
    assert provider[0].url.path.endswith("/Calls.json")
    by_priority = await sent(
        client, auth, phone="+447700900124", priority="critical"
    )  # the delivery policy's
    message = (await client.get(f"/api/v1/messages/{by_priority['message_ids'][0]}", headers=auth)).json()
    assert [step["platform"] for step in message["route_plan"]] == ["voice", "sms", "whatsapp"]
    no_way = await send(client, auth, phone="+447700900125", priority="LOW")  # LOW is email only
    assert (no_way.status_code, no_way.json()["errors"][0]["field"]) == (422, "channel")
    bad = await send(client, auth, channel="sms", priority="HIGH")
    assert (bad.status_code, bad.json()["errors"][0]["field"]) == (422, "body")


@pytest.mark.usefixtures("sms")
async def test_codes_never_wait_for_approval_or_quiet_hours(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    local = datetime.now(ZoneInfo("Asia/Tokyo"))
    quiet = {
        "start": (local - timedelta(hours=1)).strftime("%H:%M"),
        "end": (local + timedelta(hours=2)).strftime("%H:%M"),
    }
    policy = {"timezone": "Asia/Tokyo", "quiet_hours": quiet}
    assert (await client.put("/api/v1/delivery-policy", json=policy, headers=auth)).status_code == 200
    verification = await sent(client, auth)
    message = (await client.get(f"/api/v1/messages/{verification['message_ids'][0]}", headers=auth)).json()
    assert message["status"] == "queued"
    assert message["priority"] == "CRITICAL"
    assert datetime.fromisoformat(message["run_at"]) <= utcnow()
    accepted = (await client.get(f"/api/v1/audit?object_id={message['id']}", headers=auth)).json()["items"]
    assert accepted[0]["detail"]["decision"] == "send"
    assert accepted[0]["actor"].startswith("api_key:")


async def test_contacts_and_email_addresses_get_codes_too(
    client: httpx.AsyncClient, auth: dict[str, str], worker: Worker
) -> None:
    person = await client.post(
        "/api/v1/contacts",
        json={
            "name": "Ada",
            "addresses": {"email": "ada@example.com", "slack": "C12345"},
            "opt_outs": ["sms"],
        },
        headers=auth,
    )
    contact_id = person.json()["id"]
    by_contact = await sent(client, auth, phone=None, contact_id=contact_id, locale="fr")
    assert by_contact["channel"] == "email"
    await worker.drain()
    # No channel is configured, so in development the dev inbox plays the provider, holding what it would get.
    inbox = (await client.get("/api/v1/devinbox?platform=email", headers=auth)).json()["items"]
    assert inbox[0]["subject"] == "Votre code de vérification"
    assert inbox[0]["content"].startswith("Votre code de vérification est ")
    code = re.findall(r"\d{6}", inbox[0]["content"])[0]
    # One verification per destination: the contact's code went to its email, so either name finds it.
    assert (await verify(client, auth, code, phone=None, email="Ada@example.com")).json()["valid"] is True
    single_use = await verify(client, auth, code, phone=None, recipient=contact_id)
    assert single_use.status_code == 404

    by_email = await sent(client, auth, phone=None, recipient="Ada@Example.com", template="Acme: {{code}}")
    assert by_email["channel"] == "email"
    unknown = await sent(client, auth, phone=None, email="nobody@example.com")
    assert unknown["status"] == "pending"  # nothing tells a known address from an unknown one
    no_template_code = await send(client, auth, phone=None, email="ada@example.com", template="Hello")
    assert (no_template_code.status_code, no_template_code.json()["errors"][0]["field"]) == (422, "template")
    two = await send(client, auth, email="ada@example.com")
    assert (two.status_code, two.json()["errors"][0]["field"]) == (422, "email")


@pytest.mark.usefixtures("sms")
async def test_unknown_recipients_and_other_tenants_look_like_no_pending_code(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    from tests.conftest import new_tenant

    verification = await sent(client, auth)
    unknown = await verify(client, auth, "123456", phone="+447700900999")
    other_tenant = await verify(client, await new_tenant(rt, "globex"), "123456")
    unknown_contact = await verify(client, auth, "123456", phone=None, contact_id="con_nobody")
    assert {r.status_code for r in (unknown, other_tenant, unknown_contact)} == {404}
    assert len({r.json()["detail"] for r in (unknown, other_tenant, unknown_contact)}) == 1
    other = await client.get(f"/api/v1/otp/{verification['id']}", headers=await new_tenant(rt, "initech"))
    assert other.status_code == 404


@pytest.mark.usefixtures("sms")
async def test_cancel_ends_the_verification_and_its_waiting_messages(
    client: httpx.AsyncClient, auth: dict[str, str], worker: Worker
) -> None:
    verification = await sent(client, auth)
    cancelled = await client.post(f"/api/v1/otp/{verification['id']}/cancel", headers=auth)
    assert cancelled.json()["status"] == "canceled"
    message = (await client.get(f"/api/v1/messages/{verification['message_ids'][0]}", headers=auth)).json()
    assert message["status"] == "cancelled"
    assert await worker.drain() == 0
    assert (await verify(client, auth, "123456")).status_code == 404
    again = await client.post(f"/api/v1/otp/{verification['id']}/cancel", headers=auth)
    assert again.status_code == 409


@pytest.mark.usefixtures("sms")
async def test_the_tenant_sets_its_own_limits(
    client: httpx.AsyncClient,
    auth: dict[str, str],
    worker: Worker,
    provider: list[httpx.Request],
    rt: Runtime,
) -> None:
    assert (await client.get("/api/v1/otp/policy", headers=auth)).json()["max_checks"] == 5
    bad = await client.put("/api/v1/otp/policy", json={"max_checks": 0}, headers=auth)
    assert (bad.status_code, bad.json()["errors"][0]["field"]) == (422, "max_checks")
    bad = await client.put("/api/v1/otp/policy", json={"template": "no code here"}, headers=auth)
    assert (bad.status_code, bad.json()["errors"][0]["field"]) == (422, "template")
    policy = {
        "max_checks": 2,
        "max_sends": 1,
        "code_length": 4,
        "ttl_seconds": 120,
        "template": "Code {{code}}",
    }
    changed = await client.put("/api/v1/otp/policy", json=policy, headers=auth)
    assert changed.status_code == 200, changed.text
    assert (changed.json()["max_checks"], changed.json()["send_window_seconds"]) == (2, 600)
    async with rt.sessions.begin() as session:
        tenant = (await session.execute(select(Tenant).where(Tenant.name == "acme"))).scalar_one()
        plain = {"Authorization": f"Bearer {await create_api_key(session, tenant, is_admin=False)}"}
    refused = await client.put("/api/v1/otp/policy", json={"max_checks": 20}, headers=plain)
    assert refused.status_code == 403  # a limit is a security setting

    verification = await sent(client, auth)
    assert verification["code_length"] == 4
    assert (
        timedelta(seconds=110)
        < datetime.fromisoformat(verification["expires_at"]) - utcnow()
        <= timedelta(seconds=120)
    )
    assert (await send(client, auth)).status_code == 429
    await worker.drain()
    assert re.fullmatch(r"Code \d{4}", spoken(provider[0]))
    code = code_in(provider[0])
    statuses = [(await verify(client, auth, wrong(code))).json()["status"] for _ in range(2)]
    assert statuses == ["pending", "max_attempts_reached"]


async def test_verify_needs_exactly_one_recipient(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    none = await client.post(VERIFY, json={"code": "123456"}, headers=auth)
    assert (none.status_code, none.json()["errors"][0]["field"]) == (422, "recipient")
    bad_phone = await client.post(VERIFY, json={"phone": "07700 900123", "code": "123456"}, headers=auth)
    assert (bad_phone.status_code, bad_phone.json()["errors"][0]["field"]) == (422, "phone")


@pytest.mark.usefixtures("sms")
async def test_a_contact_and_its_own_phone_share_one_verification_and_one_send_limit(
    client: httpx.AsyncClient, auth: dict[str, str], provider: list[httpx.Request], worker: Worker
) -> None:
    person = await client.post(
        "/api/v1/contacts", json={"name": "Ada", "addresses": {"sms": PHONE}}, headers=auth
    )
    contact_id = person.json()["id"]
    first = await sent(client, auth)
    again = await sent(client, auth, phone=None, contact_id=contact_id)
    assert again["id"] == first["id"]  # a resend of the same verification, not a second valid code
    for _ in range(3):
        await sent(client, auth)
    assert (await send(client, auth, phone=None, contact_id=contact_id)).status_code == 429
    await worker.drain()
    code = code_in(provider[-1])
    assert (await verify(client, auth, code, phone=None, contact_id=contact_id)).json()[
        "status"
    ] == "approved"


async def test_phone_numbers_are_ascii_digits_only(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    response = await send(client, auth, phone="+44\u0667\u0667\u0660\u0660900123")
    assert response.status_code == 422
