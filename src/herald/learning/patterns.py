"""Pattern detection: what Herald finds in a tenant's own history (issue 20, "Herald learns").

Each detector is one or two bounded SQL statements (a window of history, GROUP BY, window functions, LIMIT) that
run alike on SQLite and PostgreSQL; Python only shapes the small, already grouped result into
:class:`~herald.learning.model.Pattern`\\ s. So a million messages stay a few queries, never a loop over rows.

Time ids (``prefix_`` + 12 hex digits of milliseconds, :func:`herald.core.ids.new_id`) sort by creation time, so
a history window is also an id range on the ``(tenant_id, ..., id)`` indexes the tables already have.
"""

from __future__ import annotations

import asyncio
import hashlib
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    Integer,
    String,
    case,
    cast,
    func,
    literal,
    null,
    or_,
    select,
    text,
    tuple_,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from herald.core.errors import HeraldError, ValidationFailed
from herald.core.maturity import MaturityLevel
from herald.learning import model
from herald.learning.model import Pattern
from herald.pipeline.governance import Decision, decide
from herald.pipeline.routing.policy import load_policy
from herald.storage.models import (
    Agent,
    Approval,
    Attempt,
    Contact,
    Conversation,
    InboundMessage,
    Message,
    Monitor,
    MonitorAlert,
    ScheduleExecution,
    Tenant,
    TriggerFiring,
)
from herald.storage.types import UTCDateTime, utcnow

# Metadata keys producers other than a direct send stamp on their messages (campaigns, monitor analyses, human
# outreach, email intake, conversation replies): such a message is not a manual send.
PRODUCED_KEYS: Final = frozenset(
    {
        "campaign_id",
        "campaign_run_id",
        "monitor_alert",
        "human_request",
        "email_form_id",
        "inbound_message_id",
        "conversation_id",
    }
)
FAILED_OUTCOMES: Final = ("failed", "retry")
UNREPLIED_ENDS: Final = ("failed", "rejected", "cancelled", "expired", "blocked")


@dataclass(frozen=True, slots=True)
class PatternSettings:
    """The thresholds detectors use; the defaults suit a tenant with a few weeks of history."""

    history_days: int = 30
    max_per_kind: int = 100
    # repeated sends: how many, how close together in the day (minutes), how many groups are looked at
    repeat_min_count: int = 3
    repeat_tolerance_minutes: int = 30
    repeat_min_share: float = 0.6  # of the group's sends, at the regular time
    repeat_max_groups: int = 500
    repeat_rows_per_group: int = 60
    # best hour: samples per hour, samples per recipient, how much faster than the recipient's other hours
    best_hour_min_hour_samples: int = 3
    best_hour_min_samples: int = 8
    best_hour_max_ratio: float = 0.5
    best_hour_max_response_seconds: int = 86_400
    # noisy monitors: a flap is a fire resolved within this; this many flaps within the window is noisy
    noisy_max_firing_seconds: int = 3_600
    noisy_min_flaps: int = 3
    noisy_window_seconds: int = 86_400
    # failing channels
    failing_min_attempts: int = 5
    failing_min_rate: float = 0.3
    # unanswered conversations: waiting longer than this
    unanswered_after_seconds: int = 3_600
    # promotion candidates: this many last decisions, all approved
    promotion_streak: int = 20
    # PostgreSQL: work_mem (MB) for the detection's transaction; 0 keeps the server's
    work_mem: int = 64
    # PostgreSQL: detectors run in this many concurrent sessions (1: one after the other); SQLite always 1
    lanes: int = 2


DEFAULT_SETTINGS: Final = PatternSettings()

# The relative cost of each detector over a large history (CPU seconds per million messages, bench/patterns.py),
# to balance the lanes: best hours and the light kinds in one, repeated sends and failing channels in the other.
COST: Final[dict[str, float]] = {
    model.BEST_HOUR: 4.0,
    model.REPEATED_SEND: 3.0,
    model.FAILING_CHANNEL: 2.0,
    model.UNANSWERED_CONVERSATION: 0.3,
    model.PROMOTION_CANDIDATE: 0.3,
    model.NOISY_MONITOR: 0.1,
}


async def detect(
    sessions: async_sessionmaker[AsyncSession],
    tenant_id: str,
    *,
    agent_id: str | None = None,
    now: datetime | None = None,
    kinds: Iterable[str] | None = None,
    settings: PatternSettings = DEFAULT_SETTINGS,
) -> list[Pattern]:
    """Every pattern of the requested ``kinds`` (all of them by default) in the tenant's recent history,
    optionally only those about one agent; best first within each kind.

    It takes a session factory rather than a session: on PostgreSQL the detectors run in ``settings.lanes``
    concurrent lanes, each in a fresh session (one connection, one backend process) of its own, so two heavy
    aggregations use two cores; SQLite (one connection) runs them one after the other."""
    wanted = list(model.KINDS if kinds is None else kinds)
    unknown = sorted(set(wanted) - set(model.KINDS))
    if unknown:
        raise ValidationFailed(
            f"unknown pattern kind {unknown[0]!r}; one of: {', '.join(model.KINDS)}", field="kind"
        )
    at = now or utcnow()
    ordered = [kind for kind in model.KINDS if kind in wanted]
    dialect = _factory_dialect(sessions)
    lanes = lanes_for(ordered, settings.lanes if dialect == "postgresql" else 1)
    results = await asyncio.gather(
        *(_run_lane(sessions, lane, tenant_id, agent_id, at, settings) for lane in lanes)
    )
    by_kind = {kind: found for lane in results for kind, found in lane.items()}
    out: list[Pattern] = []
    for kind in ordered:
        patterns = sorted(by_kind[kind], key=lambda p: (-p.confidence, p.key))
        out.extend(patterns[: settings.max_per_kind])
    return out


