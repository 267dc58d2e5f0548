"""Google Chat webhook adapter against the fake Chat API: the real webhook URL rebased onto the fake, ``{"text"}``,
the message ``name``, Google's error classes, RetryInfo, length."""

from __future__ import annotations

import httpx
import pytest
from pydantic import ValidationError

from herald.core.errors import PermanentDeliveryError, RetryableDeliveryError
from herald.providers.fakebase import Behaviour
from tests.unit.providers.conftest import Fake, outbound

URL = "https://chat.googleapis.com/v1/spaces/AAAAbCdEfGh/messages?key=AIzaSyKey-123&token=GcSecretToken%3D123"
CREDS = {"webhook_url": URL}


async def test_posts_text_and_returns_the_message_name(fake: Fake) -> None:
    chat = fake.adapter("google_chat_webhook", "google_chat", CREDS)
    name = await chat.send(outbound("ignored", "Hello! I have important updates.", platform="google_chat"))
    (request,) = fake.requests("google_chat_webhook")
    assert request.path == "/v1/spaces/AAAAbCdEfGh/messages"
    assert request.query == {"key": ["AIzaSyKey-123"], "token": ["GcSecretToken=123"]}
    assert request.json == {"text": "Hello! I have important updates."}
    assert name.startswith("spaces/AAAAbCdEfGh/messages/")


async def test_bad_token_is_permanent(fake: Fake) -> None:
    chat = fake.adapter(
        "google_chat_webhook", "google_chat", {"webhook_url": URL.replace("Secret", "invalid")}
    )
    with pytest.raises(PermanentDeliveryError, match="401: UNAUTHENTICATED"):
        await chat.send(outbound("ignored", platform="google_chat"))


async def test_bad_key_is_permanent(fake: Fake) -> None:
    chat = fake.adapter("google_chat_webhook", "google_chat", {"webhook_url": URL.replace("Key", "invalid")})
    with pytest.raises(PermanentDeliveryError, match="400: INVALID_ARGUMENT: API key not valid"):
        await chat.send(outbound("ignored", platform="google_chat"))


async def test_unknown_space_is_permanent(fake: Fake) -> None:
    fake.script("google_chat_webhook", Behaviour(kind="permanent"))
    with pytest.raises(PermanentDeliveryError, match="404: NOT_FOUND"):
        await fake.adapter("google_chat_webhook", "google_chat", CREDS).send(
            outbound("x", platform="google_chat")
        )


async def test_quota_is_retryable_with_the_retry_info_delay(fake: Fake) -> None:
    fake.script("google_chat_webhook", Behaviour(kind="rate_limited", retry_after=7))
    with pytest.raises(RetryableDeliveryError, match="RESOURCE_EXHAUSTED") as caught:
        await fake.adapter("google_chat_webhook", "google_chat", CREDS).send(
            outbound("x", platform="google_chat")
        )
    assert caught.value.retry_after == 7


async def test_server_error_is_retryable(fake: Fake) -> None:
    fake.script("google_chat_webhook", Behaviour(kind="server_error", status=503))
    with pytest.raises(RetryableDeliveryError, match="503"):
        await fake.adapter("google_chat_webhook", "google_chat", CREDS).send(
            outbound("x", platform="google_chat")
        )


async def test_timeout_is_retryable(fake: Fake) -> None:
    fake.script("google_chat_webhook", Behaviour(kind="timeout", delay=1))
    with pytest.raises(RetryableDeliveryError, match="timed out"):
        await fake.adapter("google_chat_webhook", "google_chat", CREDS).send(
            outbound("x", platform="google_chat")
        )


async def test_unreachable_provider_is_retryable(fake: Fake) -> None:
    chat = fake.adapter("google_chat_webhook", "google_chat", CREDS, base_url="http://127.0.0.1:9")
    chat.http = httpx.AsyncClient(timeout=1)
    with pytest.raises(RetryableDeliveryError, match="unreachable"):
        await chat.send(outbound("x", platform="google_chat"))
    await chat.http.aclose()


async def test_declares_its_length_limit_and_refuses_over_32000_bytes(fake: Fake) -> None:
    from herald.providers.google_chat.send import GoogleChatWebhookChannel

    assert GoogleChatWebhookChannel.max_length == 32_000
    assert GoogleChatWebhookChannel.split_long is False
    with pytest.raises(PermanentDeliveryError, match="32,000"):
        await fake.adapter("google_chat_webhook", "google_chat", CREDS).send(
            outbound("x", "ü" * 20_000, platform="google_chat")
        )
    assert fake.requests("google_chat_webhook") == []


def test_only_chat_webhook_urls_are_accepted() -> None:
    from herald.providers.google_chat.send import GoogleChatWebhookCredentials

    for bad in (
        URL.replace("https", "http"),
        URL.replace("chat.googleapis.com", "evil.example"),
        URL.split("&", maxsplit=1)[0],
    ):
        with pytest.raises(ValidationError, match="Google Chat webhook URL") as caught:
            GoogleChatWebhookCredentials(webhook_url=bad)
        assert "GcSecretToken" not in str(caught.value)


def test_credentials_never_show_in_repr(fake: Fake) -> None:
    from herald.providers.google_chat.send import GoogleChatWebhookCredentials

    chat = fake.adapter("google_chat_webhook", "google_chat", CREDS)
    assert "GcSecretToken" not in repr(chat)
    assert "GcSecretToken" not in repr(chat.config)
    assert "GcSecretToken" not in repr(GoogleChatWebhookCredentials.model_validate(CREDS))
