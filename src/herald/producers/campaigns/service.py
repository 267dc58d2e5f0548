"""Campaigns: create (validated against the tenant's agents, data sources and template library), change,
pause and resume, preview, run now, and the human decision on an INTERN's run.

Validation reads the audience once (a single row) so that column names the campaign relies on (its dedupe key,
address columns, zone column, the template's variables) are checked against what the query really returns; an
empty audience checks what it can. Every change is audited as ``campaign.*`` by the acting principal.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from herald.core.errors import Conflict, NotFound, ValidationFailed
from herald.core.ids import new_id
from herald.core.maturity import MaturityLevel
from herald.core.natural import ScheduleParseError, parse_schedule, validate_cron
from herald.core.platforms import PLATFORMS
from herald.core.principal import Principal
from herald.core.timezones import zone_problem
from herald.pipeline import templates
from herald.pipeline.library.resolve import normalise_locale, resolve_template
from herald.producers.campaigns import model, runner
from herald.producers.campaigns.model import CampaignSpec
from herald.storage import datasources
from herald.storage.audit import audit_row, event_row
from herald.storage.models import Agent, AuditEntry, Campaign, CampaignRun, DataSource, Event
from herald.storage.queries import owned
from herald.storage.types import utcnow

if TYPE_CHECKING:
    from herald.runtime import Runtime

FIELDS = tuple(f for f in CampaignSpec.__dataclass_fields__)
VALIDATION_TIMEOUT = 10.0  # seconds the one-row check of the audience may take


# -- validation ------------------------------------------------------------------------------------------------


def _schedule(spec: CampaignSpec, now: datetime) -> tuple[str | None, datetime]:
    """(cron or None for one-time, first run) from the spec's cron or natural language."""
    text = spec.schedule.strip()
    try:
        validate_cron(text)
    except ValueError:
        try:
            parsed = parse_schedule(text, timezone=spec.timezone, now=now)
        except ScheduleParseError as exc:
            raise ValidationFailed(str(exc), field="schedule") from exc
        if parsed.cron_expression is None:
            assert parsed.run_at is not None
            return None, parsed.run_at
        text = parsed.cron_expression
    return text, runner.first_run(text, spec.timezone, now)


async def _validate(rt: Runtime, session: AsyncSession, tenant_id: str, spec: CampaignSpec) -> str:
    """Check ``spec`` against the tenant (422 naming the field); returns the data source's backend."""
    if not spec.name.strip():
        raise ValidationFailed("must not be empty", field="name")
    agent = await session.get(Agent, (tenant_id, spec.agent_id))
    if agent is None:
        raise ValidationFailed(
            f"no agent {spec.agent_id!r}: register it with POST /api/v1/agents", field="agent_id"
        )
    if spec.compose is not None and (agent.kind != "llm" or not agent.llm):
        raise ValidationFailed(
            f"agent {spec.agent_id!r} has no LLM settings to compose with: register it as kind llm",
            field="compose",
        )
    source = (
        await session.execute(
            select(DataSource).where(DataSource.id == spec.data_source_id, DataSource.tenant_id == tenant_id)
        )
    ).scalar_one_or_none()
    if source is None:
        raise ValidationFailed(f"no data source {spec.data_source_id!r}", field="data_source_id")
    _check_shape(spec)
    return source.backend


def _check_shape(spec: CampaignSpec) -> None:
    """What needs nothing but the spec: zone, locale, period, query or queue, parameters, platforms."""
    problem = zone_problem(spec.timezone)
    if problem:
        raise ValidationFailed(problem, field="timezone")
    spec.locale = normalise_locale(spec.locale)
    if spec.dedupe_period not in model.PERIODS:
        raise ValidationFailed(f"must be one of {', '.join(model.PERIODS)}", field="dedupe_period")
    if (spec.audience_query is None) == (spec.queue is None):
        raise ValidationFailed("give audience_query or queue, not both or neither", field="audience_query")
    if spec.audience_query is not None:
        try:
            datasources.check_query(spec.audience_query)
        except ValueError as exc:
            raise ValidationFailed(str(exc), field="audience_query") from None
        if not spec.dedupe_key:
            raise ValidationFailed(
                "name the row columns a person gets this campaign once for", field="dedupe_key"
            )
    if spec.queue is not None:
        model.check_identifier(spec.queue.table, field="queue.table")
        model.check_identifier(spec.queue.cursor, field="queue.cursor")
    for key, value in spec.query_params.items():
        if value is not None and not isinstance(value, str | int | float | bool):
            raise ValidationFailed(
                "query parameters are scalars (text, numbers, booleans)", field=f"query_params.{key}"
            )
    if not spec.channels:
        raise ValidationFailed("give at least one channel", field="channels")
    for index, step in enumerate(spec.channels):
        if step.platform not in PLATFORMS:
            raise ValidationFailed(
                f"unknown platform {step.platform!r}; one of: {', '.join(sorted(PLATFORMS))}",
                field=f"channels.{index}.platform",
            )