def lanes_for(kinds: Sequence[str], lanes: int) -> list[list[str]]:
    """``kinds`` split into at most ``lanes`` groups of about equal expected cost (longest first, each to the
    lightest lane so far); with one lane, all of them in their order."""
    if lanes <= 1 or len(kinds) <= 1:
        return [list(kinds)] if kinds else []
    loads = [0.0] * min(lanes, len(kinds))
    groups: list[list[str]] = [[] for _ in loads]
    for kind in sorted(kinds, key=lambda k: (-COST.get(k, 1.0), model.KINDS.index(k))):
        lightest = loads.index(min(loads))
        groups[lightest].append(kind)
        loads[lightest] += COST.get(kind, 1.0)
    return [group for group in groups if group]


async def _run_lane(
    sessions: async_sessionmaker[AsyncSession],
    kinds: list[str],
    tenant_id: str,
    agent_id: str | None,
    now: datetime,
    settings: PatternSettings,
) -> dict[str, list[Pattern]]:
    """One lane: its detectors one after the other in one read-only session of its own."""
    found: dict[str, list[Pattern]] = {}
    async with sessions() as session:
        ctx = _Context(session, tenant_id, agent_id, now, settings, _dialect(session))
        if ctx.dialect == "postgresql":
            await _tune(session, settings)
        for kind in kinds:
            found[kind] = await _DETECTORS[kind](ctx)
    return found


@dataclass(frozen=True, slots=True)
class _Context:
    session: AsyncSession
    tenant_id: str
    agent_id: str | None
    now: datetime
    settings: PatternSettings
    dialect: str

    @property
    def since(self) -> datetime:
        return self.now - timedelta(days=self.settings.history_days)

    def floor(self, prefix: str) -> str:
        """The smallest id created at ``since``: bounds a window on an id-ordered index."""
        return id_floor(prefix, self.since)


async def _tune(session: AsyncSession, settings: PatternSettings) -> None:
    """For this transaction only: room to group and sort a month of history in memory rather than on disk, and
    no JIT (compiling these short analytical statements costs more than it saves)."""
    if settings.work_mem:
        await session.execute(text(f"SET LOCAL work_mem = '{int(settings.work_mem)}MB'"))
    await session.execute(text("SET LOCAL jit = off"))


# ---------------------------------------------------------------------------------------------------------------
# Pure helpers (tested in tests/unit/learning)


def id_floor(prefix: str, at: datetime) -> str:
    """The smallest id :func:`herald.core.ids.new_id` gives at ``at`` (ids sort by their millisecond)."""
    return f"{prefix}_{int(at.timestamp() * 1000):012x}"


def strip_digits(text: str) -> str:
    """Content modulo numbers and dates: every digit removed ("due 3/14" -> "due /"); what the content
    fingerprint (:mod:`herald.storage.fingerprint`) stands for."""
    return "".join(ch for ch in text if not ("0" <= ch <= "9"))


