"""Fake Slack Web API: ``POST /api/chat.postMessage``."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from herald.providers.fakebase import FakeState, bearer, token_is_valid

PROVIDER = "slack"


def router(state: FakeState) -> APIRouter:
    api = APIRouter(tags=["fake slack"])

    @api.post("/api/chat.postMessage")
    async def post_message(request: Request) -> JSONResponse:
        recorded = await state.record(PROVIDER, request)
        if not token_is_valid(bearer(request)):
            return _error("invalid_auth" if bearer(request) else "not_authed")
        body: dict[str, Any] = recorded.json if isinstance(recorded.json, dict) else {}
        if recorded.form is not None:
            body = {k: v[0] for k, v in recorded.form.items()}
        channel, text = body.get("channel"), body.get("text")
        if not channel:
            return _error("channel_not_found")
        if not text:
            return _error("no_text")
        if len(str(text)) > 40_000:
            return _error("msg_too_long")
        behaviour = await state.behaviour(PROVIDER)
        if behaviour.kind == "rate_limited":
            return JSONResponse(
                {"ok": False, "error": "ratelimited"}, status_code=429,
                headers={"Retry-After": str(int(behaviour.retry_after))},
            )  # fmt: skip
        if behaviour.kind == "server_error":
            return JSONResponse({"ok": False, "error": "internal_error"}, status_code=behaviour.status)
        if behaviour.kind == "permanent" or str(channel).startswith("UNKNOWN"):
            return _error("channel_not_found")
        ts = f"{int(time.time())}.{state.next_id():06d}"
        return JSONResponse({"ok": True, "channel": channel, "ts": ts, "message": {"text": text, "ts": ts}})

    return api


def _error(name: str) -> JSONResponse:
    return JSONResponse({"ok": False, "error": name})
