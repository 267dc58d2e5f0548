"""Conversations: storing what people send, sessions, routing rules, and replies on the same interface.

A provider's webhook is answered as soon as its messages are stored (:func:`store`); routing to an agent
happens afterwards in :mod:`herald.producers.conversations.processor`. A conversation is one chat on one interface; its
session is the recent exchange since the last idle gap, and when the chat belongs to a known contact, the session
spans all of that contact's conversations on every platform (seed 001's cross-interface session).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import regex
from sqlalchemy import case, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute, aliased

from herald.core.batching import GroupCommits
from herald.core.errors import NotFound, ValidationFailed
from herald.core.ids import new_id
from herald.core.intent import Intent, Priority
from herald.core.principal import Principal
from herald.pipeline import accept as messages
from herald.pipeline.enrolment import require_agent
from herald.pipeline.routing import circuit, planner
from herald.providers.inbound import InboundMessage
from herald.storage import responses
from herald.storage.audit import audit_row, event_row
from herald.storage.bulk import insert_rows, table_of
from herald.storage.models import (
    AuditEntry,
    Channel,
    Contact,
    Conversation,
    Event,
    Message,
    RoutingRule,
)
from herald.storage.models import InboundMessage as InboundRow
from herald.storage.queries import owned
from herald.storage.types import utcnow

if TYPE_CHECKING:
    from herald.runtime import Runtime

MAX_PATTERN = 500
PATTERN_SECONDS = 0.05
log = logging.getLogger(__name__)


# -- arrival --------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Arrival:
    channel: Channel
    messages: list[InboundMessage]
    fresh: int = 0


async def store(rt: Runtime, channel: Channel, inbound: list[InboundMessage]) -> int:
    """Store new messages (a provider's repeat of a message id is ignored); returns how many were new.

    Webhooks arriving together are group-committed: one transaction for all of them, each answered only once
    its own messages are committed.
    """
    if not inbound:
        return 0
    arrival = _Arrival(channel, inbound)
    await _STORES.of(rt).submit(arrival)
    return arrival.fresh


async def _store_all(rt: Runtime, arrivals: list[_Arrival]) -> None:
    now = utcnow()
    for arrival in arrivals:  # this may be a second attempt after a rolled-back group
        arrival.fresh = 0
    async with rt.sessions.begin() as session:
        by_channel: dict[str, list[_Arrival]] = {}
        for arrival in arrivals:
            by_channel.setdefault(arrival.channel.id, []).append(arrival)
        rows: list[dict[str, Any]] = []
        owner: list[_Arrival] = []
        chats: list[str] = []  # each row's conversation external id: the recipient its sends went to
        for group in by_channel.values():
            channel = group[0].channel
            everything = [m for a in group for m in a.messages]
            conversations = await _conversations(session, rt.dialect, channel, everything, now)
            for arrival in group:
                for m in arrival.messages:
                    rows.append(_row(arrival.channel, conversations[_key(m)], m, now))
                    owner.append(arrival)
                    chats.append(_key(m))
        # Core, many parameter sets: SQLAlchemy compiles the statement once and sends the rows as one multi-row
        # INSERT ("insertmanyvalues"), where an ORM insert with .values(rows) coerced and compiled every row of
        # every group anew (a third of an API process's time on webhooks).
        insert_ = pg_insert if rt.dialect == "postgresql" else sqlite_insert
        table = table_of(InboundRow)
        connection = await session.connection()
        stored = await connection.execute(
            insert_(table)
            .on_conflict_do_nothing(index_elements=["channel_id", "provider_message_id"])
            .returning(table.c.id, table.c.conversation_id),
            rows,
        )
        new: dict[str, str] = {row_id: conversation_id for row_id, conversation_id in stored.all()}  # noqa: C416
        if not new:
            return
        events = []
        for row, arrival in zip(rows, owner, strict=True):
            if row["id"] in new:
                arrival.fresh += 1
                channel = arrival.channel
                events.append(event_row(channel.tenant_id, "inbound.received", row["id"],
                                        {"conversation_id": row["conversation_id"], "channel_id": channel.id,
                                         "platform": channel.platform, "sender_id": row["sender_id"]}, at=now))  # fmt: skip
        await insert_rows(session, table_of(Event), events)
        await _mark_replies(session, rows, chats, new, now)
        # Silence longer than the idle time ends a session: the next message starts a new one.
        idle_since = now - timedelta(seconds=rt.settings.conversation_idle_seconds)
        restarted = case(
            (Conversation.last_activity_at < idle_since, now), else_=Conversation.session_started_at
        )
        await session.execute(
            update(Conversation)
            .where(Conversation.id.in_(set(new.values())))
            .values(last_activity_at=now, session_started_at=restarted)
        )
        await rt.inbound_waker.wake_after_commit(session)


async def _mark_replies(
    session: AsyncSession, rows: list[dict[str, Any]], chats: list[str], new: dict[str, str], now: datetime
) -> None:
    """The new messages answer the sends of their chats (herald.storage.responses): one statement per channel."""
    answered: dict[tuple[str, str], set[str]] = {}
    for row, chat in zip(rows, chats, strict=True):
        if row["id"] in new:
            answered.setdefault((row["tenant_id"], row["channel_id"]), set()).add(chat)
    for (tenant_id, channel_id), recipients in answered.items():
        await responses.mark_replies(session, tenant_id, channel_id, recipients, now)


def _key(m: InboundMessage) -> str:
    """The conversation's external id as stored (cleaned and cut to the column's size)."""
    return _clean(m.conversation_key)[:500]


def _clean(text: str) -> str:
    """Without NUL characters, which PostgreSQL text cannot hold (a provider may still send them)."""
    return text.replace("\x00", "")


def _row(channel: Channel, conversation: Conversation, m: InboundMessage, now: datetime) -> dict[str, Any]:
    reply_context = {k: v for k, v in (("thread_id", m.thread_id), ("reply_to", m.provider_message_id),
                                       ("reply_token", m.reply_token), ("action", m.action),
                                       ("in_reply_to", m.in_reply_to), ("subject", m.subject),
                                       ("references", list(m.references)), ("reply_address", m.reply_address),
                                       ("reply_platform", m.reply_platform)) if v}  # fmt: skip
    return {
        "id": new_id("inb"), "tenant_id": channel.tenant_id, "channel_id": channel.id,
        "conversation_id": conversation.id, "provider_message_id": _clean(m.provider_message_id)[:500],
        "sender_id": _clean(m.sender_id)[:500], "sender_name": _clean(m.sender_name or "")[:200] or None,
        "body": _clean(m.text),
        "attachments": [dict(a) for a in m.attachments], "reply_context": reply_context, "sent_at": m.sent_at,
        "received_at": now, "status": "pending", "attempts": 0, "next_attempt_at": now,
        "agent_id": m.agent_id, "details": m.details,
    }  # fmt: skip


async def _conversations(
    session: AsyncSession, dialect: str, channel: Channel, inbound: list[InboundMessage], now: datetime
) -> dict[str, Conversation]:
    """The conversation of each chat in ``inbound``, created on first contact (and tied to a known contact)."""
    keys = {_key(m) for m in inbound}

    async def load() -> dict[str, Conversation]:
        query = select(Conversation).where(
            Conversation.channel_id == channel.id, Conversation.external_id.in_(keys)
        )
        return {c.external_id: c for c in (await session.execute(query)).scalars()}

    found = await load()
    missing = [m for key, m in {_key(m): m for m in inbound}.items() if key not in found]
    insert_ = pg_insert if dialect == "postgresql" else sqlite_insert
    for m in missing:
        contact_id = await _contact_for(session, channel, _clean(m.sender_id))
        values = {"id": new_id("cnv"), "tenant_id": channel.tenant_id, "channel_id": channel.id,
                  "platform": channel.platform, "external_id": _key(m), "contact_id": contact_id,
                  "sender_name": _clean(m.sender_name or "")[:200] or None, "session_started_at": now,
                  "last_activity_at": now, "created_at": now}  # fmt: skip
        await session.execute(
            insert_(Conversation)
            .values(values)
            .on_conflict_do_nothing(index_elements=["channel_id", "external_id"])
        )
    # Read again after creating: a concurrent first message may have created the same chat (no conflict error).
    return await load() if missing else found


async def _contact_for(session: AsyncSession, channel: Channel, sender_id: str) -> str | None:
    """The tenant's contact whose address on this platform is the sender, if any."""
    address = Contact.addresses[channel.platform].as_string()
    return (
        await session.execute(
            select(Contact.id).where(Contact.tenant_id == channel.tenant_id, address == sender_id).limit(1)
        )
    ).scalar_one_or_none()


