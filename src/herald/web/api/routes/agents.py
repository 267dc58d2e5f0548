"""Agents and their maturity levels."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from herald.admin import tenants as service
from herald.core.errors import Forbidden
from herald.core.principal import Principal
from herald.producers import callbacks
from herald.storage.models import Agent
from herald.web.api.deps import CurrentPrincipal, Cursor, Limit, RuntimeDep
from herald.web.api.idempotency import create_once
from herald.web.api.schemas import AgentCreate, AgentOut, AgentPatch, AgentWithSecret, page

router = APIRouter(prefix="/api/v1/agents", tags=["agents"])


def agent_out(agent: Agent, secret: str | None = None) -> dict[str, Any]:
    out = AgentWithSecret(
        id=agent.id, name=agent.name, maturity_level=agent.maturity_level, callback_url=agent.callback_url,
        has_callback_secret=agent.callback_secret is not None, created_at=agent.created_at,
        updated_at=agent.updated_at, callback_secret=secret,
    )  # fmt: skip
    body = out.model_dump(mode="json")
    if secret is None:
        body.pop("callback_secret")
    return body


@router.post("", status_code=201, response_model=AgentWithSecret)
async def create_agent(
    body: AgentCreate, request: Request, rt: RuntimeDep, principal: CurrentPrincipal
) -> JSONResponse:
    _require_admin(principal, "registering an agent")
    if body.callback_url:
        await rt.outbound.validate_url(str(body.callback_url), field="callback_url")

    async def create(session: AsyncSession) -> dict[str, Any]:
        secret, sealed = callbacks.new_secret(rt) if body.callback_url else (None, None)
        agent = await service.create_agent(
            session, principal, agent_id=body.id, name=body.name or body.id, maturity_level=body.maturity_level,
            callback_url=str(body.callback_url) if body.callback_url else None, callback_secret=sealed,
        )  # fmt: skip
        return agent_out(agent, secret)

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


@router.patch("/{agent_id}", response_model=AgentWithSecret)
async def update_agent(
    agent_id: str, body: AgentPatch, rt: RuntimeDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    """Change an agent's name, maturity level or callback URL; the change is audited and takes effect at once."""
    if body.maturity_level is not None:
        _require_admin(principal, "changing a maturity level")
    if body.callback_url:
        await rt.outbound.validate_url(str(body.callback_url), field="callback_url")
    secret, sealed = None, None
    async with rt.sessions.begin() as session:
        current = await service.get_agent(session, principal.tenant_id, agent_id)
        if body.rotate_callback_secret or (body.callback_url and current.callback_secret is None):
            secret, sealed = callbacks.new_secret(rt)
        agent = await service.update_agent(
            session, principal, agent_id, name=body.name, maturity_level=body.maturity_level,
            callback_url=str(body.callback_url) if body.callback_url else None,
            clear_callback="callback_url" in body.model_fields_set and body.callback_url is None,
            new_callback_secret=sealed,
        )  # fmt: skip
        out = agent_out(agent, secret)
    rt.governance.invalidate(principal.tenant_id, agent_id)
    return out


def _require_admin(principal: Principal, what: str) -> None:
    """Maturity is the humans' lever over agents: a key without admin rights cannot pull it."""
    if not principal.is_admin:
        raise Forbidden(f"{what} needs an admin API key", field="maturity_level")
