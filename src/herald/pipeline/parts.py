"""Long messages are split once, here in the pipeline, and each part's delivery is recorded.

A channel declares ``max_length`` and ``split_long``; :meth:`Channel.parts_of` cuts the content into the texts of
its provider messages and :class:`Delivery` sends them in order, at most ``parts_per_call`` per provider call,
stopping at the first failure. Adapters send exactly what they are given, so no adapter loops over chunks.

**The record.** Every delivered part of a split message is a ``message_parts`` row (message, route step, part
index, provider id), written by the worker in the same transaction that settles the attempt's outcome. When part
1 went out and part 2 failed, the message is retried (or falls back) *and* part 1 is recorded together, so the next
attempt loads the record and starts at part 2: the person never gets part 1 twice. The insert ignores a part
already recorded, because a worker that lost its lease still records what it delivered (a delivered part is a
fact) and the new lease holder may record the same index. What is not covered is the at-least-once edge every
send has: a worker that dies between the provider's answer and the commit (milliseconds: the worker commits
each outcome as it comes) leaves nothing recorded.

**Per route step.** Parts belong to the route step (channel) that delivered them: a fallback to another channel
starts its parts from the first, since the person has not seen any of them there. The parts an abandoned step
delivered stay in the record.

A message that fits in one provider message has no rows: its attempt is its record, as for every other channel.
The message's ``provider_message_id`` is the ids of all its parts joined with ``,``, and its cost is the channel's
``cost_per_message`` times the number of parts the record holds for the step that sent it (the record's parts
plus this attempt's), since cost is reported per channel and the message names the channel that sent it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from herald.core.errors import PermanentDeliveryError
from herald.providers.base import Channel, OutboundMessage
from herald.storage.models import MessagePart
from herald.storage.types import utcnow


@dataclass
class Delivery:
    """The parts of one message on one channel: which were delivered, and sending the rest in order.

    ``ids`` holds the provider ids of the parts delivered so far, in part order, starting with those the record
    holds from earlier attempts. It grows as each call succeeds, so after a failure (or a timeout cancelling
    :meth:`run`) it still says exactly what went out.
    """

    channel: Channel
    message: OutboundMessage  # the whole message; each call gets a copy addressed as its first part
    texts: list[str]
    ids: list[str] = field(default_factory=list)
    resumed_at: int = field(init=False)  # the first part this attempt had to send
    sent_at: list[datetime] = field(init=False, default_factory=list)  # when each part of ``sent_now`` went

    def __post_init__(self) -> None:
        del self.ids[len(self.texts) :]  # a record longer than the split (never expected) cannot skip more
        self.resumed_at = len(self.ids)

    @property
    def split(self) -> bool:
        """Whether the message goes out as several provider messages (and so has a part record)."""
        return len(self.texts) > 1

    @property
    def sent_now(self) -> list[str]:
        """Provider ids of the parts this attempt delivered."""
        return self.ids[self.resumed_at :]

    async def run(self) -> None:
        """Send every part not yet delivered, in order; the first failure propagates and ends the attempt."""
        per_call = max(1, self.channel.parts_per_call)
        while len(self.ids) < len(self.texts):
            first = len(self.ids)
            texts = self.texts[first : first + per_call]
            ids = await self.channel.send_parts(self._addressed(first), texts)
            if len(ids) != len(texts):
                raise PermanentDeliveryError(
                    f"{self.channel.provider}: {len(ids)} message ids for {len(texts)} parts"
                )
            self.ids.extend(ids)
            self.sent_at.extend([utcnow()] * len(ids))

    def _addressed(self, part: int) -> OutboundMessage:
        """The message as one call sends it: that part's text; reply threading on the first part only."""
        if part == 0 and not self.split:
            return self.message
        return dataclasses.replace(
            self.message,
            content=self.texts[part],
            part=part,
            reply_context=self.message.reply_context if part == 0 else None,
            actions=self.message.actions if part == len(self.texts) - 1 else (),
        )


async def delivered(session: AsyncSession, message_id: str, route_step: int) -> list[str]:
    """Provider ids of the parts of ``message_id`` already delivered on ``route_step``, in order.

    Only the unbroken run from part 0 counts: parts go out in order, so a gap (never expected) is resent.
    """
    rows = await session.execute(
        select(MessagePart.part_index, MessagePart.provider_message_id)
        .where(MessagePart.message_id == message_id, MessagePart.route_step == route_step)
        .order_by(MessagePart.part_index)
    )
    ids: list[str] = []
    for index, provider_message_id in rows:
        if index != len(ids):
            break
        ids.append(provider_message_id)
    return ids


def part_rows(
    delivery: Delivery, *, tenant_id: str, channel_id: str | None, route_step: int, attempt: int
) -> list[dict[str, Any]]:
    """The ``message_parts`` rows for the parts this attempt delivered (none when the message was not split)."""
    if not delivery.split:
        return []
    common = {
        "message_id": delivery.message.id, "route_step": route_step, "tenant_id": tenant_id,
        "channel_id": channel_id, "provider": delivery.channel.provider, "attempt": attempt,
    }  # fmt: skip
    sent = zip(delivery.sent_now, delivery.sent_at, strict=True)
    return [
        {**common, "part_index": index, "provider_message_id": provider_message_id, "sent_at": at}
        for index, (provider_message_id, at) in enumerate(sent, start=delivery.resumed_at)
    ]


def record_statement(dialect: str) -> Insert:
    """Insert part rows, ignoring a part already recorded (see the module docstring: a lost lease)."""
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    return insert(MessagePart).on_conflict_do_nothing(
        index_elements=["message_id", "route_step", "part_index"]
    )
