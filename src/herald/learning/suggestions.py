"""Suggestions: the changes Herald proposes from the patterns in a tenant's history, and their accept/dismiss.

One suggestion per pattern that has a useful change, keyed by the pattern's ``key``: at most one is open per
tenant and key (refreshed in place when the pattern is found again, marked ``stale`` when it is not). Each
carries the exact change it would make (``change``: action, object, id, and the equivalent API call with its
body), computed from the pattern *and the current state*, so a change already made (the schedule exists, the
monitor already has that hysteresis) is not suggested again.

Accepting applies the change through the same service function the equivalent route calls, under the accepting
principal: validation, governance and the service's own audit are those of a direct call, and the rules the route
adds are kept here too (only an admin key changes a maturity level; caches are cleared after commit). Dismissing
hides the suggestion and keeps its key from coming back for ``for_days`` (``HERALD_SUGGESTION_DISMISS_DAYS`` by
default).

Suggestions are recomputed by the ``suggestions`` loop (scheduler role) every ``HERALD_SUGGESTION_REFRESH_SECONDS``
per tenant, and on demand. The loop claims tenants' ``suggestion_refreshes`` rows with ``FOR UPDATE SKIP LOCKED``
and moves them ahead in the claim, so several schedulers never refresh one tenant at once; a refresh is
idempotent by key anyway (the unique open index settles a race with an on-demand refresh).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from herald.admin import contacts, tenants
from herald.core.background import Loop
from herald.core.errors import Conflict, Forbidden, ValidationFailed
from herald.core.ids import new_id
from herald.core.intent import Priority
from herald.core.maturity import MaturityLevel
from herald.core.principal import Principal
from herald.learning import model, patterns
from herald.learning.model import Pattern
from herald.pipeline import llm, templates
from herald.pipeline.routing import planner
from herald.pipeline.routing.policy import DeliveryPolicy
from herald.producers.monitors import service as monitors
from herald.producers.schedules import service as schedules
from herald.storage import claims
from herald.storage.audit import audit_row
from herald.storage.models import (
    Agent,
    AuditEntry,
    Channel,
    Contact,
    Monitor,
    Schedule,
    Suggestion,
    SuggestionRefresh,
    Tenant,
)
from herald.storage.queries import owned
from herald.storage.types import utcnow

if TYPE_CHECKING:
    from herald.runtime import Runtime

log = logging.getLogger(__name__)

OPEN, ACCEPTED, DISMISSED, STALE = "open", "accepted", "dismissed", "stale"
STATUSES = (OPEN, ACCEPTED, DISMISSED, STALE)

MAKE_SCHEDULE = "make_schedule"
SEND_AT_HOUR = "send_at_hour"
ADD_HYSTERESIS = "add_hysteresis"
ADD_FALLBACK = "add_fallback"
PROMOTE_AGENT = "promote_agent"
KINDS = (MAKE_SCHEDULE, SEND_AT_HOUR, ADD_HYSTERESIS, ADD_FALLBACK, PROMOTE_AGENT)

KEY_MAX = 300  # the key column's width; a longer key is no pattern this table can remember

Detector = Callable[..., Awaitable[list[Pattern]]]
"""``detect(sessions, tenant_id, *, agent_id=None, now=None, kinds=None) -> list[Pattern]``: ``sessions`` is the
runtime's session factory (the detectors open the read-only sessions they need)."""

After = Callable[[], None]
"""What to do once the accepting transaction has committed (clear a cache the change makes stale)."""


def default_detector() -> Detector:
    """The pattern detectors (:func:`herald.learning.patterns.detect`); tests pass their own constructed patterns."""
    return patterns.detect


@dataclass(frozen=True, slots=True)
class Proposal:
    """The suggestion a pattern leads to, before it is stored."""

    kind: str
    title: str
    explanation: str
    change: dict[str, Any]


@dataclass(slots=True)
class RefreshCounts:
    patterns: int = 0
    created: int = 0
    refreshed: int = 0
    stale: int = 0
    suppressed: int = 0
    ids: list[str] = field(default_factory=list)