# -- sessions -------------------------------------------------------------------------------------------------


async def session_context(
    rt: Runtime, session: AsyncSession, conversation: Conversation, *, before: str | None = None
) -> dict[str, Any]:
    """The last interactions of this conversation's session (both directions, every platform of the contact)."""
    idle = timedelta(seconds=rt.settings.conversation_idle_seconds)
    size = rt.settings.conversation_context_size
    now = utcnow()
    since = max(conversation.session_started_at, now - idle)
    scope = [conversation.id]
    if conversation.contact_id is not None:
        # The contact's session spans every platform: its chats active within the idle time, from the earliest
        # start among them.
        others = (
            await session.execute(
                select(Conversation.id, Conversation.session_started_at).where(
                    Conversation.tenant_id == conversation.tenant_id,
                    Conversation.contact_id == conversation.contact_id,
                    Conversation.last_activity_at >= now - idle,
                )
            )
        ).all()
        scope += [other_id for other_id, _ in others if other_id != conversation.id]
        since = min([since, *(max(started, now - idle) for _, started in others)])
    inbound_query = select(InboundRow).where(
        InboundRow.conversation_id.in_(scope), InboundRow.received_at >= since
    )
    if before is not None:
        inbound_query = inbound_query.where(InboundRow.id < before)
    inbound = (await session.execute(inbound_query.order_by(InboundRow.id.desc()).limit(size))).scalars()
    outbound = (
        await session.execute(
            select(Message)
            .where(Message.conversation_id.in_(scope), Message.created_at >= since)
            .order_by(Message.id.desc())
            .limit(size)
        )
    ).scalars()
    history = sorted(
        [_inbound_out(m) for m in inbound] + [_outbound_out(m) for m in outbound], key=lambda h: str(h["at"])
    )[-size:]
    return {"id": f"{conversation.contact_id or conversation.id}:{int(since.timestamp())}",
            "started_at": since.isoformat(), "contact_id": conversation.contact_id, "history": history}  # fmt: skip


