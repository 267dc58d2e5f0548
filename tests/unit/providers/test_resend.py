"""Resend adapter against the fake Resend: request shape, idempotency key, id, error classes, retry-after."""

from __future__ import annotations

from dataclasses import replace

import httpx
import pytest

from herald.core.errors import PermanentDeliveryError, RetryableDeliveryError
from herald.providers import ChannelConfig
from herald.providers.fakebase import Behaviour
from herald.providers.resend.send import ResendChannel, ResendCredentials
from tests.unit.providers.conftest import Fake, outbound

KEY = "re_test_key_123456"
CREDS = {"api_key": KEY, "from_email": "alerts@example.com"}


async def test_posts_emails_with_idempotency_key_and_returns_id(fake: Fake) -> None:
    resend = fake.adapter("resend", "email", {**CREDS, "from_name": "Herald Alerts"})
    message_id = await resend.send(
        outbound("ada@example.org", "Your report is ready.", platform="email", subject="Report")
    )
    (request,) = fake.requests("resend")
    assert request.path == "/emails"
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.headers["idempotency-key"] == "msg_1"
    assert request.headers["user-agent"].startswith("herald/")
    assert request.json == {
        "from": "Herald Alerts <alerts@example.com>",
        "to": ["ada@example.org"],
        "subject": "Report",
        "text": "Your report is ready.",
        "headers": {"Message-ID": "<msg_1@example.com>"},
    }
    assert len(message_id) == 36  # a UUID


async def test_a_retry_with_the_same_message_id_gets_the_same_email_id(fake: Fake) -> None:
    resend = fake.adapter("resend", "email", CREDS)
    first = await resend.send(outbound("ada@example.org", platform="email"))
    again = await resend.send(outbound("ada@example.org", platform="email", attempt=2))
    other = await resend.send(replace(outbound("ada@example.org", platform="email"), id="msg_2"))
    assert again == first
    assert other != first
    keys = [r.headers["idempotency-key"] for r in fake.requests("resend")]
    assert keys == ["msg_1", "msg_1", "msg_2"]


async def test_subject_defaults_and_from_is_the_bare_address(fake: Fake) -> None:
    await fake.adapter("resend", "email", CREDS).send(outbound("ada@example.org", platform="email"))
    (request,) = fake.requests("resend")
    assert request.json["subject"] == "Message"
    assert request.json["from"] == "alerts@example.com"


async def test_invalid_key_is_permanent(fake: Fake) -> None:
    resend = fake.adapter("resend", "email", {**CREDS, "api_key": "re_invalid_key_xyz"})
    with pytest.raises(PermanentDeliveryError, match="invalid_api_key"):
        await resend.send(outbound("ada@example.org", platform="email"))


async def test_validation_error_is_permanent(fake: Fake) -> None:
    fake.script("resend", Behaviour(kind="permanent"))
    with pytest.raises(PermanentDeliveryError, match="validation_error"):
        await fake.adapter("resend", "email", CREDS).send(outbound("ada@example.org", platform="email"))


async def test_rate_limit_is_retryable_with_retry_after(fake: Fake) -> None:
    fake.script("resend", Behaviour(kind="rate_limited", retry_after=3))
    with pytest.raises(RetryableDeliveryError, match="rate_limit_exceeded") as caught:
        await fake.adapter("resend", "email", CREDS).send(outbound("ada@example.org", platform="email"))
    assert caught.value.retry_after == 3


async def test_daily_quota_retries_after_an_hour(fake: Fake) -> None:
    with pytest.raises(RetryableDeliveryError, match="daily_quota_exceeded") as caught:
        await fake.adapter("resend", "email", CREDS).send(
            outbound("daily-quota@example.org", platform="email")
        )
    assert caught.value.retry_after == 3600


async def test_server_error_is_retryable(fake: Fake) -> None:
    fake.script("resend", Behaviour(kind="server_error", status=500))
    with pytest.raises(RetryableDeliveryError, match="500"):
        await fake.adapter("resend", "email", CREDS).send(outbound("ada@example.org", platform="email"))


async def test_timeout_is_retryable(fake: Fake) -> None:
    fake.script("resend", Behaviour(kind="timeout", delay=1))
    with pytest.raises(RetryableDeliveryError, match="timed out"):
        await fake.adapter("resend", "email", CREDS).send(outbound("ada@example.org", platform="email"))


async def test_unreachable_provider_is_retryable(fake: Fake) -> None:
    resend = fake.adapter("resend", "email", CREDS, base_url="http://127.0.0.1:9")
    with pytest.raises(RetryableDeliveryError, match="unreachable"):
        await resend.send(outbound("ada@example.org", platform="email"))


@pytest.mark.parametrize(
    ("status", "name", "error"),
    [
        (401, "missing_api_key", PermanentDeliveryError),
        (422, "validation_error", PermanentDeliveryError),
        (409, "invalid_idempotent_request", PermanentDeliveryError),
        (409, "concurrent_idempotent_requests", RetryableDeliveryError),
    ],
)
async def test_error_names_decide_the_class(status: int, name: str, error: type[Exception]) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json={"statusCode": status, "message": "...", "name": name})

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
        config = ChannelConfig(id="c", tenant_id="t", platform="email", provider="resend", credentials=CREDS)
        with pytest.raises(error, match=name):
            await ResendChannel(config, http).send(outbound("ada@example.org", platform="email"))


async def test_fake_refuses_a_reused_key_with_another_body(fake: Fake) -> None:
    headers = {"authorization": f"Bearer {KEY}", "idempotency-key": "k1"}
    body = {"from": "a@example.com", "to": ["b@example.org"], "subject": "Hi", "text": "one"}
    first = await fake.http.post(f"{fake.origin}/emails", json=body, headers=headers)
    assert first.status_code == 200
    second = await fake.http.post(f"{fake.origin}/emails", json={**body, "text": "two"}, headers=headers)
    assert second.status_code == 409
    assert second.json()["name"] == "invalid_idempotent_request"


async def test_fake_requires_a_key(fake: Fake) -> None:
    response = await fake.http.post(f"{fake.origin}/emails", json={})
    assert response.status_code == 401
    assert response.json()["name"] == "missing_api_key"


def test_declares_its_limits() -> None:
    assert ResendChannel.max_length is None
    assert ResendChannel.default_origin == "https://api.resend.com"
    assert ResendChannel.rate_per_second == 2.0


def test_credentials_never_show_in_repr(fake: Fake) -> None:
    resend = fake.adapter("resend", "email", CREDS)
    assert KEY not in repr(resend)
    assert KEY not in repr(resend.config)
    assert KEY not in repr(ResendCredentials.model_validate(CREDS))


async def test_a_conversation_reply_carries_the_thread_headers(fake: Fake) -> None:
    resend = fake.adapter("resend", "email", CREDS)
    context = {
        "reply_to": "<r1@example.org>",
        "references": ["<root@example.com>"],
        "subject": "Re: Service due",
    }
    await resend.send(outbound("ada@example.org", "Tuesday works.", platform="email", reply_context=context))
    (request,) = fake.requests("resend")
    assert request.json["subject"] == "Re: Service due"
    assert request.json["headers"] == {
        "Message-ID": "<msg_1@example.com>",
        "In-Reply-To": "<r1@example.org>",
        "References": "<root@example.com> <r1@example.org>",
    }