def _change(
    action: str, obj: str, object_id: str | None, method: str, path: str, body: dict[str, Any]
) -> dict[str, Any]:
    return {"action": action, "object": obj, "id": object_id, "method": method, "path": path, "body": body}


# -- from a pattern to a proposal -----------------------------------------------------------------------------


async def propose(session: AsyncSession, tenant_id: str, pattern: Pattern) -> Proposal | None:
    """The useful change ``pattern`` leads to now, or None (no such change, or it is already made)."""
    make = PROPOSERS.get(pattern.kind)
    if make is None:
        return None
    try:
        return await make(session, tenant_id, pattern)
    except (KeyError, TypeError, ValueError):  # a pattern without the facts its kind promises: no suggestion
        log.warning("suggestions: pattern %s lacks the facts of its kind", pattern.key, exc_info=True)
        return None


def _who(facts: dict[str, Any]) -> str:
    return f"{facts.get('platform')}:{facts.get('recipient_id')}"


async def _make_schedule(session: AsyncSession, tenant_id: str, pattern: Pattern) -> Proposal | None:
    facts = pattern.facts
    target = _target_filter(facts)
    if target is None:
        return None
    existing = await session.scalar(
        select(Schedule.id).where(
            Schedule.tenant_id == tenant_id, Schedule.agent_id == facts["agent_id"], Schedule.kind == "message",
            Schedule.status.in_((schedules.ACTIVE, schedules.PAUSED)), Schedule.cron_expression == facts["cron"],
            Schedule.timezone == facts["timezone"], target,
        ).limit(1)
    )  # fmt: skip
    if existing is not None:
        return None
    at = f"{int(facts['hour']):02d}:{int(facts['minute']):02d}"
    body: dict[str, Any] = {
        "agent_id": facts["agent_id"],
        "name": f"{facts['agent_id']} to {_who(facts)} at {at}",
        "schedule_type": "recurring",
        "cron_expression": facts["cron"],
        "timezone": facts["timezone"],
        "template": _literal(str(facts["content"])),
    }
    if facts.get("subject"):
        body["subject"] = facts["subject"]
    if facts.get("platform") and facts.get("recipient_id"):
        body.update(platform=facts["platform"], recipient_id=facts["recipient_id"])
    else:
        body["contact_id"] = facts["contact_id"]
    explanation = (
        f"{facts['agent_id']} sent the same message to {_who(facts)} {facts.get('count')} times at {at} "
        f"({facts['timezone']}). A recurring schedule ({facts['cron']}) sends it without being asked, through "
        "the same governance."
    )
    change = _change("create", "schedule", None, "POST", "/api/v1/messaging/schedule/create", body)
    return Proposal(
        MAKE_SCHEDULE, f"Make a schedule: {facts['agent_id']} to {_who(facts)} at {at}", explanation, change
    )


def _literal(content: str) -> str:
    """``content`` as a template that renders to exactly itself: what was sent, braces and all."""
    if templates.has_template_syntax(content) and "endraw" not in content:
        return "{% raw %}" + content + "{% endraw %}"
    return content


def _target_filter(facts: dict[str, Any]) -> Any:
    """Schedules sending to the pattern's recipient: its platform and address, or its contact."""
    options = []
    if facts.get("platform") and facts.get("recipient_id"):
        options.append(
            (Schedule.platform == facts["platform"]) & (Schedule.recipient_id == facts["recipient_id"])
        )
    if facts.get("contact_id"):
        options.append(Schedule.contact_id == facts["contact_id"])
    return or_(*options) if options else None


def _at_hour(cron: str, hour: int) -> str | None:
    """``cron`` sending at ``hour`` instead; None when its hour is not one plain hour (a range, a step...)."""
    fields = cron.split()
    if len(fields) != 5 or not fields[1].isdigit() or not fields[0].isdigit():
        return None
    return " ".join([fields[0], str(hour), *fields[2:]])


