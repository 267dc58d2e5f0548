"""Seed 002's triggers and webhooks, and the incoming ``POST /api/hooks/{url_path}``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from herald.producers.triggers import service
from herald.runtime import Runtime
from herald.storage.models import Trigger, TriggerFiring, WebhookEndpoint
from herald.web.api.contract import IDEMPOTENT, answers
from herald.web.api.deps import CurrentPrincipal, Cursor, Limit, RuntimeDep, read_capped
from herald.web.api.idempotency import create_once
from herald.web.api.schemas import HookReceipt, Page, Strict, TriggerOut, WebhookOut, page

router = APIRouter(prefix="/api/proactive", tags=["triggers and webhooks"])
hooks = APIRouter(prefix="/api/hooks", tags=["incoming webhooks"])
MAX_BODY = 1024 * 1024


class TriggerCreate(Strict):
    name: str = Field(min_length=1, max_length=200)
    workspace_id: str | None = Field(default=None, max_length=200)
    trigger_type: str = Field(min_length=1, max_length=16)
    config: dict[str, Any] = Field(default_factory=dict)
    agent_id: str = Field(min_length=1, max_length=200)
    task_template: str = Field(min_length=1, max_length=20_000)
    action: dict[str, Any] = Field(default_factory=dict)


class FireRequest(Strict):
    payload: dict[str, Any] = Field(default_factory=dict)


class WebhookCreate(Strict):
    workspace_id: str | None = Field(default=None, max_length=200)
    name: str = Field(min_length=1, max_length=200)
    trigger_id: str = Field(min_length=1, max_length=40)


class FiringOut(BaseModel):
    id: str
    trigger_id: str
    source: str
    payload_digest: str
    task: str | None
    outcome: str
    message_id: str | None
    error: str | None
    answer: str | None = None  # the agent's answer, kept whether or not it became a message
    fired_at: datetime


def trigger_out(trigger: Trigger) -> dict[str, Any]:
    return {
        "id": trigger.id, "name": trigger.name, "workspace_id": trigger.workspace_id,
        "trigger_type": trigger.trigger_type, "config": trigger.config, "agent_id": trigger.agent_id,
        "task_template": trigger.task_template, "action": trigger.action, "is_active": trigger.is_active,
        "fire_count": trigger.fire_count,
        "last_fired_at": trigger.last_fired_at.isoformat() if trigger.last_fired_at else None,
        "created_at": trigger.created_at.isoformat(),
    }  # fmt: skip


def firing_out(firing: TriggerFiring) -> dict[str, Any]:
    body = FiringOut.model_validate(firing, from_attributes=True).model_dump(mode="json")
    body["fired_at"] = firing.fired_at.isoformat()  # as answered before the model named it: +00:00, not Z
    return body


def webhook_url(rt: Runtime, request: Request, endpoint: WebhookEndpoint) -> str:
    base = rt.settings.public_url.rstrip("/") if rt.settings.public_url else str(request.base_url).rstrip("/")
    return f"{base}/api/hooks/{endpoint.url_path}"


def webhook_out(
    rt: Runtime, request: Request, endpoint: WebhookEndpoint, secret: str | None = None
) -> dict[str, Any]:
    body = {
        "id": endpoint.id, "name": endpoint.name, "workspace_id": endpoint.workspace_id,
        "trigger_id": endpoint.trigger_id, "url_path": endpoint.url_path,
        "webhook_url": webhook_url(rt, request, endpoint), "created_at": endpoint.created_at.isoformat(),
    }  # fmt: skip
    if secret is not None:
        body["secret"] = secret
    return body


@router.post("/triggers", status_code=201, **answers(TriggerOut, 201, also=(409,)), openapi_extra=IDEMPOTENT)
async def create_trigger(
    body: TriggerCreate, request: Request, rt: RuntimeDep, principal: CurrentPrincipal
) -> JSONResponse:
    async def create(session: AsyncSession) -> dict[str, Any]:
        trigger = await service.create_trigger(
            rt, session, principal, name=body.name, trigger_type=body.trigger_type, config=body.config,
            agent_id=body.agent_id, task_template=body.task_template, action=body.action,
            workspace_id=body.workspace_id,
        )  # fmt: skip
        return trigger_out(trigger)

    return await create_once(rt, principal, request, body.model_dump(mode="json"), create)


@router.get("/triggers", **answers(Page[TriggerOut]))
async def list_triggers(
    rt: RuntimeDep, principal: CurrentPrincipal, limit: Limit = 100, cursor: Cursor = None
) -> dict[str, Any]:
    async with rt.sessions() as session:
        rows = await service.list_triggers(session, principal.tenant_id, limit=limit, cursor=cursor)
    return page([trigger_out(t) for t in rows], limit)


@router.delete("/triggers/{trigger_id}", status_code=204)
async def delete_trigger(trigger_id: str, rt: RuntimeDep, principal: CurrentPrincipal) -> Response:
    async with rt.sessions.begin() as session:
        await service.delete_trigger(session, principal, trigger_id)
    return Response(status_code=204)


@router.post("/triggers/{trigger_id}/fire", **answers(FiringOut, also=(409,)))
async def fire_trigger(
    trigger_id: str, rt: RuntimeDep, principal: CurrentPrincipal, body: FireRequest | None = None
) -> dict[str, Any]:
    """Fire by hand with a payload; the answer is the recorded firing."""
    async with rt.sessions() as session:
        trigger = await service.get_trigger(session, principal.tenant_id, trigger_id)
    firing = await service.fire(rt, trigger, body.payload if body else {}, source="manual")
    return firing_out(firing)


@router.get("/triggers/{trigger_id}/history", **answers(Page[FiringOut]))
async def trigger_history(
    trigger_id: str, rt: RuntimeDep, principal: CurrentPrincipal, limit: Limit = 100, cursor: Cursor = None
) -> dict[str, Any]:
    async with rt.sessions() as session:
        rows = await service.history(session, principal.tenant_id, trigger_id, limit=limit, cursor=cursor)
    return page([firing_out(f) for f in rows], limit)


@router.post("/webhooks", status_code=201, **answers(WebhookOut, 201, also=(409,)), openapi_extra=IDEMPOTENT)
async def create_webhook(
    body: WebhookCreate, request: Request, rt: RuntimeDep, principal: CurrentPrincipal
) -> JSONResponse:
    """Answers ``id``, ``url_path``, ``secret`` (shown once) and ``webhook_url``."""

    async def create(session: AsyncSession) -> dict[str, Any]:
        endpoint, secret = await service.create_endpoint(
            rt, session, principal, name=body.name, trigger_id=body.trigger_id, workspace_id=body.workspace_id
        )
        return webhook_out(rt, request, endpoint, secret)

    return await create_once(rt, principal, request, body.model_dump(mode="json"), create)


@router.get("/webhooks", **answers(Page[WebhookOut]))
async def list_webhooks(
    request: Request, rt: RuntimeDep, principal: CurrentPrincipal, limit: Limit = 100, cursor: Cursor = None
) -> dict[str, Any]:
    async with rt.sessions() as session:
        rows = await service.list_endpoints(session, principal.tenant_id, limit=limit, cursor=cursor)
    return page([webhook_out(rt, request, e) for e in rows], limit)


@router.delete("/webhooks/{webhook_id}", status_code=204)
async def delete_webhook(webhook_id: str, rt: RuntimeDep, principal: CurrentPrincipal) -> Response:
    async with rt.sessions.begin() as session:
        await service.delete_endpoint(session, principal, webhook_id)
    return Response(status_code=204)


@router.post("/webhooks/{webhook_id}/regenerate-secret", **answers(WebhookOut))
async def regenerate_secret(
    webhook_id: str, request: Request, rt: RuntimeDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    """A new secret, shown once; the old one stops working at once."""
    async with rt.sessions.begin() as session:
        endpoint, secret = await service.regenerate_secret(rt, session, principal, webhook_id)
        return webhook_out(rt, request, endpoint, secret)


@hooks.post("/{url_path}", **answers(HookReceipt, also=(401, 409, 413, 422, 429)))
async def incoming(url_path: str, request: Request, rt: RuntimeDep) -> dict[str, Any]:
    """Signed by the endpoint's secret (Standard Webhooks or X-Hub-Signature-256); unsigned is a 401, kept nowhere."""
    body = await read_capped(request, MAX_BODY)
    headers = {k.lower(): v for k, v in request.headers.items()}
    return await service.receive(rt, url_path, headers, body)