async def session_contexts(
    rt: Runtime, session: AsyncSession, conversations: list[Conversation]
) -> dict[str, dict[str, Any]]:
    """:func:`session_context` for many conversations without a contact, in two queries: what a processor's
    batch needs. Each conversation's messages still open (the one being routed and any after it) are left
    out; the earlier ones are all done, since a conversation is routed in order."""
    if not conversations:
        return {}
    idle = timedelta(seconds=rt.settings.conversation_idle_seconds)
    size = rt.settings.conversation_context_size
    now = utcnow()
    since = {c.id: max(c.session_started_at, now - idle) for c in conversations}
    history: dict[str, list[dict[str, Any]]] = {c.id: [] for c in conversations}
    if size > 0:
        floor = min(since.values())
        rank = func.row_number().over(partition_by=InboundRow.conversation_id, order_by=InboundRow.id.desc())
        ranked_in = (
            select(InboundRow, rank.label("rank"))
            .where(InboundRow.conversation_id.in_(since), InboundRow.received_at >= floor,
                   InboundRow.status.not_in(("pending", "processing")))
            .subquery()
        )  # fmt: skip
        inbound = aliased(InboundRow, ranked_in)
        for m in (await session.execute(select(inbound).where(ranked_in.c.rank <= size))).scalars():
            if m.received_at >= since[m.conversation_id]:
                history[m.conversation_id].append(_inbound_out(m))
        rank = func.row_number().over(partition_by=Message.conversation_id, order_by=Message.id.desc())
        ranked_out = (
            select(Message, rank.label("rank"))
            .where(Message.conversation_id.in_(since), Message.created_at >= floor)
            .subquery()
        )
        outbound = aliased(Message, ranked_out)
        for o in (await session.execute(select(outbound).where(ranked_out.c.rank <= size))).scalars():
            if o.conversation_id is not None and o.created_at >= since[o.conversation_id]:
                history[o.conversation_id].append(_outbound_out(o))
    return {
        c.id: {"id": f"{c.id}:{int(since[c.id].timestamp())}", "started_at": since[c.id].isoformat(),
               "contact_id": None, "history": sorted(history[c.id], key=lambda h: str(h["at"]))[-size:] if size else []}
        for c in conversations
    }  # fmt: skip


