"""Agents and their maturity levels."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from herald.admin import tenants as service
from herald.agents import runs
from herald.core.errors import Forbidden, ValidationFailed
from herald.core.principal import Principal
from herald.producers import callbacks
from herald.storage.models import Agent, AgentRun
from herald.web.api.contract import IDEMPOTENT, answers, errors
from herald.web.api.deps import CurrentPrincipal, Cursor, Limit, RuntimeDep
from herald.web.api.idempotency import create_once
from herald.web.api.schemas import (
    AgentCreate,
    AgentOut,
    AgentPatch,
    AgentWithSecret,
    Page,
    RunCreate,
    RunDetail,
    RunOut,
    RunStepOut,
    page,
)

if TYPE_CHECKING:
    from herald.runtime import Runtime

router = APIRouter(prefix="/api/v1/agents", tags=["agents"])


def agent_out(agent: Agent, secret: str | None = None) -> dict[str, Any]:
    out = AgentWithSecret(
        id=agent.id, name=agent.name, maturity_level=agent.maturity_level, kind=agent.kind or "external",
        callback_url=agent.callback_url, has_callback_secret=agent.callback_secret is not None, llm=agent.llm,
        has_api_key=agent.llm_api_key is not None, default_recipient=agent.default_recipient,
        created_at=agent.created_at, updated_at=agent.updated_at, callback_secret=secret,
    )  # fmt: skip
    body = out.model_dump(mode="json")
    if secret is None:
        body.pop("callback_secret")
    return body


@router.post(
    "", status_code=201, response_model=AgentWithSecret, responses=errors(403, 409), openapi_extra=IDEMPOTENT
)
async def create_agent(
    body: AgentCreate, request: Request, rt: RuntimeDep, principal: CurrentPrincipal
) -> JSONResponse:
    _require_admin(principal, "registering an agent")
    await _check_urls(rt, body)

    async def create(session: AsyncSession) -> dict[str, Any]:
        secret, sealed = callbacks.new_secret(rt) if body.callback_url else (None, None)
        agent = await service.create_agent(
            session, principal, agent_id=body.id, name=body.name or body.id, maturity_level=body.maturity_level,
            callback_url=str(body.callback_url) if body.callback_url else None, callback_secret=sealed,
            behaviour={"kind": body.kind, **_behaviour(rt, body, body.model_fields_set | {"kind"})},
        )  # fmt: skip
        return agent_out(agent, secret)

    response = await create_once(rt, principal, request, body.model_dump(mode="json"), create)
    rt.governance.invalidate(principal.tenant_id, body.id)
    return response


@router.get("", **answers(Page[AgentOut]))
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


@router.patch("/{agent_id}", response_model=AgentWithSecret, responses=errors(403))
async def update_agent(
    agent_id: str, body: AgentPatch, rt: RuntimeDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    """Change an agent's name, maturity level or callback URL; the change is audited and takes effect at once."""
    if body.maturity_level is not None:
        _require_admin(principal, "changing a maturity level")
    await _check_urls(rt, body)
    secret, sealed = None, None
    async with rt.sessions.begin() as session:
        current = await service.get_agent(session, principal.tenant_id, agent_id)
        if body.rotate_callback_secret or (body.callback_url and current.callback_secret is None):
            secret, sealed = callbacks.new_secret(rt)
        agent = await service.update_agent(
            session, principal, agent_id, name=body.name, maturity_level=body.maturity_level,
            callback_url=str(body.callback_url) if body.callback_url else None,
            clear_callback="callback_url" in body.model_fields_set and body.callback_url is None,
            new_callback_secret=sealed, behaviour=_behaviour(rt, body, body.model_fields_set),
        )  # fmt: skip
        if agent.kind == "llm" and not agent.llm:
            raise ValidationFailed("an agent of kind llm needs llm settings (base_url and model at least)",
                                   field="llm")  # fmt: skip
        out = agent_out(agent, secret)
    rt.governance.invalidate(principal.tenant_id, agent_id)
    return out


async def _check_urls(rt: Runtime, body: AgentCreate | AgentPatch) -> None:
    """The outbound guard, at the door: Herald calls both URLs later, from inside the network."""
    if body.callback_url:
        await rt.outbound.validate_url(str(body.callback_url), field="callback_url")
    if body.llm is not None:
        await rt.outbound.validate_url(str(body.llm.base_url), field="llm.base_url")


def _behaviour(rt: Runtime, body: AgentCreate | AgentPatch, given: set[str]) -> dict[str, Any]:
    """The acting settings the request gives (a field sent as null clears it); the API key sealed."""
    out: dict[str, Any] = {}
    if "kind" in given and body.kind is not None:
        out["kind"] = body.kind
    if "llm" in given:
        out["llm"] = body.llm.stored() if body.llm else None
    if "api_key" in given:
        out["llm_api_key"] = rt.credentials.seal({"api_key": body.api_key}) if body.api_key else None
    if "default_recipient" in given:
        recipient = body.default_recipient
        out["default_recipient"] = recipient.model_dump(exclude_none=True) if recipient else None
    return out


# -- runs ------------------------------------------------------------------------------------------------------


def run_out(run: AgentRun) -> dict[str, Any]:
    return RunOut(
        id=run.id, agent_id=run.agent_id, woken_by=run.woken_by, origin=run.origin, task=run.task,
        status=run.status, steps=run.steps, prompt_tokens=run.prompt_tokens, completion_tokens=run.completion_tokens,
        total_tokens=run.prompt_tokens + run.completion_tokens, answer=run.answer, error=run.error,
        sent_messages=list(run.sent_messages or []), simulated=run.simulated, started_at=run.started_at,
        finished_at=run.finished_at, created_at=run.created_at,
    ).model_dump(mode="json")  # fmt: skip


@router.post("/{agent_id}/runs", status_code=202, response_model=RunOut)
async def start_run(
    agent_id: str, body: RunCreate, rt: RuntimeDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    """Wake the agent now with a task; the run is queued, worked by a worker, and followed at ``/runs/{id}``."""
    return run_out(await runs.start(rt, principal, agent_id, body.task, body.context))


@router.get("/{agent_id}/runs", **answers(Page[RunOut]))
async def list_runs(
    agent_id: str,
    rt: RuntimeDep,
    principal: CurrentPrincipal,
    status: str | None = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> dict[str, Any]:
    async with rt.sessions() as session:
        await service.get_agent(session, principal.tenant_id, agent_id)
        found = await runs.list_runs(session, principal.tenant_id, agent_id, status=status, limit=limit,
                                     cursor=cursor)  # fmt: skip
    return page([run_out(r) for r in found], limit)


@router.get("/{agent_id}/runs/{run_id}", response_model=RunDetail)
async def get_run(agent_id: str, run_id: str, rt: RuntimeDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """The run with every committed step: model answers, tool calls and their results, tokens and timings."""
    async with rt.sessions() as session:
        run = await runs.get_run(session, principal.tenant_id, agent_id, run_id)
        steps = await runs.step_log(session, run_id)
    body = run_out(run)
    body["step_log"] = [
        RunStepOut.model_validate(s, from_attributes=True).model_dump(mode="json") for s in steps
    ]
    return body


def _require_admin(principal: Principal, what: str) -> None:
    """Maturity is the humans' lever over agents: a key without admin rights cannot pull it."""
    if not principal.is_admin:
        raise Forbidden(f"{what} needs an admin API key", field="maturity_level")