async def _send_at_hour(session: AsyncSession, tenant_id: str, pattern: Pattern) -> Proposal | None:
    facts = pattern.facts
    target = _target_filter(facts)
    if target is None:
        return None
    hour, zone = int(facts["hour"]), str(facts["timezone"])
    rows = await session.scalars(
        select(Schedule).where(
            Schedule.tenant_id == tenant_id, Schedule.kind == "message",
            Schedule.schedule_type == schedules.RECURRING,
            Schedule.status.in_((schedules.ACTIVE, schedules.PAUSED)), target,
        ).order_by(Schedule.id)
    )  # fmt: skip
    for schedule in rows:
        cron = _at_hour(schedule.cron_expression or "", hour)
        if cron is None or (cron == schedule.cron_expression and schedule.timezone == zone):
            continue
        body = {"cron_expression": cron, "timezone": zone}
        explanation = (
            f"Messages to {_who(facts)} get an answer soonest around {hour:02d}:00 ({zone}): a median of "
            f"{round(float(facts.get('median_response_seconds') or 0))} s over {facts.get('samples')} messages. "
            f"Schedule {schedule.id} sends at another hour ({schedule.cron_expression}, {schedule.timezone}); "
            f"this moves it to {cron} ({zone}). Other schedules to the same person are suggested one at a time."
        )
        path = f"/api/v1/messaging/schedule/{schedule.id}"
        change = _change("update", "schedule", schedule.id, "PATCH", path, body)
        title = f"Send at {hour:02d}:00: schedule {schedule.name or schedule.id} to {_who(facts)}"
        return Proposal(SEND_AT_HOUR, title, explanation, change)
    return None


def _minutes_up(seconds: float) -> int:
    """``seconds`` rounded up to a whole minute, at least one."""
    return max(60, math.ceil(seconds / 60) * 60)


async def _add_hysteresis(session: AsyncSession, tenant_id: str, pattern: Pattern) -> Proposal | None:
    facts = pattern.facts
    monitor = await session.scalar(
        select(Monitor).where(Monitor.tenant_id == tenant_id, Monitor.id == facts["monitor_id"])
    )
    if monitor is None or monitor.status == "deleted":
        return None
    # An alert that fires must hold twice as long as the median flap did, so a blip no longer fires; and one
    # notice at most per flap cycle (the window over the flaps) while it still does.
    holds = min(86_400, _minutes_up(2 * float(facts.get("median_firing_seconds") or 0)))
    cycle = float(facts.get("window_seconds") or 0) / max(1, int(facts.get("flaps") or 1))
    throttle = min(86_400 * 7, _minutes_up(cycle))
    body: dict[str, Any] = {}
    if holds > monitor.for_seconds:
        body["for_seconds"] = holds
    if throttle > monitor.throttle_seconds:
        body["throttle_seconds"] = throttle
    if not body:
        return None
    explanation = (
        f"Monitor {monitor.name!r} fired and resolved {facts.get('flaps')} times in "
        f"{round(float(facts.get('window_seconds') or 0))} s, each alert firing for a median "
        f"{round(float(facts.get('median_firing_seconds') or 0))} s. "
        + (
            f"Requiring the condition to hold {holds} s before firing ends those blips. "
            if "for_seconds" in body
            else ""
        )
        + (
            f"A throttle of {throttle} s sends one notice per cycle at most."
            if "throttle_seconds" in body
            else ""
        )
    ).strip()
    path = f"/api/proactive/monitors/{monitor.id}"
    change = _change("update", "monitor", monitor.id, "PATCH", path, body)
    return Proposal(ADD_HYSTERESIS, f"Add hysteresis to monitor {monitor.name}", explanation, change)


async def _add_fallback(session: AsyncSession, tenant_id: str, pattern: Pattern) -> Proposal | None:
    facts = pattern.facts
    if facts.get("scope") == "recipient":
        return await _contact_fallback(session, tenant_id, facts)
    return await _policy_fallback(session, tenant_id, facts)


def _failure_words(facts: dict[str, Any]) -> str:
    rate = float(facts.get("failure_rate") or 0)
    return f"{facts.get('failures')} of {facts.get('attempts')} attempts on {facts.get('platform')} failed ({rate:.0%})"


