"""Herald's tools for agents: :data:`TOOLS` is the one registry (see :mod:`.registry` and :mod:`.catalog`)."""

from herald.agents.tools.catalog import TOOLS
from herald.agents.tools.registry import Effect, Tool, ToolContext, ToolError, ToolRegistry

__all__ = ["TOOLS", "Effect", "Tool", "ToolContext", "ToolError", "ToolRegistry"]
