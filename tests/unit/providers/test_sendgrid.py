"""SendGrid adapter against the fake SendGrid: request shape, X-Message-Id, error classes, rate-limit reset."""

from __future__ import annotations

import time

import httpx
import pytest

from herald.core.errors import PermanentDeliveryError, RetryableDeliveryError
from herald.providers import ChannelConfig
from herald.providers.fakebase import Behaviour
from herald.providers.sendgrid.send import SendGridChannel, SendGridCredentials
from tests.unit.providers.conftest import Fake, outbound

KEY = "SG.test-key-123.abcdef"
CREDS = {"api_key": KEY, "from_email": "alerts@example.com"}


async def test_posts_mail_send_and_returns_x_message_id(fake: Fake) -> None:
    sendgrid = fake.adapter("sendgrid", "email", {**CREDS, "from_name": "Herald Alerts"})
    message_id = await sendgrid.send(
        outbound("ada@example.org", "Your report is ready.", platform="email", subject="Report")
    )
    (request,) = fake.requests("sendgrid")
    assert request.path == "/v3/mail/send"
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.json == {
        "personalizations": [{"to": [{"email": "ada@example.org"}]}],
        "from": {"email": "alerts@example.com", "name": "Herald Alerts"},
        "subject": "Report",
        "content": [{"type": "text/plain", "value": "Your report is ready."}],
        "headers": {"Message-ID": "<msg_1@example.com>"},
    }
    assert message_id
    assert len(message_id) > 6


async def test_subject_defaults_when_the_message_has_none(fake: Fake) -> None:
    await fake.adapter("sendgrid", "email", CREDS).send(outbound("ada@example.org", platform="email"))
    (request,) = fake.requests("sendgrid")
    assert request.json["subject"] == "Message"
    assert request.json["from"] == {"email": "alerts@example.com"}


async def test_bad_key_is_permanent(fake: Fake) -> None:
    sendgrid = fake.adapter("sendgrid", "email", {**CREDS, "api_key": "SG.invalid-key-xyz"})
    with pytest.raises(PermanentDeliveryError, match="401"):
        await sendgrid.send(outbound("ada@example.org", platform="email"))


async def test_invalid_recipient_is_permanent(fake: Fake) -> None:
    with pytest.raises(PermanentDeliveryError, match="valid address"):
        await fake.adapter("sendgrid", "email", CREDS).send(outbound("invalid@example.org", platform="email"))


async def test_unverified_sender_is_permanent(fake: Fake) -> None:
    fake.script("sendgrid", Behaviour(kind="permanent"))
    with pytest.raises(PermanentDeliveryError, match="403"):
        await fake.adapter("sendgrid", "email", CREDS).send(outbound("ada@example.org", platform="email"))


async def test_rate_limit_waits_until_x_ratelimit_reset(fake: Fake) -> None:
    fake.script("sendgrid", Behaviour(kind="rate_limited", retry_after=30))
    with pytest.raises(RetryableDeliveryError, match="429") as caught:
        await fake.adapter("sendgrid", "email", CREDS).send(outbound("ada@example.org", platform="email"))
    assert caught.value.retry_after is not None
    assert 28 <= caught.value.retry_after <= 30


@pytest.mark.parametrize(
    ("headers", "expected"),
    [({"retry-after": "12"}, 12.0), ({"x-ratelimit-reset": "5"}, 5.0), ({}, None)],
)
async def test_rate_limit_falls_back_to_retry_after(headers: dict[str, str], expected: float | None) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(429, json={"errors": [{"message": "too many requests"}]}, headers=headers)

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
        config = ChannelConfig(
            id="c", tenant_id="t", platform="email", provider="sendgrid", credentials=CREDS
        )
        with pytest.raises(RetryableDeliveryError) as caught:
            await SendGridChannel(config, http).send(outbound("ada@example.org", platform="email"))
    assert caught.value.retry_after == expected