def _inbound_out(m: InboundRow) -> dict[str, Any]:
    return {"direction": "inbound", "id": m.id, "text": m.body, "at": m.received_at.isoformat(),
            "sender_id": m.sender_id, "sender_name": m.sender_name, "attachments": m.attachments,
            "conversation_id": m.conversation_id, "status": m.status, "agent_id": m.agent_id, "error": m.error,
            "reply_message_id": m.reply_message_id}  # fmt: skip


def _outbound_out(m: Message) -> dict[str, Any]:
    return {"direction": "outbound", "id": m.id, "text": m.content, "at": m.created_at.isoformat(),
            "agent_id": m.agent_id, "status": m.status, "conversation_id": m.conversation_id,
            "platform": m.platform}  # fmt: skip


# -- replies --------------------------------------------------------------------------------------------------


async def prepare_reply(
    rt: Runtime,
    session: AsyncSession,
    conversation: Conversation,
    *,
    agent_id: str,
    text: str,
    in_reply_to: InboundRow | None,
    actor: Principal | None = None,
    memo: planner.Memo | None = None,
) -> messages.Prepared:
    """Govern and route ``text`` back on the conversation's interface, threaded; nothing written yet.

    The answer goes to the conversation's key, unless the message answered names another address (an email
    thread's key is its root Message-ID; the answer goes to the sender or its Reply-To) or another platform (a
    contact form that gave only a phone number: the answer goes by SMS, unthreaded)."""
    principal = actor or Principal(
        tenant_id=conversation.tenant_id, key_id=agent_id, is_admin=False, kind="agent"
    )
    context = dict(in_reply_to.reply_context) if in_reply_to is not None else None
    platform = str((context or {}).get("reply_platform") or conversation.platform)
    elsewhere = platform != conversation.platform
    intent = Intent(
        agent_id=agent_id, platform=platform,
        recipient_id=str((context or {}).get("reply_address") or conversation.external_id), content=text,
        channel_id=None if elsewhere else conversation.channel_id, priority=Priority.HIGH,
        governance_metadata={"conversation_id": conversation.id},
    )  # fmt: skip
    if platform == "email" and str(intent.recipient_id).startswith("<"):  # a thread's key, not an address
        raise ValidationFailed("this email conversation has no address to answer", field="reply")
    prepared = await messages.prepare(rt, session, principal, intent, memo=memo)
    prepared.values["conversation_id"] = conversation.id
    prepared.values["reply_context"] = None if elsewhere else context
    return prepared


async def reply(
    rt: Runtime,
    session: AsyncSession,
    conversation: Conversation,
    *,
    agent_id: str,
    text: str,
    in_reply_to: InboundRow | None,
    actor: Principal | None = None,
) -> messages.Prepared:
    """Send ``text`` back on the conversation's interface, under ``agent_id``'s governance, threaded."""
    prepared = await prepare_reply(
        rt, session, conversation, agent_id=agent_id, text=text, in_reply_to=in_reply_to, actor=actor
    )
    await messages.write(rt, session, [prepared])
    conversation.last_activity_at = utcnow()
    conversation.agent_id = agent_id
    return prepared


async def last_inbound(session: AsyncSession, conversation_id: str) -> InboundRow | None:
    return (
        await session.execute(
            select(InboundRow)
            .where(InboundRow.conversation_id == conversation_id)
            .order_by(InboundRow.id.desc())
            .limit(1)
        )
    ).scalar_one_or_none()


