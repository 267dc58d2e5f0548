"""Who acts: a tenant through one of its API keys, or one of its producers (a schedule, a monitor...)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a tenant, through one of its API keys."""

    tenant_id: str
    key_id: str
    is_admin: bool
    kind: str = "api_key"  # or "schedule", "monitor", "trigger", "agent": who acts for the tenant
    # A key bound to one agent speaks only as that agent (an MCP client, an agent's own server).
    agent_id: str | None = None

    @property
    def actor(self) -> str:
        return f"{self.kind}:{self.key_id}"
