"""Herald's Standard Webhooks signatures checked by the official ``standardwebhooks`` library, given the secret
string exactly as Herald showed it (or as the user gave it): the webhook channel's deliveries, event subscription
deliveries, agent callbacks, and the other way round, a sender signing for Herald's incoming webhook endpoints.
Secrets not in the ``whsec_<base64>`` form are refused, naming the field; channels stored before keep working."""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import update
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from herald.core.security import new_webhook_secret
from herald.events import dispatcher
from herald.pipeline.worker import Worker
from herald.runtime import Runtime
from herald.storage.models import Channel
from tests.conftest import make_agent, send_body, use_transport

SEND = "/api/v1/messaging/proactive/send"


def verified(secret: str | bytes, request: httpx.Request) -> dict[str, object]:
    """The request's JSON body once the official library has checked its signature with ``secret``."""
    payload = Webhook(secret).verify(request.content, dict(request.headers))
    assert isinstance(payload, dict)
    return payload


def refused(secret: str | bytes, request: httpx.Request) -> bool:
    try:
        Webhook(secret).verify(request.content, dict(request.headers))
    except WebhookVerificationError:
        return True
    return False


async def relay(client: httpx.AsyncClient, auth: dict[str, str], secret: str) -> httpx.Response:
    return await client.post(
        "/api/v1/channels",
        json={"platform": "slack", "provider": "webhook", "name": "relay", "is_default": True,
              "credentials": {"url": "https://relay.example/hook", "secret": secret}},
        headers=auth,
    )  # fmt: skip


async def test_webhook_channel_deliveries_verify_with_the_secret_string_the_user_gave(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, worker: Worker
) -> None:
    seen = use_transport(rt, lambda _: httpx.Response(200))
    secret = new_webhook_secret()  # what a user makes: whsec_ + base64 of 32 random bytes
    assert (await relay(client, auth, secret)).status_code == 201
    await make_agent(client, auth, "bot", "AUTONOMOUS")
    message = (await client.post(SEND, json=send_body("bot"), headers=auth)).json()
    await worker.drain()
    (request,) = seen
    payload = verified(secret, request)
    assert (payload["type"], payload["data"]) == (
        "message.send",
        {"id": message["id"], "platform": "slack", "recipient_id": "C12345", "subject": None,
         "content": "Hello! I have important updates.", "attempt": 1},
    )  # fmt: skip
    assert refused(new_webhook_secret(), request)


@pytest.mark.parametrize(
    ("secret", "why"),
    [
        ("a-raw-secret-without-the-prefix-0123456789", "does not start with whsec_"),
        ("whsec_not*base64*at*all*0123456789", "is not base64"),
        ("whsec_" + "c2hvcnQ=", "decodes to 5 bytes"),
        ("whsec_" + "QUFB" * 30, "decodes to 90 bytes"),
    ],
)
async def test_a_webhook_channel_secret_not_in_whsec_form_is_422_naming_the_field(
    client: httpx.AsyncClient, auth: dict[str, str], secret: str, why: str
) -> None:
    response = await relay(client, auth, secret)
    assert response.status_code == 422, response.text
    problem = response.json()
    assert [e["field"] for e in problem["errors"]] == ["credentials.secret"]
    assert "whsec_" in problem["detail"]
    assert why in problem["detail"]
    assert secret.removeprefix("whsec_") not in response.text


