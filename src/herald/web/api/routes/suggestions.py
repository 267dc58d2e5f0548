"""Seed 002's suggestions: changes Herald proposes from patterns in the tenant's history
(herald.learning.suggestions), each accepted through the same service as the direct call, or dismissed."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from herald.learning import suggestions as service
from herald.storage.models import Suggestion
from herald.web.api.contract import answers
from herald.web.api.deps import CurrentPrincipal, Cursor, Limit, RuntimeDep
from herald.web.api.schemas import Page, Strict, page

router = APIRouter(prefix="/api/proactive/suggestions", tags=["proactive suggestions"])

Status = Literal["open", "accepted", "dismissed", "stale", "all"]
Kind = Literal["make_schedule", "send_at_hour", "add_hysteresis", "add_fallback", "promote_agent"]


class ChangeOut(BaseModel):
    """The exact change accepting makes, and the API call that makes the same change directly."""

    action: str = Field(description="create or update")
    object: str = Field(description="schedule, monitor, contact, delivery_policy or agent")
    id: str | None = Field(
        description="the object changed; null when one is created (or the tenant's policy)"
    )
    method: str
    path: str
    body: dict[str, Any]


class SuggestionOut(BaseModel):
    id: str
    kind: str
    status: str
    title: str
    explanation: str
    explained_by: str = Field(description="template, or llm:<model> when the suggestion's LLM agent wrote it")
    confidence: float
    agent_id: str | None
    key: str = Field(description="the pattern's key: one open suggestion per key; a dismissal holds it off")
    pattern: dict[str, Any] = Field(description="the pattern it came from: kind, summary, facts, evidence")
    change: ChangeOut
    accepted_by: str | None
    accepted_at: datetime | None
    result_id: str | None = Field(description="the object the accepted change created or changed")
    dismissed_by: str | None
    dismissed_at: datetime | None
    dismissed_until: datetime | None
    created_at: datetime
    updated_at: datetime


class Dismissal(Strict):
    for_days: int | None = Field(default=None, ge=1, le=3650,
                                 description="not suggested again for this many days; the server's default otherwise")  # fmt: skip


class RefreshOut(BaseModel):
    patterns: int
    created: int
    refreshed: int
    stale: int
    suppressed: int = Field(description="patterns whose suggestion is dismissed for now")
    ids: list[str] = Field(description="the open suggestions created or refreshed")


def suggestion_out(row: Suggestion) -> dict[str, Any]:
    return SuggestionOut(
        id=row.id, kind=row.kind, status=row.status, title=row.title, explanation=row.explanation,
        explained_by=row.explained_by,
        confidence=row.confidence, agent_id=row.agent_id, key=row.key, pattern=row.pattern,
        change=ChangeOut.model_validate(row.change), accepted_by=row.accepted_by, accepted_at=row.accepted_at,
        result_id=row.result_id, dismissed_by=row.dismissed_by, dismissed_at=row.dismissed_at,
        dismissed_until=row.dismissed_until, created_at=row.created_at, updated_at=row.updated_at,
    ).model_dump(mode="json")  # fmt: skip


@router.get("", **answers(Page[SuggestionOut]))
async def list_suggestions(
    rt: RuntimeDep,
    principal: CurrentPrincipal,
    status: Status = "open",
    agent_id: Annotated[str | None, Query(max_length=200)] = None,
    kind: Kind | None = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> dict[str, Any]:
    """The tenant's suggestions, open ones by default (``status=all`` for every one)."""
    async with rt.sessions() as session:
        rows = await service.list_suggestions(
            session, principal.tenant_id, status=None if status == "all" else status, agent_id=agent_id,
            kind=kind, limit=limit, cursor=cursor,
        )  # fmt: skip
    return page([suggestion_out(r) for r in rows], limit)


@router.post("/refresh", **answers(RefreshOut))
async def refresh_suggestions(rt: RuntimeDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """Recompute the suggestions from the tenant's patterns now (the scheduler also does, every hour)."""
    counts = await service.refresh(rt, principal.tenant_id)
    return {"patterns": counts.patterns, "created": counts.created, "refreshed": counts.refreshed,
            "stale": counts.stale, "suppressed": counts.suppressed, "ids": counts.ids}  # fmt: skip


@router.get("/{suggestion_id}", **answers(SuggestionOut))
async def get_suggestion(suggestion_id: str, rt: RuntimeDep, principal: CurrentPrincipal) -> dict[str, Any]:
    async with rt.sessions() as session:
        return suggestion_out(await service.get(session, principal.tenant_id, suggestion_id))


@router.post("/{suggestion_id}/accept", **answers(SuggestionOut, also=(403, 409)))
async def accept_suggestion(
    suggestion_id: str, rt: RuntimeDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    """Make the suggested change, exactly as its direct API call would (validation, governance, audit), as this
    key; ``result_id`` names what it created or changed. A 409 when the suggestion is no longer open."""
    return suggestion_out(await service.accept(rt, principal, suggestion_id))


@router.post("/{suggestion_id}/dismiss", **answers(SuggestionOut, also=(409,)))
async def dismiss_suggestion(
    suggestion_id: str, rt: RuntimeDep, principal: CurrentPrincipal, body: Dismissal | None = None
) -> dict[str, Any]:
    """Hide the suggestion; the same one is not made again for ``for_days`` (30 by default)."""
    for_days = body.for_days if body is not None else None
    return suggestion_out(await service.dismiss(rt, principal, suggestion_id, for_days=for_days))
