"""Routing stored inbound messages to agents, one conversation at a time, many conversations at once.

A message is claimed only when no earlier message of its conversation is still open, so an agent sees a chat's
messages in the order they arrived; each claim is leased, and a lease that runs out (a killed process) puts the
message back. The chosen agent's ``callback_url`` gets the message and the session context, signed; a
``{"reply": ...}`` in its answer goes back on the same interface through the pipeline, under its governance.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, exists, select, update
from sqlalchemy.orm import aliased

from herald.conversations import service
from herald.errors import RequestError
from herald.ids import new_id
from herald.messaging.waker import Waker
from herald.runtime import Runtime
from herald.storage.models import Agent, Channel, Conversation
from herald.storage.models import InboundMessage as InboundRow
from herald.storage.types import utcnow
from herald.tenancy import callbacks

log = logging.getLogger(__name__)
OPEN = ("pending", "processing")
RETRY_DELAYS = (10.0, 60.0, 300.0)  # after call_agent's own quick retries are spent


class Processor:
    def __init__(self, rt: Runtime, *, owner: str | None = None, concurrency: int = 200) -> None:
        self.rt = rt
        self.owner = owner or f"{socket.gethostname()}:{new_id('prc')}"
        self.concurrency = concurrency
        self.waker: Waker = rt.inbound_waker
        self._running: set[asyncio.Task[None]] = set()

    async def run(self, stop: asyncio.Event, interval: float = 0.5) -> None:
        await self.waker.listen(self.rt.settings.async_database_url)
        while not stop.is_set():
            claimed: list[str] = []
            try:
                await self.reclaim()
                free = self.concurrency - len(self._running)
                claimed = await self.claim(free) if free > 0 else []
            except Exception:
                log.exception("inbound claim failed; trying again shortly")
            for inbound_id in claimed:
                task = asyncio.create_task(self.process(inbound_id))
                self._running.add(task)
                task.add_done_callback(self._finished)
            if not claimed:
                await self.waker.wait(interval)
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self.waker.wake()  # the conversation's next message may now go

    async def run_once(self) -> int:
        """Claim and process what is ready now (tests, and draining in order)."""
        await self.reclaim()
        claimed = await self.claim(self.concurrency)
        await asyncio.gather(*(self.process(i) for i in claimed))
        return len(claimed)

    async def claim(self, limit: int) -> list[str]:
        now = utcnow()
        earlier = aliased(InboundRow)
        blocked = exists().where(
            and_(
                earlier.conversation_id == InboundRow.conversation_id,
                earlier.id < InboundRow.id,
                earlier.status.in_(OPEN),
            )
        )
        ready = (
            select(InboundRow.id)
            .where(InboundRow.status == "pending", InboundRow.next_attempt_at <= now, ~blocked)
            .order_by(InboundRow.next_attempt_at, InboundRow.id)
            .limit(limit)
        )
        if self.rt.dialect == "postgresql":
            ready = ready.with_for_update(skip_locked=True)
        lease = now + timedelta(seconds=self.rt.settings.lease_seconds)
        async with self.rt.sessions.begin() as session:
            result = await session.execute(
                update(InboundRow)
                .where(InboundRow.id.in_(ready.scalar_subquery()))
                .values(status="processing", lease_owner=self.owner, lease_expires_at=lease,
                        attempts=InboundRow.attempts + 1)
                .returning(InboundRow.id)
                .execution_options(synchronize_session=False)
            )  # fmt: skip
            return sorted(result.scalars())

    async def reclaim(self) -> None:
        async with self.rt.sessions.begin() as session:
            await session.execute(
                update(InboundRow)
                .where(InboundRow.status == "processing", InboundRow.lease_expires_at < utcnow())
                .values(status="pending", lease_owner=None, lease_expires_at=None)
                .execution_options(synchronize_session=False)
            )

    async def process(self, inbound_id: str) -> None:
        try:
            await self._process(inbound_id)
        except Exception as exc:
            log.exception("inbound %s: processing failed", inbound_id)
            await self._finish(inbound_id, status="failed", error=f"internal error: {type(exc).__name__}")

    async def _process(self, inbound_id: str) -> None:
        async with self.rt.sessions.begin() as session:
            row = await session.get(InboundRow, inbound_id)
            if row is None or row.status != "processing" or row.lease_owner != self.owner:
                return
            conversation = await session.get(Conversation, row.conversation_id)
            channel = await session.get(Channel, row.channel_id)
            assert conversation is not None
            assert channel is not None
            rules = await service.list_rules(session, row.tenant_id)
            rule = service.choose(
                rules, channel_id=row.channel_id, contact_id=conversation.contact_id, text=row.body
            )
            if rule is None:
                await self._settle(session, row, status="unrouted", error="no routing rule matches")
                return
            agent = await session.get(Agent, (row.tenant_id, rule.agent_id))
            context = await service.session_context(self.rt, session, conversation, before=row.id)
            row.agent_id = conversation.agent_id = rule.agent_id
            body = _callback_body(row, conversation, channel, context)
        try:
            answer = await callbacks.call_agent(self.rt, agent, "message.received", body, message_id=row.id)
        except callbacks.CallbackFailed as exc:
            await self._retry_or_fail(row, str(exc))
            return
        text = callbacks.message_in(answer)
        async with self.rt.sessions.begin() as session:
            row = await session.get(InboundRow, inbound_id)
            conversation = await session.get(Conversation, row.conversation_id) if row else None
            if row is None or conversation is None or row.lease_owner != self.owner:
                return
            if text is None:
                await self._settle(session, row, status="routed")
                return
            try:
                async with session.begin_nested():
                    prepared = await service.reply(
                        self.rt, session, conversation, agent_id=rule.agent_id, text=text, in_reply_to=row
                    )
            except RequestError as exc:
                await self._settle(session, row, status="failed", error=f"reply refused: {exc.detail}")
                return
            row.reply_message_id = str(prepared.values["id"])
            await self._settle(session, row, status="replied")

    async def _settle(self, session: Any, row: InboundRow, *, status: str, error: str | None = None) -> None:
        row.status, row.error = status, error
        row.processed_at = utcnow()
        row.lease_owner = row.lease_expires_at = None

    async def _retry_or_fail(self, row: InboundRow, error: str) -> None:
        if row.attempts > len(RETRY_DELAYS):
            await self._finish(row.id, status="failed", error=error)
            return
        async with self.rt.sessions.begin() as session:
            await session.execute(
                update(InboundRow)
                .where(InboundRow.id == row.id, InboundRow.lease_owner == self.owner)
                .values(status="pending", error=error, lease_owner=None, lease_expires_at=None,
                        next_attempt_at=utcnow() + timedelta(seconds=RETRY_DELAYS[row.attempts - 1]))
            )  # fmt: skip

    async def _finish(self, inbound_id: str, *, status: str, error: str) -> None:
        async with self.rt.sessions.begin() as session:
            await session.execute(
                update(InboundRow)
                .where(InboundRow.id == inbound_id)
                .values(
                    status=status, error=error, processed_at=utcnow(), lease_owner=None, lease_expires_at=None
                )
            )


def _callback_body(
    row: InboundRow, conversation: Conversation, channel: Channel, context: dict[str, Any]
) -> dict[str, Any]:
    """What the agent receives: the message, where it came from, and the session so far."""
    return {
        "conversation_id": conversation.id,
        "interface": {"channel_id": channel.id, "platform": channel.platform, "provider": channel.provider},
        "message": {"id": row.id, "text": row.body, "sender_id": row.sender_id, "sender_name": row.sender_name,
                    "attachments": row.attachments, "sent_at": row.sent_at.isoformat(),
                    "provider_message_id": row.provider_message_id},
        "contact_id": conversation.contact_id,
        "session": context,
        "reply_url": f"/api/v1/conversations/{conversation.id}/reply",
    }  # fmt: skip


async def run_forever(rt: Runtime, stop: asyncio.Event) -> None:
    with contextlib.suppress(asyncio.CancelledError):
        await Processor(rt).run(stop)