# -- reading --------------------------------------------------------------------------------------------------


async def get_conversation(session: AsyncSession, tenant_id: str, conversation_id: str) -> Conversation:
    return await owned(session, Conversation, tenant_id, conversation_id, "conversation")


async def list_conversations(
    session: AsyncSession, tenant_id: str, *, limit: int, cursor: str | None, channel_id: str | None = None
) -> list[Conversation]:
    query = select(Conversation).where(Conversation.tenant_id == tenant_id)
    if channel_id is not None:
        query = query.where(Conversation.channel_id == channel_id)
    if cursor is not None:
        query = query.where(Conversation.id < cursor)
    return list((await session.execute(query.order_by(Conversation.id.desc()).limit(limit))).scalars())


async def conversation_messages(
    session: AsyncSession, tenant_id: str, conversation_id: str, *, limit: int
) -> list[dict[str, Any]]:
    """Both directions, oldest first (the latest ``limit``)."""
    await get_conversation(session, tenant_id, conversation_id)
    inbound = (
        await session.execute(
            select(InboundRow)
            .where(InboundRow.conversation_id == conversation_id)
            .order_by(InboundRow.id.desc())
            .limit(limit)
        )
    ).scalars()
    outbound = (
        await session.execute(
            select(Message)
            .where(Message.tenant_id == tenant_id, Message.conversation_id == conversation_id)
            .order_by(Message.id.desc())
            .limit(limit)
        )
    ).scalars()
    both = [_inbound_out(m) for m in inbound] + [_outbound_out(m) for m in outbound]
    return sorted(both, key=lambda h: str(h["at"]))[-limit:]


# -- routing rules --------------------------------------------------------------------------------------------


async def create_rule(
    rt: Runtime, session: AsyncSession, principal: Principal, values: dict[str, Any]
) -> RoutingRule:
    tenant_id = principal.tenant_id
    await require_agent(rt, session, principal, values["agent_id"])
    if values.get("channel_id") is not None:
        channel = await session.get(Channel, values["channel_id"])
        if channel is None or channel.tenant_id != tenant_id:
            raise ValidationFailed(f"no channel {values['channel_id']!r}", field="channel_id")
    if values.get("contact_id") is not None:
        contact = await session.get(Contact, values["contact_id"])
        if contact is None or contact.tenant_id != tenant_id:
            raise ValidationFailed(f"no contact {values['contact_id']!r}", field="contact_id")
    if values.get("pattern") is not None:
        try:
            regex.compile(values["pattern"])
        except regex.error as exc:
            raise ValidationFailed(f"not a regular expression: {exc}", field="pattern") from exc
    rule = RoutingRule(id=new_id("rul"), tenant_id=tenant_id, created_at=utcnow(), **values)
    session.add(rule)
    await session.flush()
    await session.execute(
        insert(AuditEntry),
        [audit_row(tenant_id, principal.actor, "routing_rule.created", "routing_rule", rule.id)],
    )
    return rule


async def list_rules(session: AsyncSession, tenant_id: str) -> list[RoutingRule]:
    query = select(RoutingRule).where(RoutingRule.tenant_id == tenant_id)
    return list((await session.execute(query.order_by(RoutingRule.priority, RoutingRule.id))).scalars())


async def delete_rule(session: AsyncSession, principal: Principal, rule_id: str) -> None:
    await session.delete(await owned(session, RoutingRule, principal.tenant_id, rule_id, "routing rule"))
    await session.execute(
        insert(AuditEntry),
        [audit_row(principal.tenant_id, principal.actor, "routing_rule.deleted", "routing_rule", rule_id)],
    )


def _matches(rule: RoutingRule, text: str) -> bool:
    """A tenant's pattern on a stranger's text, with a time limit: a pattern that backtracks without end would
    otherwise stall routing for every tenant. One that runs out of time does not match."""
    assert rule.pattern is not None
    try:
        return regex.search(rule.pattern, text[:4000], timeout=PATTERN_SECONDS) is not None
    except TimeoutError:
        log.warning("routing rule %s: pattern ran out of time; treated as no match", rule.id)
        return False


