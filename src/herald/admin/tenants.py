"""Tenants, API keys and agents: creation, lookup and the level changes governance depends on."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from herald.core.errors import Conflict, NotFound
from herald.core.ids import new_id
from herald.core.maturity import MaturityLevel
from herald.core.principal import Principal
from herald.core.security import hash_api_key, new_api_key
from herald.storage.audit import audit_row
from herald.storage.models import Agent, ApiKey, AuditEntry, Contact, Tenant
from herald.storage.queries import referenced
from herald.storage.types import utcnow


async def get_or_create_tenant(session: AsyncSession, name: str) -> Tenant:
    tenant = (await session.execute(select(Tenant).where(Tenant.name == name))).scalar_one_or_none()
    if tenant is None:
        tenant = Tenant(id=new_id("ten"), name=name, created_at=utcnow())
        session.add(tenant)
        await session.flush()
    return tenant


async def create_api_key(
    session: AsyncSession,
    tenant: Tenant,
    name: str = "",
    *,
    is_admin: bool = True,
    agent_id: str | None = None,
) -> str:
    """Create a key and return it in clear: the only time it is ever seen. Only admin keys may register agents
    or change their maturity levels (the human side of governance). A key bound to an agent is never an admin
    key: it speaks as that agent and nobody else."""
    if agent_id is not None:
        await get_agent(session, tenant.id, agent_id)
        is_admin = False
    key = new_api_key()
    session.add(
        ApiKey(
            id=new_id("key"),
            tenant_id=tenant.id,
            key_hash=hash_api_key(key),
            prefix=key[:10],
            name=name,
            is_admin=is_admin,
            agent_id=agent_id,
            created_at=utcnow(),
        )
    )
    await session.flush()
    return key


async def principal_for_key(session: AsyncSession, key: str) -> Principal | None:
    row = (
        await session.execute(
            select(ApiKey.id, ApiKey.tenant_id, ApiKey.is_admin, ApiKey.agent_id).where(
                ApiKey.key_hash == hash_api_key(key), ApiKey.revoked_at.is_(None)
            )
        )
    ).one_or_none()
    if row is None:
        return None
    return Principal(tenant_id=row.tenant_id, key_id=row.id, is_admin=row.is_admin, agent_id=row.agent_id)


BEHAVIOUR = ("kind", "llm", "llm_api_key", "default_recipient")
"""The agent's settings that make it act (herald.agents): set together with the rest of the agent."""


async def create_agent(
    session: AsyncSession,
    principal: Principal,
    *,
    agent_id: str,
    name: str,
    maturity_level: MaturityLevel,
    callback_url: str | None,
    callback_secret: bytes | None = None,
    behaviour: dict[str, Any] | None = None,
) -> Agent:
    """Register an agent. ``behaviour`` holds what makes it act: ``kind``, ``llm`` settings, the sealed
    ``llm_api_key`` and the ``default_recipient`` (see :data:`BEHAVIOUR`)."""
    await _check_behaviour(session, principal.tenant_id, behaviour)
    now = utcnow()
    agent = Agent(
        tenant_id=principal.tenant_id,
        id=agent_id,
        name=name,
        maturity_level=maturity_level.value,
        callback_url=callback_url,
        callback_secret=callback_secret,
        created_at=now,
        updated_at=now,
        **{k: v for k, v in (behaviour or {}).items() if k in BEHAVIOUR},
    )
    agent.kind = agent.kind or "external"
    session.add(agent)
    try:
        await session.flush()
    except IntegrityError as exc:
        raise Conflict(f"an agent with id {agent_id!r} already exists", field="id") from exc
    await session.execute(
        insert(AuditEntry),
        [
            audit_row(
                principal.tenant_id, principal.actor, "agent.created", "agent", agent_id,
                {"maturity_level": maturity_level.value, "kind": agent.kind}, at=now,
            )
        ],
    )  # fmt: skip
    return agent


async def _check_behaviour(session: AsyncSession, tenant_id: str, behaviour: dict[str, Any] | None) -> None:
    recipient = (behaviour or {}).get("default_recipient") or {}
    if recipient.get("contact_id") is not None:
        await referenced(
            session,
            Contact,
            tenant_id,
            recipient["contact_id"],
            "contact",
            field="default_recipient.contact_id",
        )


async def get_agent(session: AsyncSession, tenant_id: str, agent_id: str) -> Agent:
    agent = await session.get(Agent, (tenant_id, agent_id))
    if agent is None:
        raise NotFound(f"no agent {agent_id!r}", field="agent_id")
    return agent


async def list_agents(
    session: AsyncSession, tenant_id: str, *, limit: int, cursor: str | None
) -> list[Agent]:
    query = select(Agent).where(Agent.tenant_id == tenant_id).order_by(Agent.id).limit(limit)
    if cursor:
        query = query.where(Agent.id > cursor)
    return list((await session.execute(query)).scalars())


async def update_agent(
    session: AsyncSession,
    principal: Principal,
    agent_id: str,
    *,
    name: str | None,
    maturity_level: MaturityLevel | None,
    callback_url: str | None,
    clear_callback: bool,
    new_callback_secret: bytes | None = None,
    behaviour: dict[str, Any] | None = None,
) -> Agent:
    """Change what is given; ``behaviour`` keys (:data:`BEHAVIOUR`) given with None clear that setting."""
    await _check_behaviour(session, principal.tenant_id, behaviour)
    agent = await get_agent(session, principal.tenant_id, agent_id)
    changes: dict[str, object] = {}
    for key, value in (behaviour or {}).items():
        if key in BEHAVIOUR and value != getattr(agent, key):
            changes[key] = "changed" if key == "llm_api_key" else value
            setattr(agent, key, value)
    if name is not None and name != agent.name:
        changes["name"] = [agent.name, name]
        agent.name = name
    if maturity_level is not None and maturity_level.value != agent.maturity_level:
        changes["maturity_level"] = [agent.maturity_level, maturity_level.value]
        agent.maturity_level = maturity_level.value
    if clear_callback or (callback_url is not None and callback_url != agent.callback_url):
        changes["callback_url"] = "changed"
        agent.callback_url = None if clear_callback else callback_url
    if new_callback_secret is not None:
        changes["callback_secret"] = "rotated"  # noqa: S105 - an audit word, not a secret
        agent.callback_secret = new_callback_secret
    if changes:
        agent.updated_at = utcnow()
        await session.execute(
            insert(AuditEntry),
            [audit_row(principal.tenant_id, principal.actor, "agent.updated", "agent", agent_id, changes)],
        )
    await session.flush()
    return agent
