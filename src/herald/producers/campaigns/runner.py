"""Running campaigns: the scheduler's two loops, and one run from its audience to its messages.

- ``campaigns due``: due campaigns are claimed like schedules (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, the
  writer lock on SQLite); each gets a ``queued`` run (unique per campaign and due time) and its next run moves
  on, in one transaction. A campaign whose previous run is unfinished gets a ``skipped`` run instead, so at most
  one run of a campaign is ever in flight.
- ``campaign runs``: queued runs, and running ones whose lease ran out (their process died), are claimed with a
  lease and executed. An INTERN's run stops at ``pending_approval`` with a stored preview; once a human approves
  it, it is executed with that approval passed to the pipeline, so its messages are not held one by one.

A run streams its audience (:func:`herald.storage.datasources.stream_query`) and writes each batch in one
transaction: the dedupe ledger (``INSERT ... ON CONFLICT DO NOTHING``), the messages through the pipeline's
``prepare``/``write`` (governance, routing, quiet hours), the run's counters and lease, and for a queue the
cursor. A crash between two batches loses nothing and sends nothing twice: the resumed run finds the committed
batches in the ledger.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import String, bindparam, func, insert, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from herald.core.background import Loop
from herald.core.errors import Conflict, HeraldError, NotFound, RequestError, ValidationFailed
from herald.core.ids import new_id
from herald.core.intent import ContentOrigin, Intent, PriorApproval, Priority
from herald.core.maturity import MaturityLevel
from herald.core.natural import next_runs
from herald.core.principal import Principal
from herald.pipeline import accept, content, llm
from herald.pipeline.governance import load_level
from herald.pipeline.library.resolve import ResolvedTemplate, render_resolved, resolve_template
from herald.pipeline.routing import planner
from herald.producers.campaigns import model
from herald.storage import claims, datasources
from herald.storage.audit import audit_row, event_row
from herald.storage.bulk import table_of
from herald.storage.models import (
    Agent,
    AuditEntry,
    Campaign,
    CampaignDelivery,
    CampaignRun,
    DataSource,
    Event,
)
from herald.storage.types import utcnow

if TYPE_CHECKING:
    from herald.runtime import Runtime

log = logging.getLogger(__name__)
BATCH_ROWS = 2000  # audience rows per transaction
LEASE = timedelta(minutes=5)  # a running run not renewed within this is resumed by another process
DUE_BATCH = 100
WORK_BATCH = 4
SAMPLE = 5
_IN_CHUNK = 1000


def principal_of(campaign: Campaign) -> Principal:
    """Who acts for a campaign in the pipeline and the audit trail: ``campaign:<id>``."""
    return Principal(tenant_id=campaign.tenant_id, key_id=campaign.id, is_admin=False, kind="campaign")


def first_run(cron: str, timezone: str, after: datetime) -> datetime:
    return next_runs(cron, timezone=timezone, after=after, count=1)[0]


# -- the scheduler's side: due campaigns become runs -----------------------------------------------------------


async def run_due(rt: Runtime, *, limit: int = DUE_BATCH) -> list[str]:
    """Queue a run of every due campaign (one batch); returns the ids of the runs queued."""
    now = utcnow()
    queued: list[str] = []
    async with rt.sessions.begin() as session:
        due = (
            select(Campaign)
            .where(Campaign.status == model.ACTIVE, Campaign.next_run <= now)
            .order_by(Campaign.next_run)
            .limit(limit)
        )
        campaigns = await claims.claim(session, due)
        busy = await _unfinished(session, [c.id for c in campaigns])
        for campaign in campaigns:
            assert campaign.next_run is not None
            due_at = campaign.next_run
            if campaign.id in busy:
                run = _new_run(campaign, "schedule", model.SKIPPED, due_at, now)
                run.error = f"the previous run {busy[campaign.id]} was unfinished"
                run.finished_at = now
            else:
                run = _new_run(campaign, "schedule", model.QUEUED, due_at, now)
                queued.append(run.id)
            session.add(run)
            campaign.last_run = now
            campaign.next_run = (
                first_run(campaign.cron_expression, campaign.timezone, max(now, due_at))
                if campaign.cron_expression
                else None
            )
            await session.execute(
                insert(AuditEntry),
                [audit_row(campaign.tenant_id, f"campaign:{campaign.id}", "campaign.run.queued"
                           if run.status == model.QUEUED else "campaign.run.skipped", "campaign_run", run.id,
                           {"campaign_id": campaign.id, "due_at": due_at.isoformat()}, at=now)],
            )  # fmt: skip
    return queued


async def _unfinished(session: AsyncSession, campaign_ids: list[str]) -> dict[str, str]:
    """Campaign id to the id of its run still queued, running or awaiting approval."""
    if not campaign_ids:
        return {}
    rows = await session.execute(
        select(CampaignRun.campaign_id, CampaignRun.id).where(
            CampaignRun.campaign_id.in_(campaign_ids), CampaignRun.status.in_(model.UNFINISHED)
        )
    )
    return {r.campaign_id: r.id for r in rows}


def _new_run(campaign: Campaign, trigger: str, status: str, due_at: datetime, now: datetime) -> CampaignRun:
    return CampaignRun(
        id=new_id("crn"), tenant_id=campaign.tenant_id, campaign_id=campaign.id, trigger=trigger, status=status,
        due_at=due_at, created_at=now, audience=0, created=0, deduped=0, opted_out=0, quiet_hours=0, failed=0,
        failures=[],
    )  # fmt: skip


async def queue_manual(session: AsyncSession, campaign: Campaign, now: datetime) -> CampaignRun:
    """A run now, outside the schedule, already leased to the caller (who executes it at once); 409 while
    another run of the campaign is unfinished."""
    busy = await _unfinished(session, [campaign.id])
    if campaign.id in busy:
        raise Conflict(f"run {busy[campaign.id]} of campaign {campaign.id} is unfinished")
    run = _new_run(campaign, "manual", model.RUNNING, now, now)
    run.started_at, run.lease_expires_at = now, now + LEASE
    session.add(run)
    return run


# -- the runner's side: queued runs are executed ---------------------------------------------------------------


async def work(rt: Runtime, *, limit: int = WORK_BATCH) -> int:
    """Claim queued runs (and running ones whose lease expired) and execute them; returns how many."""
    now = utcnow()
    async with rt.sessions.begin() as session:
        due = (
            select(CampaignRun.id)
            .where(
                or_(
                    CampaignRun.status == model.QUEUED,
                    (CampaignRun.status == model.RUNNING) & (CampaignRun.lease_expires_at < now),
                )
            )
            .order_by(CampaignRun.created_at)
            .limit(limit)
        )
        ids = await claims.claim(
            session, due,
            lease=claims.Stamp(status=model.RUNNING, lease_expires_at=now + LEASE,
                               started_at=func.coalesce(CampaignRun.started_at, now)),
        )  # fmt: skip
    for run_id in ids:
        await execute(rt, run_id)
    return len(ids)


async def take(rt: Runtime, run_id: str) -> CampaignRun | None:
    """Claim one queued run (an approved one, at once rather than at the loop's next pass) and execute it; None
    when another process claimed it first. The same conditional move as :func:`work`'s claim, so a run approved
    while a runner loop polls is executed exactly once."""
    now = utcnow()
    async with rt.sessions.begin() as session:
        moved = await session.execute(
            update(CampaignRun)
            .where(CampaignRun.id == run_id, CampaignRun.status == model.QUEUED)
            .values(status=model.RUNNING, lease_expires_at=now + LEASE,
                    started_at=func.coalesce(CampaignRun.started_at, now))
            .execution_options(synchronize_session=False)
        )  # fmt: skip
    if getattr(moved, "rowcount", 0) == 0:
        return None
    return await execute(rt, run_id)


@dataclass
class Tally:
    """What a run found, counted as it goes (added to the run's columns batch by batch)."""

    audience: int = 0
    created: int = 0
    deduped: int = 0
    opted_out: int = 0
    quiet_hours: int = 0
    failed: int = 0
    failures: list[dict[str, Any]] = field(default_factory=list)

    def fail(self, key: str, reason: str) -> None:
        self.failed += 1
        if len(self.failures) < model.MAX_FAILURES_KEPT:
            self.failures.append({"key": key, "reason": reason[:300]})


@dataclass
class Plan:
    """Everything a run decides once: templates per platform, binds, the period, the agent's model for
    compose. ``approval`` is set for an INTERN's approved run."""

    campaign: Campaign
    run_id: str
    now: datetime
    period: str
    templates: dict[str, ResolvedTemplate]
    channels: list[model.ChannelStep]
    backend: str
    approval: PriorApproval | None = None
    # An approved run's preview sample by dedupe key: those rows send exactly what the approver was shown.
    shown: dict[str, dict[str, Any]] = field(default_factory=dict)
    llm_settings: llm.LLMEndpoint | None = None
    api_key: str = ""
    memo: planner.Memo = field(default_factory=planner.Memo)

    @property
    def principal(self) -> Principal:
        return principal_of(self.campaign)


async def execute(rt: Runtime, run_id: str) -> CampaignRun:
    """Execute a run this process holds (claimed, or just approved): see the module docstring."""
    async with rt.sessions() as session:
        run = await session.get(CampaignRun, run_id)
        campaign = await session.get(Campaign, run.campaign_id) if run is not None else None
        level = await load_level(session, campaign.tenant_id, campaign.agent_id) if campaign else None
    if run is None:
        raise NotFound(f"no campaign run {run_id!r}")
    if campaign is None:
        return await _finish(rt, run_id, model.FAILED, error="the campaign was deleted")
    if level is None:
        return await _finish(rt, run_id, model.FAILED, error=f"no agent {campaign.agent_id!r}")
    if level is MaturityLevel.STUDENT:
        return await _finish(
            rt, run_id, model.FAILED,
            error=f"agent {campaign.agent_id!r} is at maturity level STUDENT and may not send proactive messages",
        )  # fmt: skip
    approved = level is MaturityLevel.INTERN and run.approved_by is not None
    try:
        # An approved run reads the audience as of when it was held, so it sends to whom the preview showed.
        as_of = run.started_at if approved and run.started_at is not None else utcnow()
        plan = await make_plan(rt, campaign, run_id, as_of)  # UTCDateTime: aware on both backends
        if level is MaturityLevel.INTERN:
            if run.approved_by is None:
                return await _hold(rt, plan)
            plan.approval = PriorApproval(approver=run.approved_by, reference=f"campaign_run:{run_id}")
            plan.shown = {s["dedupe_key"]: s for s in (run.preview or {}).get("sample", [])}
        tally = Tally()
        async for batch in audience(rt, plan):
            await _write_batch(rt, plan, batch, tally)
    except (HeraldError, RequestError) as exc:
        log.warning("campaign run failed", extra={"run_id": run_id, "reason": str(exc)})
        return await _finish(rt, run_id, model.FAILED, error=_reason(exc))
    return await _finish(rt, run_id, model.COMPLETED)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, RequestError):
        return f"{exc.field + ': ' if exc.field else ''}{exc.detail}"
    return str(exc)


async def make_plan(rt: Runtime, campaign: Campaign, run_id: str, now: datetime) -> Plan:
    """Resolve what a run (or a preview) uses once: one template per platform, the period, the model."""
    channels = [model.ChannelStep(**c) for c in campaign.channels]
    templates: dict[str, ResolvedTemplate] = {}
    for index, step in enumerate(channels):
        if step.platform not in templates:
            try:
                templates[step.platform] = await resolve_template(
                    rt, campaign.tenant_id, campaign.event_type, step.platform, campaign.locale
                )
            except NotFound as exc:
                raise ValidationFailed(exc.detail, field=f"channels.{index}.platform") from None
    async with rt.sessions() as session:
        source = await session.get(DataSource, campaign.data_source_id)
        agent = await session.get(Agent, (campaign.tenant_id, campaign.agent_id))
    if source is None or source.tenant_id != campaign.tenant_id:
        raise ValidationFailed(f"no data source {campaign.data_source_id!r}", field="data_source_id")
    plan = Plan(
        campaign=campaign, run_id=run_id, now=now,
        period=model.period_key(campaign.dedupe_period, model.run_day(now, campaign.timezone)),
        templates=templates, channels=channels, backend=source.backend,
    )  # fmt: skip
    if campaign.compose is not None:
        if agent is None or agent.kind != "llm" or not agent.llm:
            raise ValidationFailed(
                f"agent {campaign.agent_id!r} has no LLM settings to compose with: register it as kind llm",
                field="compose",
            )
        plan.llm_settings = llm.LLMEndpoint.model_validate(agent.llm)
        if agent.llm_api_key:
            plan.api_key = str(rt.credentials.open(agent.llm_api_key).get("api_key", ""))
    return plan


async def audience(rt: Runtime, plan: Plan) -> AsyncIterator[list[dict[str, Any]]]:
    """The run's rows in batches: the audience query with its binds, or the queue table past its cursor."""
    campaign = plan.campaign
    day = model.run_day(plan.now, campaign.timezone)
    if campaign.queue is None:
        assert campaign.audience_query is not None
        sql = campaign.audience_query
        params = model.binds(sql, today=day, now=plan.now, params=campaign.query_params)
        field_name = "audience_query"
    else:
        queue = model.Queue(**campaign.queue)
        after = campaign.queue_position["value"] if campaign.queue_position else queue.start_after
        sql = model.queue_sql(queue, plan.backend, after=after is not None)
        params = {} if after is None else {"after": after}
        field_name = "queue"
    async for batch in datasources.stream_query(
        rt, campaign.tenant_id, campaign.data_source_id, sql, params, batch_size=BATCH_ROWS, field=field_name
    ):
        yield batch


def _key_of(plan: Plan, row: dict[str, Any]) -> str:
    campaign = plan.campaign
    if campaign.queue is not None:
        return model.queue_value(campaign.queue["table"], row.get(campaign.queue["cursor"]))
    return model.dedupe_value(row, list(campaign.dedupe_key))


# A join with the keys unnested: each key probes the ledger's primary key. (``= ANY(:keys)`` compares every
# ledger row of the campaign with every key when the planner has no statistics yet: quadratic.)
_DELIVERED_PG = text(
    """
SELECT d.dedupe_value FROM unnest(CAST(:keys AS varchar[])) AS k(value)
JOIN campaign_deliveries d ON d.tenant_id = :tenant AND d.campaign_id = :campaign AND d.period = :period
 AND d.dedupe_value = k.value
"""
).bindparams(bindparam("keys", type_=postgresql.ARRAY(String)))


async def delivered(session: AsyncSession, plan: Plan, keys: list[str]) -> set[str]:
    """Which of ``keys`` the ledger already holds for this campaign and period."""
    campaign = plan.campaign
    mine = (
        (CampaignDelivery.tenant_id == campaign.tenant_id)
        & (CampaignDelivery.campaign_id == campaign.id)
        & (CampaignDelivery.period == plan.period)
    )
    found: set[str] = set()
    if (await session.connection()).dialect.name == "postgresql":
        params = {"tenant": campaign.tenant_id, "campaign": campaign.id, "period": plan.period, "keys": keys}
        found.update((await session.execute(_DELIVERED_PG, params)).scalars())
        return found
    for start in range(0, len(keys), _IN_CHUNK):
        chunk = keys[start : start + _IN_CHUNK]
        query = select(CampaignDelivery.dedupe_value).where(mine, CampaignDelivery.dedupe_value.in_(chunk))
        found.update((await session.execute(query)).scalars())
    return found


@dataclass
class Draft:
    """One row made ready for the pipeline: its dedupe key and intent, or why it cannot be a message."""

    key: str
    intent: Intent | None = None
    opted_out: bool = False
    problem: str | None = None


async def draft(rt: Runtime, plan: Plan, row: dict[str, Any]) -> Draft:
    """The intent for one row: the channel policy (opt-outs of a known contact removed), the person's zone,
    the library template rendered with the row (then composed by the agent's model when asked)."""
    campaign = plan.campaign
    key = _key_of(plan, row)
    steps = model.addresses(row, plan.channels)
    contact_id = row.get("contact_id")
    contact = plan.memo.contacts.get(str(contact_id)) if contact_id is not None else None
    zone = model.row_zone(row, campaign.timezone_column, campaign.timezone)
    if contact is not None:
        allowed = [s for s in steps if s[0] not in contact.opt_outs]
        if steps and not allowed:
            return Draft(key, opted_out=True)
        steps, zone = allowed, contact.timezone or zone
    if not steps:
        columns = ", ".join(s.address_column for s in plan.channels)
        return Draft(key, problem=f"no address in {columns}")
    platform, recipient = steps[0]
    variables = model.row_variables(row, campaign.variables)
    try:
        rendered = render_resolved(plan.templates[platform], variables, now=plan.now, timezone=zone)
    except RequestError as exc:
        return Draft(key, problem=_reason(exc))
    text, subject = rendered.body, rendered.subject
    origin = ContentOrigin(path="template")
    shown = plan.shown.get(key)
    if shown is not None and shown.get("platform") == platform:
        text, subject, origin = shown["content"], shown.get("subject"), _origin_of(shown)
    elif plan.llm_settings is not None and campaign.compose is not None:
        ask = campaign.compose
        limit = content.limit_for(platform, None, ask.get("max_length"))
        composed = await content.compose(
            rt, llm_settings=plan.llm_settings, api_key=plan.api_key, event_type=campaign.event_type,
            prompt=ask.get("prompt"), rendered=text if ask.get("enhance", True) else None, fallback=text,
            variables=variables, channel=platform, limit=limit, enhance=bool(ask.get("enhance", True)),
            timeout_seconds=15.0, subject=subject,
        )  # fmt: skip
        text, origin = composed.text, composed.origin()
    try:
        step_texts = _fallback_texts(plan, steps, platform, variables, zone)
    except RequestError as exc:
        return Draft(key, problem=_reason(exc))
    metadata = {"campaign_id": campaign.id, "campaign_run_id": plan.run_id}
    if contact is not None:
        metadata["contact_id"] = contact.id
    intent = Intent(
        agent_id=campaign.agent_id, platform=platform, recipient_id=recipient, content=text, subject=subject,
        timezone=zone, template_variables={}, governance_metadata=metadata, priority=Priority(campaign.priority),
        fallback=steps[1:], origin=origin, recipient_timezone=zone, approval=plan.approval,
        step_texts=step_texts,
    )  # fmt: skip
    return Draft(key, intent=intent)


def _fallback_texts(
    plan: Plan, steps: list[tuple[str, str]], first: str, variables: dict[str, Any], zone: str
) -> dict[str, tuple[str | None, str]]:
    """Each fallback platform's own template rendered for the row, so an email sent after SMS failed has the
    email template's subject and body, not the SMS text."""
    texts: dict[str, tuple[str | None, str]] = {}
    for platform, _recipient in steps[1:]:
        if platform != first and platform not in texts:
            rendered = render_resolved(plan.templates[platform], variables, now=plan.now, timezone=zone)
            texts[platform] = (rendered.subject, rendered.body)
    return texts


async def _preload(rt: Runtime, plan: Plan, rows: list[dict[str, Any]]) -> set[str]:
    """Read the batch's known contacts (their opt-outs and zones) and the keys the ledger already holds."""
    keys = [_key_of(plan, r) for r in rows]
    async with rt.sessions() as session:
        ids = {str(r["contact_id"]) for r in rows if r.get("contact_id") is not None}
        if ids:
            await plan.memo.preload_contacts(session, plan.campaign.tenant_id, ids)
        return await delivered(session, plan, keys)


async def _write_batch(rt: Runtime, plan: Plan, rows: list[dict[str, Any]], tally: Tally) -> None:
    """One batch in one transaction: ledger, messages, counters, lease and (queue) cursor."""
    before = dataclasses.replace(tally, failures=list(tally.failures))
    tally.audience += len(rows)
    known = await _preload(rt, plan, rows)
    drafts: list[Draft] = []
    seen: set[str] = set()
    for row in rows:
        key = _key_of(plan, row)
        if key in known or key in seen:
            tally.deduped += 1
            continue
        seen.add(key)
        found = await draft(rt, plan, row)
        if found.opted_out:
            tally.opted_out += 1
        elif found.problem is not None:
            tally.fail(key, found.problem)
        else:
            drafts.append(found)
    async with rt.sessions.begin() as session:
        prepared: dict[str, accept.Prepared] = {}
        for item in drafts:
            assert item.intent is not None
            try:
                prepared[item.key] = await accept.prepare(
                    rt, session, plan.principal, item.intent, memo=plan.memo
                )
            except RequestError as exc:
                tally.fail(item.key, _reason(exc))
        claimed = await _claim_keys(session, plan, prepared)
        tally.deduped += len(prepared) - len(claimed)
        batch = [p for k, p in prepared.items() if k in claimed]
        await accept.write(rt, session, batch)
        now = utcnow()
        tally.created += len(batch)
        tally.quiet_hours += sum(1 for p in batch if p.values["run_at"] > p.values["created_at"])
        await session.execute(
            update(CampaignRun)
            .where(CampaignRun.id == plan.run_id)
            .values(
                audience=CampaignRun.audience + (tally.audience - before.audience),
                created=CampaignRun.created + (tally.created - before.created),
                deduped=CampaignRun.deduped + (tally.deduped - before.deduped),
                opted_out=CampaignRun.opted_out + (tally.opted_out - before.opted_out),
                quiet_hours=CampaignRun.quiet_hours + (tally.quiet_hours - before.quiet_hours),
                failed=CampaignRun.failed + (tally.failed - before.failed),
                failures=tally.failures,
                lease_expires_at=now + LEASE,
            )
        )
        campaign = plan.campaign
        if campaign.queue is not None and rows:
            position = {"value": rows[-1].get(campaign.queue["cursor"])}
            await session.execute(
                update(Campaign).where(Campaign.id == campaign.id).values(queue_position=position)
            )
            campaign.queue_position = position


async def _claim_keys(session: AsyncSession, plan: Plan, prepared: dict[str, accept.Prepared]) -> set[str]:
    """Insert the ledger rows of ``prepared``; the keys this transaction now holds (a concurrent run may have
    taken some first: those messages are not written)."""
    if not prepared:
        return set()
    campaign = plan.campaign
    rows = [
        {"tenant_id": campaign.tenant_id, "campaign_id": campaign.id, "period": plan.period, "dedupe_value": key,
         "run_id": plan.run_id, "message_id": p.values["id"], "created_at": p.values["created_at"]}
        for key, p in prepared.items()
    ]  # fmt: skip
    table = table_of(CampaignDelivery)
    conn = await session.connection()
    module: Any = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = module.insert(table).on_conflict_do_nothing().returning(table.c.dedupe_value)
    claimed: set[str] = set()
    for start in range(0, len(rows), _IN_CHUNK):
        claimed.update((await conn.execute(statement, rows[start : start + _IN_CHUNK])).scalars())
    return claimed


# -- preview and approval hold ---------------------------------------------------------------------------------


async def survey(rt: Runtime, plan: Plan, *, sample: int = SAMPLE) -> dict[str, Any]:
    """What a run would do now, sending nothing: the audience size, rows the ledger already holds, rows that
    cannot become messages, and ``sample`` messages rendered (composed by the model when asked)."""
    audience_size, deduped, opted_out = 0, 0, 0
    failures = Tally()
    shown: list[dict[str, Any]] = []
    columns: list[str] = []
    async for rows in audience(rt, plan):
        if not columns and rows:
            columns = list(rows[0])
        audience_size += len(rows)
        known = await _preload(rt, plan, rows)
        for row in rows:
            key = _key_of(plan, row)
            if key in known:
                deduped += 1
                continue
            if len(shown) >= sample and failures.failed >= model.MAX_FAILURES_KEPT:
                continue
            found = await draft(rt, plan, row)
            if found.opted_out:
                opted_out += 1
            elif found.problem is not None:
                failures.fail(key, found.problem)
            elif len(shown) < sample and found.intent is not None:
                shown.append(_shown(found))
    return {
        "audience": audience_size, "deduped": deduped, "opted_out": opted_out, "failed": failures.failed,
        "failures": failures.failures, "columns": columns, "sample": shown, "period": plan.period,
    }  # fmt: skip


def _shown(found: Draft) -> dict[str, Any]:
    intent = found.intent
    assert intent is not None
    origin = intent.origin or ContentOrigin(path="template")
    return {
        "dedupe_key": found.key, "platform": intent.platform, "recipient_id": intent.recipient_id,
        "fallback": [{"platform": p, "recipient_id": r} for p, r in intent.fallback],
        "timezone": intent.recipient_timezone, "subject": intent.subject, "content": intent.content,
        "content_path": origin.path, "ai_model": origin.model, "ai_prompt_tokens": origin.prompt_tokens,
        "ai_completion_tokens": origin.completion_tokens, "ai_cost": origin.cost,
    }  # fmt: skip


def _origin_of(shown: dict[str, Any]) -> ContentOrigin:
    """How a previewed text was made, recorded again on the message that sends it."""
    return ContentOrigin(
        path=str(shown.get("content_path") or "template"), model=shown.get("ai_model"),
        prompt_tokens=int(shown.get("ai_prompt_tokens") or 0),
        completion_tokens=int(shown.get("ai_completion_tokens") or 0), cost=float(shown.get("ai_cost") or 0.0),
    )  # fmt: skip


async def _hold(rt: Runtime, plan: Plan) -> CampaignRun:
    """An INTERN's run: store the preview and wait for one human decision on the whole run."""
    preview = await survey(rt, plan)
    now = utcnow()
    campaign = plan.campaign
    async with rt.sessions.begin() as session:
        await session.execute(
            update(CampaignRun)
            .where(CampaignRun.id == plan.run_id)
            .values(status=model.PENDING_APPROVAL, preview=preview, lease_expires_at=None,
                    audience=preview["audience"])
        )  # fmt: skip
        detail = {"campaign_id": campaign.id, "agent_id": campaign.agent_id, "audience": preview["audience"],
                  "maturity_level": MaturityLevel.INTERN.value}  # fmt: skip
        await session.execute(insert(AuditEntry), [audit_row(
            campaign.tenant_id, f"campaign:{campaign.id}", "campaign.run.pending_approval", "campaign_run",
            plan.run_id, detail, at=now)])  # fmt: skip
        await session.execute(
            insert(Event),
            [event_row(campaign.tenant_id, "campaign.run.pending_approval", plan.run_id, detail, at=now)],
        )
        held = await session.get(CampaignRun, plan.run_id)
        assert held is not None
        return held


async def _finish(rt: Runtime, run_id: str, status: str, *, error: str | None = None) -> CampaignRun:
    now = utcnow()
    async with rt.sessions.begin() as session:
        run = await session.get(CampaignRun, run_id)
        assert run is not None
        await session.refresh(run)
        run.status, run.finished_at, run.lease_expires_at = status, now, None
        if error is not None:
            run.error = error[:2000]
        detail = {"campaign_id": run.campaign_id, "status": status, "audience": run.audience,
                  "created": run.created, "deduped": run.deduped, "failed": run.failed, "error": run.error}  # fmt: skip
        action = "campaign.run.completed" if status == model.COMPLETED else "campaign.run.failed"
        await session.execute(insert(AuditEntry), [audit_row(
            run.tenant_id, f"campaign:{run.campaign_id}", action, "campaign_run", run_id, detail, at=now)])  # fmt: skip
        await session.execute(insert(Event), [event_row(run.tenant_id, action, run_id, detail, at=now)])
        return run


async def queue_pass(rt: Runtime) -> int:
    return len(await run_due(rt))


LOOPS = (
    Loop("campaigns due", "scheduler", run_pass=queue_pass, interval=1.0, batch=DUE_BATCH),
    # Apart from the due check, so a long run never delays another campaign's due time being recorded.
    Loop("campaign runs", "scheduler", run_pass=work, interval=1.0, batch=WORK_BATCH),
)
