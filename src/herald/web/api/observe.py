"""Every HTTP request observed once: a request id, the log context, one access line and the request metrics.

A pure ASGI middleware (no ``BaseHTTPMiddleware``: no extra task and no body buffering per request). The
request id is the caller's ``X-Request-ID`` when it is well formed, else a new one; it is answered in the same
header and joins every log line the request causes. Metrics and the access line name the route *template*
(``/api/v1/messages/{message_id}``), never the path: that bounds the label set, and a path may carry a token
(the approval links page).
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from herald.core import logs

REQUEST_ID_HEADER = "x-request-id"
UNMATCHED = "<unmatched>"  # one label for every path no route serves (404s), however many there are
_WELL_FORMED_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/+=-]{0,127}")
# Path parameters that identify what the request is about, logged under these names.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})  # others: one label
_CONTEXT_PARAMS = {"message_id": "message_id", "agent_id": "agent"}

log = logs.get_logger("herald.web.access")


def request_id_of(scope: Scope) -> str:
    """The caller's X-Request-ID if it is safe to echo and log (128 printable characters at most), else new."""
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            given = bytes(value).decode("latin-1").strip()
            if _WELL_FORMED_ID.fullmatch(given):
                return given
            break
    return uuid.uuid4().hex


def route_template(scope: Scope) -> str:
    """The path template of the route that served the request (routing records it in the scope)."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if not isinstance(path, str):
        return UNMATCHED
    return path + "/{path}" if isinstance(route, Mount) else path


class Observe:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_of(scope)
        status = 500  # what an exception before the answer started becomes
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)["X-Request-ID"] = request_id
            await send(message)

        with logs.bound(request_id=request_id) as context:
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                self._record(scope, context, status, time.perf_counter() - started)

    @staticmethod
    def _record(scope: Scope, context: dict[str, Any], status: int, seconds: float) -> None:
        method = scope["method"] if scope["method"] in _METHODS else "OTHER"
        route = route_template(scope)
        params = scope.get("path_params") or {}
        about = {name: params[key] for key, name in _CONTEXT_PARAMS.items() if key in params}
        log.info(
            "request",
            **{**about, **context},  # bound in a task of its own, a field would miss the merge: pass them all
            method=method,
            route=route,
            status=status,
            duration_ms=round(seconds * 1000, 2),
        )
        app = scope.get("app")
        runtime = getattr(getattr(app, "state", None), "runtime", None)
        if runtime is not None:
            runtime.metrics.observe_request(method, route, status, seconds)