async def test_epoch_reset_in_the_past_means_retry_now() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(429, headers={"x-ratelimit-reset": str(int(time.time()) - 10)})

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
        config = ChannelConfig(
            id="c", tenant_id="t", platform="email", provider="sendgrid", credentials=CREDS
        )
        with pytest.raises(RetryableDeliveryError) as caught:
            await SendGridChannel(config, http).send(outbound("ada@example.org", platform="email"))
    assert caught.value.retry_after == 0.0


async def test_payload_too_large_is_permanent() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(413, json={"errors": [{"message": "Payload too large", "field": None}]})

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
        config = ChannelConfig(
            id="c", tenant_id="t", platform="email", provider="sendgrid", credentials=CREDS
        )
        with pytest.raises(PermanentDeliveryError, match="413"):
            await SendGridChannel(config, http).send(outbound("ada@example.org", platform="email"))


async def test_server_error_is_retryable(fake: Fake) -> None:
    fake.script("sendgrid", Behaviour(kind="server_error", status=500))
    with pytest.raises(RetryableDeliveryError, match="500"):
        await fake.adapter("sendgrid", "email", CREDS).send(outbound("ada@example.org", platform="email"))


async def test_timeout_is_retryable(fake: Fake) -> None:
    fake.script("sendgrid", Behaviour(kind="timeout", delay=1))
    with pytest.raises(RetryableDeliveryError, match="timed out"):
        await fake.adapter("sendgrid", "email", CREDS).send(outbound("ada@example.org", platform="email"))


async def test_unreachable_provider_is_retryable(fake: Fake) -> None:
    sendgrid = fake.adapter("sendgrid", "email", CREDS, base_url="http://127.0.0.1:9")
    with pytest.raises(RetryableDeliveryError, match="unreachable"):
        await sendgrid.send(outbound("ada@example.org", platform="email"))


async def test_fake_refuses_a_body_without_content(fake: Fake) -> None:
    response = await fake.http.post(
        f"{fake.origin}/v3/mail/send",
        json={"personalizations": [{"to": [{"email": "a@example.org"}]}], "from": {"email": "b@example.com"},
              "subject": "Hi"},
        headers={"authorization": f"Bearer {KEY}"},
    )  # fmt: skip
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "content"


def test_declares_no_length_limit_and_its_origin() -> None:
    assert SendGridChannel.max_length is None
    assert SendGridChannel.split_long is False
    assert SendGridChannel.default_origin == "https://api.sendgrid.com"
    assert SendGridChannel.platforms == frozenset({"email"})


def test_credentials_never_show_in_repr(fake: Fake) -> None:
    sendgrid = fake.adapter("sendgrid", "email", CREDS)
    assert KEY not in repr(sendgrid)
    assert KEY not in repr(sendgrid.config)
    assert KEY not in repr(SendGridCredentials.model_validate(CREDS))


async def test_a_conversation_reply_carries_the_thread_headers(fake: Fake) -> None:
    sendgrid = fake.adapter("sendgrid", "email", CREDS)
    context = {"reply_to": "<r1@example.org>", "references": ["<root@example.com>"], "subject": "Service due"}
    await sendgrid.send(
        outbound("ada@example.org", "Tuesday works.", platform="email", reply_context=context)
    )
    (request,) = fake.requests("sendgrid")
    assert request.json["subject"] == "Re: Service due"
    assert request.json["headers"] == {
        "Message-ID": "<msg_1@example.com>",
        "In-Reply-To": "<r1@example.org>",
        "References": "<root@example.com> <r1@example.org>",
    }


async def test_the_fake_refuses_reserved_headers(fake: Fake) -> None:
    response = await fake.http.post(
        f"{fake.origin}/v3/mail/send", headers={"authorization": f"Bearer {KEY}"},
        json={"personalizations": [{"to": [{"email": "ada@example.org"}]}], "from": {"email": "a@example.com"},
              "subject": "x", "content": [{"type": "text/plain", "value": "x"}], "headers": {"From": "b@example.com"}},
    )  # fmt: skip
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "headers.From"