def densest(values: Sequence[int], width: int) -> list[int]:
    """The indexes of the largest set of ``values`` lying within ``width`` of each other (a sliding window over
    the sorted values); the earliest such window on a tie."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    best: list[int] = []
    start = 0
    for end in range(len(order)):
        while values[order[end]] - values[order[start]] > width:
            start += 1
        if end - start + 1 > len(best):
            best = order[start : end + 1]
    return best


def cron_for(minute: int, hour: int, weekdays: Sequence[int]) -> str:
    """A 5-field cron expression at ``hour:minute`` on ISO ``weekdays`` (every day when all seven, ``1-5`` on
    working days)."""
    days = sorted(set(weekdays))
    if len(days) == 7:
        field = "*"
    elif days == [1, 2, 3, 4, 5]:
        field = "1-5"
    else:
        field = ",".join(str(d) for d in sorted(d % 7 for d in days))  # cron's Sunday is 0, ISO's is 7
    return f"{minute} {hour} * * {field}"


def local_hour(utc_hour: int, zone: str, at: datetime) -> int:
    """``utc_hour`` in ``zone``, with the zone's offset at ``at`` (whole hours; half-hour zones round down)."""
    offset = at.astimezone(ZoneInfo(zone)).utcoffset() or timedelta(0)
    return int(utc_hour + offset.total_seconds() // 3600) % 24


def flap_runs(times: Sequence[tuple[datetime, datetime]], window_seconds: int) -> list[int]:
    """The indexes of the largest run of (fired, resolved) flaps that all start within ``window_seconds``."""
    starts = [int(t[0].timestamp()) for t in times]
    return densest(starts, window_seconds)


# ---------------------------------------------------------------------------------------------------------------
# SQL that means the same on both backends


def _dialect(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


def _factory_dialect(sessions: async_sessionmaker[AsyncSession]) -> str:
    """The backend a session factory is bound to (its ``bind``), without opening a session."""
    bind = sessions.kw.get("bind")
    return "" if bind is None else str(bind.dialect.name)


def _epoch(column: Any, dialect: str) -> ColumnElement[Any]:
    if dialect == "postgresql":
        return func.date_part("epoch", column)  # double precision: EXTRACT answers numeric, far slower
    return (func.julianday(column) - 2440587.5) * 86400.0


def _utc_hour(column: Any, dialect: str) -> ColumnElement[int]:
    if dialect == "postgresql":  # date_part: double precision; EXTRACT answers numeric, far slower per row
        return cast(func.date_part("hour", func.timezone("UTC", column)), Integer)
    return cast(func.strftime("%H", column), Integer)


def _bytewise(expr: Any, dialect: str) -> ColumnElement[Any]:
    """On PostgreSQL, ``expr`` compared byte by byte (``COLLATE "C"``) where only equality matters (GROUP BY,
    PARTITION BY): the same groups, but sorting a million keys no longer goes through the locale's rules and can
    use abbreviated keys, several times faster. SQLite compares bytes already (and knows no "C")."""
    return expr.collate("C") if dialect == "postgresql" else expr  # type: ignore[no-any-return]


def _bytewise_columns(dialect: str, *columns: Any) -> list[ColumnElement[Any]]:
    """:func:`_bytewise` of each column, under the column's own name."""
    return [_bytewise(c, dialect).label(c.key) for c in columns]


def _day(column: Any, dialect: str) -> ColumnElement[int]:
    """The UTC day (days since 1970-01-01) of a timestamp."""
    if dialect == "postgresql":
        return cast(func.floor(_epoch(column, dialect) / 86400), Integer)
    return cast(_epoch(column, dialect) / 86400, Integer)  # truncation is the floor after 1970


def _json_length(column: Any) -> ColumnElement[Any]:
    return func.json_array_length(column)


# ---------------------------------------------------------------------------------------------------------------
# Time zones


async def _tenant_zone(ctx: _Context) -> str:
    raw = (
        await ctx.session.execute(select(Tenant.delivery_policy).where(Tenant.id == ctx.tenant_id))
    ).scalar()
    try:
        return load_policy(raw).timezone
    except (HeraldError, ValueError):  # a policy that no longer reads: the default zone
        return "UTC"


async def _contact_zones(ctx: _Context, contact_ids: Iterable[str | None]) -> dict[str, str]:
    ids = sorted({c for c in contact_ids if c})
    if not ids:
        return {}
    rows = await ctx.session.execute(
        select(Contact.id, Contact.timezone).where(Contact.tenant_id == ctx.tenant_id, Contact.id.in_(ids))
    )
    return {cid: zone for cid, zone in rows.all() if zone}


# ---------------------------------------------------------------------------------------------------------------
# Repeated manual sends


async def _repeated_sends(ctx: _Context) -> list[Pattern]:
    """Groups of (agent, platform, recipient, content without digits) with 3+ sends, not made by a schedule or
    trigger, grouped in SQL on the content fingerprint written with each message (the text is not stripped of
    its digits a million times per detection); Python then compares the texts themselves, drops other producers'
    messages and looks for a regular time of day."""
    s = ctx.settings
    fingerprint = Message.content_fingerprint
    # NOT IN over the producers' ledgers: one hashed lookup per message (NOT EXISTS may rescan per row).
    scheduled = select(ScheduleExecution.message_id).where(
        ScheduleExecution.tenant_id == ctx.tenant_id, ScheduleExecution.message_id.is_not(None),
        ScheduleExecution.executed_at >= ctx.since,
    )  # fmt: skip
    triggered = select(TriggerFiring.message_id).where(
        TriggerFiring.tenant_id == ctx.tenant_id, TriggerFiring.message_id.is_not(None),
        TriggerFiring.fired_at >= ctx.since,
    )  # fmt: skip
    conditions = [
        Message.tenant_id == ctx.tenant_id, Message.id >= ctx.floor("msg"), Message.created_at >= ctx.since,
        Message.created_at <= ctx.now, Message.agent_id.is_not(None), Message.conversation_id.is_(None),
        Message.status.not_in(("rejected", "blocked")), Message.id.not_in(scheduled), Message.id.not_in(triggered),
        fingerprint.is_not(None),
    ]  # fmt: skip
    if ctx.agent_id is not None:
        conditions.append(Message.agent_id == ctx.agent_id)
    candidates = await _regular_candidates(ctx, conditions)
    if not candidates:
        return []
    # The kept groups' rows, read in full: their recipients first (a hashed IN), then the exact group.
    columns = (Message.agent_id, Message.platform, Message.recipient_id)
    full_keys = (*columns, fingerprint)
    ranked = (
        select(
            Message.id, *columns, Message.contact_id, Message.content, Message.subject, Message.created_at,
            Message.governance_metadata,
            func.row_number().over(partition_by=full_keys, order_by=Message.created_at.desc()).label("rn"),
        )
        .where(*conditions, Message.recipient_id.in_(sorted({c[2] for c in candidates})),
               tuple_(*full_keys).in_(candidates))
        .subquery("ranked")
    )  # fmt: skip
    rows = (await ctx.session.execute(select(ranked).where(ranked.c.rn <= s.repeat_rows_per_group))).all()
    if not rows:
        return []
    by_group: dict[tuple[str, str, str, str], list[Any]] = defaultdict(list)
    produced = await _monitor_messages(ctx)
    for row in rows:
        if row.id in produced or PRODUCED_KEYS & set(row.governance_metadata or {}):
            continue
        by_group[(row.agent_id, row.platform, row.recipient_id, strip_digits(row.content))].append(row)
    zones = await _contact_zones(ctx, (r.contact_id for r in rows))
    tenant_zone = await _tenant_zone(ctx)
    found = []
    for key, members in by_group.items():
        contact_id = next((m.contact_id for m in members if m.contact_id), None)
        zone = zones.get(contact_id or "", tenant_zone)
        pattern = _regular(ctx, key, members, contact_id, zone)
        if pattern is not None:
            found.append(pattern)
    return found


_INLINE_FINGERPRINTS: Final = 2_000


async def _regular_candidates(
    ctx: _Context, conditions: list[ColumnElement[bool]]
) -> list[tuple[str, str, str, int]]:
    """The groups worth a closer look, found in one lean pass: counted per UTC hour of the day, a group's best
    two adjacent hours (any half hour lies within two) must hold 3+ sends and most of the group. Ranking by
    that, not by size, keeps a tenant's big templated groups from crowding regular ones out.

    A group of 3+ sends has a fingerprint that occurs 3+ times in the window, so a first pass over the
    fingerprints alone (a BIGINT, hashed) leaves out every text sent fewer times, most of a month's messages,
    before the grouping on text keys and the window functions see any."""
    s = ctx.settings
    frequent_query = (
        select(Message.content_fingerprint)
        .where(*conditions)
        .group_by(Message.content_fingerprint)
        .having(func.count() >= s.repeat_min_count)
    )
    # Asked on its own first: as a subquery, PostgreSQL's parallel workers each built the same hash of it,
    # scanning the month once per process; its answer is a few hundred numbers (a long one stays a subquery).
    found = (await ctx.session.execute(frequent_query.limit(_INLINE_FINGERPRINTS + 1))).scalars().all()
    if not found:
        return []
    inline = sorted(int(f) for f in found if f is not None)
    frequent = Message.content_fingerprint.in_(
        frequent_query if len(found) > _INLINE_FINGERPRINTS else inline
    )
    hour = _utc_hour(Message.created_at, ctx.dialect).label("hour")
    columns = (
        *_bytewise_columns(ctx.dialect, Message.agent_id, Message.platform, Message.recipient_id),
        Message.content_fingerprint,
    )
    hourly = (
        select(*columns, hour, func.count().label("c"))
        .where(*conditions, frequent)
        .group_by(*columns, hour)
        .subquery("h")
    )
    keys = (hourly.c.agent_id, hourly.c.platform, hourly.c.recipient_id, hourly.c.content_fingerprint)
    following = func.lead(hourly.c.hour).over(partition_by=keys, order_by=hourly.c.hour)
    paired = (
        select(
            *keys,
            (hourly.c.c + case((following == hourly.c.hour + 1,
                                func.lead(hourly.c.c).over(partition_by=keys, order_by=hourly.c.hour)),
                               else_=0)).label("pair"),
            func.sum(hourly.c.c).over(partition_by=keys).label("total"),
        )
        .subquery("p")
    )  # fmt: skip
    pkeys = (paired.c.agent_id, paired.c.platform, paired.c.recipient_id, paired.c.content_fingerprint)
    best = func.max(paired.c.pair)
    query = (
        select(*pkeys)
        .group_by(*pkeys)
        .having(best >= s.repeat_min_count, best >= s.repeat_min_share * func.max(paired.c.total))
        .order_by(best.desc(), *pkeys)
        .limit(s.repeat_max_groups)
    )
    return [(r[0], r[1], r[2], r[3]) for r in (await ctx.session.execute(query)).all()]


async def _monitor_messages(ctx: _Context) -> set[str]:
    """Ids of the messages monitors sent in the window (their alerts list them; there is no column to join)."""
    rows = await ctx.session.execute(
        select(MonitorAlert.message_ids).where(
            MonitorAlert.tenant_id == ctx.tenant_id,
            MonitorAlert.id >= ctx.floor("alr"),
            MonitorAlert.triggered_at >= ctx.since,
        )
    )
    return {str(i) for (ids,) in rows.all() for i in (ids or [])}


def _regular(
    ctx: _Context, key: tuple[str, str, str, str], members: list[Any], contact_id: str | None, zone: str
) -> Pattern | None:
    """A pattern when 3+ of the group's sends, on as many different days, fall within the tolerance of one time
    of day; ``None`` when the times are scattered."""
    s = ctx.settings
    tz = ZoneInfo(zone)
    local = [m.created_at.astimezone(tz) for m in members]
    minutes = [t.hour * 60 + t.minute for t in local]
    cluster = densest(minutes, s.repeat_tolerance_minutes)
    days = {local[i].date() for i in cluster}
    if len(cluster) < s.repeat_min_count or len(days) < s.repeat_min_count:
        return None
    if len(cluster) < s.repeat_min_share * len(members):  # a few coincidences among many sends at all hours
        return None
    at = round(statistics.median(minutes[i] for i in cluster) / 5.0) * 5 % 1440
    hour, minute = divmod(at, 60)
    weekdays = sorted({local[i].isoweekday() for i in cluster})
    chosen = sorted((members[i] for i in cluster), key=lambda m: m.created_at)
    latest = chosen[-1]
    agent_id, platform, recipient_id, norm = key
    count = len(chosen)
    confidence = round(min(1.0, (count / len(members)) * (0.5 + 0.1 * count)), 2)
    digest = hashlib.sha256(norm.encode()).hexdigest()[:12]
    facts = {
        "agent_id": agent_id,
        "platform": platform,
        "recipient_id": recipient_id,
        "contact_id": contact_id,
        "content": latest.content,
        "subject": latest.subject,
        "hour": hour,
        "minute": minute,
        "weekdays": weekdays,
        "timezone": zone,
        "cron": cron_for(minute, hour, weekdays),
        "count": count,
    }
    return Pattern(
        kind=model.REPEATED_SEND,
        key=f"{model.REPEATED_SEND}:{agent_id}:{platform}:{recipient_id}:{digest}",
        summary=f"{agent_id} sent the same message to {recipient_id} on {platform} {count} times "
        f"at about {hour:02d}:{minute:02d} ({zone})",
        confidence=confidence,
        evidence={"messages": [m.id for m in chosen]},
        facts=facts,
        agent_id=agent_id,
    )


# ---------------------------------------------------------------------------------------------------------------
# Best hour


async def _best_hours(ctx: _Context) -> list[Pattern]:
    """Per recipient and hour of sending, the median time to the first read receipt or reply (a delivery
    receipt when there is neither), computed with window functions; the hour whose median is well below the
    recipient's other hours is its best. Each message's answer times are written where they arrive
    (:mod:`herald.storage.responses`), so this reads the messages alone."""
    s, d = ctx.settings, ctx.dialect
    conditions = [
        Message.tenant_id == ctx.tenant_id,
        Message.id >= ctx.floor("msg"),
        Message.sent_at.is_not(None),
        Message.sent_at >= ctx.since,
        Message.conversation_id.is_(None),
        or_(Message.responded_at.is_not(None), Message.delivered_at.is_not(None)),
    ]
    if ctx.agent_id is not None:
        conditions.append(Message.agent_id == ctx.agent_id)
    responded = func.coalesce(Message.responded_at, Message.delivered_at)
    seconds = (_epoch(responded, d) - _epoch(Message.sent_at, d)).label("seconds")
    samples = (
        select(
            Message.id,
            *_bytewise_columns(d, Message.platform, Message.recipient_id),
            Message.contact_id,
            _utc_hour(Message.sent_at, d).label("hour"),
            seconds,
        )
        .where(*conditions)
        .subquery("samples")
    )
    bucket = (samples.c.platform, samples.c.recipient_id, samples.c.hour)
    ranked = (
        select(
            samples,
            func.row_number()
            .over(partition_by=bucket, order_by=(samples.c.seconds, samples.c.id))
            .label("rn"),
            func.count().over(partition_by=bucket).label("n"),
            func.max(samples.c.contact_id).over(partition_by=bucket).label("contact"),
        )
        .where(samples.c.seconds >= 0, samples.c.seconds <= s.best_hour_max_response_seconds)
        .subquery("ranked")
    )
    median_rank = (ranked.c.n + 1) // 2
    rows = (
        await ctx.session.execute(
            select(ranked).where(
                ranked.c.n >= s.best_hour_min_hour_samples, or_(ranked.c.rn <= 3, ranked.c.rn == median_rank)
            )
        )
    ).all()
    per_recipient: dict[tuple[str, str], dict[int, dict[str, Any]]] = defaultdict(dict)
    for row in rows:
        b = per_recipient[(row.platform, row.recipient_id)].setdefault(
            int(row.hour), {"n": int(row.n), "ids": [], "median": None, "contact": row.contact}
        )
        if row.rn <= 3:
            b["ids"].append(row.id)
        if row.rn == (int(row.n) + 1) // 2:
            b["median"] = float(row.seconds)
    zones = await _contact_zones(ctx, (h["contact"] for b in per_recipient.values() for h in b.values()))
    tenant_zone = await _tenant_zone(ctx)
    found = []
    for (platform, recipient_id), hours in per_recipient.items():
        pattern = _best_hour(ctx, platform, recipient_id, hours, zones, tenant_zone)
        if pattern is not None:
            found.append(pattern)
    return found


def _best_hour(
    ctx: _Context,
    platform: str,
    recipient_id: str,
    hours: dict[int, dict[str, Any]],
    zones: dict[str, str],
    tenant_zone: str,
) -> Pattern | None:
    s = ctx.settings
    measured = {h: b for h, b in hours.items() if b["median"] is not None}
    if len(measured) < 2 or sum(b["n"] for b in measured.values()) < s.best_hour_min_samples:
        return None
    best_utc = min(measured, key=lambda h: (measured[h]["median"], h))
    best = measured[best_utc]
    others = statistics.median(b["median"] for h, b in measured.items() if h != best_utc)
    if others <= 0 or best["median"] > s.best_hour_max_ratio * others:
        return None
    contact_id = best["contact"]
    zone = zones.get(contact_id or "", tenant_zone)
    hour = local_hour(best_utc, zone, ctx.now)
    samples = sum(b["n"] for b in measured.values())
    confidence = round(min(1.0, samples / (2 * s.best_hour_min_samples)) * (1 - best["median"] / others), 2)
    return Pattern(
        kind=model.BEST_HOUR,
        key=f"{model.BEST_HOUR}:{platform}:{recipient_id}",
        summary=f"{recipient_id} on {platform} responds fastest to messages sent at {hour:02d}:00 ({zone}): "
        f"median {best['median']:.0f} s against {others:.0f} s at other hours",
        confidence=confidence,
        evidence={"messages": sorted(best["ids"])},
        facts={
            "platform": platform,
            "recipient_id": recipient_id,
            "contact_id": contact_id,
            "hour": hour,
            "timezone": zone,
            "samples": best["n"],
            "median_response_seconds": round(best["median"], 1),
        },
    )


# ---------------------------------------------------------------------------------------------------------------
# Noisy monitors


async def _noisy_monitors(ctx: _Context) -> list[Pattern]:
    """Fire-then-resolve pairs found with LEAD() over each monitor's alerts in the window; a monitor with enough
    of them close together is noisy."""
    s, d = ctx.settings, ctx.dialect
    part, order = MonitorAlert.monitor_id, (MonitorAlert.triggered_at, MonitorAlert.id)
    conditions = [
        MonitorAlert.tenant_id == ctx.tenant_id,
        MonitorAlert.id >= ctx.floor("alr"),
        MonitorAlert.triggered_at >= ctx.since,
        MonitorAlert.kind.in_(("firing", "resolved")),
    ]
    paired = (
        select(
            MonitorAlert.id,
            MonitorAlert.monitor_id,
            MonitorAlert.kind,
            MonitorAlert.triggered_at,
            func.lead(MonitorAlert.kind).over(partition_by=part, order_by=order).label("next_kind"),
            func.lead(MonitorAlert.id).over(partition_by=part, order_by=order).label("next_id"),
            func.lead(MonitorAlert.triggered_at, type_=UTCDateTime())
            .over(partition_by=part, order_by=order)
            .label("next_at"),
        )
        .where(*conditions)
        .subquery("paired")
    )
    firing = (_epoch(paired.c.next_at, d) - _epoch(paired.c.triggered_at, d)).label("firing")
    query = (
        select(
            paired.c.id,
            paired.c.next_id,
            paired.c.monitor_id,
            paired.c.triggered_at,
            paired.c.next_at,
            firing,
            Monitor.name,
            Monitor.agent_id,
        )
        .join(Monitor, Monitor.id == paired.c.monitor_id)
        .where(
            paired.c.kind == "firing",
            paired.c.next_kind == "resolved",
            _epoch(paired.c.next_at, d) - _epoch(paired.c.triggered_at, d) <= s.noisy_max_firing_seconds,
            Monitor.tenant_id == ctx.tenant_id,
            Monitor.status != "deleted",
        )
        .order_by(paired.c.monitor_id, paired.c.triggered_at)
    )
    if ctx.agent_id is not None:
        query = query.where(Monitor.agent_id == ctx.agent_id)
    flaps: dict[str, list[Any]] = defaultdict(list)
    for row in (await ctx.session.execute(query)).all():
        flaps[row.monitor_id].append(row)
    found = []
    for monitor_id, rows in flaps.items():
        run = [
            rows[i]
            for i in sorted(flap_runs([(r.triggered_at, r.next_at) for r in rows], s.noisy_window_seconds))
        ]
        if len(run) < s.noisy_min_flaps:
            continue
        span = int((run[-1].next_at - run[0].triggered_at).total_seconds())
        median = float(statistics.median(float(r.firing) for r in run))
        name = rows[0].name
        confidence = round(min(1.0, 0.4 + 0.1 * len(run)), 2)
        found.append(
            Pattern(
                kind=model.NOISY_MONITOR,
                key=f"{model.NOISY_MONITOR}:{monitor_id}",
                summary=f"monitor {name!r} fired and resolved {len(run)} times within {span // 60} minutes, "
                f"each alert firing for a median {median:.0f} s",
                confidence=confidence,
                evidence={"monitors": [monitor_id], "alerts": [a for r in run for a in (r.id, r.next_id)]},
                facts={
                    "monitor_id": monitor_id,
                    "name": name,
                    "flaps": len(run),
                    "window_seconds": span,
                    "median_firing_seconds": round(median, 1),
                },
                agent_id=rows[0].agent_id,
            )
        )
    return found


# ---------------------------------------------------------------------------------------------------------------
# Failing channels


async def _failing_channels(ctx: _Context) -> list[Pattern]:
    """Attempts of messages with a single-step route (no fallback), grouped per channel and per channel and
    recipient; a recipient is named only on a channel that is not failing overall."""
    s = ctx.settings
    failed = case((Attempt.outcome.in_(FAILED_OUTCOMES), 1), else_=0)
    conditions = [
        Attempt.tenant_id == ctx.tenant_id,
        Attempt.id >= ctx.floor("att"),
        Attempt.started_at >= ctx.since,
        Attempt.channel_id.is_not(None),
        _json_length(Message.route_plan) <= 1,
    ]
    if ctx.agent_id is not None:
        conditions.append(Message.agent_id == ctx.agent_id)
    last_failed = func.max(case((Attempt.outcome.in_(FAILED_OUTCOMES), Attempt.message_id)))
    # One pass over attempts: per channel and recipient, then both the channel totals and the failing
    # recipients are read from that (a CTE used twice, so PostgreSQL computes it once).
    per = (
        select(
            Attempt.channel_id.label("channel_id"), Message.platform.label("platform"),
            Message.recipient_id.label("recipient_id"), func.max(Message.contact_id).label("contact_id"),
            func.count().label("attempts"), func.sum(failed).label("failures"), last_failed.label("last"),
        )
        .select_from(Attempt)
        .join(Message, Message.id == Attempt.message_id)
        .where(*conditions)
        .group_by(Attempt.channel_id, Message.platform, Message.recipient_id)
        .cte("per_recipient")
    )  # fmt: skip
    nothing = cast(null(), String)
    overall = select(
        literal("overall").label("scope"), per.c.channel_id, func.min(per.c.platform), nothing, nothing,
        func.sum(per.c.attempts), func.sum(per.c.failures), func.max(per.c.last),
    ).group_by(per.c.channel_id)  # fmt: skip
    recipients = select(
        literal("recipient").label("scope"), per.c.channel_id, per.c.platform, per.c.recipient_id,
        per.c.contact_id, per.c.attempts, per.c.failures, per.c.last,
    ).where(per.c.attempts >= s.failing_min_attempts, per.c.failures >= s.failing_min_rate * per.c.attempts)  # fmt: skip
    rows = (await ctx.session.execute(union_all(overall, recipients))).all()
    found = []
    failing = {r[1] for r in rows if r[0] == "overall" and _failing(s, int(r[5]), int(r[6] or 0))}
    for scope, channel_id, platform, recipient_id, contact_id, attempts, failures, last in rows:
        if _failing(s, int(attempts), int(failures or 0)) and (
            scope == "overall" or channel_id not in failing
        ):
            found.append(_channel_pattern(scope, channel_id, platform, recipient_id, contact_id, int(attempts),
                                          int(failures or 0), last))  # fmt: skip
    return found


def _failing(s: PatternSettings, attempts: int, failures: int | None) -> bool:
    return attempts >= s.failing_min_attempts and (failures or 0) >= s.failing_min_rate * attempts


def _channel_pattern(
    scope: str,
    channel_id: str,
    platform: str,
    recipient_id: str | None,
    contact_id: str | None,
    attempts: int,
    failures: int,
    last_failed: str | None,
) -> Pattern:
    rate = round(failures / attempts, 3)
    whom = f" for {recipient_id}" if recipient_id is not None else ""
    return Pattern(
        kind=model.FAILING_CHANNEL,
        key=f"{model.FAILING_CHANNEL}:{scope}:{channel_id}" + (f":{recipient_id}" if recipient_id else ""),
        summary=f"{platform} channel {channel_id} failed {failures} of {attempts} attempts{whom}, "
        "with no fallback configured",
        confidence=round(min(1.0, rate * min(1.0, attempts / 20) + 0.3), 2),
        evidence={"channels": [channel_id], "messages": [last_failed] if last_failed else []},
        facts={
            "scope": scope,
            "channel_id": channel_id,
            "platform": platform,
            "recipient_id": recipient_id,
            "contact_id": contact_id,
            "attempts": attempts,
            "failures": failures,
            "failure_rate": rate,
        },
    )


# ---------------------------------------------------------------------------------------------------------------
# Unanswered conversations


async def _unanswered(ctx: _Context) -> list[Pattern]:
    """Conversations whose latest inbound message in the window is newer than Herald's latest reply there and
    older than the waiting threshold."""
    s = ctx.settings
    inbound = (
        select(
            InboundMessage.conversation_id,
            func.max(InboundMessage.received_at).label("last_in"),
            func.max(InboundMessage.id).label("last_id"),
        )
        .where(InboundMessage.tenant_id == ctx.tenant_id, InboundMessage.received_at >= ctx.since)
        .group_by(InboundMessage.conversation_id)
        .subquery("inbound")
    )
    outbound = (
        select(Message.conversation_id, func.max(Message.created_at).label("last_out"))
        .where(
            Message.tenant_id == ctx.tenant_id,
            Message.conversation_id.is_not(None),
            Message.id >= ctx.floor("msg"),
            Message.created_at >= ctx.since,
            Message.status.not_in(UNREPLIED_ENDS),
        )
        .group_by(Message.conversation_id)
        .subquery("outbound")
    )
    waited = ctx.now - timedelta(seconds=s.unanswered_after_seconds)
    query = (
        select(
            Conversation.id,
            Conversation.platform,
            Conversation.external_id,
            Conversation.agent_id,
            inbound.c.last_in,
            inbound.c.last_id,
        )
        .join(inbound, inbound.c.conversation_id == Conversation.id)
        .outerjoin(outbound, outbound.c.conversation_id == Conversation.id)
        .where(
            Conversation.tenant_id == ctx.tenant_id,
            inbound.c.last_in <= waited,
            or_(outbound.c.last_out.is_(None), outbound.c.last_out < inbound.c.last_in),
        )
        .order_by(inbound.c.last_in, Conversation.id)
        .limit(s.max_per_kind)
    )
    if ctx.agent_id is not None:
        query = query.where(Conversation.agent_id == ctx.agent_id)
    found = []
    for cid, platform, user_id, agent_id, last_in, last_id in (await ctx.session.execute(query)).all():
        waiting = int((ctx.now - last_in).total_seconds())
        found.append(
            Pattern(
                kind=model.UNANSWERED_CONVERSATION,
                key=f"{model.UNANSWERED_CONVERSATION}:{cid}",
                summary=f"{user_id} on {platform} has waited {waiting // 3600} h {waiting % 3600 // 60} min for a reply",
                confidence=round(min(1.0, 0.5 + waiting / 172_800), 2),
                evidence={"conversations": [cid], "messages": [last_id]},
                facts={
                    "conversation_id": cid,
                    "platform": platform,
                    "user_id": user_id,
                    "last_inbound_at": last_in.isoformat(),
                    "waiting_seconds": waiting,
                },
                agent_id=agent_id,
            )
        )
    return found


# ---------------------------------------------------------------------------------------------------------------
# Promotion candidates


def _held_levels() -> list[str]:
    """The maturity levels whose messages wait for a human (INTERN): only they gather approval habits."""
    return [str(level) for level in MaturityLevel if decide(level) is Decision.REQUIRE_APPROVAL]


def next_level(level: str) -> str | None:
    """The maturity level after ``level``, or None at the top."""
    levels = list(MaturityLevel)
    index = levels.index(MaturityLevel(level))
    return str(levels[index + 1]) if index + 1 < len(levels) else None


async def _promotion_candidates(ctx: _Context) -> list[Pattern]:
    """Agents at a held level whose last N decisions (ROW_NUMBER() per agent, newest first) were all approvals:
    Herald never edits an approved message, so approved is approved unchanged."""
    n = ctx.settings.promotion_streak
    conditions = [
        Approval.tenant_id == ctx.tenant_id,
        Approval.created_at >= ctx.since,
        Agent.tenant_id == ctx.tenant_id,
        Agent.maturity_level.in_(_held_levels()),
    ]
    if ctx.agent_id is not None:
        conditions.append(Agent.id == ctx.agent_id)
    ranked = (
        select(
            Agent.id.label("agent_id"),
            Agent.maturity_level,
            Approval.id,
            Approval.decision,
            func.row_number()
            .over(partition_by=Agent.id, order_by=(Approval.created_at.desc(), Approval.id.desc()))
            .label("rn"),
        )
        .select_from(Approval)
        .join(Message, Message.id == Approval.message_id)
        .join(Agent, Agent.id == Message.agent_id)
        .where(*conditions)
        .subquery("ranked")
    )
    rows = (await ctx.session.execute(select(ranked).where(ranked.c.rn <= n))).all()
    by_agent: dict[str, list[Any]] = defaultdict(list)
    for row in rows:
        by_agent[row.agent_id].append(row)
    found = []
    for agent_id, decisions in by_agent.items():
        level = decisions[0].maturity_level
        upper = next_level(level)
        if len(decisions) < n or upper is None or any(d.decision != "approved" for d in decisions):
            continue
        found.append(
            Pattern(
                kind=model.PROMOTION_CANDIDATE,
                key=f"{model.PROMOTION_CANDIDATE}:{agent_id}:{level}",
                summary=f"{agent_id} ({level}): its last {n} messages were all approved unchanged; a human may promote "
                f"it to {upper}",
                confidence=0.9,
                evidence={"agents": [agent_id], "approvals": [d.id for d in decisions]},
                facts={"agent_id": agent_id, "level": level, "next_level": upper, "approved_unchanged": n},
                agent_id=agent_id,
            )
        )
    return found


_DETECTORS: Final = {
    model.REPEATED_SEND: _repeated_sends,
    model.BEST_HOUR: _best_hours,
    model.NOISY_MONITOR: _noisy_monitors,
    model.FAILING_CHANNEL: _failing_channels,
    model.UNANSWERED_CONVERSATION: _unanswered,
    model.PROMOTION_CANDIDATE: _promotion_candidates,
}
