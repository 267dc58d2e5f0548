"""Discord bot adapter against the fake Discord: request shape, id, each error class, retry-after, splitting."""

from __future__ import annotations

import httpx
import pytest

from herald.core.errors import PermanentDeliveryError, RetryableDeliveryError
from herald.providers.base import Action
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


APPROVE = Action("hl:req_01JXYZ:a", "Approve", "primary")
DENY = Action("hl:req_01JXYZ:d", "Deny", "danger")


async def test_actions_go_out_as_button_components_five_to_a_row(fake: Fake) -> None:
    bot = fake.adapter("discord_bot", "discord", CREDS)
    actions = (APPROVE, DENY, *(Action(f"hl:req_01JXYZ:{n}", f"Option {n}") for n in range(4)))
    message_id = await bot.send(outbound(CHANNEL, "Deploy api to prod?", platform="discord", actions=actions))
    (request,) = fake.requests("discord_bot")
    options = [
        {"type": 2, "style": 2, "label": f"Option {n}", "custom_id": f"hl:req_01JXYZ:{n}"} for n in range(4)
    ]
    assert request.json == {
        "content": "Deploy api to prod?",
        "components": [
            {"type": 1, "components": [
                {"type": 2, "style": 3, "label": "Approve", "custom_id": "hl:req_01JXYZ:a"},
                {"type": 2, "style": 4, "label": "Deny", "custom_id": "hl:req_01JXYZ:d"},
                *options[:3],
            ]},
            {"type": 1, "components": options[3:]},
        ],
    }  # fmt: skip
    assert message_id.isdigit()


async def test_only_messages_with_actions_have_components_and_the_webhook_channel_has_none(
    fake: Fake,
) -> None:
    await fake.adapter("discord_bot", "discord", CREDS).send(outbound(CHANNEL, "plain", platform="discord"))
    hook = fake.adapter(
        "discord_webhook", "discord", {"webhook_url": "https://discord.com/api/webhooks/123/tok-en_1"}
    )
    await hook.send(outbound(CHANNEL, "Deploy?", platform="discord", actions=(APPROVE,)))
    assert [r.json for r in fake.requests("discord_bot")] == [{"content": "plain"}]
    assert [r.json for r in fake.requests("discord_webhook")] == [{"content": "Deploy?"}]
    assert (type(hook).can_update, fake.adapter("discord_bot", "discord", CREDS).can_update) == (False, True)


async def test_at_most_five_rows_and_labels_cut_to_80(fake: Fake) -> None:
    actions = (
        Action("hl:req_01JXYZ:a", "A" * 100),
        *(Action(f"hl:req_01JXYZ:{n}", str(n)) for n in range(30)),
    )
    await fake.adapter("discord_bot", "discord", CREDS).send(
        outbound(CHANNEL, "Pick", platform="discord", actions=actions)
    )
    (request,) = fake.requests("discord_bot")
    rows = request.json["components"]
    assert [len(row["components"]) for row in rows] == [5] * 5
    assert rows[0]["components"][0]["label"] == "A" * 80


async def test_update_sent_edits_the_message_and_removes_the_buttons(fake: Fake) -> None:
    bot = fake.adapter("discord_bot", "discord", CREDS)
    assert bot.can_update is True
    message_id = await bot.send(outbound(CHANNEL, "Deploy?", platform="discord", actions=(APPROVE, DENY)))
    await bot.update_sent(CHANNEL, message_id, "Deploy? Approved by Ana")
    _, request = fake.requests("discord_bot")
    assert request.method == "PATCH"
    assert request.path == f"/api/v10/channels/{CHANNEL}/messages/{message_id}"
    assert request.headers["authorization"] == "Bot MTA5.discord-bot-token-123"
    assert request.json == {"content": "Deploy? Approved by Ana", "components": []}


async def test_update_sent_errors_are_classed_like_send(fake: Fake) -> None:
    bot = fake.adapter("discord_bot", "discord", CREDS)
    fake.script("discord_bot", Behaviour(kind="permanent"))
    with pytest.raises(PermanentDeliveryError, match="10008 Unknown Message"):
        await bot.update_sent(CHANNEL, "1200000000000000001", "Approved")
    fake.script("discord_bot", Behaviour(kind="rate_limited", retry_after=1.5))
    with pytest.raises(RetryableDeliveryError) as caught:
        await bot.update_sent(CHANNEL, "1200000000000000001", "Approved")
    assert caught.value.retry_after == 1.5
    with pytest.raises(PermanentDeliveryError, match="50035"):
        await bot.update_sent(CHANNEL, "not-a-snowflake", "Approved")


async def test_the_fake_refuses_malformed_components(fake: Fake) -> None:
    answer = await fake.http.post(
        f"{fake.origin}/api/v10/channels/{CHANNEL}/messages",
        json={
            "content": "Deploy?",
            "components": [{"type": 2, "label": "Approve", "custom_id": "a", "style": 3}],
        },
        headers={"authorization": "Bot MTA5.discord-bot-token-123"},
    )
    assert answer.status_code == 400
    assert answer.json()["code"] == 50035
