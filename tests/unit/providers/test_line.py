"""LINE adapter against the fake Messaging API: request shape, retry key, 409 as success, errors, packing."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from herald.core.errors import PermanentDeliveryError, RetryableDeliveryError
from herald.providers.fakebase import Behaviour
from herald.providers.line.send import LineChannel, retry_key
from tests.unit.providers.conftest import Fake, outbound, send_split

TOKEN = "fake-line-channel-access-token"
CREDS = {"channel_access_token": TOKEN}
USER = "U4af4980629a1b2c3d4e5f60718293a4b"


def line(fake: Fake, credentials: dict[str, str] | None = None) -> LineChannel:
    adapter = fake.adapter("line", "line", credentials or CREDS)
    assert isinstance(adapter, LineChannel)
    return adapter


async def test_pushes_message_and_returns_sent_message_id(fake: Fake) -> None:
    message_id = await line(fake).send(outbound(USER, "Hello from Herald", platform="line"))
    (request,) = fake.requests("line")
    assert request.method == "POST"
    assert request.path == "/v2/bot/message/push"
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.json == {"to": USER, "messages": [{"type": "text", "text": "Hello from Herald"}]}
    assert uuid.UUID(request.headers["x-line-retry-key"])
    assert request.headers["x-line-retry-key"] == retry_key("msg_1", 0)
    assert message_id.isdigit()


async def test_retry_key_is_stable_across_attempts_of_the_same_message(fake: Fake) -> None:
    fake.script("line", Behaviour(kind="server_error", status=500))
    adapter = line(fake)
    with pytest.raises(RetryableDeliveryError, match="HTTP 500"):
        await adapter.send(outbound(USER, platform="line", attempt=1))
    message_id = await adapter.send(outbound(USER, platform="line", attempt=2))
    first, second = fake.requests("line")
    assert first.headers["x-line-retry-key"] == second.headers["x-line-retry-key"]
    assert message_id.isdigit()  # the 5xx attempt was not accepted, so the retry really sends


def test_retry_keys_differ_between_messages_and_requests() -> None:
    assert retry_key("msg_1", 0) == retry_key("msg_1", 0)
    assert len({retry_key("msg_1", 0), retry_key("msg_1", 1), retry_key("msg_2", 0)}) == 3


async def test_409_for_an_accepted_retry_key_counts_as_success(fake: Fake) -> None:
    adapter = line(fake)
    first_id = await adapter.send(outbound(USER, platform="line"))
    again = await adapter.send(outbound(USER, platform="line", attempt=2))
    first, second = fake.requests("line")
    assert first.headers["x-line-retry-key"] == second.headers["x-line-retry-key"]
    assert first_id.isdigit()
    assert again  # the accepted request's id (x-line-accepted-request-id)
    assert uuid.UUID(again)


async def test_retry_after_a_timeout_is_not_sent_twice(fake: Fake) -> None:
    fake.script("line", Behaviour(kind="timeout", delay=1))
    adapter = line(fake)
    with pytest.raises(RetryableDeliveryError, match="timed out"):
        await adapter.send(outbound(USER, platform="line"))
    await asyncio.sleep(0.7)  # the fake finishes the first request (LINE accepted it after all)
    accepted = await adapter.send(outbound(USER, platform="line", attempt=2))
    assert uuid.UUID(accepted)
    assert len(fake.requests("line")) == 2


async def test_bad_token_is_permanent(fake: Fake) -> None:
    with pytest.raises(PermanentDeliveryError, match="401"):
        await line(fake, {"channel_access_token": "invalid-line-token"}).send(outbound(USER, platform="line"))


async def test_invalid_recipient_is_permanent(fake: Fake) -> None:
    fake.script("line", Behaviour(kind="permanent"))
    with pytest.raises(PermanentDeliveryError, match="'to'"):
        await line(fake).send(outbound(USER, platform="line"))


async def test_rate_limit_is_retryable_with_retry_after(fake: Fake) -> None:
    fake.script("line", Behaviour(kind="rate_limited", retry_after=13))
    with pytest.raises(RetryableDeliveryError, match="429") as caught:
        await line(fake).send(outbound(USER, platform="line"))
    assert caught.value.retry_after == 13


async def test_server_error_is_retryable(fake: Fake) -> None:
    fake.script("line", Behaviour(kind="server_error", status=502))
    with pytest.raises(RetryableDeliveryError, match="502"):
        await line(fake).send(outbound(USER, platform="line"))


async def test_timeout_is_retryable(fake: Fake) -> None:
    fake.script("line", Behaviour(kind="timeout", delay=1))
    with pytest.raises(RetryableDeliveryError, match="timed out"):
        await line(fake).send(outbound(USER, platform="line"))


async def test_long_text_is_packed_five_chunks_per_request_in_order(fake: Fake) -> None:
    paragraphs = [f"part {n} " + "w" * 4000 for n in range(12)]
    ids = await send_split(line(fake), outbound(USER, "\n".join(paragraphs), platform="line"))
    requests = fake.requests("line")
    assert [len(r.json["messages"]) for r in requests] == [5, 5, 2]
    assert [m["text"] for r in requests for m in r.json["messages"]] == paragraphs
    # Each request is keyed by its first part, so a retry of the same request carries the same key.
    assert [r.headers["x-line-retry-key"] for r in requests] == [retry_key("msg_1", p) for p in (0, 5, 10)]
    assert len(ids) == 12
    assert len(set(ids)) == 12


async def test_409_stands_for_every_part_of_the_accepted_request(fake: Fake) -> None:
    adapter = line(fake)
    texts = ["one", "two", "three"]
    first = await adapter.send_parts(outbound(USER, "one", platform="line"), texts)
    again = await adapter.send_parts(outbound(USER, "one", platform="line", attempt=2), texts)
    assert len(first) == 3
    assert len(set(again)) == 1
    assert len(again) == 3


def test_declares_its_length_limit_and_splits() -> None:
    assert LineChannel.max_length == 5000
    assert LineChannel.split_long is True
    assert LineChannel.parts_per_call == 5
    assert LineChannel.default_origin == "https://api.line.me"


def test_credentials_never_show_in_repr(fake: Fake) -> None:
    adapter = line(fake, {**CREDS, "channel_secret": "line-channel-secret-1"})
    assert TOKEN not in repr(adapter)
    assert TOKEN not in repr(adapter.config)
    creds = LineChannel.credentials_model.model_validate({**CREDS, "channel_secret": "line-channel-secret-1"})
    assert TOKEN not in repr(creds)
    assert "line-channel-secret-1" not in repr(creds)


@pytest.mark.parametrize(
    ("status", "body", "headers", "outcome"),
    [
        (409, {"message": "The retry key is already accepted"}, {}, "key"),
        (429, {"message": "You have reached your monthly limit."}, {}, PermanentDeliveryError),
        (
            403,
            {"message": "Access to this API is not available for your account"},
            {},
            PermanentDeliveryError,
        ),
    ],
)
async def test_answers_without_the_fake(
    status: int, body: dict[str, str], headers: dict[str, str], outcome: object
) -> None:
    import httpx

    from herald.providers.base import ChannelConfig

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json=body, headers=headers)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        config = ChannelConfig(
            id="chn_l", tenant_id="ten_l", platform="line", provider="line", credentials=CREDS
        )
        adapter = LineChannel(config, http)
        if outcome == "key":  # a 409 without x-line-accepted-request-id: the retry key stands for the request
            assert await adapter.send(outbound(USER, platform="line")) == retry_key("msg_1", 0)
        else:
            with pytest.raises(PermanentDeliveryError, match=str(status)):
                await adapter.send(outbound(USER, platform="line"))
