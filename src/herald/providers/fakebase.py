"""Shared machinery of the fake providers: what they received, and what they were told to answer next.

Each provider fake checks auth and request shape as the real API does, records the request, then answers
according to the next scripted behaviour for that provider (default: success):

- ``ok``: the provider's success answer with a fresh message id;
- ``rate_limited``: the provider's 429, with ``retry_after`` seconds in its header or body;
- ``server_error``: a 5xx (``status``, default 503);
- ``permanent``: the provider's own permanent error (bad recipient, blocked, ...);
- ``timeout``: hold the request for ``delay`` seconds (default 30) before answering ok.

Script with ``POST /_fake/{provider}/script`` (a list of behaviours), read with ``GET /_fake/{provider}/requests``,
clear everything with ``POST /_fake/reset``.

Behaviours apply to that provider's requests in order, so ``[{"kind": "ok"}, {"kind": "server_error"}]`` fails
exactly the second request (the second part of a split message, say) with a retryable error.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

Kind = Literal["ok", "rate_limited", "server_error", "permanent", "timeout"]


class Behaviour(BaseModel):
    kind: Kind = "ok"
    retry_after: float = Field(default=1.0, ge=0)
    status: int = Field(default=503, ge=500, le=599)
    delay: float = Field(default=30.0, ge=0, le=600)
    times: int = Field(default=1, ge=1, le=100_000)


@dataclass
class Recorded:
    provider: str
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: str
    json: Any = None
    form: dict[str, list[str]] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "provider": self.provider, "method": self.method, "path": self.path, "query": self.query,
            "headers": self.headers, "body": self.body, "json": self.json, "form": self.form,
        }  # fmt: skip


@dataclass
class FakeState:
    requests: list[Recorded] = field(default_factory=list)
    scripts: dict[str, deque[Behaviour]] = field(default_factory=lambda: defaultdict(deque))
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def next_id(self) -> int:
        return next(self.ids)

    async def record(self, provider: str, request: Request) -> Recorded:
        raw = await request.body()
        text = raw.decode(errors="replace")
        parsed_json: Any = None
        form = None
        content_type = request.headers.get("content-type", "")
        if "json" in content_type:
            try:
                parsed_json = json.loads(text or "null")
            except ValueError:
                parsed_json = None
        elif "form" in content_type:
            form = parse_qs(text, keep_blank_values=True)
        recorded = Recorded(
            provider=provider,
            method=request.method,
            path=request.url.path,
            query=parse_qs(request.url.query),
            headers={k.lower(): v for k, v in request.headers.items()},
            body=text,
            json=parsed_json,
            form=form,
        )
        self.requests.append(recorded)
        return recorded

    async def behaviour(self, provider: str) -> Behaviour:
        """Pop the next scripted behaviour (``times`` counts down); ``timeout`` sleeps here, then acts as ok."""
        queue = self.scripts.get(provider)
        if not queue:
            return Behaviour()
        current = queue[0]
        if current.times > 1:
            queue[0] = current.model_copy(update={"times": current.times - 1})
        else:
            queue.popleft()
        if current.kind == "timeout":
            await asyncio.sleep(current.delay)
            return Behaviour()
        return current

    def reset(self) -> None:
        self.requests.clear()
        self.scripts.clear()


def control_router(state: FakeState) -> APIRouter:
    router = APIRouter(prefix="/_fake", tags=["fake control"])

    @router.post("/{provider}/script")
    async def script(provider: str, behaviours: list[Behaviour]) -> dict[str, int]:
        state.scripts[provider].extend(behaviours)
        return {"queued": len(state.scripts[provider])}

    @router.get("/{provider}/requests")
    async def requests(provider: str) -> list[dict[str, Any]]:
        return [r.as_dict() for r in state.requests if r.provider == provider]

    @router.post("/reset")
    async def reset() -> dict[str, bool]:
        state.reset()
        return {"reset": True}

    return router


def bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token if scheme.lower() == "bearer" and token else None


def token_is_valid(token: str | None) -> bool:
    """Fakes accept any token except empty ones and those containing ``invalid`` (to test bad credentials)."""
    return bool(token) and "invalid" not in str(token)