async def _check_against_data(rt: Runtime, tenant_id: str, spec: CampaignSpec, backend: str) -> None:
    """Templates exist for every platform; the columns the campaign names are in the audience's first row."""
    needed: set[str] = set()
    for index, step in enumerate(spec.channels):
        try:
            found = await resolve_template(rt, tenant_id, spec.event_type, step.platform, spec.locale)
        except NotFound as exc:
            raise ValidationFailed(
                exc.detail, field="event_type" if index == 0 else f"channels.{index}.platform"
            ) from None
        needed.update(found.variables)
    for index, step in enumerate(spec.channels):
        model.check_identifier(step.address_column, field=f"channels.{index}.address_column")
    now = utcnow()
    if spec.queue is not None:
        sql = model.queue_sql(spec.queue, backend, after=False)
        params: dict[str, Any] = {}
        field_name = "queue"
    else:
        assert spec.audience_query is not None
        sql, field_name = spec.audience_query, "audience_query"
        params = model.binds(sql, today=model.run_day(now, spec.timezone), now=now, params=spec.query_params)
    try:
        result = await datasources.run_query(
            rt, tenant_id, spec.data_source_id, sql, params, row_cap=1, timeout=VALIDATION_TIMEOUT
        )
    except ValidationFailed as exc:
        raise ValidationFailed(exc.detail, field=field_name) from None
    except datasources.DataSourceError as exc:
        raise ValidationFailed(f"the query failed: {exc}", field=field_name) from None
    _check_columns(spec, set(result.columns), needed)


def _check_columns(spec: CampaignSpec, columns: set[str], needed: set[str]) -> None:
    """The columns the campaign names (and its template reads) are among the audience's."""
    if not columns:
        return  # some drivers name no columns for an empty answer: nothing more to check
    if spec.queue is not None and spec.queue.cursor not in columns:
        raise ValidationFailed(
            f"{spec.queue.table} has no column {spec.queue.cursor!r}", field="queue.cursor"
        )
    for index, name in enumerate(spec.dedupe_key):
        if name not in columns:
            raise ValidationFailed(f"the audience has no column {name!r}", field=f"dedupe_key.{index}")
    for index, step in enumerate(spec.channels):
        if step.address_column not in columns:
            raise ValidationFailed(
                f"the audience has no column {step.address_column!r}",
                field=f"channels.{index}.address_column",
            )
    if spec.timezone_column is not None and spec.timezone_column not in columns:
        raise ValidationFailed(
            f"the audience has no column {spec.timezone_column!r}", field="timezone_column"
        )
    missing = sorted(needed - columns - set(spec.variables) - templates.BUILTIN_VARIABLES)
    if missing:
        raise ValidationFailed(
            f"the {spec.event_type} template reads {', '.join(missing)}: return them as columns or give them "
            "in variables",
            field="variables",
        )


# -- create, read, change --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Checked:
    """A spec that passed every check, with what the checks worked out: the rule and its first run."""

    spec: CampaignSpec
    cron: str | None
    next_run: datetime


async def check(rt: Runtime, tenant_id: str, spec: CampaignSpec) -> Checked:
    """Validate ``spec`` (422 naming the field). Runs outside any write transaction: it reads Herald's database
    and the tenant's, and SQLite takes the writer lock at the start of every transaction."""
    now = utcnow()
    async with rt.sessions() as session:
        backend = await _validate(rt, session, tenant_id, spec)
    cron, next_run = _schedule(spec, now)
    await _check_against_data(rt, tenant_id, spec, backend)
    return Checked(spec, cron, next_run)