async def _contact_fallback(session: AsyncSession, tenant_id: str, facts: dict[str, Any]) -> Proposal | None:
    """The contact's channel order gains a platform it has an address on: the next one tried when this fails."""
    if not facts.get("contact_id"):
        return None
    contact = await session.scalar(
        select(Contact).where(Contact.tenant_id == tenant_id, Contact.id == facts["contact_id"])
    )
    if contact is None:
        return None
    failing = str(facts["platform"])
    order = list(contact.channel_order or [failing])
    spare = [
        p for p in sorted(contact.addresses or {}) if p not in order and p not in (contact.opt_outs or [])
    ]
    if not spare or order[-1] != failing:
        return None
    body = {"channel_order": [*order, spare[0]]}
    explanation = (
        f"{_failure_words(facts)} for {contact.name}, with nothing to fall back to. {contact.name} has a "
        f"{spare[0]} address: trying it next delivers what {failing} does not."
    )
    change = _change("update", "contact", contact.id, "PATCH", f"/api/v1/contacts/{contact.id}", body)
    return Proposal(
        ADD_FALLBACK, f"Add a fallback for {contact.name}: {spare[0]} after {failing}", explanation, change
    )


async def _policy_fallback(session: AsyncSession, tenant_id: str, facts: dict[str, Any]) -> Proposal | None:
    """Every priority route that ends with the failing platform gains the tenant's next configured platform."""
    failing = str(facts["platform"])
    configured = await session.scalars(
        select(Channel.platform).where(Channel.tenant_id == tenant_id, Channel.platform != failing).distinct()
    )
    spare = sorted(set(configured))
    if not spare:
        return None
    policy = await planner.stored_policy(session, tenant_id)
    routes = {name: list(route) for name, route in policy.priority_routes.items()}
    changed = [
        name for name, route in routes.items() if route and route[-1] == failing and spare[0] not in route
    ]
    if not changed:
        return None
    for name in changed:
        routes[name].append(spare[0])
    body = {**policy.model_dump(mode="json"), "priority_routes": routes}
    explanation = (
        f"{_failure_words(facts)} overall, and the {', '.join(changed)} route(s) end with {failing}. Adding "
        f"{spare[0]} (a configured channel) after it gives those messages somewhere to go."
    )
    change = _change("update", "delivery_policy", None, "PUT", "/api/v1/delivery-policy", body)
    return Proposal(ADD_FALLBACK, f"Add {spare[0]} as the fallback after {failing}", explanation, change)


async def _promote_agent(session: AsyncSession, tenant_id: str, pattern: Pattern) -> Proposal | None:
    facts = pattern.facts
    try:
        level, next_level = MaturityLevel(facts["level"]), MaturityLevel(facts["next_level"])
    except ValueError:
        return None
    agent = await session.scalar(
        select(Agent).where(Agent.tenant_id == tenant_id, Agent.id == facts["agent_id"])
    )
    if agent is None or agent.maturity_level != level.value:
        return None
    body = {"maturity_level": next_level.value}
    explanation = (
        f"The last {facts.get('approved_unchanged')} messages of {agent.id} held for review were all approved "
        f"unchanged. At {next_level.value} it needs less review; only an admin key may grant it."
    )
    change = _change("update", "agent", agent.id, "PATCH", f"/api/v1/agents/{agent.id}", body)
    return Proposal(PROMOTE_AGENT, f"Promote {agent.id} to {next_level.value}", explanation, change)


Proposer = Callable[[AsyncSession, str, Pattern], Awaitable[Proposal | None]]
PROPOSERS: dict[str, Proposer] = {
    model.REPEATED_SEND: _make_schedule,
    model.BEST_HOUR: _send_at_hour,
    model.NOISY_MONITOR: _add_hysteresis,
    model.FAILING_CHANNEL: _add_fallback,
    model.PROMOTION_CANDIDATE: _promote_agent,
    # UNANSWERED_CONVERSATION: a pattern only; there is no configuration change that answers a person.
}


# -- refresh --------------------------------------------------------------------------------------------------


