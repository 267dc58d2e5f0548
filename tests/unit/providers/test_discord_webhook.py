"""Discord webhook adapter against the fake Discord: the real webhook URL rebased onto the fake, ?wait=true, id,
error classes, retry-after, splitting."""

from __future__ import annotations

import httpx
import pytest
from pydantic import ValidationError

from herald.core.errors import PermanentDeliveryError, RetryableDeliveryError
from herald.providers.fakebase import Behaviour
from herald.providers.http import rebase
from tests.unit.providers.conftest import Fake, outbound, send_split

URL = "https://discord.com/api/webhooks/1234567890123456789/wh-Secret_token-123"
CREDS = {"webhook_url": URL}


async def test_posts_to_the_webhook_with_wait_and_returns_id(fake: Fake) -> None:
    hook = fake.adapter("discord_webhook", "discord", CREDS)
    message_id = await hook.send(outbound("ignored", "Hello! I have important updates.", platform="discord"))
    (request,) = fake.requests("discord_webhook")
    assert request.path == "/api/webhooks/1234567890123456789/wh-Secret_token-123"
    assert request.query == {"wait": ["true"]}
    assert "authorization" not in request.headers
    assert request.json == {"content": "Hello! I have important updates."}
    assert message_id.isdigit()


async def test_keeps_the_urls_own_query(fake: Fake) -> None:
    hook = fake.adapter("discord_webhook", "discord", {"webhook_url": URL + "?thread_id=42"})
    await hook.send(outbound("ignored", platform="discord"))
    (request,) = fake.requests("discord_webhook")
    assert request.query == {"thread_id": ["42"], "wait": ["true"]}


async def test_bad_token_is_permanent(fake: Fake) -> None:
    hook = fake.adapter("discord_webhook", "discord", {"webhook_url": URL.replace("Secret", "invalid")})
    with pytest.raises(PermanentDeliveryError, match="50027 Invalid Webhook Token"):
        await hook.send(outbound("ignored", platform="discord"))


async def test_unknown_webhook_is_permanent(fake: Fake) -> None:
    fake.script("discord_webhook", Behaviour(kind="permanent"))
    with pytest.raises(PermanentDeliveryError, match="404: 10015 Unknown Webhook"):
        await fake.adapter("discord_webhook", "discord", CREDS).send(outbound("ignored", platform="discord"))


async def test_rate_limit_is_retryable_with_retry_after(fake: Fake) -> None:
    fake.script("discord_webhook", Behaviour(kind="rate_limited", retry_after=7))
    with pytest.raises(RetryableDeliveryError) as caught:
        await fake.adapter("discord_webhook", "discord", CREDS).send(outbound("ignored", platform="discord"))
    assert caught.value.retry_after == 7


async def test_server_error_is_retryable(fake: Fake) -> None:
    fake.script("discord_webhook", Behaviour(kind="server_error", status=503))
    with pytest.raises(RetryableDeliveryError, match="503"):
        await fake.adapter("discord_webhook", "discord", CREDS).send(outbound("ignored", platform="discord"))


async def test_timeout_is_retryable(fake: Fake) -> None:
    fake.script("discord_webhook", Behaviour(kind="timeout", delay=1))
    with pytest.raises(RetryableDeliveryError, match="timed out"):
        await fake.adapter("discord_webhook", "discord", CREDS).send(outbound("ignored", platform="discord"))


async def test_unreachable_provider_is_retryable(fake: Fake) -> None:
    hook = fake.adapter("discord_webhook", "discord", CREDS, base_url="http://127.0.0.1:9")
    hook.http = httpx.AsyncClient(timeout=1)
    with pytest.raises(RetryableDeliveryError, match="unreachable"):
        await hook.send(outbound("ignored", platform="discord"))
    await hook.http.aclose()


async def test_long_content_goes_as_several_messages_in_order(fake: Fake) -> None:
    from herald.providers.discord.webhook import DiscordWebhookChannel

    assert DiscordWebhookChannel.max_length == 2_000
    assert DiscordWebhookChannel.split_long is True
    words = " ".join(f"w{n:04d}" for n in range(500))  # 2,999 characters
    ids = await send_split(
        fake.adapter("discord_webhook", "discord", CREDS), outbound("x", words, platform="discord")
    )
    chunks = [r.json["content"] for r in fake.requests("discord_webhook")]
    assert len(chunks) == 2
    assert " ".join(chunks) == words
    assert len(ids) == 2


def test_only_discord_webhook_urls_are_accepted() -> None:
    from herald.providers.discord.webhook import DiscordWebhookCredentials

    for bad in (
        "http://discord.com/api/webhooks/1/abc",
        "https://example.com/api/webhooks/1/abc",
        "https://discord.com/api/channels/1/messages",
    ):
        with pytest.raises(ValidationError, match="Discord webhook URL") as caught:
            DiscordWebhookCredentials(webhook_url=bad)
        assert bad not in str(caught.value)
    assert DiscordWebhookCredentials(webhook_url="https://discordapp.com/api/v10/webhooks/1/abc-DEF_9")


def test_rebase_replaces_only_scheme_host_and_port() -> None:
    assert rebase(URL + "?a=1", "http://127.0.0.1:9001") == (
        "http://127.0.0.1:9001/api/webhooks/1234567890123456789/wh-Secret_token-123?a=1"
    )
    assert rebase("https://x.example:443/p/q?sig=s", "http://gw.local/") == "http://gw.local/p/q?sig=s"
    assert rebase(URL, None) == URL


def test_credentials_never_show_in_repr(fake: Fake) -> None:
    from herald.providers.discord.webhook import DiscordWebhookCredentials

    hook = fake.adapter("discord_webhook", "discord", CREDS)
    assert "wh-Secret_token-123" not in repr(hook)
    assert "wh-Secret_token-123" not in repr(hook.config)
    assert "wh-Secret_token-123" not in repr(DiscordWebhookCredentials.model_validate(CREDS))