async def create(session: AsyncSession, principal: Principal, checked: Checked) -> Campaign:
    """Store a checked campaign in the caller's transaction."""
    now = utcnow()
    campaign = Campaign(id=new_id("cmp"), tenant_id=principal.tenant_id, created_at=now, updated_at=now)
    _apply(campaign, checked.spec, checked.cron, checked.next_run)
    session.add(campaign)
    await session.flush()
    await _audit(session, principal, "campaign.created", campaign.id, {"next_run": _iso(campaign.next_run)})
    return campaign


def _apply(campaign: Campaign, spec: CampaignSpec, cron: str | None, next_run: datetime) -> None:
    campaign.name = spec.name.strip()
    campaign.agent_id = spec.agent_id
    campaign.data_source_id = spec.data_source_id
    campaign.audience_query = spec.audience_query
    campaign.query_params = dict(spec.query_params)
    campaign.queue = asdict(spec.queue) if spec.queue is not None else None
    campaign.schedule = spec.schedule.strip()
    campaign.cron_expression = cron
    campaign.timezone = spec.timezone
    campaign.event_type = spec.event_type
    campaign.locale = spec.locale
    campaign.channels = [asdict(c) for c in spec.channels]
    campaign.timezone_column = spec.timezone_column
    campaign.variables = dict(spec.variables)
    campaign.dedupe_key = list(spec.dedupe_key)
    campaign.dedupe_period = spec.dedupe_period
    campaign.priority = spec.priority
    campaign.compose = spec.compose
    campaign.status = model.ACTIVE if spec.enabled else model.PAUSED
    campaign.next_run = next_run


def spec_of(campaign: Campaign) -> CampaignSpec:
    """The stored campaign as a spec: what PATCH starts from."""
    return CampaignSpec(
        name=campaign.name, agent_id=campaign.agent_id, data_source_id=campaign.data_source_id,
        schedule=campaign.schedule, event_type=campaign.event_type,
        channels=[model.ChannelStep(**c) for c in campaign.channels], audience_query=campaign.audience_query,
        query_params=dict(campaign.query_params), queue=model.Queue(**campaign.queue) if campaign.queue else None,
        timezone=campaign.timezone, locale=campaign.locale, timezone_column=campaign.timezone_column,
        variables=dict(campaign.variables), dedupe_key=list(campaign.dedupe_key),
        dedupe_period=campaign.dedupe_period,  # type: ignore[arg-type]
        priority=campaign.priority, compose=campaign.compose, enabled=campaign.status == model.ACTIVE,
    )  # fmt: skip


async def update_campaign(
    rt: Runtime, principal: Principal, campaign_id: str, changes: dict[str, Any]
) -> Campaign:
    """Apply ``changes`` (fields of the create body) and validate the result as a whole."""
    async with rt.sessions() as session:
        spec = spec_of(await get(session, principal.tenant_id, campaign_id))
    for name, value in changes.items():
        setattr(spec, name, value)
    if changes.get("queue") is not None and "audience_query" not in changes:
        spec.audience_query = None
    if changes.get("audience_query") is not None and "queue" not in changes:
        spec.queue = None
    checked = await check(rt, principal.tenant_id, spec)
    async with rt.sessions.begin() as session:
        campaign = await get(session, principal.tenant_id, campaign_id)
        if spec.queue is None or campaign.queue is None or spec.queue.table != campaign.queue["table"]:
            campaign.queue_position = None  # another table starts from its own start_after
        _apply(campaign, spec, checked.cron, checked.next_run)
        campaign.updated_at = utcnow()
        await _audit(session, principal, "campaign.updated", campaign.id, {"fields": sorted(changes)})
        return campaign


async def get(session: AsyncSession, tenant_id: str, campaign_id: str) -> Campaign:
    return await owned(session, Campaign, tenant_id, campaign_id, "campaign")


async def list_campaigns(
    session: AsyncSession, tenant_id: str, *, limit: int = 100, cursor: str | None = None
) -> list[Campaign]:
    query = select(Campaign).where(Campaign.tenant_id == tenant_id)
    if cursor is not None:
        query = query.where(Campaign.id > cursor)
    return list((await session.execute(query.order_by(Campaign.id).limit(limit))).scalars())


