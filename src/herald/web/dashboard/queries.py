"""Read-side queries the dashboard needs and the services do not offer (figures per hour, time filters, the
dev inbox as threads, recent monitor values, conversations by last activity). Every query is scoped by ``tenant_id``; writes go through the
services so that audit entries and events stay in one place."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from herald.core.errors import NotFound
from herald.core.status import Status
from herald.producers.monitors import conditions, sources
from herald.storage.models import (
    Approval,
    AuditEntry,
    Channel,
    Contact,
    Conversation,
    DevInboxMessage,
    Message,
    MetricValue,
    Monitor,
    MonitorAlert,
)
from herald.storage.types import utcnow

# Statuses grouped into the overview chart's bands.
STATUS_BANDS: dict[str, tuple[str, ...]] = {
    "sent": (Status.SENT, Status.DELIVERED, Status.READ, Status.DIGESTED),  # digested: sent inside a digest
    "failed": (Status.FAILED,),
    "waiting": (Status.PENDING_APPROVAL, Status.QUEUED, Status.SENDING, Status.HELD),
    "stopped": (Status.REJECTED, Status.CANCELLED, Status.EXPIRED),
}
BAND_LABELS = {
    "sent": "sent",
    "failed": "failed",
    "waiting": "waiting",
    "stopped": "rejected, cancelled, expired",
}
OPEN_STATES = ("firing", "pending")


async def queue_depth(session: AsyncSession, tenant_id: str) -> dict[str, int]:
    rows = await session.execute(
        select(Message.status, func.count())
        .where(
            Message.tenant_id == tenant_id,
            Message.status.in_((Status.QUEUED, Status.SENDING, Status.PENDING_APPROVAL)),
        )
        .group_by(Message.status)
    )
    depth: dict[str, int] = {Status.QUEUED: 0, Status.SENDING: 0, Status.PENDING_APPROVAL: 0}
    depth.update({status: int(count) for status, count in rows.all()})
    return depth


async def pending_count(session: AsyncSession, tenant_id: str) -> int:
    query = select(func.count()).where(
        Message.tenant_id == tenant_id, Message.status == Status.PENDING_APPROVAL
    )
    return int((await session.execute(query)).scalar_one())


def _hour_bucket(dialect: str) -> Any:
    """The UTC hour of ``created_at`` as ``YYYY-MM-DDTHH`` text, on either backend."""
    if dialect == "postgresql":
        return func.to_char(func.timezone("UTC", Message.created_at), 'YYYY-MM-DD"T"HH24')
    return func.strftime("%Y-%m-%dT%H", Message.created_at)  # SQLite keeps naive UTC


@dataclass
class HourlyFigures:
    hours: list[datetime]
    bands: dict[str, list[int]]


async def messages_per_hour(
    session: AsyncSession, tenant_id: str, dialect: str, *, hours: int = 24
) -> HourlyFigures:
    """Messages accepted per hour over the last ``hours``, counted per status band."""
    end = utcnow().replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    start = end - timedelta(hours=hours)
    bucket = _hour_bucket(dialect).label("bucket")
    rows = await session.execute(
        select(bucket, Message.status, func.count())
        .where(Message.tenant_id == tenant_id, Message.created_at >= start)
        .group_by(bucket, Message.status)
    )
    slots = [start + timedelta(hours=i) for i in range(hours)]
    index = {slot.strftime("%Y-%m-%dT%H"): i for i, slot in enumerate(slots)}
    band_of = {status: band for band, statuses in STATUS_BANDS.items() for status in statuses}
    bands = {band: [0] * hours for band in STATUS_BANDS}
    for key, status, count in rows.all():
        i = index.get(str(key))
        if i is not None:
            bands[band_of.get(status, "stopped")][i] += int(count)
    return HourlyFigures(slots, bands)


async def channel_names(session: AsyncSession, tenant_id: str) -> dict[str, str]:
    rows = await session.execute(select(Channel.id, Channel.name).where(Channel.tenant_id == tenant_id))
    return {str(row[0]): str(row[1]) for row in rows}


async def open_alerts(session: AsyncSession, tenant_id: str) -> list[Monitor]:
    query = (
        select(Monitor)
        .where(Monitor.tenant_id == tenant_id, Monitor.status == "active", Monitor.state.in_(OPEN_STATES))
        .order_by(Monitor.state_since.desc())
        .limit(50)
    )
    return list((await session.execute(query)).scalars())


@dataclass
class MessageFilter:
    status: str | None = None
    agent_id: str | None = None
    platform: str | None = None
    since: datetime | None = None
    until: datetime | None = None


async def messages_page(
    session: AsyncSession, tenant_id: str, wanted: MessageFilter, *, limit: int, cursor: str | None
) -> list[Message]:
    """Newest first, like the service's list, plus the time window the history API does not offer."""
    query = select(Message).where(Message.tenant_id == tenant_id)
    if wanted.status:
        query = query.where(Message.status == wanted.status)
    if wanted.agent_id:
        query = query.where(Message.agent_id == wanted.agent_id)
    if wanted.platform:
        query = query.where(Message.platform == wanted.platform)
    if wanted.since:
        query = query.where(Message.created_at >= wanted.since)
    if wanted.until:
        query = query.where(Message.created_at < wanted.until)
    if cursor:
        query = query.where(Message.id < cursor)
    return list((await session.execute(query.order_by(Message.id.desc()).limit(limit))).scalars())