async def refresh(
    rt: Runtime, tenant_id: str, *, now: datetime | None = None, detector: Detector | None = None
) -> RefreshCounts:
    """Recompute the tenant's open suggestions from its patterns now: new ones created, found ones refreshed in
    place, open ones whose pattern (or useful change) is gone marked stale, dismissed keys left alone."""
    now = now or utcnow()
    detect = detector or default_detector()
    counts = RefreshCounts()
    patterns = await detect(
        rt.sessions, tenant_id, now=now
    )  # its own sessions: no lock on what is written below
    counts.patterns = len(patterns)
    async with rt.sessions.begin() as session:
        suppressed = set(
            await session.scalars(
                select(Suggestion.key).where(
                    Suggestion.tenant_id == tenant_id, Suggestion.status == DISMISSED,
                    Suggestion.dismissed_until > now,
                )
            )
        )  # fmt: skip
        open_rows = {
            row.key: row
            for row in await session.scalars(
                select(Suggestion).where(Suggestion.tenant_id == tenant_id, Suggestion.status == OPEN)
            )
        }
        seen: set[str] = set()
        for pattern in patterns:
            if pattern.key in seen or len(pattern.key) > KEY_MAX:
                continue
            seen.add(pattern.key)
            if pattern.key in suppressed:
                counts.suppressed += 1
                continue
            proposal = await propose(session, tenant_id, pattern)
            if proposal is None:
                continue
            row = open_rows.pop(pattern.key, None)
            if row is not None:
                _fill(row, pattern, proposal, now)
                counts.refreshed += 1
                counts.ids.append(row.id)
            elif (new := await _insert(session, tenant_id, pattern, proposal, now)) is not None:
                counts.created += 1
                counts.ids.append(new)
        for row in open_rows.values():
            row.status, row.updated_at = STALE, now
            counts.stale += 1
    await explain(rt, tenant_id, counts.ids)
    return counts


# -- explanations an LLM agent may write ----------------------------------------------------------------------

EXPLAIN_LIMIT = 10  # model calls one refresh makes at most; the rest keep the template's words until the next
EXPLAIN_SECONDS = 15.0
EXPLAIN_MAX_CHARS = 2000
EXPLAIN_PROMPT = (
    "You explain a change that Herald, a messaging system, suggests to the person who may accept it. In two or "
    "three plain sentences, say what was observed and why the change helps. Use only the facts given; never "
    "invent numbers, names or times. No markdown, no greeting."
)


async def explain(rt: Runtime, tenant_id: str, suggestion_ids: list[str]) -> int:
    """Let the suggestion's own agent, when it is an LLM agent, write its explanation; return how many it wrote.

    Optional by design: the suggestion (its change) never depends on it, and the template's explanation stays
    whenever there is no such agent or its model fails, times out or answers nothing usable. Runs outside any
    transaction, so no lock is held while a model thinks; asked once per change (see :func:`_fill`)."""
    async with rt.sessions() as session:
        rows = list(
            await session.scalars(
                select(Suggestion).where(
                    Suggestion.tenant_id == tenant_id, Suggestion.id.in_(suggestion_ids),
                    Suggestion.agent_id.is_not(None), Suggestion.explained_by == "template",
                ).order_by(Suggestion.id).limit(EXPLAIN_LIMIT)
            )
        )  # fmt: skip
        writers = {row.id: await _writer(rt, session, tenant_id, row.agent_id) for row in rows}
    written = 0
    for row in rows:
        writer = writers[row.id]
        if writer is None:
            continue
        text = await _model_words(rt, *writer, row)
        if text is None:
            continue
        async with rt.sessions.begin() as session:
            found = await session.get(Suggestion, row.id)
            if found is not None and found.status == OPEN and found.change == row.change:
                found.explanation, found.explained_by = text, f"llm:{writer[0].model}"[:200]
                written += 1
    return written


async def _writer(
    rt: Runtime, session: AsyncSession, tenant_id: str, agent_id: str | None
) -> tuple[llm.LLMEndpoint, str] | None:
    """The agent's model endpoint and key, when it is an LLM agent with settings."""
    agent = None if agent_id is None else await session.get(Agent, (tenant_id, agent_id))
    if agent is None or agent.kind != "llm" or not agent.llm:
        return None
    api_key = str(rt.credentials.open(agent.llm_api_key).get("api_key", "")) if agent.llm_api_key else ""
    return llm.LLMEndpoint.model_validate(agent.llm), api_key


