"""Campaigns: lifecycle messages over a tenant's own database (seed 004). The body is the shared contract in
docs/guides/campaigns.md; the service validates it against the tenant's agents, data sources and templates."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, field_validator
from sqlalchemy.ext.asyncio import AsyncSession

from herald.core.errors import Forbidden
from herald.core.intent import Priority
from herald.core.natural import describe_cron, next_runs
from herald.core.principal import Principal
from herald.core.timezones import check_timezone
from herald.humans import decisions
from herald.producers.campaigns import model, service
from herald.storage.models import Campaign, CampaignRun
from herald.storage.types import utcnow
from herald.web.api.contract import IDEMPOTENT, answers, errors
from herald.web.api.deps import CurrentPrincipal, Cursor, Limit, RuntimeDep
from herald.web.api.idempotency import create_once
from herald.web.api.schemas import Page, PriorityName, Strict, page

router = APIRouter(prefix="/api/v1/campaigns", tags=["campaigns"])

Period = Literal["ever", "year", "month", "week", "day"]
Scalar = str | int | float | bool | None


class CampaignChannelIn(Strict):
    platform: str = Field(min_length=1, max_length=32)
    address_column: str = Field(min_length=1, max_length=63)


class CampaignQueueIn(Strict):
    table: str = Field(min_length=1, max_length=63)
    cursor: str = Field(min_length=1, max_length=63)
    start_after: int | str | None = None


class CampaignComposeIn(Strict):
    enhance: bool = True
    prompt: str | None = Field(default=None, max_length=4000)
    max_length: int | None = Field(default=None, ge=20, le=10_000)


class CampaignPatch(Strict):
    """Every field of the create body, all optional: the result is validated as a whole."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    agent_id: str | None = Field(default=None, min_length=1, max_length=200)
    data_source_id: str | None = Field(default=None, min_length=1, max_length=40)
    audience_query: str | None = Field(default=None, min_length=1, max_length=100_000)
    query_params: dict[str, Scalar] | None = None
    queue: CampaignQueueIn | None = None
    schedule: str | None = Field(default=None, min_length=1, max_length=500)
    timezone: str | None = None
    event_type: str | None = Field(default=None, min_length=1, max_length=50)
    locale: str | None = Field(default=None, min_length=1, max_length=35)
    channels: list[CampaignChannelIn] | None = Field(default=None, min_length=1, max_length=10)
    timezone_column: str | None = Field(default=None, max_length=63)
    variables: dict[str, Scalar] | None = None
    dedupe_key: list[str] | None = Field(default=None, max_length=10)
    dedupe_period: Period | None = None
    priority: PriorityName | None = None
    compose: CampaignComposeIn | None = None
    enabled: bool | None = None

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str | None) -> str | None:
        return None if value is None else check_timezone(value)

    @field_validator(
        "name", "agent_id", "data_source_id", "schedule", "timezone", "event_type", "locale", "channels",
        "query_params", "variables", "dedupe_key", "dedupe_period", "priority", "enabled", mode="before",
    )  # fmt: skip
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        """Only ``audience_query``/``queue``, ``timezone_column`` and ``compose`` can be cleared; a null elsewhere
        is refused (422 naming the field) rather than read as "leave it": omit a field to keep it."""
        if value is None:
            raise ValueError("may not be null: omit the field to keep its value")
        return value


class CampaignCreate(CampaignPatch):
    """The contract's create body."""

    name: str = Field(min_length=1, max_length=200)
    agent_id: str = Field(min_length=1, max_length=200)
    data_source_id: str = Field(min_length=1, max_length=40)
    schedule: str = Field(min_length=1, max_length=500)
    timezone: str = "UTC"
    event_type: str = Field(min_length=1, max_length=50)
    locale: str = Field(default="en", min_length=1, max_length=35)
    channels: list[CampaignChannelIn] = Field(min_length=1, max_length=10)
    query_params: dict[str, Scalar] = Field(default_factory=dict)
    variables: dict[str, Scalar] = Field(default_factory=dict)
    dedupe_key: list[str] = Field(default_factory=list, max_length=10)
    dedupe_period: Period = "ever"
    priority: PriorityName = "MEDIUM"
    enabled: bool = True


class CampaignOut(BaseModel):
    id: str
    name: str
    agent_id: str
    data_source_id: str
    audience_query: str | None
    query_params: dict[str, Any]
    queue: dict[str, Any] | None
    queue_position: Any = Field(description="the last cursor value taken from the queue table")
    schedule: str
    cron_expression: str | None
    description: str | None
    timezone: str
    event_type: str
    locale: str
    channels: list[dict[str, Any]]
    timezone_column: str | None
    variables: dict[str, Any]
    dedupe_key: list[str]
    dedupe_period: str
    priority: str
    compose: dict[str, Any] | None
    enabled: bool
    status: str = Field(description="active or paused")
    next_run: datetime | None
    next_runs: list[datetime]
    last_run: datetime | None
    created_at: datetime
    updated_at: datetime


