"""Discord bot adapter against the fake Discord: request shape, id, each error class, retry-after, splitting."""

from __future__ import annotations

import httpx
import pytest

from herald.core.errors import PermanentDeliveryError, RetryableDeliveryError
from herald.providers.fakebase import Behaviour
from tests.unit.providers.conftest import Fake, outbound, send_split

CREDS = {"bot_token": "MTA5.discord-bot-token-123"}
CHANNEL = "1100000000000000001"


async def test_posts_channel_message_and_returns_id(fake: Fake) -> None:
    bot = fake.adapter("discord_bot", "discord", CREDS)
    message_id = await bot.send(outbound(CHANNEL, "Hello! I have important updates.", platform="discord"))
    (request,) = fake.requests("discord_bot")
    assert request.method == "POST"
    assert request.path == f"/api/v10/channels/{CHANNEL}/messages"
    assert request.headers["authorization"] == "Bot MTA5.discord-bot-token-123"
    assert request.json == {"content": "Hello! I have important updates."}
    assert message_id.isdigit()


async def test_bad_token_is_permanent(fake: Fake) -> None:
    bot = fake.adapter("discord_bot", "discord", {"bot_token": "invalid-bot-token"})
    with pytest.raises(PermanentDeliveryError, match="401"):
        await bot.send(outbound(CHANNEL, platform="discord"))


async def test_unknown_channel_is_permanent(fake: Fake) -> None:
    fake.script("discord_bot", Behaviour(kind="permanent"))
    with pytest.raises(PermanentDeliveryError, match="10003 Unknown Channel"):
        await fake.adapter("discord_bot", "discord", CREDS).send(outbound(CHANNEL, platform="discord"))


async def test_channel_that_is_not_a_snowflake_is_permanent(fake: Fake) -> None:
    with pytest.raises(PermanentDeliveryError, match="50035"):
        await fake.adapter("discord_bot", "discord", CREDS).send(outbound("general", platform="discord"))


async def test_rate_limit_is_retryable_with_the_bodys_float_retry_after(fake: Fake) -> None:
    fake.script("discord_bot", Behaviour(kind="rate_limited", retry_after=2.5))
    with pytest.raises(RetryableDeliveryError) as caught:
        await fake.adapter("discord_bot", "discord", CREDS).send(outbound(CHANNEL, platform="discord"))
    assert caught.value.retry_after == 2.5


async def test_server_error_is_retryable(fake: Fake) -> None:
    fake.script("discord_bot", Behaviour(kind="server_error", status=502))
    with pytest.raises(RetryableDeliveryError, match="502"):
        await fake.adapter("discord_bot", "discord", CREDS).send(outbound(CHANNEL, platform="discord"))


async def test_timeout_is_retryable(fake: Fake) -> None:
    fake.script("discord_bot", Behaviour(kind="timeout", delay=1))
    with pytest.raises(RetryableDeliveryError, match="timed out"):
        await fake.adapter("discord_bot", "discord", CREDS).send(outbound(CHANNEL, platform="discord"))


async def test_unreachable_provider_is_retryable(fake: Fake) -> None:
    bot = fake.adapter("discord_bot", "discord", CREDS, base_url="http://127.0.0.1:9")
    bot.http = httpx.AsyncClient(timeout=1)
    with pytest.raises(RetryableDeliveryError, match="unreachable"):
        await bot.send(outbound(CHANNEL, platform="discord"))
    await bot.http.aclose()


async def test_long_content_goes_as_several_messages_in_order(fake: Fake) -> None:
    from herald.providers.discord.bot import DiscordBotChannel

    assert DiscordBotChannel.max_length == 2_000
    assert DiscordBotChannel.split_long is True
    paragraphs = [f"part {n} " + "x" * 1_500 for n in range(3)]
    ids = await send_split(
        fake.adapter("discord_bot", "discord", CREDS),
        outbound(CHANNEL, "\n".join(paragraphs), platform="discord"),
    )
    requests = fake.requests("discord_bot")
    assert [r.json["content"] for r in requests] == paragraphs
    assert all(len(r.json["content"]) <= 2_000 for r in requests)
    assert len(ids) == 3
    assert len(set(ids)) == 3


def test_token_with_bot_prefix_is_accepted() -> None:
    from herald.providers.discord.bot import DiscordBotCredentials

    assert (
        DiscordBotCredentials(bot_token="Bot MTA5.discord-bot-token-123").bot_token
        == "MTA5.discord-bot-token-123"
    )


def test_credentials_never_show_in_repr(fake: Fake) -> None:
    from herald.providers.discord.bot import DiscordBotCredentials

    bot = fake.adapter("discord_bot", "discord", CREDS)
    assert "discord-bot-token-123" not in repr(bot)
    assert "discord-bot-token-123" not in repr(bot.config)
    assert "discord-bot-token-123" not in repr(DiscordBotCredentials.model_validate(CREDS))
