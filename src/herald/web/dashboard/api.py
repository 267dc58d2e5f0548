"""The dashboard's forms call Herald's own API, in this process, as the signed-in key.

Why not the services directly: the API is where validation, governance, idempotency, audit and the error
messages live, and an operator's form must get exactly what a ``curl`` gets. Going through the API (not a copy
of its handlers) keeps the two from drifting apart by construction: a field the API learns, the dashboard's
form learns with it (:mod:`herald.web.dashboard.forms` builds forms from the same request models).

The request never leaves the process: it is an ASGI call into the same app, with the principal handed over in
the scope (:data:`herald.web.api.deps.IN_PROCESS_PRINCIPAL`), so no API key is kept in the session. Written by
hand because httpx's ASGI transport cannot set a scope key.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from starlette.types import Message

from herald.core.principal import Principal
from herald.web.api.deps import IN_PROCESS_PRINCIPAL

MAX_ANSWER_BYTES = 8 * 1024 * 1024


@dataclass
class Answer:
    """The API's answer: its status and JSON body (a problem document when the status is 4xx)."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def detail(self) -> str:
        """A problem's sentence for people, or the status when the body has none."""
        if isinstance(self.body, dict) and isinstance(self.body.get("detail"), str):
            return str(self.body["detail"])
        return f"the API answered {self.status}"

    @property
    def field_errors(self) -> list[tuple[str, str]]:
        """``(field, message)`` for each error a 4xx problem names (the API's own words)."""
        if not isinstance(self.body, dict) or not isinstance(self.body.get("errors"), list):
            return []
        return [
            (str(e.get("field", "body")), str(e.get("message", "invalid")))
            for e in self.body["errors"]
            if isinstance(e, dict)
        ]


async def call(
    request: Request,
    principal: Principal,
    method: str,
    path: str,
    body: Any = None,
    query: dict[str, Any] | None = None,
) -> Answer:
    """``method path`` on this app as ``principal``, the way a client would call it."""
    payload = b"" if body is None else json.dumps(body).encode()
    headers = [(b"host", request.headers.get("host", "localhost").encode()), (b"accept", b"application/json")]
    if body is not None:
        headers += [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method.upper(),
        "scheme": request.url.scheme,
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": urlencode({k: v for k, v in (query or {}).items() if v is not None}).encode(),
        "headers": headers,
        "client": request.scope.get("client"),
        "server": request.scope.get("server"),
        "state": dict(request.scope.get("state") or {}),
        IN_PROCESS_PRINCIPAL: principal,
    }
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": payload, "more_body": False}

    status, answer_headers, chunks = 500, {}, bytearray()

    async def send(message: Message) -> None:
        nonlocal status, answer_headers
        if message["type"] == "http.response.start":
            status = int(message["status"])
            answer_headers = {k.decode().lower(): v.decode() for k, v in message.get("headers", [])}
        elif message["type"] == "http.response.body" and len(chunks) < MAX_ANSWER_BYTES:
            chunks.extend(message.get("body", b""))

    await request.app(scope, receive, send)
    return Answer(status, _decoded(bytes(chunks), answer_headers), answer_headers)


def _decoded(data: bytes, headers: dict[str, str]) -> Any:
    if not data or "json" not in headers.get("content-type", ""):
        return data.decode(errors="replace") if data else None
    try:
        return json.loads(data)
    except ValueError:
        return None