async def delete(session: AsyncSession, principal: Principal, campaign_id: str) -> None:
    """Delete a campaign with its runs and ledger; messages already created stay (they are the outbox's)."""
    campaign = await get(session, principal.tenant_id, campaign_id)
    await session.delete(campaign)
    await _audit(session, principal, "campaign.deleted", campaign_id, {"name": campaign.name})


async def pause(session: AsyncSession, principal: Principal, campaign_id: str) -> Campaign:
    campaign = await get(session, principal.tenant_id, campaign_id)
    if campaign.status != model.ACTIVE:
        raise Conflict(f"campaign {campaign_id} is {campaign.status}; only an active campaign can be paused")
    campaign.status, campaign.updated_at = model.PAUSED, utcnow()
    await _audit(session, principal, "campaign.paused", campaign_id)
    return campaign


async def resume(session: AsyncSession, principal: Principal, campaign_id: str) -> Campaign:
    """Resume from now on: runs missed while paused are not replayed."""
    campaign = await get(session, principal.tenant_id, campaign_id)
    if campaign.status != model.PAUSED:
        raise Conflict(f"campaign {campaign_id} is {campaign.status}; only a paused campaign can be resumed")
    now = utcnow()
    if campaign.cron_expression:
        campaign.next_run = runner.first_run(campaign.cron_expression, campaign.timezone, now)
    campaign.status, campaign.updated_at = model.ACTIVE, now
    await _audit(session, principal, "campaign.resumed", campaign_id, {"next_run": _iso(campaign.next_run)})
    return campaign


# -- preview, runs and decisions -------------------------------------------------------------------------------


async def preview(rt: Runtime, principal: Principal, campaign_id: str, *, sample: int) -> dict[str, Any]:
    """What a run would do now; sends nothing and writes nothing."""
    async with rt.sessions() as session:
        campaign = await get(session, principal.tenant_id, campaign_id)
    plan = await runner.make_plan(rt, campaign, "preview", utcnow())
    try:
        return await runner.survey(rt, plan, sample=sample)
    except datasources.DataSourceError as exc:
        field_name = "queue" if campaign.queue else "audience_query"
        raise ValidationFailed(f"the query failed: {exc}", field=field_name) from None


async def run_now(rt: Runtime, principal: Principal, campaign_id: str) -> CampaignRun:
    """Run at once, outside the schedule (its next run stays): executed in this call, or held for approval."""
    now = utcnow()
    async with rt.sessions.begin() as session:
        campaign = await get(session, principal.tenant_id, campaign_id)
        run = await runner.queue_manual(session, campaign, now)
        await _audit(session, principal, "campaign.run.requested", campaign_id, {"run_id": run.id})
        run_id = run.id
    return await runner.execute(rt, run_id)


async def runs(
    session: AsyncSession, tenant_id: str, campaign_id: str, *, limit: int, cursor: str | None
) -> list[CampaignRun]:
    """Newest first; ``cursor`` is the id of the last run of the previous page."""
    await get(session, tenant_id, campaign_id)
    query = select(CampaignRun).where(
        CampaignRun.tenant_id == tenant_id, CampaignRun.campaign_id == campaign_id
    )
    if cursor is not None:
        query = query.where(CampaignRun.id < cursor)
    return list((await session.execute(query.order_by(CampaignRun.id.desc()).limit(limit))).scalars())


async def last_runs(
    session: AsyncSession, campaign_ids: list[str], per_campaign: int
) -> dict[str, list[CampaignRun]]:
    """The latest runs of each campaign (the dashboard's list)."""
    found: dict[str, list[CampaignRun]] = {cid: [] for cid in campaign_ids}
    if not campaign_ids:
        return found
    query = (
        select(CampaignRun)
        .where(CampaignRun.campaign_id.in_(campaign_ids))
        .order_by(CampaignRun.campaign_id, CampaignRun.id.desc())
    )
    for run in (await session.execute(query)).scalars():
        if len(found[run.campaign_id]) < per_campaign:
            found[run.campaign_id].append(run)
    return found