async def _model_words(rt: Runtime, endpoint: llm.LLMEndpoint, api_key: str, row: Suggestion) -> str | None:
    """The model's explanation of ``row``, or None (failed, timed out, empty or too long)."""
    facts = {"title": row.title, "explanation": row.explanation, "change": row.change,
             "pattern": {"summary": row.pattern.get("summary"), "facts": row.pattern.get("facts")}}  # fmt: skip
    messages = [
        {"role": "system", "content": EXPLAIN_PROMPT},
        {"role": "user", "content": json.dumps(facts, default=str)},
    ]
    deadline = asyncio.get_running_loop().time() + EXPLAIN_SECONDS
    try:
        turn = await llm.complete(rt.http, endpoint, api_key, messages, [], deadline=deadline, max_tokens=400)
    except Exception:  # the model is optional: any failure keeps the template's words
        log.warning(
            "suggestion %s: the model did not explain it; the template's words stay", row.id, exc_info=True
        )
        return None
    text = (turn.content or "").strip()
    return text if 0 < len(text) <= EXPLAIN_MAX_CHARS else None


def _pattern_json(pattern: Pattern) -> dict[str, Any]:
    return {"kind": pattern.kind, "key": pattern.key, "summary": pattern.summary, "confidence": pattern.confidence,
            "facts": pattern.facts, "evidence": pattern.evidence}  # fmt: skip


def _fill(row: Suggestion, pattern: Pattern, proposal: Proposal, now: datetime) -> None:
    """The proposal's content on ``row``. A model-written explanation is kept while the change stays the same
    (the model is asked once per change, not at every refresh)."""
    if row.explained_by == "template" or row.change != proposal.change:
        row.explanation, row.explained_by = proposal.explanation, "template"
    row.kind, row.pattern_kind, row.agent_id = proposal.kind, pattern.kind, pattern.agent_id
    row.title, row.change = proposal.title[:500], proposal.change
    row.confidence, row.pattern, row.updated_at = pattern.confidence, _pattern_json(pattern), now


async def _insert(
    session: AsyncSession, tenant_id: str, pattern: Pattern, proposal: Proposal, now: datetime
) -> str | None:
    """A new open suggestion; None when a concurrent refresh stored the same key first (the unique open index)."""
    row = Suggestion(id=new_id("sug"), tenant_id=tenant_id, key=pattern.key, status=OPEN, created_at=now,
                     explained_by="template")  # fmt: skip
    _fill(row, pattern, proposal, now)
    try:
        async with session.begin_nested():
            session.add(row)
    except IntegrityError:
        return None
    return row.id


# -- reading, accepting, dismissing ---------------------------------------------------------------------------


async def get(session: AsyncSession, tenant_id: str, suggestion_id: str) -> Suggestion:
    return await owned(session, Suggestion, tenant_id, suggestion_id, "suggestion")


async def list_suggestions(
    session: AsyncSession,
    tenant_id: str,
    *,
    status: str | None = OPEN,
    agent_id: str | None = None,
    kind: str | None = None,
    limit: int = 100,
    cursor: str | None = None,
) -> list[Suggestion]:
    """The tenant's suggestions by id after ``cursor``, filtered in the query (``status`` None: every status)."""
    query = select(Suggestion).where(Suggestion.tenant_id == tenant_id)
    if status is not None:
        query = query.where(Suggestion.status == status)
    if agent_id is not None:
        query = query.where(Suggestion.agent_id == agent_id)
    if kind is not None:
        query = query.where(Suggestion.kind == kind)
    if cursor is not None:
        query = query.where(Suggestion.id > cursor)
    return list((await session.scalars(query.order_by(Suggestion.id).limit(limit))).all())


async def _open_locked(session: AsyncSession, tenant_id: str, suggestion_id: str) -> Suggestion:
    """The tenant's open suggestion, locked until this transaction ends: of two accepts of one suggestion, the
    second waits for the first (``FOR UPDATE``, not skipping: SQLite's writer lock does the same) and gets a 409."""
    query = select(Suggestion).where(Suggestion.id == suggestion_id, Suggestion.tenant_id == tenant_id)
    found = (await session.scalars(query.with_for_update())).first()
    row = found if found is not None else await get(session, tenant_id, suggestion_id)  # get: the 404
    if row.status != OPEN:
        raise Conflict(f"suggestion {suggestion_id} is {row.status}, not open")
    return row


