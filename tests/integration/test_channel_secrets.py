"""Every provider, table-driven: credentials are write-only (never in an API answer), encrypted at rest, hidden
from reprs and absent from log lines while messages flow."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from herald.providers import provider_class, providers
from herald.runtime import Runtime
from herald.storage.models import Channel

SECRET = "S3CRETVALUEshouldneverleak9876"

# provider -> (platform, credentials with SECRET in every secret field, base_url)
SAMPLES: dict[str, tuple[str, dict[str, Any], str | None]] = {
    "slack": ("slack", {"bot_token": f"xoxb-{SECRET}", "signing_secret": SECRET}, None),
    "discord_bot": ("discord", {"bot_token": SECRET, "public_key": SECRET}, None),
    "discord_webhook": (
        "discord",
        {"webhook_url": f"https://discord.com/api/webhooks/123456/{SECRET}"},
        None,
    ),
    "teams_workflow": (
        "teams",
        {
            "webhook_url": f"https://prod.logic.azure.com/workflows/abc/triggers/manual/paths/invoke?sig={SECRET}"
        },
        None,
    ),
    "teams_webhook": (
        "teams",
        {"webhook_url": f"https://acme.webhook.office.com/webhookb2/g@t/IncomingWebhook/{SECRET}/o"},
        None,
    ),
    "google_chat_webhook": (
        "google_chat",
        {"webhook_url": f"https://chat.googleapis.com/v1/spaces/AAA/messages?key=k&token={SECRET}"},
        None,
    ),
    "signal_cli_rest": ("signal", {"number": "+4412345678"}, "http://127.0.0.1:8080"),
    "telegram": ("telegram", {"bot_token": f"123456:{SECRET}", "secret_token": SECRET}, None),
    "whatsapp_cloud": (
        "whatsapp",
        {
            "access_token": SECRET,
            "phone_number_id": "1234567890",
            "app_secret": SECRET,
            "verify_token": SECRET,
        },
        None,
    ),
    "messenger": (
        "messenger",
        {"page_access_token": SECRET, "page_id": "1234567890", "app_secret": SECRET, "verify_token": SECRET},
        None,
    ),
    "line": ("line", {"channel_access_token": SECRET, "channel_secret": SECRET}, None),
    "twilio": (
        "sms",
        {"account_sid": "AC12345678", "auth_token": SECRET, "from_number": "+15017122661"},
        None,
    ),
    "sendgrid": ("email", {"api_key": f"SG.{SECRET}", "from_email": "noreply@example.com"}, None),
    "resend": ("email", {"api_key": f"re_{SECRET}", "from_email": "noreply@example.com"}, None),
    "smtp": (
        "email",
        {
            "host": "smtp.example.com",
            "username": "u",
            "password": SECRET,
            "from_email": "noreply@example.com",
        },
        None,
    ),
    "apprise": ("slack", {"url": f"json://127.0.0.1:9/{SECRET}"}, None),
    # A Standard Webhooks secret is whsec_ + base64: SECRET + "AA" is valid base64 (24 bytes) and contains SECRET.
    "webhook": ("slack", {"url": f"https://relay.example/{SECRET}", "secret": f"whsec_{SECRET}AA"}, None),
}


def test_every_registered_provider_has_a_sample() -> None:
    assert set(providers()) - {"devinbox"} == set(SAMPLES)


@pytest.mark.parametrize("provider", sorted(SAMPLES))
async def test_credentials_are_write_only_and_encrypted(
    provider: str,
    client: httpx.AsyncClient,
    auth: dict[str, str],
    rt: Runtime,
    caplog: pytest.LogCaptureFixture,
) -> None:
    platform, credentials, base_url = SAMPLES[provider]
    caplog.set_level(logging.DEBUG)
    body: dict[str, Any] = {
        "platform": platform,
        "provider": provider,
        "name": provider,
        "credentials": credentials,
    }
    if base_url:
        body["base_url"] = base_url
    created = await client.post("/api/v1/channels", json=body, headers=auth)
    assert created.status_code == 201, created.text
    channel_id = created.json()["id"]
    answers = [
        created.text,
        (await client.get("/api/v1/channels", headers=auth)).text,
        (await client.get(f"/api/v1/channels/{channel_id}", headers=auth)).text,
        (await client.get("/api/v1/audit", headers=auth)).text,
    ]
    for answer in answers:
        assert SECRET not in answer
    assert set(credentials) <= set(created.json()["credentials_set"])

    async with rt.sessions() as session:
        row = (await session.execute(select(Channel).where(Channel.id == channel_id))).scalar_one()
    assert SECRET.encode() not in row.credentials
    adapter = rt.build_channel(row)
    assert SECRET not in repr(adapter)
    assert SECRET not in repr(adapter.config)
    cls = provider_class(provider)
    assert cls is not None
    assert SECRET not in repr(cls.credentials_model.model_validate(credentials))
    assert SECRET not in caplog.text


@pytest.mark.parametrize("provider", ["slack", "twilio", "webhook"])
async def test_bad_credentials_are_422_naming_the_field_without_echoing_them(
    provider: str, client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    platform, credentials, _ = SAMPLES[provider]
    broken = dict(credentials)
    broken.pop(next(iter(broken)))
    response = await client.post(
        "/api/v1/channels",
        json={"platform": platform, "provider": provider, "name": "x", "credentials": broken},
        headers=auth,
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"].startswith("credentials")
    assert SECRET not in response.text
