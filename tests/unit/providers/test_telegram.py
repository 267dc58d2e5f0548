"""Telegram adapter against the fake Bot API: request shape, id, each error class, retry-after, long text in
parts as the pipeline sends it, reply threading on the first part."""

from __future__ import annotations

import httpx
import pytest

from herald.core.errors import PermanentDeliveryError, RetryableDeliveryError
from herald.providers.fakebase import Behaviour
from herald.providers.telegram.send import TelegramChannel
from tests.unit.providers.conftest import Fake, outbound, send_split

TOKEN = "123456789:AAHfake-test-token_abc"
CREDS = {"bot_token": TOKEN}


async def test_posts_send_message_and_returns_message_id(fake: Fake) -> None:
    telegram = fake.adapter("telegram", "telegram", CREDS)
    message_id = await telegram.send(outbound("987654321", "Hello from Herald", platform="telegram"))
    (request,) = fake.requests("telegram")
    assert request.method == "POST"
    assert request.path == f"/bot{TOKEN}/sendMessage"
    assert request.json == {"chat_id": "987654321", "text": "Hello from Herald"}
    assert "authorization" not in request.headers
    assert message_id.isdigit()


async def test_bad_token_is_permanent(fake: Fake) -> None:
    telegram = fake.adapter("telegram", "telegram", {"bot_token": "123456:invalid-token"})
    with pytest.raises(PermanentDeliveryError, match="401 Unauthorized"):
        await telegram.send(outbound("987654321", platform="telegram"))


async def test_unknown_chat_is_permanent(fake: Fake) -> None:
    with pytest.raises(PermanentDeliveryError, match="chat not found"):
        await fake.adapter("telegram", "telegram", CREDS).send(outbound("@UNKNOWN_chat", platform="telegram"))


async def test_blocked_by_user_is_permanent(fake: Fake) -> None:
    fake.script("telegram", Behaviour(kind="permanent"))
    with pytest.raises(PermanentDeliveryError, match="403 Forbidden: bot was blocked"):
        await fake.adapter("telegram", "telegram", CREDS).send(outbound("987654321", platform="telegram"))


async def test_flood_control_is_retryable_with_parameters_retry_after(fake: Fake) -> None:
    fake.script("telegram", Behaviour(kind="rate_limited", retry_after=17))
    with pytest.raises(RetryableDeliveryError, match="429") as caught:
        await fake.adapter("telegram", "telegram", CREDS).send(outbound("987654321", platform="telegram"))
    assert caught.value.retry_after == 17


async def test_retry_after_header_is_the_fallback() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            429, json={"ok": False, "error_code": 429, "description": "Too Many Requests"},
            headers={"Retry-After": "9"},
        )  # fmt: skip

    from herald.providers.base import ChannelConfig

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        config = ChannelConfig(id="chn_t", tenant_id="ten_t", platform="telegram", provider="telegram",
                               credentials=CREDS)  # fmt: skip
        with pytest.raises(RetryableDeliveryError) as caught:
            await TelegramChannel(config, http).send(outbound("987654321", platform="telegram"))
    assert caught.value.retry_after == 9


async def test_server_error_is_retryable(fake: Fake) -> None:
    fake.script("telegram", Behaviour(kind="server_error", status=502))
    with pytest.raises(RetryableDeliveryError, match="502"):
        await fake.adapter("telegram", "telegram", CREDS).send(outbound("987654321", platform="telegram"))


async def test_timeout_is_retryable(fake: Fake) -> None:
    fake.script("telegram", Behaviour(kind="timeout", delay=1))
    with pytest.raises(RetryableDeliveryError, match="timed out"):
        await fake.adapter("telegram", "telegram", CREDS).send(outbound("987654321", platform="telegram"))


async def test_long_text_goes_out_as_ordered_parts(fake: Fake) -> None:
    paragraphs = [f"part {n} " + "x" * 3000 for n in range(3)]
    ids = await send_split(
        fake.adapter("telegram", "telegram", CREDS),
        outbound("987654321", "\n".join(paragraphs), platform="telegram"),
    )
    requests = fake.requests("telegram")
    assert [r.json["text"] for r in requests] == paragraphs
    assert all(len(r.json["text"]) <= 4096 for r in requests)
    assert ids == sorted(ids, key=int)
    assert len(ids) == 3


async def test_send_sends_the_text_it_is_given_as_one_message(fake: Fake) -> None:
    """Splitting is the pipeline's: the adapter does not cut, so an over-long text is Telegram's refusal."""
    with pytest.raises(PermanentDeliveryError, match="message is too long"):
        await fake.adapter("telegram", "telegram", CREDS).send(
            outbound("987654321", "x" * 5000, platform="telegram")
        )
    assert len(fake.requests("telegram")) == 1


async def test_a_reply_quotes_the_message_it_answers_on_the_first_part_only(fake: Fake) -> None:
    content = "\n".join(f"part {n} " + "r" * 3000 for n in range(2))
    message = outbound("987654321", content, platform="telegram", reply_context={"reply_to": "987654321:42"})
    await send_split(fake.adapter("telegram", "telegram", CREDS), message)
    first, second = fake.requests("telegram")
    assert first.json["reply_parameters"] == {"message_id": 42, "allow_sending_without_reply": True}
    assert "reply_parameters" not in second.json


def test_declares_its_length_limit_and_splits() -> None:
    assert TelegramChannel.max_length == 4096
    assert TelegramChannel.split_long is True
    assert TelegramChannel.default_origin == "https://api.telegram.org"


def test_credentials_never_show_in_repr(fake: Fake) -> None:
    telegram = fake.adapter("telegram", "telegram", {"bot_token": TOKEN, "secret_token": "inbound-secret_1"})
    assert TOKEN not in repr(telegram)
    assert TOKEN not in repr(telegram.config)
    creds = TelegramChannel.credentials_model.model_validate(
        {"bot_token": TOKEN, "secret_token": "inbound-secret_1"}
    )
    assert TOKEN not in repr(creds)
    assert "inbound-secret_1" not in repr(creds)