async def distinct_values(session: AsyncSession, tenant_id: str, column: Any) -> list[str]:
    """Agents or platforms this tenant's messages used, for the filter menus."""
    query: Select[Any] = select(column).where(Message.tenant_id == tenant_id, column.is_not(None)).distinct()
    return sorted(str(v) for v in (await session.execute(query.limit(500))).scalars())


async def message_trail(
    session: AsyncSession, tenant_id: str, message_id: str
) -> tuple[list[Approval], list[AuditEntry]]:
    approvals = await session.execute(
        select(Approval)
        .where(Approval.tenant_id == tenant_id, Approval.message_id == message_id)
        .order_by(Approval.created_at)
    )
    audit = await session.execute(
        select(AuditEntry)
        .where(AuditEntry.tenant_id == tenant_id, AuditEntry.object_id == message_id)
        .order_by(AuditEntry.id)
        .limit(200)
    )
    return list(approvals.scalars()), list(audit.scalars())


async def audit_for(
    session: AsyncSession, tenant_id: str, object_type: str, *, limit: int = 100
) -> list[AuditEntry]:
    query = (
        select(AuditEntry)
        .where(AuditEntry.tenant_id == tenant_id, AuditEntry.object_type == object_type)
        .order_by(AuditEntry.id.desc())
        .limit(limit)
    )
    return list((await session.execute(query)).scalars())


@dataclass
class Thread:
    """One simulated conversation: a platform and a recipient, oldest message first."""

    platform: str
    recipient_id: str
    messages: list[DevInboxMessage] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.platform}:{self.recipient_id}"


async def devinbox_threads(
    session: AsyncSession, tenant_id: str, *, platform: str | None, limit: int = 300
) -> list[Thread]:
    """The newest ``limit`` dev inbox rows as threads, the most recently active thread first."""
    query = select(DevInboxMessage).where(DevInboxMessage.tenant_id == tenant_id)
    if platform:
        query = query.where(DevInboxMessage.platform == platform)
    rows = (await session.execute(query.order_by(DevInboxMessage.id.desc()).limit(limit))).scalars()
    threads: dict[tuple[str, str], Thread] = {}
    for row in rows:
        thread = threads.setdefault((row.platform, row.recipient_id), Thread(row.platform, row.recipient_id))
        thread.messages.append(row)
    for thread in threads.values():
        thread.messages.reverse()
    return list(threads.values())


async def devinbox_attachment(
    session: AsyncSession, tenant_id: str, row_id: str, index: int
) -> dict[str, Any]:
    """The ``index``-th attachment a dev inbox row received: ``{"filename", "content_type", "size", "content"}``
    (content base64); NotFound for another tenant's row or an index it does not have."""
    row = await session.get(DevInboxMessage, row_id)
    items = (row.attachments or []) if row is not None and row.tenant_id == tenant_id else []
    if not 0 <= index < len(items):
        raise NotFound(f"the dev inbox has no attachment {index} on {row_id}")
    item: dict[str, Any] = items[index]
    return item


async def devinbox_platforms(session: AsyncSession, tenant_id: str) -> list[str]:
    query = select(DevInboxMessage.platform).where(DevInboxMessage.tenant_id == tenant_id).distinct()
    return sorted((await session.execute(query)).scalars())


def _pushed_leaf(monitor: Monitor) -> conditions.Leaf | None:
    condition = conditions.parse_condition(monitor.condition)
    if isinstance(condition, conditions.Leaf) and condition.condition_type in sources.PUSHED_TYPES:
        return condition
    return None


def numeric_threshold(monitor: Monitor) -> float | None:
    condition = conditions.parse_condition(monitor.condition)
    if isinstance(condition, conditions.Leaf) and isinstance(condition.threshold.value, int | float):
        return float(condition.threshold.value)
    return None


def _as_float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