class CampaignRunOut(BaseModel):
    id: str
    campaign_id: str
    trigger: str = Field(description="schedule or manual")
    status: str = Field(
        description="queued, running, pending_approval, completed, failed, rejected or skipped"
    )
    due_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    audience: int
    created: int = Field(description="messages created")
    deduped: int
    opted_out: int
    quiet_hours: int = Field(description="messages created but delayed past the recipient's quiet hours")
    failed: int = Field(description="rows that could not become messages")
    failures: list[dict[str, Any]] = Field(description="a short sample: the row's dedupe key and the reason")
    preview: dict[str, Any] | None = Field(description="the stored preview of a run held for approval")
    approved_by: str | None
    decided_at: datetime | None
    reason: str | None
    error: str | None


class CampaignPreviewRequest(Strict):
    sample: int = Field(default=5, ge=0, le=50)


class CampaignPreviewOut(BaseModel):
    audience: int
    deduped: int = Field(description="rows whose dedupe key already got this campaign in the period")
    opted_out: int
    failed: int
    failures: list[dict[str, Any]]
    columns: list[str]
    period: str
    sample: list[dict[str, Any]] = Field(description="rendered messages (AI-written when compose is set)")


class CampaignRunDecision(Strict):
    approver_user_id: str | None = Field(default=None, min_length=1, max_length=200)
    reason: str | None = Field(default=None, max_length=2000)


def campaign_out(campaign: Campaign) -> dict[str, Any]:
    upcoming: list[datetime] = []
    if campaign.cron_expression and campaign.status == model.ACTIVE:
        upcoming = next_runs(campaign.cron_expression, timezone=campaign.timezone, after=utcnow(), count=5)
    return CampaignOut(
        id=campaign.id, name=campaign.name, agent_id=campaign.agent_id, data_source_id=campaign.data_source_id,
        audience_query=campaign.audience_query, query_params=campaign.query_params, queue=campaign.queue,
        queue_position=(campaign.queue_position or {}).get("value"), schedule=campaign.schedule,
        cron_expression=campaign.cron_expression,
        description=describe_cron(campaign.cron_expression) if campaign.cron_expression else "Once",
        timezone=campaign.timezone, event_type=campaign.event_type, locale=campaign.locale,
        channels=campaign.channels, timezone_column=campaign.timezone_column, variables=campaign.variables,
        dedupe_key=campaign.dedupe_key, dedupe_period=campaign.dedupe_period,
        priority=Priority(campaign.priority).name, compose=campaign.compose,
        enabled=campaign.status == model.ACTIVE, status=campaign.status, next_run=campaign.next_run,
        next_runs=upcoming, last_run=campaign.last_run, created_at=campaign.created_at,
        updated_at=campaign.updated_at,
    ).model_dump(mode="json")  # fmt: skip


def run_out(run: CampaignRun) -> dict[str, Any]:
    return CampaignRunOut.model_validate(run, from_attributes=True).model_dump(mode="json")


def _changes(body: CampaignPatch) -> dict[str, Any]:
    """The fields given, as the service's spec holds them."""
    given = body.model_dump(exclude_unset=True)
    if "channels" in given:
        given["channels"] = [model.ChannelStep(**c) for c in given["channels"]]
    if given.get("queue") is not None:
        given["queue"] = model.Queue(**given["queue"])
    if "priority" in given:
        given["priority"] = int(Priority[given["priority"]])
    return given


@router.post("", status_code=201, **answers(CampaignOut, 201, also=(409,)), openapi_extra=IDEMPOTENT)
async def create_campaign(
    body: CampaignCreate, request: Request, rt: RuntimeDep, principal: CurrentPrincipal
) -> JSONResponse:
    """A campaign: audience query (or external queue) on a data source, schedule, template and channel policy."""
    values = _changes(body)
    values.setdefault("queue", None)
    values.setdefault("audience_query", None)
    spec = model.CampaignSpec(**{k: v for k, v in values.items() if k in service.FIELDS})
    checked = await service.check(rt, principal.tenant_id, spec)

    async def create(session: AsyncSession) -> dict[str, Any]:
        return campaign_out(await service.create(session, principal, checked))

    return await create_once(rt, principal, request, body.model_dump(mode="json"), create)


@router.get("", **answers(Page[CampaignOut]))
async def list_campaigns(
    rt: RuntimeDep, principal: CurrentPrincipal, limit: Limit = 100, cursor: Cursor = None
) -> dict[str, Any]:
    async with rt.sessions() as session:
        rows = await service.list_campaigns(session, principal.tenant_id, limit=limit, cursor=cursor)
    return page([campaign_out(c) for c in rows], limit)


@router.get("/{campaign_id}", **answers(CampaignOut))
async def get_campaign(campaign_id: str, rt: RuntimeDep, principal: CurrentPrincipal) -> dict[str, Any]:
    async with rt.sessions() as session:
        return campaign_out(await service.get(session, principal.tenant_id, campaign_id))


