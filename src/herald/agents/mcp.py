"""Herald's tools over the Model Context Protocol, for agents that run outside Herald (desktop clients, IDEs,
other frameworks).

The same registry the built-in LLM agents use (:data:`herald.agents.tools.catalog.TOOLS`) is listed with the
schemas :meth:`Tool.parameters` generates, and every call goes through :func:`call_as_agent`: the agent's
maturity level governs it and it is audited with ``via: "mcp"``. The caller is a tenant API key, sent as a bearer
token over Streamable HTTP (``/mcp`` on the API, :class:`McpEndpoint`) or given once to ``herald mcp`` over stdio
(:func:`serve_stdio`). A key bound to an agent acts as that agent; an admin key names the agent of each call in
an extra ``agent_id`` argument.

The server is the SDK's low-level :class:`Server`, not FastMCP, so the schemas are exactly the registry's.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mcp import types
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from herald.agents.tools.catalog import TOOLS
from herald.agents.tools.invoke import call_as_agent
from herald.agents.tools.registry import ToolError
from herald.core.errors import RequestError
from herald.core.principal import Principal

if TYPE_CHECKING:
    from herald.runtime import Runtime

logger = logging.getLogger(__name__)

SERVER_NAME = "herald"
SERVER_VERSION = "0.1.0"
INSTRUCTIONS = (
    "Herald sends messages to people through a governed pipeline. Your agent's maturity level decides whether a "
    "message is sent, held for a human's approval or refused; every call is audited."
)
_SCOPE_KEY = "herald.mcp.caller"  # where the HTTP endpoint hands the authenticated caller to the handlers
_UNBOUND = (
    "this API key is neither an admin key nor bound to an agent, so it may not act through MCP; "
    "create one with: herald keys create --tenant <tenant> --agent <agent_id>"
)
_AGENT_ID_PROPERTY = {
    "type": "string",
    "minLength": 1,
    "description": "the id of the agent this call acts as (its maturity level governs the call)",
}


@dataclass(frozen=True)
class Caller:
    """Who speaks over MCP: a tenant's API key, and the runtime its calls run in."""

    rt: Runtime
    principal: Principal


# --- tools and calls -------------------------------------------------------------------------------------------


def tool_specs(principal: Principal) -> list[types.Tool]:
    """Every registered tool with its registry schema; an unbound key's schemas also ask for the agent."""
    bound = principal.agent_id is not None
    return [
        types.Tool(
            name=tool.name,
            description=tool.description,
            inputSchema=tool.parameters() if bound else _with_agent_id(tool.parameters()),
        )
        for tool in TOOLS.select(None)
    ]


def _with_agent_id(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema with a required ``agent_id`` first: an admin key acts for whichever agent each call names."""
    properties = {"agent_id": dict(_AGENT_ID_PROPERTY), **schema.get("properties", {})}
    required = ["agent_id", *(r for r in schema.get("required", []) if r != "agent_id")]
    return {**schema, "properties": properties, "required": required}


def resolve_agent(principal: Principal, arguments: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The agent a call acts as and the tool's own arguments (without ``agent_id``); a refusing ToolError if the
    key may not act as it. A bound key only ever acts as its agent, so naming another is refused, not ignored."""
    named = arguments.get("agent_id")
    rest = {k: v for k, v in arguments.items() if k != "agent_id"}
    if principal.agent_id is not None:
        if "agent_id" in arguments and named != principal.agent_id:
            raise ToolError(
                f"this API key speaks only as agent {principal.agent_id!r}", field="agent_id", refused=True
            )
        return principal.agent_id, rest
    if not principal.is_admin:
        raise ToolError(_UNBOUND, refused=True)
    if not isinstance(named, str) or not named.strip():
        raise ToolError("agent_id is required: the id of the agent this call acts as", field="agent_id")
    return named.strip(), rest


async def answer_call(caller: Caller, name: str, arguments: dict[str, Any]) -> types.CallToolResult:
    """One tool call as the resolved agent, answered as MCP content. Every failure is an error result the model
    can read; an unexpected one is logged here and answered without its internals."""
    try:
        agent_id, rest = resolve_agent(caller.principal, arguments)
        result, outcome = await call_as_agent(
            caller.rt, caller.principal.tenant_id, agent_id, name, rest, via="mcp"
        )
    except ToolError as exc:
        return _error(_error_text(exc.as_result()), exc.as_result())
    except RequestError as exc:  # NotFound for an unknown agent, as the API words it
        return _error(exc.detail, {"error": exc.detail, **({"field": exc.field} if exc.field else {})})
    except Exception:
        logger.exception("MCP call of %s failed", name)
        return _error("internal error: the call failed and was logged", {"error": "internal error"})
    if outcome != "ok":
        return _error(_error_text(result), result)
    plain = _jsonable(result)
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=json.dumps(plain))], structuredContent=plain
    )


def _error(text: str, result: dict[str, Any]) -> types.CallToolResult:
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=text)], structuredContent=_jsonable(result), isError=True
    )


def _error_text(result: dict[str, Any]) -> str:
    """The tool's error as a sentence, naming the argument at fault so the model can correct it."""
    text = str(result.get("error") or "the call failed")
    return f"{text} (argument: {result['field']})" if result.get("field") else text