def choose(
    rules: list[RoutingRule], *, channel_id: str, contact_id: str | None, text: str
) -> RoutingRule | None:
    """The first rule (by priority) whose every condition matches; a rule without conditions matches all."""
    for rule in rules:
        if rule.channel_id is not None and rule.channel_id != channel_id:
            continue
        if rule.contact_id is not None and rule.contact_id != contact_id:
            continue
        if rule.pattern is not None and not _matches(rule, text):
            continue
        return rule
    return None


# -- interfaces -----------------------------------------------------------------------------------------------


async def set_enabled(
    rt: Runtime, session: AsyncSession, principal: Principal, channel_id: str, enabled: bool
) -> Channel:
    channel = await owned(session, Channel, principal.tenant_id, channel_id, "interface")
    channel.enabled = enabled
    action = "interface.enabled" if enabled else "interface.disabled"
    await session.execute(
        insert(AuditEntry), [audit_row(principal.tenant_id, principal.actor, action, "channel", channel_id)]
    )
    rt.forget_channel(channel_id)
    return channel


async def webhook_interface(rt: Runtime, channel_id: str) -> tuple[Channel, dict[str, Any]]:
    """The channel a provider's callback names, with its opened credentials, cached briefly: providers call
    often, and the row and its decryption would otherwise cost every webhook a query and a Fernet open. No tenant
    scope: the caller proves itself with the channel's own signature."""
    found, cached = rt.lookups.get(("interface", channel_id))
    if found and cached is not None:
        row, credentials = cached
        return row, credentials
    async with rt.sessions() as session:
        row = (await session.execute(select(Channel).where(Channel.id == channel_id))).scalar_one_or_none()
    if row is None:
        raise NotFound(f"no channel {channel_id!r}")
    opened = (row, rt.credentials.open(row.credentials))
    rt.lookups.put(("interface", channel_id), opened)
    return opened


async def list_interfaces(session: AsyncSession, tenant_id: str) -> list[Channel]:
    """Every channel of the tenant, by id."""
    query = select(Channel).where(Channel.tenant_id == tenant_id).order_by(Channel.id)
    return list((await session.execute(query)).scalars())


async def interface_status(session: AsyncSession, rows: list[Channel]) -> list[dict[str, Any]]:
    """Each channel's state: enabled, circuit, last traffic each way and throughput in the last hour (the API's
    ``GET /api/v1/interfaces`` and the dashboard's interfaces page)."""
    now = utcnow()
    ids = {r.id for r in rows}
    health = await circuit.load(session, ids, now)
    since = now - timedelta(hours=1)
    inbound = await _traffic(session, InboundRow.channel_id, InboundRow.received_at, ids, since)
    outbound = await _traffic(session, Message.channel_id, Message.sent_at, ids, since)
    return [
        {"id": r.id, "name": r.name, "platform": r.platform, "provider": r.provider, "enabled": r.enabled,
         "circuit": health[r.id].state, "last_error": health[r.id].last_error,
         "last_inbound_at": _iso(inbound.get(r.id, (None, 0))[0]), "last_outbound_at": _iso(outbound.get(r.id, (None, 0))[0]),
         "inbound_last_hour": inbound.get(r.id, (None, 0))[1], "sent_last_hour": outbound.get(r.id, (None, 0))[1],
         "webhook_path": f"/api/v1/interfaces/{r.id}/webhook"}
        for r in rows
    ]  # fmt: skip


async def _traffic(
    session: AsyncSession,
    channel: InstrumentedAttribute[Any],
    at: InstrumentedAttribute[Any],
    ids: set[str],
    since: datetime,
) -> dict[str, tuple[datetime | None, int]]:
    """Per channel: the latest ``at`` and how many rows have ``at`` since ``since``."""
    query = (
        select(channel, func.max(at), func.count().filter(at >= since))
        .where(channel.in_(ids), at.is_not(None))
        .group_by(channel)
    )
    return {channel_id: (last, count) for channel_id, last, count in (await session.execute(query)).all()}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


_STORES: GroupCommits[Runtime, _Arrival] = GroupCommits(_store_all)
