"""Making one tool call as an agent: the level check, the tool's effects in a savepoint, the audit entry.

The LLM loop calls :func:`invoke` inside the transaction that also records the run's step; the MCP server calls
:func:`call_as_agent`, which opens that transaction itself. Both paths audit every call the same way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import insert

from herald.agents.tools.catalog import TOOLS
from herald.agents.tools.registry import Effect, Tool, ToolContext, ToolError
from herald.core.errors import NotFound
from herald.core.maturity import MaturityLevel
from herald.storage.audit import audit_row
from herald.storage.models import Agent, AuditEntry

if TYPE_CHECKING:
    from herald.runtime import Runtime


async def invoke(
    ctx: ToolContext,
    tool: Tool | None,
    name: str,
    arguments: str | dict[str, Any] | None,
    *,
    known: list[str],
) -> tuple[dict[str, Any], str]:
    """The tool's result and outcome (``ok``, ``error``, ``refused``); its effects roll back alone if it fails."""
    if tool is None:
        return {"error": f"unknown tool {name!r}; you may use: {', '.join(known)}"}, "error"
    try:
        async with ctx.session.begin_nested():
            return await tool.call(ctx, arguments), "ok"
    except ToolError as exc:
        return exc.as_result(), "refused" if exc.refused else "error"


def insert_audit(ctx: ToolContext, tool: Tool | None, name: str, outcome: str, result: dict[str, Any]) -> Any:
    """The audit entry of one tool call: which run and step (or MCP), what it did; a SUPERVISED agent's actions
    are flagged for review, as its sends are."""
    detail = {"tool": name, "run_id": ctx.run_id, "step": ctx.step, "via": ctx.via, "outcome": outcome,
              "message_id": result.get("message_id"), "error": result.get("error")}  # fmt: skip
    review = ctx.level is MaturityLevel.SUPERVISED and tool is not None and tool.effect is not Effect.READ
    row = audit_row(ctx.tenant_id, f"agent:{ctx.agent_id}", "agent.tool_called",
                    "agent_run" if ctx.run_id else "agent", ctx.run_id or ctx.agent_id,
                    {k: v for k, v in detail.items() if v is not None}, needs_review=review and outcome == "ok")  # fmt: skip
    return insert(AuditEntry).values(**row)


async def call_as_agent(
    rt: Runtime,
    tenant_id: str,
    agent_id: str,
    name: str,
    arguments: dict[str, Any] | None,
    *,
    via: str = "mcp",
) -> tuple[dict[str, Any], str]:
    """One tool call as ``agent_id`` of ``tenant_id``, in its own transaction, audited; (result, outcome).

    Raises NotFound for an agent the tenant does not have (the caller answers it like any unknown object). A
    message the tool accepted wakes the workers after commit, as the pipeline registers that itself."""
    async with rt.sessions.begin() as session:
        agent = await session.get(Agent, (tenant_id, agent_id))
        if agent is None:
            raise NotFound(f"no agent {agent_id!r}", field="agent_id")
        ctx = ToolContext(rt=rt, session=session, tenant_id=tenant_id, agent_id=agent_id,
                          level=MaturityLevel(agent.maturity_level), via=via)  # fmt: skip
        tool = TOOLS.get(name)
        result, outcome = await invoke(ctx, tool, name, arguments, known=TOOLS.names())
        await session.execute(insert_audit(ctx, tool, name, outcome, result))
    return result, outcome
