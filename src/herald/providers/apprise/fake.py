"""A receiver for Apprise's generic JSON notifications: ``POST /apprise/{anything}``.

Point an apprise channel at ``json://127.0.0.1:PORT/apprise/inbox`` and Apprise posts
``{"version": "1.0", "title": ..., "message": ..., "type": "info", ...}`` here. With ``json://user:pass@...``
the Basic password is checked like a token. Scripted behaviours answer with plain HTTP statuses (Apprise only
tells success from failure).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from herald.providers.fakebase import FakeState, token_is_valid

PROVIDER = "apprise"


def router(state: FakeState) -> APIRouter:
    api = APIRouter(tags=["fake apprise receiver"])

    @api.post("/apprise/{target:path}")
    async def receive(target: str, request: Request) -> JSONResponse:
        recorded = await state.record(PROVIDER, request)
        if not _authorised(request.headers.get("authorization")):
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        body: dict[str, Any] = recorded.json if isinstance(recorded.json, dict) else {}
        if not isinstance(body.get("message"), str):
            return JSONResponse({"error": "no message"}, status_code=400)
        behaviour = await state.behaviour(PROVIDER)
        if behaviour.kind == "rate_limited":
            return JSONResponse(
                {"error": "rate limited"}, status_code=429,
                headers={"Retry-After": str(int(behaviour.retry_after))},
            )  # fmt: skip
        if behaviour.kind == "server_error":
            return JSONResponse({"error": "server error"}, status_code=behaviour.status)
        if behaviour.kind == "permanent":
            return JSONResponse({"error": "gone"}, status_code=410)
        return JSONResponse({"received": state.next_id(), "target": target})

    return api


def _authorised(header: str | None) -> bool:
    """No auth header is fine (plain ``json://``); a Basic one must carry a valid password."""
    if not header:
        return True
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        _, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    return token_is_valid(password)
