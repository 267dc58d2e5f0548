"""Fake Discord API: bot ``POST /api/v10/channels/{channel_id}/messages`` and incoming webhooks
``POST /api/webhooks/{id}/{token}`` (also under ``/api/v10``), answering in Discord's shapes."""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from herald.providers.fakebase import FakeState, Recorded, token_is_valid

BOT = "discord_bot"
WEBHOOK = "discord_webhook"
DISCORD_EPOCH_MS = 1_420_070_400_000
MAX_CONTENT = 2_000


def router(state: FakeState) -> APIRouter:
    api = APIRouter(tags=["fake discord"])

    @api.post("/api/v10/channels/{channel_id}/messages")
    async def create_message(channel_id: str, request: Request) -> Response:
        recorded = await state.record(BOT, request)
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme != "Bot" or not token_is_valid(token):
            return _error(401, 0, "401: Unauthorized")
        if not channel_id.isdigit():
            return _invalid_form(
                "channel_id", "NUMBER_TYPE_COERCE", f'Value "{channel_id}" is not snowflake.'
            )
        problem, content = _content(recorded)
        if problem is not None:
            return problem
        behaviour = await _behaviour(state, BOT)
        if isinstance(behaviour, Response):
            return behaviour
        if behaviour == "permanent":
            return _error(404, 10003, "Unknown Channel")
        return _message(state, channel_id, content, webhook_id=None)

    @api.post("/api/webhooks/{webhook_id}/{webhook_token}")
    @api.post("/api/v10/webhooks/{webhook_id}/{webhook_token}")
    async def execute_webhook(webhook_id: str, webhook_token: str, request: Request) -> Response:
        recorded = await state.record(WEBHOOK, request)
        if not webhook_id.isdigit():
            return _error(404, 10015, "Unknown Webhook")
        if not token_is_valid(webhook_token):
            return _error(401, 50027, "Invalid Webhook Token")
        problem, content = _content(recorded)
        if problem is not None:
            return problem
        behaviour = await _behaviour(state, WEBHOOK)
        if isinstance(behaviour, Response):
            return behaviour
        if behaviour == "permanent":
            return _error(404, 10015, "Unknown Webhook")
        if request.query_params.get("wait", "").lower() != "true":
            return Response(status_code=204)
        return _message(state, "1100000000000000000", content, webhook_id=webhook_id)

    return api


def _content(recorded: Recorded) -> tuple[Response | None, str]:
    body: dict[str, Any] = recorded.json if isinstance(recorded.json, dict) else {}
    if recorded.json is None:
        return _error(400, 50109, "The request body contains invalid JSON."), ""
    content = body.get("content")
    if not isinstance(content, str) or not content.strip():
        return _error(400, 50006, "Cannot send an empty message"), ""
    if len(content) > MAX_CONTENT:
        return _invalid_form(
            "content", "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_CONTENT} or fewer in length."
        ), ""
    return None, content


async def _behaviour(state: FakeState, provider: str) -> Response | str:
    """The scripted behaviour: a ready answer for rate limits and server errors, else its kind."""
    behaviour = await state.behaviour(provider)
    if behaviour.kind == "rate_limited":
        return JSONResponse(
            {"message": "You are being rate limited.", "retry_after": behaviour.retry_after, "global": False},
            status_code=429,
            headers={
                "Retry-After": str(math.ceil(behaviour.retry_after)),
                "X-RateLimit-Limit": "5", "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset-After": str(behaviour.retry_after), "X-RateLimit-Scope": "user",
            },
        )  # fmt: skip
    if behaviour.kind == "server_error":
        return JSONResponse(
            {"message": f"{behaviour.status}: Server Error", "code": 0}, status_code=behaviour.status
        )
    return behaviour.kind


def _message(state: FakeState, channel_id: str, content: str, webhook_id: str | None) -> JSONResponse:
    now = time.time()
    snowflake = str(((int(now * 1000) - DISCORD_EPOCH_MS) << 22) | (state.next_id() & 0xFFF))
    author = {"id": webhook_id or "1000000000000000001", "username": "Herald", "bot": True}
    message: dict[str, Any] = {
        "id": snowflake, "type": 0, "channel_id": channel_id, "content": content, "author": author,
        "timestamp": datetime.fromtimestamp(now, UTC).isoformat(), "edited_timestamp": None, "tts": False,
        "mention_everyone": False, "mentions": [], "attachments": [], "embeds": [], "pinned": False,
    }  # fmt: skip
    if webhook_id:
        message["webhook_id"] = webhook_id
    return JSONResponse(
        message,
        headers={"X-RateLimit-Limit": "5", "X-RateLimit-Remaining": "4", "X-RateLimit-Reset-After": "1"},
    )


def _error(status: int, code: int, message: str) -> JSONResponse:
    return JSONResponse({"message": message, "code": code}, status_code=status)


def _invalid_form(field: str, code: str, message: str) -> JSONResponse:
    return JSONResponse(
        {"message": "Invalid Form Body", "code": 50035,
         "errors": {field: {"_errors": [{"code": code, "message": message}]}}},
        status_code=400,
    )  # fmt: skip
