"""Slack adapter against the fake Slack: request shape, id, each error class, retry-after, length."""

from __future__ import annotations

import pytest

from herald.core.errors import PermanentDeliveryError, RetryableDeliveryError
from herald.providers.fakebase import Behaviour
from tests.unit.providers.conftest import Fake, outbound

CREDS = {"bot_token": "xoxb-test-token-123"}


async def test_posts_chat_post_message_and_returns_ts(fake: Fake) -> None:
    slack = fake.adapter("slack", "slack", CREDS)
    ts = await slack.send(outbound("C12345", "Hello! I have important updates."))
    (request,) = fake.requests("slack")
    assert request.path == "/api/chat.postMessage"
    assert request.headers["authorization"] == "Bearer xoxb-test-token-123"
    assert request.json == {"channel": "C12345", "text": "Hello! I have important updates."}
    assert ts.count(".") == 1


async def test_bad_token_is_permanent(fake: Fake) -> None:
    slack = fake.adapter("slack", "slack", {"bot_token": "xoxb-invalid-token"})
    with pytest.raises(PermanentDeliveryError, match="invalid_auth"):
        await slack.send(outbound("C12345"))


async def test_unknown_channel_is_permanent(fake: Fake) -> None:
    fake.script("slack", Behaviour(kind="permanent"))
    with pytest.raises(PermanentDeliveryError, match="channel_not_found"):
        await fake.adapter("slack", "slack", CREDS).send(outbound("C12345"))


async def test_rate_limit_is_retryable_with_retry_after(fake: Fake) -> None:
    fake.script("slack", Behaviour(kind="rate_limited", retry_after=7))
    with pytest.raises(RetryableDeliveryError) as caught:
        await fake.adapter("slack", "slack", CREDS).send(outbound("C12345"))
    assert caught.value.retry_after == 7


async def test_server_error_is_retryable(fake: Fake) -> None:
    fake.script("slack", Behaviour(kind="server_error", status=502))
    with pytest.raises(RetryableDeliveryError, match="502"):
        await fake.adapter("slack", "slack", CREDS).send(outbound("C12345"))


async def test_timeout_is_retryable(fake: Fake) -> None:
    fake.script("slack", Behaviour(kind="timeout", delay=1))
    with pytest.raises(RetryableDeliveryError, match="timed out"):
        await fake.adapter("slack", "slack", CREDS).send(outbound("C12345"))


async def test_unreachable_provider_is_retryable(fake: Fake) -> None:
    import httpx

    slack = fake.adapter("slack", "slack", CREDS, base_url="http://127.0.0.1:9")
    slack.http = httpx.AsyncClient(timeout=1)
    with pytest.raises(RetryableDeliveryError, match="unreachable"):
        await slack.send(outbound("C12345"))
    await slack.http.aclose()


def test_declares_its_length_limit() -> None:
    from herald.providers.slack.send import SlackChannel

    assert SlackChannel.max_length == 40_000


def test_credentials_never_show_in_repr(fake: Fake) -> None:
    slack = fake.adapter("slack", "slack", CREDS)
    assert "xoxb-test-token-123" not in repr(slack)
    assert "xoxb-test-token-123" not in repr(slack.config)