async def recent_values(
    session: AsyncSession, tenant_id: str, monitors: Sequence[Monitor], *, count: int = 30
) -> dict[str, list[float]]:
    """Per monitor, the values it saw lately, oldest first: the pushed values of its metric, else the values
    its alerts recorded. Two queries for any number of monitors (the monitors page polls this)."""
    metric_of = {
        m.id: conditions.normalise_metric(leaf.threshold.metric)
        for m in monitors
        if (leaf := _pushed_leaf(m))
    }
    by_metric: dict[str, list[Any]] = {}
    if metric_of:
        rank = (
            func.row_number()
            .over(
                partition_by=MetricValue.name,
                order_by=(MetricValue.observed_at.desc(), MetricValue.id.desc()),
            )
            .label("rank")
        )
        ranked = (
            select(MetricValue.name, MetricValue.value, rank)
            .where(MetricValue.tenant_id == tenant_id, MetricValue.name.in_(set(metric_of.values())))
            .subquery()
        )
        rows = await session.execute(
            select(ranked.c.name, ranked.c.value).where(ranked.c.rank <= count).order_by(ranked.c.rank)
        )
        for name, value in rows.all():
            by_metric.setdefault(name, []).append(value)
    by_monitor: dict[str, list[Any]] = {}
    others = [m.id for m in monitors if m.id not in metric_of]
    if others:
        rank = (
            func.row_number()
            .over(partition_by=MonitorAlert.monitor_id, order_by=MonitorAlert.id.desc())
            .label("rank")
        )
        ranked = (
            select(MonitorAlert.monitor_id, MonitorAlert.condition_value, rank)
            .where(MonitorAlert.tenant_id == tenant_id, MonitorAlert.monitor_id.in_(others))
            .subquery()
        )
        rows = await session.execute(
            select(ranked.c.monitor_id, ranked.c.condition_value)
            .where(ranked.c.rank <= count)
            .order_by(ranked.c.rank)
        )
        for monitor_id, seen in rows.all():
            by_monitor.setdefault(monitor_id, []).append((seen or {}).get("value"))
    answer: dict[str, list[float]] = {}
    for monitor in monitors:
        if monitor.id in metric_of:
            values = by_metric.get(metric_of[monitor.id], [])
        else:
            values = by_monitor.get(monitor.id, [])
            if monitor.last_value is not None:
                values = [monitor.last_value.get("value"), *values]
        numbers = [n for n in (_as_float(v) for v in values) if n is not None]
        numbers.reverse()
        answer[monitor.id] = numbers
    return answer


async def monitor_names(session: AsyncSession, tenant_id: str) -> dict[str, str]:
    rows = await session.execute(select(Monitor.id, Monitor.name).where(Monitor.tenant_id == tenant_id))
    return {str(row[0]): str(row[1]) for row in rows}


async def alert_counts(session: AsyncSession, tenant_id: str, monitor_ids: list[str]) -> dict[str, int]:
    if not monitor_ids:
        return {}
    rows = await session.execute(
        select(MonitorAlert.monitor_id, func.count())
        .where(MonitorAlert.tenant_id == tenant_id, MonitorAlert.monitor_id.in_(monitor_ids))
        .group_by(MonitorAlert.monitor_id)
    )
    return {monitor_id: int(count) for monitor_id, count in rows.all()}


# -- conversations and interfaces -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ConversationRow:
    """A conversation with the names the list shows: its interface's and its contact's (when known)."""

    row: Conversation
    channel_name: str
    contact_name: str | None


async def conversations_page(
    session: AsyncSession, tenant_id: str, *, channel_id: str | None, limit: int, cursor: str | None
) -> list[ConversationRow]:
    """The most recently active first; ``cursor`` is the last conversation of the previous page."""
    query = (
        select(Conversation, Channel.name, Contact.name)
        .join(Channel, Channel.id == Conversation.channel_id)
        .outerjoin(Contact, and_(Contact.id == Conversation.contact_id, Contact.tenant_id == tenant_id))
        .where(Conversation.tenant_id == tenant_id)
    )
    if channel_id:
        query = query.where(Conversation.channel_id == channel_id)
    if cursor:
        after = (
            select(Conversation.last_activity_at)
            .where(Conversation.tenant_id == tenant_id, Conversation.id == cursor)
            .scalar_subquery()
        )
        query = query.where(
            or_(
                Conversation.last_activity_at < after,
                and_(Conversation.last_activity_at == after, Conversation.id < cursor),
            )
        )
    rows = await session.execute(
        query.order_by(Conversation.last_activity_at.desc(), Conversation.id.desc()).limit(limit)
    )
    return [ConversationRow(c, channel_name, contact_name) for c, channel_name, contact_name in rows.all()]


async def contact_name(session: AsyncSession, tenant_id: str, contact_id: str | None) -> str | None:
    if contact_id is None:
        return None
    query = select(Contact.name).where(Contact.tenant_id == tenant_id, Contact.id == contact_id)
    return (await session.execute(query)).scalar_one_or_none()


async def channel(session: AsyncSession, tenant_id: str, channel_id: str) -> Channel | None:
    """The tenant's channel ``channel_id``, or None when it has none by that id."""
    query = select(Channel).where(Channel.tenant_id == tenant_id, Channel.id == channel_id)
    return (await session.execute(query)).scalar_one_or_none()


async def interfaces(session: AsyncSession, tenant_id: str) -> list[Channel]:
    query = select(Channel).where(Channel.tenant_id == tenant_id).order_by(Channel.name, Channel.id)
    return list((await session.execute(query)).scalars())


async def conversation_counts(session: AsyncSession, tenant_id: str) -> dict[str, int]:
    rows = await session.execute(
        select(Conversation.channel_id, func.count())
        .where(Conversation.tenant_id == tenant_id)
        .group_by(Conversation.channel_id)
    )
    return {str(channel_id): int(count) for channel_id, count in rows.all()}
