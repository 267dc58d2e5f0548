"""What Herald finds in its own history (herald.learning.patterns): GET /api/proactive/patterns."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from herald.core.errors import ValidationFailed
from herald.core.principal import Principal
from herald.learning import model, patterns
from herald.storage.types import utcnow
from herald.web.api.contract import answers
from herald.web.api.deps import CurrentPrincipal, RuntimeDep

router = APIRouter(prefix="/api/proactive/patterns", tags=["learning"])


class PatternOut(BaseModel):
    kind: str = Field(description=", ".join(model.KINDS))
    key: str = Field(description="stable across runs for the same finding")
    summary: str
    confidence: float = Field(ge=0, le=1)
    evidence: dict[str, list[str]] = Field(
        description="kind of object (messages, monitors, alerts, channels, conversations, approvals, agents) "
        "-> the ids the pattern comes from"
    )
    facts: dict[str, Any] = Field(description="what the pattern is, per kind (see the learning guide)")
    agent_id: str | None


class PatternsOut(BaseModel):
    patterns: list[PatternOut]
    computed_at: datetime


def _agent(principal: Principal, agent_id: str | None) -> str | None:
    """A key bound to one agent sees only that agent's patterns."""
    if principal.agent_id is not None:
        if agent_id is not None and agent_id != principal.agent_id:
            raise ValidationFailed(f"this key speaks only as {principal.agent_id}", field="agent_id")
        return principal.agent_id
    return agent_id


@router.get("", **answers(PatternsOut))
async def list_patterns(
    rt: RuntimeDep,
    principal: CurrentPrincipal,
    agent_id: str | None = Query(default=None, min_length=1, max_length=200, description="only this agent's"),
    kind: str | None = Query(default=None, max_length=64, description=", ".join(model.KINDS)),
) -> dict[str, Any]:
    """The tenant's patterns, computed now over the recent history (best first within each kind)."""
    if kind is not None and kind not in model.KINDS:
        raise ValidationFailed(
            f"unknown pattern kind {kind!r}; one of: {', '.join(model.KINDS)}", field="kind"
        )
    now = utcnow()
    found = await patterns.detect(
        rt.sessions, principal.tenant_id, agent_id=_agent(principal, agent_id), now=now,
        kinds=None if kind is None else (kind,),
    )  # fmt: skip
    return {"patterns": [asdict(p) for p in found], "computed_at": now.isoformat()}
