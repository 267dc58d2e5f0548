"""Digest rules: which messages wait to be sent together as one digest, for how long, and how it reads
(herald.producers.digests)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from herald.pipeline import digests as holding
from herald.producers import digests as service
from herald.storage.models import DigestRule
from herald.web.api.contract import IDEMPOTENT, answers, errors
from herald.web.api.deps import CurrentPrincipal, Cursor, Limit, RuntimeDep
from herald.web.api.idempotency import create_once
from herald.web.api.schemas import Page, Strict, page

router = APIRouter(prefix="/api/v1/digest-rules", tags=["digests"])

WINDOW = "how long the first held message waits for others (seconds, up to 7 days)"
CAP = "send at once when this many wait (2 to 1,000); null: only the window"
BODY = "the digest's text: sandboxed Jinja over messages (id, agent_id, subject, content, priority, message_type, " \
    "created_at) and count"  # fmt: skip
MATCH = "null matches any"


class DigestRuleCreate(Strict):
    name: str = Field(min_length=1, max_length=200)
    agent_id: str | None = Field(default=None, min_length=1, max_length=200, description=MATCH)
    platform: str | None = Field(default=None, min_length=1, max_length=32, description=MATCH)
    recipient_id: str | None = Field(default=None, min_length=1, max_length=500, description=MATCH)
    message_type: str | None = Field(default=None, min_length=1, max_length=100,
                                     description="governance_metadata.message_type; " + MATCH)  # fmt: skip
    window_seconds: int = Field(ge=1, le=604_800, description=WINDOW)
    max_messages: int | None = Field(default=None, ge=2, le=1000, description=CAP)
    subject: str | None = Field(
        default=None, min_length=1, max_length=1000, description="for email: a template"
    )
    body: str = Field(default=holding.DEFAULT_BODY, min_length=1, max_length=10_000, description=BODY)
    enabled: bool = True


class DigestRulePatch(Strict):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    agent_id: str | None = Field(default=None, min_length=1, max_length=200)
    platform: str | None = Field(default=None, min_length=1, max_length=32)
    recipient_id: str | None = Field(default=None, min_length=1, max_length=500)
    message_type: str | None = Field(default=None, min_length=1, max_length=100)
    window_seconds: int | None = Field(default=None, ge=1, le=604_800)
    max_messages: int | None = Field(default=None, ge=2, le=1000)
    subject: str | None = Field(default=None, min_length=1, max_length=1000)
    body: str | None = Field(default=None, min_length=1, max_length=10_000)
    enabled: bool | None = None


class DigestRuleOut(BaseModel):
    id: str
    name: str
    agent_id: str | None
    platform: str | None
    recipient_id: str | None
    message_type: str | None
    window_seconds: int
    max_messages: int | None
    subject: str | None
    body: str
    enabled: bool
    created_at: datetime
    updated_at: datetime


def rule_out(row: DigestRule) -> dict[str, Any]:
    return DigestRuleOut.model_validate(row, from_attributes=True).model_dump(mode="json")


@router.post(
    "", status_code=201, response_model=DigestRuleOut, responses=errors(409), openapi_extra=IDEMPOTENT
)
async def create_digest_rule(
    body: DigestRuleCreate, request: Request, rt: RuntimeDep, principal: CurrentPrincipal
) -> JSONResponse:
    """A digest rule; its templates are rendered on a sample digest (a 422 names the field at fault)."""

    async def create(session: AsyncSession) -> dict[str, Any]:
        return rule_out(await service.create_rule(rt, session, principal, body.model_dump()))

    answer = await create_once(rt, principal, request, body.model_dump(mode="json"), create)
    holding.forget(rt)
    return answer


@router.get("", **answers(Page[DigestRuleOut]))
async def list_digest_rules(
    rt: RuntimeDep, principal: CurrentPrincipal, limit: Limit = 100, cursor: Cursor = None
) -> dict[str, Any]:
    async with rt.sessions() as session:
        rows = await service.list_rules(session, principal.tenant_id, limit=limit, cursor=cursor)
    return page([rule_out(r) for r in rows], limit)


@router.get("/{digest_rule_id}", response_model=DigestRuleOut)
async def get_digest_rule(digest_rule_id: str, rt: RuntimeDep, principal: CurrentPrincipal) -> dict[str, Any]:
    async with rt.sessions() as session:
        return rule_out(await service.get_rule(session, principal.tenant_id, digest_rule_id))


@router.patch("/{digest_rule_id}", response_model=DigestRuleOut)
async def update_digest_rule(
    digest_rule_id: str, body: DigestRulePatch, rt: RuntimeDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    """Change what is given: null clears a match field (it then matches any); null is a 422 for the others."""
    async with rt.sessions.begin() as session:
        out = rule_out(
            await service.update_rule(session, principal, digest_rule_id, body.model_dump(exclude_unset=True))
        )
    holding.forget(rt)
    return out


@router.delete("/{digest_rule_id}", status_code=204)
async def delete_digest_rule(digest_rule_id: str, rt: RuntimeDep, principal: CurrentPrincipal) -> Response:
    """Delete a rule; messages it holds are still sent in their digest when it is due."""
    async with rt.sessions.begin() as session:
        await service.delete_rule(session, principal, digest_rule_id)
    holding.forget(rt)
    return Response(status_code=204)
