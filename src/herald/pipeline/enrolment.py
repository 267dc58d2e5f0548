"""The one door for an ``agent_id`` a request names: every producer (sends, bulk, schedules, monitors, triggers,
questions) asks here whether the agent exists and at which level it speaks.

In development an agent that is not registered yet is registered on first use, at ``HERALD_DEV_AGENT_LEVEL``,
and audited as ``agent.auto_registered``, so that examples written against other systems (the seeds, the README)
run as written on a fresh ``make run``. Only a tenant's admin key may do this, as only an admin key may register
agents at all; a key bound to an agent speaks only as that agent and never registers another. In production,
and for those keys, an unknown agent is a 422 naming the field and the request that registers it.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from sqlalchemy import Insert, insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from herald.core.errors import ValidationFailed
from herald.core.maturity import MaturityLevel
from herald.core.principal import Principal
from herald.pipeline.governance import load_level
from herald.storage.audit import audit_row
from herald.storage.bulk import table_of
from herald.storage.models import Agent, AuditEntry
from herald.storage.types import utcnow

if TYPE_CHECKING:
    from herald.runtime import Runtime

AUTO_REGISTERED = "agent.auto_registered"


async def require_agent(
    rt: Runtime, session: AsyncSession, principal: Principal, agent_id: str, *, field: str = "agent_id"
) -> MaturityLevel:
    """The named agent's maturity level, registering it first where development allows (see the module)."""

    async def load(tenant: str, agent: str) -> MaturityLevel | None:
        return await load_level(session, tenant, agent)

    level = await rt.governance.level(principal.tenant_id, agent_id, load)
    if level is not None:
        return level
    if not may_auto_register(rt, principal):
        raise unknown_agent(agent_id, field=field)
    return await _register(rt, session, principal, agent_id)


def may_auto_register(rt: Runtime, principal: Principal) -> bool:
    """Development, through a tenant's admin key that is not bound to one agent."""
    return rt.settings.is_development and principal.is_admin and principal.agent_id is None


def unknown_agent(agent_id: str, *, field: str = "agent_id") -> ValidationFailed:
    """The 422 for an agent nobody registered: it says which request registers it."""
    body = json.dumps({"id": agent_id, "maturity_level": "SUPERVISED"})
    return ValidationFailed(
        f"no agent {agent_id!r}: register it with POST /api/v1/agents {body} "
        f"(in development, HERALD_ENV=development, a request through an admin key registers it on first use)",
        field=field,
    )


async def _register(rt: Runtime, session: AsyncSession, principal: Principal, agent_id: str) -> MaturityLevel:
    """Insert the agent unless a concurrent request just did; audit only the insert that won.

    The level is not put in the governance cache: the caller's transaction may still roll back (a bad template
    in the same request), and the cache must never name an agent the database does not hold."""
    level = rt.settings.dev_agent_level
    now = utcnow()
    row: dict[str, object] = {
        "tenant_id": principal.tenant_id, "id": agent_id, "name": agent_id, "maturity_level": level.value,
        "kind": "external", "created_at": now, "updated_at": now,
    }  # fmt: skip
    dialect = (await session.connection()).dialect.name
    statement = _insert_new(dialect, row).returning(table_of(Agent).c.id)
    inserted = (await session.execute(statement)).scalar_one_or_none()
    if inserted is None:  # registered by a concurrent request in the meantime: its level holds
        return await load_level(session, principal.tenant_id, agent_id) or level
    await session.execute(
        insert(AuditEntry),
        [
            audit_row(
                principal.tenant_id, principal.actor, AUTO_REGISTERED, "agent", agent_id,
                {"maturity_level": level.value, "kind": "external", "reason": "named in a request in development"},
                at=now,
            )
        ],
    )  # fmt: skip
    return level


def _insert_new(dialect: str, row: dict[str, object]) -> Insert:
    """INSERT ... ON CONFLICT DO NOTHING, in the dialect's words."""
    module = postgresql if dialect == "postgresql" else sqlite
    statement: Insert = (
        module.insert(table_of(Agent)).values(row).on_conflict_do_nothing(index_elements=["tenant_id", "id"])
    )
    return statement
