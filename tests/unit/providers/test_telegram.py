"""Telegram adapter against the fake Bot API: request shape, id, each error class, retry-after, long text in
parts as the pipeline sends it, reply threading on the first part, buttons as an inline keyboard, editMessageText
and answerCallbackQuery."""

from __future__ import annotations

import httpx
import pytest

from herald.core.errors import PermanentDeliveryError, RetryableDeliveryError
from herald.providers.base import Action
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


# -- buttons: inline keyboards, editMessageText, answerCallbackQuery --

APPROVE = Action("hl:req_01JXYZABCDEFGHJKMNPQRSTVWX:a", "Approve", "primary")
REJECT = Action("hl:req_01JXYZABCDEFGHJKMNPQRSTVWX:r", "Reject", "danger")


async def test_actions_go_out_as_an_inline_keyboard_two_short_labels_a_row(fake: Fake) -> None:
    more = Action("hl:req_01JXYZABCDEFGHJKMNPQRSTVWX:m", "Ask me later")
    message = outbound("987654321", "Deploy v2?", platform="telegram", actions=(APPROVE, REJECT, more))
    message_id = await fake.adapter("telegram", "telegram", CREDS).send(message)
    (request,) = fake.requests("telegram")
    assert request.path == f"/bot{TOKEN}/sendMessage"
    assert request.json == {
        "chat_id": "987654321",
        "text": "Deploy v2?",
        "reply_markup": {
            "inline_keyboard": [
                [
                    {"text": "Approve", "callback_data": "hl:req_01JXYZABCDEFGHJKMNPQRSTVWX:a"},
                    {"text": "Reject", "callback_data": "hl:req_01JXYZABCDEFGHJKMNPQRSTVWX:r"},
                ],
                [{"text": "Ask me later", "callback_data": "hl:req_01JXYZABCDEFGHJKMNPQRSTVWX:m"}],
            ]
        },
    }
    assert message_id.isdigit()


async def test_long_labels_sit_one_to_a_row(fake: Fake) -> None:
    long = Action("hl:q:1", "Roll back to the previous release")
    message = outbound("987654321", "What now?", platform="telegram", actions=(long, REJECT))
    await fake.adapter("telegram", "telegram", CREDS).send(message)
    (request,) = fake.requests("telegram")
    assert request.json["reply_markup"]["inline_keyboard"] == [
        [{"text": "Roll back to the previous release", "callback_data": "hl:q:1"}],
        [{"text": "Reject", "callback_data": "hl:req_01JXYZABCDEFGHJKMNPQRSTVWX:r"}],
    ]


async def test_callback_data_over_64_bytes_is_refused_not_cut(fake: Fake) -> None:
    too_long = Action("hl:" + "é" * 31, "Approve")  # 3 + 62 = 65 bytes in 34 characters
    message = outbound("987654321", "Deploy?", platform="telegram", actions=(too_long,))
    with pytest.raises(PermanentDeliveryError, match="65 bytes"):
        await fake.adapter("telegram", "telegram", CREDS).send(message)
    assert fake.requests("telegram") == []


@pytest.mark.parametrize(
    "markup",
    [
        {"inline_keyboard": [[{"text": "Go", "callback_data": "x" * 65}]]},
        {"inline_keyboard": [[{"text": "Go", "callback_data": ""}]]},
        {"inline_keyboard": [[{"text": "Go"}]]},
    ],
)
async def test_the_fake_refuses_invalid_button_data(fake: Fake, markup: dict[str, object]) -> None:
    payload = {"chat_id": "987654321", "text": "Deploy?", "reply_markup": markup}
    response = await fake.http.post(f"{fake.origin}/bot{TOKEN}/sendMessage", json=payload)
    assert response.status_code == 400
    assert response.json() == {
        "ok": False,
        "error_code": 400,
        "description": "Bad Request: BUTTON_DATA_INVALID",
    }


async def test_the_fake_refuses_a_keyboard_that_is_not_rows_of_buttons(fake: Fake) -> None:
    payload = {
        "chat_id": "987654321",
        "text": "Deploy?",
        "reply_markup": {"inline_keyboard": [{"text": "Go"}]},
    }
    response = await fake.http.post(f"{fake.origin}/bot{TOKEN}/sendMessage", json=payload)
    assert response.status_code == 400
    assert "Array of Arrays" in response.json()["description"]


def test_telegram_can_update_sent_messages() -> None:
    assert TelegramChannel.can_update is True


@pytest.mark.parametrize("qualified", [False, True])
async def test_update_sent_edits_the_text_and_drops_the_keyboard(fake: Fake, qualified: bool) -> None:
    telegram = fake.adapter("telegram", "telegram", CREDS)
    message = outbound("987654321", "Deploy v2?", platform="telegram", actions=(APPROVE, REJECT))
    message_id = await telegram.send(message)
    provider_id = f"987654321:{message_id}" if qualified else message_id
    await telegram.update_sent("987654321", provider_id, "Deploy v2?\n\nApproved by Ana")
    _, edit = fake.requests("telegram")
    assert edit.path == f"/bot{TOKEN}/editMessageText"
    assert edit.json == {
        "chat_id": "987654321",
        "message_id": int(message_id),
        "text": "Deploy v2?\n\nApproved by Ana",
    }


async def test_an_unchanged_edit_counts_as_done(fake: Fake) -> None:
    telegram = fake.adapter("telegram", "telegram", CREDS)
    message_id = await telegram.send(
        outbound("987654321", "Deploy?", platform="telegram", actions=(APPROVE,))
    )
    await telegram.update_sent("987654321", message_id, "Approved by Ana")
    await telegram.update_sent("987654321", message_id, "Approved by Ana")  # 400 "message is not modified"
    assert len(fake.requests("telegram")) == 3


async def test_update_sent_failures_are_delivery_errors(fake: Fake) -> None:
    telegram = fake.adapter("telegram", "telegram", CREDS)
    with pytest.raises(PermanentDeliveryError, match="message to edit not found"):
        await telegram.update_sent("987654321", "987654321:999999", "Approved by Ana")
    with pytest.raises(PermanentDeliveryError, match="not a Telegram message id"):
        await telegram.update_sent("987654321", "wamid.X", "Approved by Ana")
    fake.script("telegram", Behaviour(kind="rate_limited", retry_after=4))
    with pytest.raises(RetryableDeliveryError) as caught:
        await telegram.update_sent("987654321", "1", "Approved by Ana")
    assert caught.value.retry_after == 4


async def test_acknowledge_answers_the_callback_query(fake: Fake) -> None:
    telegram = fake.adapter("telegram", "telegram", CREDS)
    await telegram.acknowledge("4382bfdwdsb323b2d9", "Approved. " + "x" * 300)
    (request,) = fake.requests("telegram")
    assert request.path == f"/bot{TOKEN}/answerCallbackQuery"
    assert request.json == {
        "callback_query_id": "4382bfdwdsb323b2d9",
        "text": ("Approved. " + "x" * 300)[:200],
    }


async def test_the_fake_answers_callback_queries_and_needs_their_id(fake: Fake) -> None:
    url = f"{fake.origin}/bot{TOKEN}/answerCallbackQuery"
    answered = await fake.http.post(url, json={"callback_query_id": "1", "text": "ok"})
    assert answered.json() == {"ok": True, "result": True}
    missing = await fake.http.post(url, json={"text": "ok"})
    assert missing.status_code == 400
