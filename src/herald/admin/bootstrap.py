"""First start in development: a tenant, an API key and two example agents, so seed examples work at once."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from herald.admin.tenants import create_agent, create_api_key, get_or_create_tenant, principal_for_key
from herald.core.maturity import MaturityLevel
from herald.core.principal import Principal
from herald.storage.models import Tenant

if TYPE_CHECKING:
    from herald.runtime import Runtime

DEV_TENANT = "dev"
EXAMPLE_AGENTS = (("agent_123", MaturityLevel.SUPERVISED), ("agent_intern", MaturityLevel.INTERN))


async def dev_key(rt: Runtime) -> str | None:
    """Create the dev tenant on an empty database, or find the key made before; None if it is gone."""
    path: Path = rt.settings.data_dir / "dev-api-key"
    async with rt.sessions.begin() as session:
        tenants = (await session.execute(select(func.count()).select_from(Tenant))).scalar_one()
        if tenants == 0:
            tenant = await get_or_create_tenant(session, DEV_TENANT)
            key = await create_api_key(session, tenant, name="development")
            principal = Principal(tenant_id=tenant.id, key_id="bootstrap", is_admin=True)
            for agent_id, level in EXAMPLE_AGENTS:
                await create_agent(
                    session,
                    principal,
                    agent_id=agent_id,
                    name=agent_id,
                    maturity_level=level,
                    callback_url=None,
                )
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600)
            path.write_text(key + "\n")
            return key
    if path.exists():
        key = path.read_text().strip()
        async with rt.sessions() as session:
            if await principal_for_key(session, key) is not None:
                return key
    return None
