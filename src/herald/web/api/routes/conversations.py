"""Conversations and routing rules: ``/api/v1/conversations`` and ``/api/v1/routing-rules``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import Field
from sqlalchemy.ext.asyncio import AsyncSession

from herald.core.errors import ValidationFailed
from herald.producers.conversations import service
from herald.storage.models import Conversation, RoutingRule
from herald.web.api.contract import IDEMPOTENT, answers
from herald.web.api.deps import CurrentPrincipal, Cursor, Limit, RuntimeDep
from herald.web.api.idempotency import create_once
from herald.web.api.schemas import (
    ConversationDetail,
    ConversationEntry,
    ConversationOut,
    Items,
    Page,
    ReplyOut,
    RuleOut,
    Strict,
    page,
)

conversations = APIRouter(prefix="/api/v1/conversations", tags=["conversations"])
rules = APIRouter(prefix="/api/v1/routing-rules", tags=["conversations"])


class RuleCreate(Strict):
    agent_id: str = Field(min_length=1, max_length=200)
    channel_id: str | None = Field(default=None, max_length=40)
    pattern: str | None = Field(default=None, min_length=1, max_length=service.MAX_PATTERN)
    contact_id: str | None = Field(default=None, max_length=40)
    priority: int = Field(default=100, ge=0, le=1_000_000)


class ReplyBody(Strict):
    text: str = Field(min_length=1, max_length=32_000)
    agent_id: str | None = Field(default=None, min_length=1, max_length=200)


def rule_out(rule: RoutingRule) -> dict[str, Any]:
    return {"id": rule.id, "agent_id": rule.agent_id, "channel_id": rule.channel_id, "pattern": rule.pattern,
            "contact_id": rule.contact_id, "priority": rule.priority, "created_at": rule.created_at.isoformat()}  # fmt: skip


def conversation_out(c: Conversation) -> dict[str, Any]:
    return {"id": c.id, "channel_id": c.channel_id, "platform": c.platform, "external_id": c.external_id,
            "contact_id": c.contact_id, "sender_name": c.sender_name, "agent_id": c.agent_id,
            "session_started_at": c.session_started_at.isoformat(),
            "last_activity_at": c.last_activity_at.isoformat(), "created_at": c.created_at.isoformat()}  # fmt: skip


@rules.post("", status_code=201, **answers(RuleOut, 201, also=(409,)), openapi_extra=IDEMPOTENT)
async def create_rule(
    body: RuleCreate, request: Request, rt: RuntimeDep, principal: CurrentPrincipal
) -> JSONResponse:
    """A rule with no channel, pattern or contact is the tenant's default."""

    async def make(session: AsyncSession) -> dict[str, Any]:
        return rule_out(await service.create_rule(rt, session, principal, body.model_dump()))

    response = await create_once(rt, principal, request, body.model_dump(mode="json"), make)
    rt.lookups.clear()  # processors cache rules briefly; this process sees the change at once
    return response


@rules.get("", **answers(Items[RuleOut]))
async def list_rules(rt: RuntimeDep, principal: CurrentPrincipal) -> dict[str, Any]:
    async with rt.sessions() as session:
        return {"items": [rule_out(r) for r in await service.list_rules(session, principal.tenant_id)]}


@rules.delete("/{rule_id}", status_code=204)
async def delete_rule(rule_id: str, rt: RuntimeDep, principal: CurrentPrincipal) -> Response:
    async with rt.sessions.begin() as session:
        await service.delete_rule(session, principal, rule_id)
    rt.lookups.clear()
    return Response(status_code=204)


@conversations.get("", **answers(Page[ConversationOut]))
async def list_conversations(
    rt: RuntimeDep,
    principal: CurrentPrincipal,
    limit: Limit = 100,
    cursor: Cursor = None,
    channel_id: str | None = None,
) -> dict[str, Any]:
    """Newest first."""
    async with rt.sessions() as session:
        rows = await service.list_conversations(
            session, principal.tenant_id, limit=limit, cursor=cursor, channel_id=channel_id
        )
    return page([conversation_out(c) for c in rows], limit)


@conversations.get("/{conversation_id}", **answers(ConversationDetail))
async def get_conversation(
    conversation_id: str, rt: RuntimeDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    async with rt.sessions() as session:
        conversation = await service.get_conversation(session, principal.tenant_id, conversation_id)
        context = await service.session_context(rt, session, conversation)
    return {**conversation_out(conversation), "session": context}


@conversations.get("/{conversation_id}/messages", **answers(Items[ConversationEntry]))
async def conversation_messages(
    conversation_id: str, rt: RuntimeDep, principal: CurrentPrincipal, limit: Limit = 100
) -> dict[str, Any]:
    """Both directions, oldest first: what people sent and what agents answered."""
    async with rt.sessions() as session:
        items = await service.conversation_messages(
            session, principal.tenant_id, conversation_id, limit=limit
        )
    return {"items": items}


@conversations.post(
    "/{conversation_id}/reply",
    status_code=201,
    **answers(ReplyOut, 201, also=(403, 409)),
    openapi_extra=IDEMPOTENT,
)
async def reply(
    conversation_id: str, body: ReplyBody, request: Request, rt: RuntimeDep, principal: CurrentPrincipal
) -> JSONResponse:
    """An agent's later answer: sent on the conversation's interface, threaded, under the agent's governance."""

    async def make(session: AsyncSession) -> dict[str, Any]:
        conversation = await service.get_conversation(session, principal.tenant_id, conversation_id)
        agent_id = body.agent_id or conversation.agent_id
        if agent_id is None:
            raise ValidationFailed("no agent has answered this conversation yet: name one", field="agent_id")
        last = await service.last_inbound(session, conversation.id)
        prepared = await service.reply(
            rt, session, conversation, agent_id=agent_id, text=body.text, in_reply_to=last, actor=principal
        )
        values = prepared.values
        return {"message_id": values["id"], "status": values["status"], "conversation_id": conversation.id,
                "agent_id": agent_id, "platform": values["platform"], "recipient_id": values["recipient_id"]}  # fmt: skip

    return await create_once(rt, principal, request, body.model_dump(mode="json"), make)
