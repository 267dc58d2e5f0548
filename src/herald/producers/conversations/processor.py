"""Routing stored inbound messages to agents, one conversation at a time, many conversations at once.

A message is claimed only when no earlier message of its conversation is still open, so an agent sees a chat's
messages in the order they arrived; each claim is leased, and a lease that runs out (a killed process) puts the
message back. The chosen agent's ``callback_url`` gets the message and the session context, signed; a
``{"reply": ...}`` in its answer goes back on the same interface through the pipeline, under its governance.

A claimed batch is read in one session, its agents are called concurrently, and outcomes are group-committed
as the calls finish: under load many outcomes share one transaction, while a slow agent delays only its own
conversation.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, bindparam, exists, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from herald.core.background import Loop
from herald.core.batching import GroupCommit
from herald.core.errors import RequestError
from herald.core.ids import new_id
from herald.pipeline import accept as messages
from herald.pipeline.routing import planner
from herald.pipeline.waker import Waker
from herald.producers import callbacks
from herald.producers.conversations import service
from herald.storage import claims
from herald.storage.models import Agent, Channel, Conversation, RoutingRule
from herald.storage.models import InboundMessage as InboundRow
from herald.storage.types import utcnow

if TYPE_CHECKING:
    from herald.runtime import Runtime

log = logging.getLogger(__name__)
OPEN = ("pending", "processing")
RETRY_DELAYS = (10.0, 60.0, 300.0)  # after call_agent's own quick retries are spent
RECLAIM_EVERY = 5.0
# Longer than an agent call can take with its retries (3 tries of up to 15 s, waits of up to 60 s), so a lease
# runs out only when its process died or stalled, not while the call is still out.
MIN_LEASE_SECONDS = 300.0


@dataclass(slots=True)
class Routed:
    """One claimed message, what it needs for its agent call, and (once known) its outcome."""

    row: InboundRow
    conversation: Conversation
    agent: Agent | None = None
    body: dict[str, Any] = field(default_factory=dict)
    status: str = "routed"
    error: str | None = None
    reply: str | None = None
    retry_at: datetime | None = None
    platform: str = ""


class Processor:
    def __init__(self, rt: Runtime, *, owner: str | None = None, concurrency: int = 200) -> None:
        self.rt = rt
        self.owner = owner or f"{socket.gethostname()}:{new_id('prc')}"
        self.concurrency = concurrency
        self.waker: Waker = rt.inbound_waker
        self.writer: GroupCommit[Routed] = GroupCommit(self._write)
        self._in_flight = 0
        self._running: set[asyncio.Task[None]] = set()
        self._reclaimed_at = 0.0

    async def run(self, stop: asyncio.Event, interval: float = 0.5) -> None:
        await self.waker.listen(self.rt.settings.async_database_url)
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            claimed: list[str] = []
            try:
                if loop.time() - self._reclaimed_at > RECLAIM_EVERY:
                    await self.reclaim()
                    self._reclaimed_at = loop.time()
                free = self.concurrency - self._in_flight
                claimed = await self.claim(free) if free > 0 else []
            except Exception:
                log.exception("inbound claim failed; trying again shortly")
            if claimed:
                self._in_flight += len(claimed)
                task = asyncio.create_task(self.process(claimed))
                self._running.add(task)
                task.add_done_callback(self._running.discard)
            else:
                await self.waker.wait(interval, stop)
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)
        await self.rt.humans.idle()

    async def run_once(self) -> int:
        """Claim and process what is ready now (tests, and draining in order)."""
        await self.reclaim()
        claimed = await self.claim(self.concurrency)
        if claimed:
            self._in_flight += len(claimed)
            await self.process(claimed)
            await self.rt.humans.idle()
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
        lease = now + timedelta(seconds=max(self.rt.settings.lease_seconds, MIN_LEASE_SECONDS))
        async with self.rt.sessions.begin() as session:
            claimed = await claims.claim(session, ready, lease=claims.Stamp(
                status="processing", lease_owner=self.owner, lease_expires_at=lease,
                attempts=InboundRow.attempts + 1,
            ))  # fmt: skip
        return sorted(claimed)

    async def reclaim(self) -> None:
        async with self.rt.sessions.begin() as session:
            await session.execute(
                update(InboundRow)
                .where(InboundRow.status == "processing", InboundRow.lease_expires_at < utcnow())
                .values(status="pending", lease_owner=None, lease_expires_at=None)
                .execution_options(synchronize_session=False)
            )

    async def process(self, inbound_ids: list[str]) -> None:
        """Route a claimed batch: read it at once, call the agents concurrently, commit outcomes as they come."""
        try:
            try:
                routed = await self._route(inbound_ids)
            except Exception:
                log.exception("inbound batch: routing failed; the leases will put it back")
                return
            await asyncio.gather(*(self._call(item) for item in routed))
        finally:
            self._in_flight -= len(inbound_ids)
            self.waker.wake()  # the conversations' next messages may now go

    async def _route(self, inbound_ids: list[str]) -> list[Routed]:
        async with self.rt.sessions() as session:
            rows = list(
                (
                    await session.execute(
                        select(InboundRow).where(
                            InboundRow.id.in_(inbound_ids),
                            InboundRow.status == "processing",
                            InboundRow.lease_owner == self.owner,
                        )
                    )
                ).scalars()
            )
            if not rows:
                return []
            conversations = await _by_id(session, Conversation, {r.conversation_id for r in rows})
            channels = await _by_id(session, Channel, {r.channel_id for r in rows})
            rules = await self._rules(session, {r.tenant_id for r in rows})
            plain = [
                conversations[r.conversation_id]
                for r in rows
                if conversations[r.conversation_id].contact_id is None
            ]
            contexts = await service.session_contexts(self.rt, session, plain)
            routed: list[Routed] = []
            for row in rows:
                conversation = conversations[row.conversation_id]
                # A message stored with its agent chosen (a contact form's routing target) skips the rules.
                chosen = row.agent_id
                if chosen is None:
                    rule = service.choose(
                        rules.get(row.tenant_id, []), channel_id=row.channel_id,
                        contact_id=conversation.contact_id, text=row.body,
                    )  # fmt: skip
                    chosen = rule.agent_id if rule is not None else None
                item = Routed(row, conversation, platform=channels[row.channel_id].platform)
                if chosen is None:
                    item.status, item.error = "unrouted", "no routing rule matches"
                else:
                    row.agent_id = chosen
                    context = contexts.get(conversation.id) or await service.session_context(
                        self.rt, session, conversation, before=row.id
                    )
                    item.body = _callback_body(row, conversation, channels[row.channel_id], context)
                routed.append(item)
            wanted = {(r.row.tenant_id, r.row.agent_id) for r in routed if r.row.agent_id is not None}
            if wanted:
                found = await session.execute(
                    select(Agent).where(tuple_(Agent.tenant_id, Agent.id).in_(wanted))
                )
                agents = {(a.tenant_id, a.id): a for a in found.scalars()}
                for item in routed:
                    if item.row.agent_id is not None:
                        item.agent = agents.get((item.row.tenant_id, item.row.agent_id))
        return routed

    async def _rules(self, session: AsyncSession, tenants: set[str]) -> dict[str, list[RoutingRule]]:
        """Each tenant's rules in priority order (cached briefly: read for every message)."""
        found: dict[str, list[RoutingRule]] = {}
        for tenant_id in tenants:
            hit, cached = self.rt.lookups.get(("routing_rules", tenant_id))
            if hit and cached is not None:
                found[tenant_id] = cached
            else:
                found[tenant_id] = await service.list_rules(session, tenant_id)
                self.rt.lookups.put(("routing_rules", tenant_id), found[tenant_id])
        return found

    async def _call(self, item: Routed) -> None:
        try:
            taken = await self.rt.humans.take(item.row, item.platform)
        except Exception:
            log.exception(
                "inbound %s: reading it as a decision failed; the lease will put it back", item.row.id
            )
            return
        if taken is not None:  # a decision or an answer to Herald's own request: no agent sees it
            item.status, item.error, item.row.agent_id = taken, None, None
        if item.status == "routed":
            try:
                answer = await self.rt.agents.ask(
                    item.agent, "message.received", item.body, message_id=item.row.id,
                    origin=f"inbound:{item.row.id}", task=_task(item.row), conversational=True, retry_failed=True,
                )  # fmt: skip
            except callbacks.CallbackFailed as exc:
                item.error = str(exc)
                if item.row.attempts > len(RETRY_DELAYS):
                    item.status = "failed"
                else:
                    item.status = "pending"
                    item.retry_at = utcnow() + timedelta(seconds=RETRY_DELAYS[item.row.attempts - 1])
            except Exception as exc:
                log.exception("inbound %s: agent call failed", item.row.id)
                item.status, item.error = "failed", f"internal error: {type(exc).__name__}"
            else:
                item.reply = answer.content
        try:
            await self.writer.submit(item)
        except Exception:
            log.exception("inbound %s: recording the outcome failed; the lease will put it back", item.row.id)

    async def _write(self, items: list[Routed]) -> None:
        """Record a group of outcomes in one transaction: replies into the pipeline, then every row's state."""
        now = utcnow()
        async with self.rt.sessions.begin() as session:
            # Only rows this processor still holds get their outcome, replies included: a row whose lease ran
            # out belongs to whoever claimed it since. Locked, so that cannot change before this commits.
            held_query = select(InboundRow.id).where(
                InboundRow.id.in_([i.row.id for i in items]),
                InboundRow.lease_owner == self.owner,
                InboundRow.status == "processing",
            )
            if self.rt.dialect == "postgresql":
                held_query = held_query.with_for_update()
            held = set((await session.execute(held_query)).scalars())
            items = [i for i in items if i.row.id in held]
            if not items:
                return
            # Outcomes are worked out here, not stored on the items: if this group's transaction fails, each
            # item is written again alone, from what the agent call left.
            outcomes: dict[str, tuple[str, str | None, str | None]] = {}
            memo = planner.Memo()
            prepared: list[messages.Prepared] = []
            for item in items:
                status, error, reply_id = item.status, item.error, None
                if status == "routed" and item.reply is not None and item.row.agent_id is not None:
                    try:
                        async with session.begin_nested():
                            one = await service.prepare_reply(
                                self.rt, session, item.conversation, agent_id=item.row.agent_id,
                                text=item.reply, in_reply_to=item.row, memo=memo,
                            )  # fmt: skip
                    except RequestError as exc:
                        status, error = "failed", f"reply refused: {exc.detail}"
                    else:
                        prepared.append(one)
                        status, reply_id = "replied", str(one.values["id"])
                outcomes[item.row.id] = (status, error, reply_id)
            await messages.write(self.rt, session, prepared)
            connection = await session.connection()  # executemany in Core: one statement, many rows
            await connection.execute(
                update(InboundRow)
                .where(InboundRow.id == bindparam("b_id"), InboundRow.lease_owner == self.owner)
                .values(status=bindparam("b_status"), error=bindparam("b_error"), agent_id=bindparam("b_agent"),
                        reply_message_id=bindparam("b_reply"), processed_at=bindparam("b_done"),
                        next_attempt_at=bindparam("b_next"), lease_owner=None, lease_expires_at=None),
                [{"b_id": i.row.id, "b_status": outcomes[i.row.id][0], "b_error": outcomes[i.row.id][1],
                  "b_agent": i.row.agent_id, "b_reply": outcomes[i.row.id][2],
                  "b_done": None if outcomes[i.row.id][0] == "pending" else now,
                  "b_next": i.retry_at or i.row.next_attempt_at} for i in items],
            )  # fmt: skip
            handled = [i for i in items if i.row.agent_id is not None]
            if handled:  # the conversation's agent: who a later reply through the API speaks for
                await connection.execute(
                    update(Conversation)
                    .where(Conversation.id == bindparam("b_id"))
                    .values(agent_id=bindparam("b_agent")),
                    [{"b_id": i.conversation.id, "b_agent": i.row.agent_id} for i in handled],
                )
            answered = [i.conversation.id for i in items if outcomes[i.row.id][0] == "replied"]
            if answered:
                await connection.execute(
                    update(Conversation).where(Conversation.id.in_(answered)).values(last_activity_at=now)
                )