async def accept(rt: Runtime, principal: Principal, suggestion_id: str) -> Suggestion:
    """Make the suggested change through the service the equivalent route calls, as ``principal``; record who
    accepted it and what it made. A 409 when the suggestion is no longer open."""
    async with rt.sessions.begin() as session:
        row = await _open_locked(session, principal.tenant_id, suggestion_id)
        result_id, after = await _apply(rt, session, principal, row.change)
        now = utcnow()
        row.status, row.accepted_by, row.accepted_at, row.result_id, row.updated_at = (
            ACCEPTED, principal.actor, now, result_id, now,
        )  # fmt: skip
        detail = {
            "kind": row.kind,
            "key": row.key,
            "object": row.change.get("object"),
            "result_id": result_id,
        }
        await _audit(session, principal, "suggestion.accepted", row.id, detail)
    if after is not None:
        after()
    return row


async def dismiss(
    rt: Runtime,
    principal: Principal,
    suggestion_id: str,
    *,
    for_days: int | None = None,
    now: datetime | None = None,
) -> Suggestion:
    """Hide the suggestion; its key is not suggested again for ``for_days`` (the setting's default otherwise)."""
    now = now or utcnow()
    days = for_days if for_days is not None else rt.settings.suggestion_dismiss_days
    async with rt.sessions.begin() as session:
        row = await _open_locked(session, principal.tenant_id, suggestion_id)
        row.status, row.dismissed_by, row.dismissed_at = DISMISSED, principal.actor, now
        row.dismissed_until, row.updated_at = now + timedelta(days=days), now
        detail = {"kind": row.kind, "key": row.key, "until": row.dismissed_until.isoformat()}
        await _audit(session, principal, "suggestion.dismissed", row.id, detail)
    return row


async def _audit(
    session: AsyncSession, principal: Principal, action: str, suggestion_id: str, detail: dict[str, Any]
) -> None:
    await session.execute(
        insert(AuditEntry),
        [audit_row(principal.tenant_id, principal.actor, action, "suggestion", suggestion_id, detail)],
    )


# -- applying a change: the services the routes call ----------------------------------------------------------

Applier = Callable[
    ["Runtime", AsyncSession, Principal, dict[str, Any]], Awaitable[tuple[str | None, After | None]]
]


