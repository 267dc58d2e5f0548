"""The pipeline's split delivery: parts in order, resumed after those already delivered, a failure keeping what
went out, reply threading on the first part, several parts per call where the provider takes them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import ClassVar

import httpx
import pytest

from herald.core.errors import PermanentDeliveryError, RetryableDeliveryError
from herald.pipeline.parts import Delivery, part_rows
from herald.providers.base import Channel, ChannelConfig, OutboundMessage


class Memory(Channel):
    """A channel that keeps what it was asked to send; ``fail_on`` names the calls (1-based) that fail."""

    provider = "memory"
    platforms: ClassVar[frozenset[str]] = frozenset({"*"})
    max_length = 10
    split_long = True

    def __init__(self, http: httpx.AsyncClient, *, fail_on: Sequence[int] = (), per_call: int = 1) -> None:
        super().__init__(ChannelConfig(None, "ten_1", "chat", "memory", {}), http)
        self.fail_on = set(fail_on)
        self.parts_per_call = per_call  # type: ignore[misc]
        self.calls: list[tuple[OutboundMessage, list[str]]] = []

    async def send(self, message: OutboundMessage) -> str:
        (sent,) = await self.send_parts(message, [message.content])
        return sent

    async def send_parts(self, message: OutboundMessage, texts: Sequence[str]) -> list[str]:
        self.calls.append((message, list(texts)))
        if len(self.calls) in self.fail_on:
            raise RetryableDeliveryError("memory: try again")
        return [f"id-{message.part + offset}" for offset in range(len(texts))]


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def message(content: str, **extra: object) -> OutboundMessage:
    return OutboundMessage(id="msg_1", tenant_id="ten_1", platform="chat", recipient_id="r", content=content,
                           **extra)  # type: ignore[arg-type]  # fmt: skip


LONG = "aaaa bbbb cccc dddd eeee"  # three parts of at most 10 characters: "aaaa bbbb", "cccc dddd", "eeee"


async def test_a_short_message_is_sent_as_given_and_has_no_part_record(http: httpx.AsyncClient) -> None:
    channel = Memory(http)
    short = message("hello", reply_context={"reply_to": "7"})
    delivery = Delivery(channel, short, channel.parts_of(short.content))
    await delivery.run()
    assert channel.calls == [(short, ["hello"])]
    assert delivery.ids == ["id-0"]
    assert part_rows(delivery, tenant_id="ten_1", channel_id=None, route_step=0, attempt=1) == []


async def test_parts_go_in_order_with_the_reply_on_the_first_only(http: httpx.AsyncClient) -> None:
    channel = Memory(http)
    delivery = Delivery(channel, message(LONG, reply_context={"reply_to": "7"}), channel.parts_of(LONG))
    await delivery.run()
    assert [texts for _, texts in channel.calls] == [["aaaa bbbb"], ["cccc dddd"], ["eeee"]]
    assert [m.part for m, _ in channel.calls] == [0, 1, 2]
    assert [m.content for m, _ in channel.calls] == ["aaaa bbbb", "cccc dddd", "eeee"]
    assert [m.reply_context for m, _ in channel.calls] == [{"reply_to": "7"}, None, None]
    assert delivery.ids == ["id-0", "id-1", "id-2"]


async def test_a_failure_keeps_the_parts_that_went_out(http: httpx.AsyncClient) -> None:
    channel = Memory(http, fail_on=[2])
    delivery = Delivery(channel, message(LONG), channel.parts_of(LONG))
    with pytest.raises(RetryableDeliveryError):
        await delivery.run()
    assert delivery.sent_now == ["id-0"]
    rows = part_rows(delivery, tenant_id="ten_1", channel_id="chn_1", route_step=0, attempt=1)
    assert [(r["part_index"], r["provider_message_id"], r["attempt"]) for r in rows] == [(0, "id-0", 1)]
    assert rows[0]["message_id"] == "msg_1"
    assert rows[0]["provider"] == "memory"


async def test_a_retry_resumes_after_the_recorded_parts(http: httpx.AsyncClient) -> None:
    channel = Memory(http)
    delivery = Delivery(
        channel, message(LONG, reply_context={"reply_to": "7"}), channel.parts_of(LONG), ["old-0"]
    )
    await delivery.run()
    assert [(m.part, texts) for m, texts in channel.calls] == [(1, ["cccc dddd"]), (2, ["eeee"])]
    assert all(m.reply_context is None for m, _ in channel.calls)  # the first part, which quoted, went before
    assert delivery.ids == ["old-0", "id-1", "id-2"]
    assert delivery.sent_now == ["id-1", "id-2"]
    rows = part_rows(delivery, tenant_id="ten_1", channel_id=None, route_step=1, attempt=2)
    assert [(r["route_step"], r["part_index"]) for r in rows] == [(1, 1), (1, 2)]


async def test_everything_recorded_sends_nothing(http: httpx.AsyncClient) -> None:
    channel = Memory(http)
    delivery = Delivery(channel, message(LONG), channel.parts_of(LONG), ["a", "b", "c"])
    await delivery.run()
    assert channel.calls == []
    assert delivery.ids == ["a", "b", "c"]


async def test_a_provider_taking_several_parts_per_call_gets_them_grouped(http: httpx.AsyncClient) -> None:
    channel = Memory(http, per_call=2)
    content = "aaaa bbbb cccc dddd eeee ffff gggg hhhh iiii"
    delivery = Delivery(channel, message(content), channel.parts_of(content), ["old-0"])
    await delivery.run()
    assert [(m.part, len(texts)) for m, texts in channel.calls] == [(1, 2), (3, 2)]
    assert delivery.ids == ["old-0", "id-1", "id-2", "id-3", "id-4"]


async def test_too_few_ids_for_the_parts_is_a_permanent_error(http: httpx.AsyncClient) -> None:
    class Short(Memory):
        async def send_parts(self, message: OutboundMessage, texts: Sequence[str]) -> list[str]:
            return []

    channel = Short(http)
    with pytest.raises(PermanentDeliveryError, match="0 message ids for 1 parts"):
        await Delivery(channel, message(LONG), channel.parts_of(LONG)).run()


async def test_the_default_send_parts_sends_one_part_through_send(http: httpx.AsyncClient) -> None:
    class One(Channel):
        provider = "one"
        platforms: ClassVar[frozenset[str]] = frozenset({"*"})

        async def send(self, message: OutboundMessage) -> str:
            return f"sent {message.content}"

    channel = One(ChannelConfig(None, "ten_1", "chat", "one", {}), http)
    assert channel.parts_per_call == 1
    assert await channel.send_parts(message("hi"), ["hi"]) == ["sent hi"]
    with pytest.raises(ValueError, match="one part per call"):
        await channel.send_parts(message("hi"), ["hi", "there"])
