"""Delivery receipts through /api/v1/interfaces/{channel_id}/webhook: signatures checked, states only move forward."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from herald.pipeline.worker import Worker
from herald.providers.meta_webhooks import hub_signature
from herald.providers.twilio.receipts import twilio_signature
from herald.runtime import Runtime
from tests.conftest import make_agent, send_body, use_transport

SEND = "/api/v1/messaging/proactive/send"
TOKEN = "twilio-auth-token-123"


@pytest.fixture
async def bot(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    await make_agent(client, auth, "bot", "AUTONOMOUS")


async def channel(client: httpx.AsyncClient, auth: dict[str, str], body: dict[str, Any]) -> str:
    response = await client.post(
        "/api/v1/channels", json={"name": "c", "is_default": True, **body}, headers=auth
    )
    assert response.status_code == 201, response.text
    channel_id: str = response.json()["id"]
    return channel_id


async def status_of(client: httpx.AsyncClient, auth: dict[str, str], message_id: str) -> str:
    status: str = (await client.get(f"/api/v1/messages/{message_id}", headers=auth)).json()["status"]
    return status


async def twilio_callback(
    client: httpx.AsyncClient, channel_id: str, params: dict[str, str], token: str = TOKEN
) -> httpx.Response:
    url = f"http://herald.test/api/v1/interfaces/{channel_id}/webhook"
    return await client.post(
        url, content=urlencode(params),
        headers={"content-type": "application/x-www-form-urlencoded", "x-twilio-signature": twilio_signature(token, url, params)},
    )  # fmt: skip


@pytest.mark.usefixtures("bot")
async def test_twilio_status_callbacks_move_the_message_forward(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, worker: Worker
) -> None:
    use_transport(rt, lambda _: httpx.Response(201, json={"sid": "SM0001", "status": "queued"}))
    channel_id = await channel(client, auth, {
        "platform": "sms", "provider": "twilio",
        "credentials": {"account_sid": "AC12345678", "auth_token": TOKEN, "from_number": "+15017122661"},
    })  # fmt: skip
    sent = (
        await client.post(
            SEND, json=send_body("bot", platform="sms", recipient_id="+14155551212"), headers=auth
        )
    ).json()
    await worker.drain()
    assert await status_of(client, auth, sent["id"]) == "sent"

    forged = await twilio_callback(
        client, channel_id, {"MessageSid": "SM0001", "MessageStatus": "delivered"}, token="wrong"
    )
    assert forged.status_code == 401
    assert await status_of(client, auth, sent["id"]) == "sent"

    ok = await twilio_callback(
        client, channel_id, {"MessageSid": "SM0001", "MessageStatus": "delivered", "AccountSid": "AC12345678"}
    )
    assert ok.status_code == 200, ok.text
    assert ok.json() == {"received": 1, "updated": 1}
    assert await status_of(client, auth, sent["id"]) == "delivered"
    await twilio_callback(client, channel_id, {"MessageSid": "SM0001", "MessageStatus": "read"})
    await twilio_callback(
        client, channel_id, {"MessageSid": "SM0001", "MessageStatus": "delivered"}
    )  # late, ignored
    assert await status_of(client, auth, sent["id"]) == "read"
    events = (await client.get(f"/api/v1/audit?object_id={sent['id']}", headers=auth)).json()["items"]
    assert {"message.delivered", "message.read"} <= {e["action"] for e in events}


@pytest.mark.usefixtures("bot")
async def test_twilio_undelivered_marks_failed_with_the_error(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, worker: Worker
) -> None:
    use_transport(rt, lambda _: httpx.Response(201, json={"sid": "SM0002"}))
    channel_id = await channel(client, auth, {
        "platform": "sms", "provider": "twilio",
        "credentials": {"account_sid": "AC12345678", "auth_token": TOKEN, "from_number": "+15017122661"},
    })  # fmt: skip
    sent = (
        await client.post(
            SEND, json=send_body("bot", platform="sms", recipient_id="+14155551212"), headers=auth
        )
    ).json()
    await worker.drain()
    await twilio_callback(
        client, channel_id, {"MessageSid": "SM0002", "MessageStatus": "undelivered", "ErrorCode": "30003"}
    )
    detail = (await client.get(f"/api/v1/messages/{sent['id']}", headers=auth)).json()
    assert (detail["status"], detail["last_error"]) == ("failed", "twilio error 30003")


@pytest.mark.usefixtures("bot")
async def test_whatsapp_handshake_and_signed_statuses(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, worker: Worker
) -> None:
    use_transport(
        rt,
        lambda _: httpx.Response(
            200, json={"messaging_product": "whatsapp", "messages": [{"id": "wamid.ABC"}]}
        ),
    )
    channel_id = await channel(client, auth, {
        "platform": "whatsapp", "provider": "whatsapp_cloud",
        "credentials": {"access_token": "EAAG-access-token", "phone_number_id": "1234567890",
                        "app_secret": "meta-app-secret", "verify_token": "verify-me"},
    })  # fmt: skip
    hook = f"/api/v1/interfaces/{channel_id}/webhook"
    ok = await client.get(
        hook, params={"hub.mode": "subscribe", "hub.verify_token": "verify-me", "hub.challenge": "42"}
    )
    assert (ok.status_code, ok.text) == (200, "42")
    denied = await client.get(
        hook, params={"hub.mode": "subscribe", "hub.verify_token": "nope", "hub.challenge": "42"}
    )
    assert denied.status_code == 403

    sent = (
        await client.post(
            SEND, json=send_body("bot", platform="whatsapp", recipient_id="15551234567"), headers=auth
        )
    ).json()
    await worker.drain()
    payload = {"object": "whatsapp_business_account", "entry": [{"changes": [{"value": {"statuses": [
        {"id": "wamid.ABC", "status": "read", "timestamp": "1700000000", "recipient_id": "15551234567"},
    ]}}]}]}  # fmt: skip
    body = json.dumps(payload).encode()
    forged = await client.post(
        hook, content=body, headers={"content-type": "application/json", "x-hub-signature-256": "sha256=00"}
    )
    assert forged.status_code == 401
    signed = await client.post(
        hook, content=body,
        headers={"content-type": "application/json", "x-hub-signature-256": hub_signature("meta-app-secret", body)},
    )  # fmt: skip
    assert signed.status_code == 200, signed.text
    assert await status_of(client, auth, sent["id"]) == "read"


async def test_unknown_channel_and_channels_without_callbacks_are_404(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    assert (await client.post("/api/v1/interfaces/chn_nope/webhook", content=b"{}")).status_code == 404
    channel_id = await channel(client, auth, {
        "platform": "slack", "provider": "webhook",
        "credentials": {"url": "https://relay.example/x", "secret": "whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQ="},
    })  # fmt: skip
    assert (await client.post(f"/api/v1/interfaces/{channel_id}/webhook", content=b"{}")).status_code == 404


async def _email_message(client: httpx.AsyncClient, auth: dict[str, str], worker: Worker) -> str:
    body = send_body("bot", platform="email", recipient_id="ada@example.com", subject="Hi")
    sent = (await client.post(SEND, json=body, headers=auth)).json()
    await worker.drain()
    assert await status_of(client, auth, sent["id"]) == "sent"
    message_id: str = sent["id"]
    return message_id


@pytest.mark.usefixtures("bot")
async def test_resend_events_signed_with_svix(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, worker: Worker
) -> None:
    import time

    from herald.core.security import new_webhook_secret, standard_webhook_signature

    secret = new_webhook_secret()
    use_transport(rt, lambda _: httpx.Response(200, json={"id": "re-123"}))
    channel_id = await channel(client, auth, {
        "platform": "email", "provider": "resend",
        "credentials": {"api_key": "re_test_key_123", "from_email": "noreply@example.com", "webhook_secret": secret},
    })  # fmt: skip
    message_id = await _email_message(client, auth, worker)
    body = json.dumps({"type": "email.delivered", "data": {"email_id": "re-123"}}).encode()

    async def post(stamp: int, sign_with: str = secret) -> httpx.Response:
        signature = standard_webhook_signature(sign_with, "msg_1", stamp, body)
        headers = {"svix-id": "msg_1", "svix-timestamp": str(stamp), "svix-signature": signature}
        return await client.post(f"/api/v1/interfaces/{channel_id}/webhook", content=body, headers=headers)

    assert (await post(int(time.time()) - 600)).status_code == 401  # stale: a replay
    assert (await post(int(time.time()), new_webhook_secret())).status_code == 401
    assert (await post(int(time.time()))).status_code == 200
    assert await status_of(client, auth, message_id) == "delivered"


@pytest.mark.usefixtures("bot")
async def test_sendgrid_events_signed_with_ecdsa(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, worker: Worker
) -> None:
    import base64
    import time

    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    public = base64.b64encode(
        key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    ).decode()
    use_transport(rt, lambda _: httpx.Response(202, headers={"X-Message-Id": "sgABC"}))
    channel_id = await channel(client, auth, {
        "platform": "email", "provider": "sendgrid",
        "credentials": {"api_key": "SG.test-key-123", "from_email": "noreply@example.com", "webhook_public_key": public},
    })  # fmt: skip
    message_id = await _email_message(client, auth, worker)
    body = json.dumps([{"event": "open", "sg_message_id": "sgABC.filterdrecv-1"}]).encode()
    stamp = str(int(time.time()))
    signature = base64.b64encode(key.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))).decode()
    hook = f"/api/v1/interfaces/{channel_id}/webhook"
    headers = {
        "x-twilio-email-event-webhook-timestamp": stamp,
        "x-twilio-email-event-webhook-signature": signature,
    }
    tampered = await client.post(hook, content=body.replace(b"open", b"bounce"), headers=headers)
    assert tampered.status_code == 401
    ok = await client.post(hook, content=body, headers=headers)
    assert ok.status_code == 200, ok.text
    assert await status_of(client, auth, message_id) == "read"