def _jsonable(result: dict[str, Any]) -> dict[str, Any]:
    """The result as plain JSON values: tools may answer datetimes, which text and structured content share."""
    plain: dict[str, Any] = json.loads(json.dumps(result, default=str))
    return plain


# --- the server ------------------------------------------------------------------------------------------------


def create_server(caller_of: Callable[[Server[Any, Any]], Caller]) -> Server[Any, Any]:
    """The low-level MCP server: tool listing and calls for whoever ``caller_of`` finds in the request.

    The handlers are registered as plain request handlers rather than through the SDK's ``list_tools`` and
    ``call_tool`` decorators, whose wrappers would validate arguments against one cached schema shared by every
    key (bound or not) and turn exceptions into their text. Input validation is Herald's: each tool's pydantic
    model, which also names the field at fault."""
    server: Server[Any, Any] = Server(SERVER_NAME, version=SERVER_VERSION, instructions=INSTRUCTIONS)

    async def list_tools(_request: types.ListToolsRequest) -> types.ServerResult:
        return types.ServerResult(types.ListToolsResult(tools=tool_specs(caller_of(server).principal)))

    async def call_tool(request: types.CallToolRequest) -> types.ServerResult:
        arguments = dict(request.params.arguments or {})
        return types.ServerResult(await answer_call(caller_of(server), request.params.name, arguments))

    server.request_handlers[types.ListToolsRequest] = list_tools
    server.request_handlers[types.CallToolRequest] = call_tool
    return server


def _fixed(caller: Caller) -> Callable[[Server[Any, Any]], Caller]:
    """Over stdio one key, checked at start, makes every call."""
    return lambda _server: caller


def _from_http_request(server: Server[Any, Any]) -> Caller:
    """Over HTTP each request carries its own key; :class:`McpEndpoint` authenticated it before the session."""
    request = server.request_context.request
    caller = request.scope.get(_SCOPE_KEY) if isinstance(request, Request) else None
    if not isinstance(caller, Caller):
        raise TypeError("an MCP request reached the server without going through McpEndpoint")
    return caller


# --- authentication --------------------------------------------------------------------------------------------


async def principal_of_key(rt: Runtime, key: str) -> Principal | None:
    """The key's principal, or None for an unknown or revoked key; through the runtime's key cache, as the API
    does, so each MCP request (stateless: several per session) does not query the database."""
    return await rt.key_cache.principal(rt.sessions, key)


def stdio_refusal(principal: Principal | None) -> str | None:
    """Why ``herald mcp`` cannot start with this key (None when it can): better said once than on every call."""
    if principal is None:
        return "unknown or revoked API key (give a tenant API key with --key or HERALD_API_KEY)"
    if principal.agent_id is None and not principal.is_admin:
        return _UNBOUND
    return None


# --- transports ------------------------------------------------------------------------------------------------


async def serve_stdio(rt: Runtime, principal: Principal) -> None:
    """Serve MCP on stdin/stdout until the client closes them. stdout carries only the protocol: log to stderr."""
    server = create_server(_fixed(Caller(rt, principal)))
    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())


class McpEndpoint:
    """The ASGI app at ``/mcp``: Streamable HTTP, stateless (each request stands alone, so any API process can
    answer it), behind the tenant's API key as a bearer token.

    :meth:`run` belongs in the app's lifespan: it starts the SDK's session manager, which cannot be restarted, so
    each run makes a new one."""

    def __init__(self) -> None:
        self._server = create_server(_from_http_request)
        self._manager: StreamableHTTPSessionManager | None = None
        self._rt: Runtime | None = None

    @contextlib.asynccontextmanager
    async def run(self, rt: Runtime) -> AsyncIterator[None]:
        manager = StreamableHTTPSessionManager(self._server, stateless=True, json_response=True)
        async with manager.run():
            self._manager, self._rt = manager, rt
            try:
                yield
            finally:
                self._manager, self._rt = None, None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Authenticate the bearer key before any MCP session starts, then hand the request to the SDK."""
        manager, rt = self._manager, self._rt
        if scope["type"] != "http":
            return
        if manager is None or rt is None:
            response = _problem(503, "Service unavailable", "the MCP endpoint is not running")
            await response(scope, receive, send)
            return
        principal = await _authenticate(rt, Headers(scope=scope))
        if isinstance(principal, str):
            response = _problem(401, "Unauthorized", principal, {"WWW-Authenticate": 'Bearer realm="herald"'})
            await response(scope, receive, send)
            return
        await manager.handle_request({**scope, _SCOPE_KEY: Caller(rt, principal)}, receive, send)


async def _authenticate(rt: Runtime, headers: Headers) -> Principal | str:
    """The principal of the request's bearer key, or why there is none."""
    scheme, _, key = headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        return "send your API key as 'Authorization: Bearer <key>'"
    principal = await principal_of_key(rt, key.strip())
    return principal if principal is not None else "unknown or revoked API key"


def _problem(status: int, title: str, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """RFC 9457 problem details, as the rest of the API answers."""
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    return JSONResponse(body, status_code=status, headers=headers, media_type="application/problem+json")
