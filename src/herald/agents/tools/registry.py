"""One registry of Herald's tools, served to built-in LLM agents and, over MCP, to outside agents.

A tool is an async function ``(ctx, *, name: type = default, ...) -> dict``; its JSON schema is generated from
the typed signature (pydantic), so the schema the model sees and the validation of its arguments cannot drift.
Each tool declares its :class:`Effect`, which decides what a maturity level may do with it before the tool runs:
reading is open to every level, sending goes through the pipeline (which refuses a STUDENT and holds an
INTERN's message for approval), and acting on Herald's configuration needs a SUPERVISED or AUTONOMOUS agent.
"""

from __future__ import annotations

import copy
import functools
import inspect
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, get_type_hints

from pydantic import BaseModel, ConfigDict, ValidationError, create_model
from pydantic.fields import FieldInfo

from herald.core.errors import HeraldError, RequestError
from herald.core.maturity import MaturityLevel
from herald.core.principal import Principal

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from herald.runtime import Runtime


class Effect(StrEnum):
    READ = "read"  # looks, changes nothing: every level
    SEND = "send"  # a message: the pipeline governs it (STUDENT refused, INTERN held for approval)
    ACT = "act"  # changes Herald's configuration or fires work: SUPERVISED and AUTONOMOUS only


ACTING_LEVELS = frozenset({MaturityLevel.SUPERVISED, MaturityLevel.AUTONOMOUS})


class ToolError(HeraldError):
    """A tool call that did not happen: bad arguments, a refusal, or a request the service turned down.

    The model sees ``detail`` (and ``field``) as the tool's result, so it can correct itself.
    """

    def __init__(self, detail: str, *, field: str | None = None, refused: bool = False) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field
        self.refused = refused

    def as_result(self) -> dict[str, Any]:
        out: dict[str, Any] = {"error": self.detail}
        if self.field:
            out["field"] = self.field
        if self.refused:
            out["refused"] = True
        return out


@dataclass(frozen=True)
class ToolContext:
    """Who calls a tool and the transaction its effects share with the step that records them."""

    rt: Runtime
    session: AsyncSession
    tenant_id: str
    agent_id: str
    level: MaturityLevel
    run_id: str | None = None
    step: int | None = None
    via: str = "llm"  # or "mcp"
    call_id: str | None = None  # the model's id for this call (a question answered later resumes it)

    @property
    def principal(self) -> Principal:
        return Principal(tenant_id=self.tenant_id, key_id=self.run_id or self.agent_id, is_admin=False,
                         kind="agent")  # fmt: skip


ToolFunc = Callable[..., Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    effect: Effect
    func: ToolFunc
    arguments: type[BaseModel]

    def parameters(self) -> dict[str, Any]:
        """The JSON schema of the arguments (an object), as OpenAI function tools and MCP both take it."""
        return copy.deepcopy(self._schema)

    @functools.cached_property
    def _schema(self) -> dict[str, Any]:
        # Built once per tool: regenerating every schema on every run cost ~2 ms of CPU a run (bench/agents.py).
        schema = self.arguments.model_json_schema()
        schema.pop("title", None)
        return schema

    @functools.cached_property
    def _openai_spec(self) -> dict[str, Any]:
        return {"type": "function",
                "function": {"name": self.name, "description": self.description, "parameters": self._schema}}  # fmt: skip

    def openai_spec(self) -> dict[str, Any]:
        """The OpenAI function-tool form; shared and read-only (the run serialises it, nobody changes it)."""
        return self._openai_spec

    def parse(self, raw: str | dict[str, Any] | None) -> dict[str, Any]:
        """Validated keyword arguments; ToolError naming the field for anything malformed."""
        if raw is None or raw == "":
            raw = {}
        if isinstance(raw, str):
            try:
                raw = json.loads(raw)
            except ValueError as exc:
                raise ToolError(f"arguments are not valid JSON: {exc}") from None
        if not isinstance(raw, dict):
            raise ToolError("arguments must be a JSON object")
        try:
            parsed = self.arguments.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"]) or None
            raise ToolError(first["msg"], field=field) from None
        return {name: getattr(parsed, name) for name in type(parsed).model_fields}

    async def call(self, ctx: ToolContext, raw: str | dict[str, Any] | None) -> dict[str, Any]:
        """Check the level, validate, run. Service refusals become ToolErrors the caller can show the model."""
        kwargs = self.parse(raw)
        if self.effect is Effect.ACT and ctx.level not in ACTING_LEVELS:
            raise ToolError(
                f"{self.name} changes Herald's configuration, which a {ctx.level} agent may not do "
                "(SUPERVISED or AUTONOMOUS only)", refused=True,
            )  # fmt: skip
        try:
            return await self.func(ctx, **kwargs)
        except RequestError as exc:
            raise ToolError(exc.detail, field=exc.field, refused=exc.status in (401, 403)) from exc


class ToolRegistry:
    """Tools by name, in registration order."""

    def __init__(self) -> None:
        self._tools: dict[str, Tool] = {}

    def tool(self, effect: Effect) -> Callable[[ToolFunc], ToolFunc]:
        """Register ``func`` as a tool; its name is the function's, its description the docstring's."""

        def register(func: ToolFunc) -> ToolFunc:
            self.add(Tool(func.__name__, inspect.cleandoc(func.__doc__ or func.__name__), effect, func,
                          _arguments_model(func)))  # fmt: skip
            return func

        return register

    def add(self, tool: Tool) -> None:
        if tool.name in self._tools:
            raise ValueError(f"tool {tool.name!r} is registered twice")
        self._tools[tool.name] = tool

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def names(self) -> list[str]:
        return list(self._tools)

    def select(self, names: list[str] | None) -> list[Tool]:
        """The tools named (all of them for None), in registry order."""
        if names is None:
            return list(self._tools.values())
        wanted = set(names)
        return [t for t in self._tools.values() if t.name in wanted]


def _arguments_model(func: ToolFunc) -> type[BaseModel]:
    """A pydantic model of ``func``'s keyword-only parameters (everything after the context)."""
    hints = get_type_hints(func, include_extras=True)
    fields: dict[str, Any] = {}
    for name, param in inspect.signature(func).parameters.items():
        if param.kind is not inspect.Parameter.KEYWORD_ONLY:
            continue
        default = param.default
        if isinstance(default, FieldInfo) or default is not inspect.Parameter.empty:
            fields[name] = (hints[name], default)
        else:
            fields[name] = (hints[name], ...)
    model: type[BaseModel] = create_model(
        f"{func.__name__}_arguments", __config__=ConfigDict(extra="forbid"), **fields
    )
    return model
