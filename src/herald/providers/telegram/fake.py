"""Fake Telegram Bot API: ``POST /bot<token>/sendMessage`` (JSON, form or query parameters, as the real one)."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from herald.providers.fakebase import FakeState, token_is_valid

PROVIDER = "telegram"
MAX_LENGTH = 4096


def router(state: FakeState) -> APIRouter:
    api = APIRouter(tags=["fake telegram"])

    @api.post("/bot{token}/sendMessage")
    async def send_message(token: str, request: Request) -> JSONResponse:
        recorded = await state.record(PROVIDER, request)
        if not token_is_valid(token):
            return _error(401, "Unauthorized")
        params: dict[str, Any] = {k: v[0] for k, v in recorded.query.items()}
        if isinstance(recorded.json, dict):
            params.update(recorded.json)
        elif recorded.form is not None:
            params.update({k: v[0] for k, v in recorded.form.items()})
        chat_id, text = params.get("chat_id"), params.get("text")
        if chat_id is None or str(chat_id) == "":
            return _error(400, "Bad Request: chat_id is empty")
        if not isinstance(text, str) or not text.strip():
            return _error(400, "Bad Request: message text is empty")
        if len(text) > MAX_LENGTH:
            return _error(400, "Bad Request: message is too long")
        behaviour = await state.behaviour(PROVIDER)
        if behaviour.kind == "rate_limited":
            seconds = int(behaviour.retry_after)
            return _error(429, f"Too Many Requests: retry after {seconds}", {"retry_after": seconds})
        if behaviour.kind == "server_error":
            return _error(behaviour.status, "Internal Server Error")
        if not _known_chat(chat_id):
            return _error(400, "Bad Request: chat not found")
        if behaviour.kind == "permanent":
            return _error(403, "Forbidden: bot was blocked by the user")
        result = {
            "message_id": state.next_id(),
            "from": {"id": _bot_id(token), "is_bot": True, "first_name": "Herald fake bot"},
            "chat": {
                "id": _chat(chat_id),
                "type": "private" if str(chat_id).lstrip("-").isdigit() else "channel",
            },
            "date": int(time.time()),
            "text": text,
        }
        return JSONResponse({"ok": True, "result": result})

    return api


def _known_chat(chat_id: Any) -> bool:
    """Numeric ids and ``@channelusername`` exist; ``UNKNOWN...`` (and anything else) is "chat not found"."""
    text = str(chat_id)
    return text.lstrip("-").isdigit() or (text.startswith("@") and not text[1:].startswith("UNKNOWN"))


def _chat(chat_id: Any) -> int | str:
    text = str(chat_id)
    return int(text) if text.lstrip("-").isdigit() else text


def _bot_id(token: str) -> int:
    head = token.partition(":")[0]
    return int(head) if head.isdigit() else 1


def _error(status: int, description: str, parameters: dict[str, Any] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if parameters:
        body["parameters"] = parameters
    return JSONResponse(body, status_code=status)