@router.patch("/{campaign_id}", **answers(CampaignOut))
async def update_campaign(
    campaign_id: str, body: CampaignPatch, rt: RuntimeDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    """Change any field; the campaign is validated again as a whole."""
    return campaign_out(await service.update_campaign(rt, principal, campaign_id, _changes(body)))


@router.delete("/{campaign_id}", status_code=204, responses=errors())
async def delete_campaign(campaign_id: str, rt: RuntimeDep, principal: CurrentPrincipal) -> Response:
    async with rt.sessions.begin() as session:
        await service.delete(session, principal, campaign_id)
    return Response(status_code=204)


@router.post("/{campaign_id}/pause", **answers(CampaignOut, also=(409,)))
async def pause(campaign_id: str, rt: RuntimeDep, principal: CurrentPrincipal) -> dict[str, Any]:
    async with rt.sessions.begin() as session:
        return campaign_out(await service.pause(session, principal, campaign_id))


@router.post("/{campaign_id}/resume", **answers(CampaignOut, also=(409,)))
async def resume(campaign_id: str, rt: RuntimeDep, principal: CurrentPrincipal) -> dict[str, Any]:
    async with rt.sessions.begin() as session:
        return campaign_out(await service.resume(session, principal, campaign_id))


@router.post("/{campaign_id}/run", **answers(CampaignRunOut, also=(409,)))
async def run_now(campaign_id: str, rt: RuntimeDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """Run now, outside the schedule: answers the finished run (or the run held for approval)."""
    return run_out(await service.run_now(rt, principal, campaign_id))


@router.post("/{campaign_id}/preview", **answers(CampaignPreviewOut))
async def preview(
    campaign_id: str, rt: RuntimeDep, principal: CurrentPrincipal, body: CampaignPreviewRequest | None = None
) -> dict[str, Any]:
    """The audience size and a sample of rendered messages; sends nothing."""
    return await service.preview(rt, principal, campaign_id, sample=body.sample if body else 5)


@router.get("/{campaign_id}/runs", **answers(Page[CampaignRunOut]))
async def list_runs(
    campaign_id: str, rt: RuntimeDep, principal: CurrentPrincipal, limit: Limit = 100, cursor: Cursor = None
) -> dict[str, Any]:
    async with rt.sessions() as session:
        rows = await service.runs(session, principal.tenant_id, campaign_id, limit=limit, cursor=cursor)
    return page([run_out(r) for r in rows], limit)


@router.get("/{campaign_id}/runs/{run_id}", **answers(CampaignRunOut))
async def get_run(
    campaign_id: str, run_id: str, rt: RuntimeDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    async with rt.sessions() as session:
        return run_out(await service.get_run(session, principal.tenant_id, campaign_id, run_id))


@router.post("/{campaign_id}/runs/{run_id}/approve", **answers(CampaignRunOut, also=(403, 409)))
async def approve_run(
    campaign_id: str,
    run_id: str,
    rt: RuntimeDep,
    principal: CurrentPrincipal,
    body: CampaignRunDecision | None = None,
) -> dict[str, Any]:
    """Approve an INTERN's whole run: its messages are created at once, none held again. When the run has an
    approval request, this is the named approver's vote, and the run waits for the request's quorum."""
    return await _decide(rt, principal, campaign_id, run_id, decisions.APPROVE, body)


@router.post("/{campaign_id}/runs/{run_id}/reject", **answers(CampaignRunOut, also=(403, 409)))
async def reject_run(
    campaign_id: str,
    run_id: str,
    rt: RuntimeDep,
    principal: CurrentPrincipal,
    body: CampaignRunDecision | None = None,
) -> dict[str, Any]:
    """Reject an INTERN's run: it ends and sends nothing."""
    return await _decide(rt, principal, campaign_id, run_id, decisions.REJECT, body)


async def _decide(
    rt: RuntimeDep, principal: Principal, campaign_id: str, run_id: str, decision: str,
    body: CampaignRunDecision | None,
) -> dict[str, Any]:  # fmt: skip
    """As a message's approve and reject: a vote when the run has an approval request, so its quorum holds and
    its copies on the approvers' platforms settle; the approved run is then executed."""
    approver = _approver(principal, body.approver_user_id if body else None)
    async with rt.sessions.begin() as session:
        await decisions.decide_run_by_api(rt, session, principal, campaign_id, run_id, decision, approver,
                                          body.reason if body else None)  # fmt: skip
    return run_out(await decisions.after_run_decided(rt, principal.tenant_id, campaign_id, run_id))


def _approver(principal: Principal, named: str | None) -> str:
    """As for messages: the named approver, else the calling key; a key bound to an agent decides nothing."""
    if principal.agent_id is not None:
        raise Forbidden(
            "a key bound to an agent cannot approve or reject campaign runs", field="approver_user_id"
        )
    return named or principal.actor