async def get_run(session: AsyncSession, tenant_id: str, campaign_id: str, run_id: str) -> CampaignRun:
    run = (
        await session.execute(
            select(CampaignRun).where(
                CampaignRun.id == run_id,
                CampaignRun.tenant_id == tenant_id,
                CampaignRun.campaign_id == campaign_id,
            )
        )
    ).scalar_one_or_none()
    if run is None:
        raise NotFound(f"no run {run_id!r} of campaign {campaign_id!r}")
    return run


async def _decide(
    session: AsyncSession, principal: Principal, campaign_id: str, run_id: str, values: dict[str, Any]
) -> CampaignRun:
    """Move a pending run on with one conditional UPDATE, so two people deciding at once cannot both win."""
    await get_run(session, principal.tenant_id, campaign_id, run_id)
    moved = await session.execute(
        update(CampaignRun)
        .where(CampaignRun.id == run_id, CampaignRun.status == model.PENDING_APPROVAL)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if getattr(moved, "rowcount", 0) == 0:
        current = await get_run(session, principal.tenant_id, campaign_id, run_id)
        raise Conflict(f"run {run_id} is {current.status}; only a run pending approval can be decided")
    run = await get_run(session, principal.tenant_id, campaign_id, run_id)
    await session.refresh(run)
    return run


DECISIONS = ("approved", "rejected", "expired")


async def record_decision(
    session: AsyncSession,
    principal: Principal,
    campaign_id: str,
    run_id: str,
    *,
    decision: str,
    approver: str | None,
    reason: str | None,
) -> CampaignRun:
    """The decision on a held run, in the caller's transaction: the one place a held run is decided, whether
    through the API, the dashboard or an approval request's quorum (:mod:`herald.humans`).

    ``approved`` queues the run with its approver: :func:`execute_approved` runs it with that approval once the
    decision committed (or the ``campaign runs`` loop does, if this process dies first), its messages created
    at once, each queued rather than held again, each one's audit entry naming the approval. ``rejected`` ends
    it and nothing of it is ever created; ``expired`` (nobody decided in time) ends it the same way, as
    ``rejected`` with no approver and the reason saying so."""
    if decision not in DECISIONS or (decision == "approved" and not approver):
        raise ValueError(
            f"a run is approved by someone, rejected or expired, not {decision!r} by {approver!r}"
        )
    now = utcnow()
    if decision == "approved":
        values: dict[str, Any] = {"status": model.QUEUED, "approved_by": approver, "decided_at": now,
                                  "reason": reason, "lease_expires_at": None}  # fmt: skip
    else:
        values = {"status": model.REJECTED, "approved_by": approver, "decided_at": now, "reason": reason,
                  "finished_at": now}  # fmt: skip
    run = await _decide(session, principal, campaign_id, run_id, values)
    await _decision_record(session, principal, run, decision, approver, reason)
    return run


async def execute_approved(rt: Runtime, tenant_id: str, campaign_id: str, run_id: str) -> CampaignRun:
    """Execute an approved (queued) run in this process if no runner took it first; the run as it then is."""
    done = await runner.take(rt, run_id)
    if done is not None:
        return done
    async with rt.sessions() as session:
        return await get_run(session, tenant_id, campaign_id, run_id)


async def _decision_record(
    session: AsyncSession,
    principal: Principal,
    run: CampaignRun,
    decision: str,
    approver: str | None,
    reason: str | None,
) -> None:
    detail = {"campaign_id": run.campaign_id, "approver": approver, "reason": reason,
              "maturity_level": MaturityLevel.INTERN.value}  # fmt: skip
    now = utcnow()
    await session.execute(insert(AuditEntry), [audit_row(
        principal.tenant_id, principal.actor, f"campaign.run.{decision}", "campaign_run", run.id, detail, at=now)])  # fmt: skip
    await session.execute(
        insert(Event), [event_row(principal.tenant_id, f"campaign.run.{decision}", run.id, detail, at=now)]
    )


async def _audit(
    session: AsyncSession,
    principal: Principal,
    action: str,
    campaign_id: str,
    detail: dict[str, Any] | None = None,
) -> None:
    await session.execute(
        insert(AuditEntry),
        [audit_row(principal.tenant_id, principal.actor, action, "campaign", campaign_id, detail)],
    )


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None