async def _by_id(session: AsyncSession, model: Any, ids: set[str]) -> dict[str, Any]:
    rows = (await session.execute(select(model).where(model.id.in_(ids)))).scalars()
    return {row.id: row for row in rows}


def _callback_body(
    row: InboundRow, conversation: Conversation, channel: Channel, context: dict[str, Any]
) -> dict[str, Any]:
    """What the agent receives: the message, where it came from, and the session so far."""
    return {
        "conversation_id": conversation.id,
        "interface": {"channel_id": channel.id, "platform": channel.platform, "provider": channel.provider},
        "message": {"id": row.id, "text": row.body, "sender_id": row.sender_id, "sender_name": row.sender_name,
                    "attachments": row.attachments, "sent_at": row.sent_at.isoformat(),
                    "provider_message_id": row.provider_message_id,
                    "subject": (row.reply_context or {}).get("subject"), "details": row.details},
        "contact_id": conversation.contact_id,
        "session": context,
        "reply_url": f"/api/v1/conversations/{conversation.id}/reply",
    }  # fmt: skip


async def run_processor(rt: Runtime, stop: asyncio.Event) -> None:
    """The inbound loop: one processor until ``stop``."""
    await Processor(rt).run(stop)


LOOPS = (Loop("inbound", "worker", runner=run_processor),)


def _task(row: InboundRow) -> str:
    """What an LLM agent is asked: answer the person, who wrote this (the context travels with the run)."""
    sender = row.sender_name or row.sender_id
    subject = (row.reply_context or {}).get("subject")
    about = (
        f" (subject: {subject})" if subject else ""
    )  # an email's subject often says what the text leaves out
    return (
        f"{sender} wrote to you{about}: {row.body}\n\nAnswer them (your final answer is sent as the reply)."
    )
