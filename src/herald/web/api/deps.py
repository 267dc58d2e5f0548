"""Dependencies shared by the routes: the runtime and the authenticated tenant."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from herald.core import logs
from herald.core.errors import ContentTooLarge, Unauthorized
from herald.core.principal import Principal
from herald.runtime import Runtime


async def get_runtime(request: Request) -> Runtime:
    """The process's runtime. A coroutine on purpose: FastAPI runs a plain ``def`` dependency in its thread pool,
    and that hand-off to a thread and back was a sixth of a single send's time in the API process."""
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


BEARER = "bearer"
BEARER_SCHEME = {"type": "http", "scheme": "bearer", "description": "a tenant's API key"}
# Declares the scheme in /openapi.json on every operation that depends on ``authenticate``; checks nothing itself
# (auto_error off): ``authenticate`` answers the 401 problems.
_bearer = HTTPBearer(scheme_name=BEARER, description=BEARER_SCHEME["description"], auto_error=False)
Declared = Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)]


# The ASGI scope key under which an in-process caller (the dashboard's forms, :mod:`herald.web.dashboard.api`)
# hands over the principal it already authenticated. Only code in this process can set it: an ASGI server
# builds the scope from the wire, and no header or query string reaches a scope key.
IN_PROCESS_PRINCIPAL = "herald.principal"


async def authenticate(request: Request, rt: RuntimeDep, _declared: Declared) -> Principal:
    handed_over = request.scope.get(IN_PROCESS_PRINCIPAL)
    if isinstance(handed_over, Principal):
        logs.bind(tenant=handed_over.tenant_id, agent=handed_over.agent_id)
        return handed_over
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise Unauthorized("send your API key as 'Authorization: Bearer <key>'")
    principal = await rt.key_cache.principal(rt.sessions, key.strip())
    if principal is None:
        raise Unauthorized("unknown or revoked API key")
    logs.bind(tenant=principal.tenant_id, agent=principal.agent_id)  # joins the request's log lines
    return principal


CurrentPrincipal = Annotated[Principal, Depends(authenticate)]
Limit = Annotated[int, Query(ge=1, le=1000, description="page size")]
Cursor = Annotated[str | None, Query(max_length=100, description="next_cursor from the previous page")]


async def read_capped(request: Request, limit: int) -> bytes:
    """The raw body, refused with 413 as soon as it is known to be over ``limit`` (declared or streamed), so an
    unauthenticated sender cannot make Herald buffer more than that."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise ContentTooLarge(f"body is over {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise ContentTooLarge(f"body is over {limit} bytes")
    return bytes(body)
