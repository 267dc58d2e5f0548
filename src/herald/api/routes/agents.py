"""Agents and their maturity levels."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from herald.api.deps import CurrentPrincipal, Cursor, Limit, RuntimeDep
from herald.api.idempotency import create_once
from herald.api.schemas import AgentCreate, AgentOut, AgentPatch, page
from herald.storage.models import Agent
from herald.tenancy import service

router = APIRouter(prefix="/api/v1/agents", tags=["agents"])


def agent_out(agent: Agent) -> dict[str, Any]:
    return AgentOut.model_validate(agent, from_attributes=True).model_dump(mode="json")


@router.post("", status_code=201, response_model=AgentOut)
async def create_agent(
    body: AgentCreate, request: Request, rt: RuntimeDep, principal: CurrentPrincipal
) -> JSONResponse:
    async def create(session: AsyncSession) -> dict[str, Any]:
        agent = await service.create_agent(
            session, principal, agent_id=body.id, name=body.name or body.id, maturity_level=body.maturity_level,
            callback_url=str(body.callback_url) if body.callback_url else None,
        )  # fmt: skip
        return agent_out(agent)

    response = await create_once(rt, principal, request, body.model_dump(mode="json"), create)
    rt.governance.invalidate(principal.tenant_id, body.id)
    return response


@router.get("")
async def list_agents(
    rt: RuntimeDep, principal: CurrentPrincipal, limit: Limit = 100, cursor: Cursor = None
) -> dict[str, Any]:
    async with rt.sessions() as session:
        agents = await service.list_agents(session, principal.tenant_id, limit=limit, cursor=cursor)
    return page([agent_out(a) for a in agents], limit)


@router.get("/{agent_id}", response_model=AgentOut)
async def get_agent(agent_id: str, rt: RuntimeDep, principal: CurrentPrincipal) -> dict[str, Any]:
    async with rt.sessions() as session:
        return agent_out(await service.get_agent(session, principal.tenant_id, agent_id))


@router.patch("/{agent_id}", response_model=AgentOut)
async def update_agent(
    agent_id: str, body: AgentPatch, rt: RuntimeDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    """Change an agent's name, maturity level or callback URL; the change is audited and takes effect at once."""
    async with rt.sessions.begin() as session:
        agent = await service.update_agent(
            session, principal, agent_id, name=body.name, maturity_level=body.maturity_level,
            callback_url=str(body.callback_url) if body.callback_url else None,
            clear_callback="callback_url" in body.model_fields_set and body.callback_url is None,
        )  # fmt: skip
        out = agent_out(agent)
    rt.governance.invalidate(principal.tenant_id, agent_id)
    return out