async def test_a_resend_webhook_secret_must_be_in_whsec_form_too(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    body = {"platform": "email", "provider": "resend", "name": "resend",
            "credentials": {"api_key": "re_test_key_123", "from_email": "noreply@example.com",
                            "webhook_secret": "raw-resend-secret-0123456789"}}  # fmt: skip
    response = await client.post("/api/v1/channels", json=body, headers=auth)
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == ["credentials.webhook_secret"]
    body["credentials"]["webhook_secret"] = new_webhook_secret()  # type: ignore[index]
    assert (await client.post("/api/v1/channels", json=body, headers=auth)).status_code == 201


async def test_a_channel_stored_with_a_raw_secret_keeps_signing_with_its_bytes(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, worker: Worker
) -> None:
    """Rows written before the whsec_ rule may hold a raw secret: they sign as they always did (the key is the
    secret's UTF-8 bytes), so receivers already set up keep verifying."""
    seen = use_transport(rt, lambda _: httpx.Response(200))
    assert (await relay(client, auth, new_webhook_secret())).status_code == 201
    raw = "an-old-raw-secret-" + secrets.token_hex(8)
    async with rt.sessions.begin() as session:
        await session.execute(
            update(Channel).values(
                credentials=rt.credentials.seal({"url": "https://relay.example/hook", "secret": raw})
            )
        )
    rt.lookups.clear()
    await make_agent(client, auth, "bot", "AUTONOMOUS")
    message = (await client.post(SEND, json=send_body("bot"), headers=auth)).json()
    await worker.drain()
    (request,) = seen
    assert verified(raw.encode(), request)["data"]["id"] == message["id"]  # type: ignore[index]


async def test_event_subscription_deliveries_verify_with_the_secret_herald_showed(
    client: httpx.AsyncClient,
    auth: dict[str, str],
    rt: Runtime,
    worker: Worker,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(dispatcher, "SETTLE", timedelta(0))
    seen = use_transport(rt, lambda _: httpx.Response(200))
    created = await client.post(
        "/api/v1/event-subscriptions",
        json={"url": "https://subscriber.example/events", "event_types": ["message.queued"]},
        headers=auth,
    )
    assert created.status_code == 201, created.text
    shown = created.json()["secret"]
    assert shown.startswith("whsec_")
    await make_agent(client, auth, "bot", "AUTONOMOUS")
    message = (await client.post(SEND, json=send_body("bot"), headers=auth)).json()
    await dispatcher.fan_out(rt)
    await dispatcher.fan_out(rt)
    await dispatcher.send_due(rt)
    (request,) = [r for r in seen if r.url.host == "subscriber.example"]
    payload = verified(shown, request)
    assert payload["type"] == "message.queued"
    assert payload["data"]["id"] == message["id"]  # type: ignore[index]
    assert refused(new_webhook_secret(), request)


async def _agent_callback(
    client: httpx.AsyncClient, auth: dict[str, str], seen: list[httpx.Request]
) -> httpx.Request:
    trigger = await client.post(
        "/api/proactive/triggers",
        json={"name": "t", "trigger_type": "manual", "config": {}, "agent_id": "reviewer",
              "task_template": "Review {title}"},
        headers=auth,
    )  # fmt: skip
    assert trigger.status_code == 201, trigger.text
    before = len(seen)
    fired = await client.post(
        f"/api/proactive/triggers/{trigger.json()['id']}/fire",
        json={"payload": {"title": "PR 7"}},
        headers=auth,
    )
    assert fired.status_code == 200, fired.text
    (request,) = seen[before:]
    return request


async def test_agent_callbacks_verify_with_the_secret_herald_showed_and_with_a_rotated_one(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    seen = use_transport(rt, lambda _: httpx.Response(200, json={}))
    created = await client.post(
        "/api/v1/agents",
        json={"id": "reviewer", "maturity_level": "AUTONOMOUS", "callback_url": "https://agent.example/hook"},
        headers=auth,
    )
    assert created.status_code == 201, created.text
    shown = created.json()["callback_secret"]
    request = await _agent_callback(client, auth, seen)
    payload = verified(shown, request)
    assert (payload["type"], payload["data"]["task"]) == ("trigger.fired", "Review PR 7")  # type: ignore[index]

    rotated = await client.patch(
        "/api/v1/agents/reviewer", json={"rotate_callback_secret": True}, headers=auth
    )
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()["callback_secret"]
    request = await _agent_callback(client, auth, seen)
    assert verified(new, request)["type"] == "trigger.fired"
    assert refused(shown, request)


async def test_a_sender_signing_with_the_official_library_is_accepted_by_herald_endpoints(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    seen = use_transport(rt, lambda _: httpx.Response(200, json={}))
    agent = await client.post(
        "/api/v1/agents",
        json={"id": "reviewer", "maturity_level": "AUTONOMOUS", "callback_url": "https://agent.example/hook"},
        headers=auth,
    )
    assert agent.status_code == 201, agent.text
    trigger = await client.post(
        "/api/proactive/triggers",
        json={"name": "deploy", "trigger_type": "webhook", "config": {}, "agent_id": "reviewer",
              "task_template": "Deployed {version}"},
        headers=auth,
    )  # fmt: skip
    hook = (
        await client.post(
            "/api/proactive/webhooks", json={"name": "d", "trigger_id": trigger.json()["id"]}, headers=auth
        )
    ).json()
    body = json.dumps({"version": "v1.2.3"})
    now = datetime.now(UTC)
    signature = Webhook(hook["secret"]).sign("msg_std_1", now, body)
    headers = {"webhook-id": "msg_std_1", "webhook-timestamp": str(int(now.timestamp())),
               "webhook-signature": signature, "content-type": "application/json"}  # fmt: skip
    response = await client.post(f"/api/hooks/{hook['url_path']}", content=body, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] is True
    forged = Webhook(new_webhook_secret()).sign("msg_std_2", now, body)
    response = await client.post(
        f"/api/hooks/{hook['url_path']}",
        content=body,
        headers={**headers, "webhook-id": "msg_std_2", "webhook-signature": forged},
    )
    assert response.status_code == 401
    assert len(seen) == 1