def _text(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    return None if value is None else str(value)


async def _apply_schedule(
    rt: Runtime, session: AsyncSession, principal: Principal, change: dict[str, Any]
) -> tuple[str | None, After | None]:
    body = change["body"]
    if change["action"] == "update":
        schedule = await schedules.reschedule(
            session, principal, str(change["id"]), cron_expression=_text(body, "cron_expression"),
            timezone=_text(body, "timezone"),
        )  # fmt: skip
        return schedule.id, None
    spec = schedules.ScheduleSpec(
        agent_id=str(body["agent_id"]), kind="message", schedule_type=body.get("schedule_type"),
        cron_expression=_text(body, "cron_expression"), timezone=str(body.get("timezone") or "UTC"),
        platform=_text(body, "platform"), recipient_id=_text(body, "recipient_id"),
        contact_id=_text(body, "contact_id"), subject=_text(body, "subject"), template=_text(body, "template"),
        priority=Priority[str(body.get("priority") or "MEDIUM")], name=_text(body, "name"),
    )  # fmt: skip
    created = await schedules.create(rt, session, principal, spec)
    return created.id, None


async def _apply_monitor(
    rt: Runtime, session: AsyncSession, principal: Principal, change: dict[str, Any]
) -> tuple[str | None, After | None]:
    body = change["body"]
    monitor = await monitors.update_task_monitor(
        session, principal.tenant_id, str(change["id"]), for_seconds=body.get("for_seconds"),
        throttle_seconds=body.get("throttle_seconds"),
    )  # fmt: skip
    return monitor.id, None


async def _apply_contact(
    rt: Runtime, session: AsyncSession, principal: Principal, change: dict[str, Any]
) -> tuple[str | None, After | None]:
    contact = await contacts.update_contact(session, principal, str(change["id"]), dict(change["body"]))
    return contact.id, rt.lookups.clear


async def _apply_policy(
    rt: Runtime, session: AsyncSession, principal: Principal, change: dict[str, Any]
) -> tuple[str | None, After | None]:
    policy = DeliveryPolicy.model_validate(change["body"])
    await planner.set_policy(session, principal.tenant_id, policy)
    return principal.tenant_id, rt.lookups.clear


async def _apply_agent(
    rt: Runtime, session: AsyncSession, principal: Principal, change: dict[str, Any]
) -> tuple[str | None, After | None]:
    if not principal.is_admin:  # the rule of PATCH /api/v1/agents/{id}: maturity is the humans' lever
        raise Forbidden("changing a maturity level needs an admin API key", field="maturity_level")
    try:
        level = MaturityLevel(change["body"]["maturity_level"])
    except ValueError as exc:
        raise ValidationFailed(str(exc), field="maturity_level") from exc
    agent = await tenants.update_agent(
        session, principal, str(change["id"]), name=None, maturity_level=level, callback_url=None,
        clear_callback=False,
    )  # fmt: skip

    def invalidate() -> None:
        rt.governance.invalidate(principal.tenant_id, agent.id)

    return agent.id, invalidate


async def _apply(
    rt: Runtime, session: AsyncSession, principal: Principal, change: dict[str, Any]
) -> tuple[str | None, After | None]:
    objects: dict[str, Applier] = {
        "schedule": _apply_schedule, "monitor": _apply_monitor, "contact": _apply_contact,
        "delivery_policy": _apply_policy, "agent": _apply_agent,
    }  # fmt: skip
    return await objects[str(change["object"])](rt, session, principal, change)


# -- the loop -------------------------------------------------------------------------------------------------

BATCH = 20  # tenants refreshed in one pass


async def run_pass(rt: Runtime, *, now: datetime | None = None, detector: Detector | None = None) -> int:
    """Refresh the suggestions of the tenants that are due; return how many tenants were refreshed."""
    now = now or utcnow()
    every = timedelta(seconds=rt.settings.suggestion_refresh_seconds)
    async with rt.sessions.begin() as session:
        await _enrol_tenants(session, now)
        due = (
            select(SuggestionRefresh)
            .where(SuggestionRefresh.next_run_at <= now)
            .order_by(SuggestionRefresh.next_run_at)
            .limit(BATCH)
        )
        rows = await claims.claim(session, due, lease=claims.hold(SuggestionRefresh.next_run_at, every))
        for row in rows:
            row.last_run_at = now
        tenant_ids = [row.tenant_id for row in rows]
    for tenant_id in tenant_ids:
        try:
            await refresh(rt, tenant_id, now=now, detector=detector)
        except (
            Exception
        ):  # one tenant's failure must not hold the others back; it is tried again next interval
            log.exception("suggestions: refreshing tenant %s failed", tenant_id)
    return len(tenant_ids)


async def _enrol_tenants(session: AsyncSession, now: datetime) -> None:
    """A refresh row for every tenant without one, due now (concurrent schedulers: the first insert wins)."""
    missing = list(
        await session.scalars(
            select(Tenant.id).where(~Tenant.id.in_(select(SuggestionRefresh.tenant_id))).limit(1000)
        )
    )
    if not missing:
        return
    module = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = module.insert(SuggestionRefresh).on_conflict_do_nothing(index_elements=["tenant_id"])
    await session.execute(
        statement, [{"tenant_id": t, "next_run_at": now, "last_run_at": None} for t in missing]
    )


async def _loop_pass(rt: Runtime) -> int:
    return await run_pass(rt)


LOOPS = (Loop("suggestions", "scheduler", run_pass=_loop_pass, interval=60.0),)
"""Every minute: refresh the tenants whose refresh is due (each every ``suggestion_refresh_seconds``)."""
