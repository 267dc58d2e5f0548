"""Fake Discord API: bot ``POST /api/v10/channels/{channel_id}/messages`` (with button ``components`` checked
when given), ``PATCH /api/v10/channels/{channel_id}/messages/{message_id}``, and incoming webhooks
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
        if problem is None:
            problem = _components(recorded)
        if problem is not None:
            return problem
        behaviour = await _behaviour(state, BOT)
        if isinstance(behaviour, Response):
            return behaviour
        if behaviour == "permanent":
            return _error(404, 10003, "Unknown Channel")
        return _message(
            state, channel_id, content, webhook_id=None, components=_json(recorded).get("components")
        )

    @api.patch("/api/v10/channels/{channel_id}/messages/{message_id}")
    async def edit_message(channel_id: str, message_id: str, request: Request) -> Response:
        recorded = await state.record(BOT, request)
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme != "Bot" or not token_is_valid(token):
            return _error(401, 0, "401: Unauthorized")
        for name, value in (("channel_id", channel_id), ("message_id", message_id)):
            if not value.isdigit():
                return _invalid_form(name, "NUMBER_TYPE_COERCE", f'Value "{value}" is not snowflake.')
        if recorded.json is None:
            return _error(400, 50109, "The request body contains invalid JSON.")
        body = _json(recorded)
        content = body.get("content")
        if content is not None and not isinstance(content, str):
            return _invalid_form("content", "BASE_TYPE_STRING", "Must be a string.")
        if isinstance(content, str) and len(content) > MAX_CONTENT:
            return _invalid_form(
                "content", "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_CONTENT} or fewer in length."
            )
        problem = _components(recorded)
        if problem is not None:
            return problem
        behaviour = await _behaviour(state, BOT)
        if isinstance(behaviour, Response):
            return behaviour
        if behaviour == "permanent":
            return _error(404, 10008, "Unknown Message")
        return _message(
            state,
            channel_id,
            content or "",
            webhook_id=None,
            components=body.get("components"),
            edited=message_id,
        )

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


def _json(recorded: Recorded) -> dict[str, Any]:
    return recorded.json if isinstance(recorded.json, dict) else {}


def _components(recorded: Recorded) -> Response | None:
    """Discord's check of ``components`` as Herald sends them: at most 5 action rows (type 1) of 1 to 5 buttons
    (type 2) with a style 1-4, a label of at most 80 characters and a custom_id of 1 to 100."""
    components = _json(recorded).get("components")
    if components is None:
        return None
    if not isinstance(components, list) or len(components) > 5:
        return _invalid_form("components", "BASE_TYPE_MAX_LENGTH", "Must be 5 or fewer in length.")
    for i, row in enumerate(components):
        if not isinstance(row, dict) or row.get("type") != 1:
            return _invalid_form(f"components.{i}", "UNION_TYPE_CHOICES", 'Value of field "type" must be 1.')
        buttons = row.get("components")
        if not isinstance(buttons, list) or not 1 <= len(buttons) <= 5:
            return _invalid_form(
                f"components.{i}.components", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 5 in length."
            )
        for j, button in enumerate(buttons):
            where = f"components.{i}.components.{j}"
            if not isinstance(button, dict) or button.get("type") != 2:
                return _invalid_form(where, "UNION_TYPE_CHOICES", 'Value of field "type" must be 2.')
            if button.get("style") not in (1, 2, 3, 4):
                return _invalid_form(
                    f"{where}.style", "BASE_TYPE_CHOICES", "Value must be one of (1, 2, 3, 4)."
                )
            label, custom_id = button.get("label"), button.get("custom_id")
            if not isinstance(label, str) or not 1 <= len(label) <= 80:
                return _invalid_form(
                    f"{where}.label", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 80 in length."
                )
            if not isinstance(custom_id, str) or not 1 <= len(custom_id) <= 100:
                return _invalid_form(
                    f"{where}.custom_id", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length."
                )
    return None


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


def _message(
    state: FakeState,
    channel_id: str,
    content: str,
    webhook_id: str | None,
    components: Any = None,
    edited: str | None = None,
) -> JSONResponse:
    """The message object Discord answers with; ``edited`` is the id of a message being edited."""
    now = time.time()
    snowflake = edited or str(((int(now * 1000) - DISCORD_EPOCH_MS) << 22) | (state.next_id() & 0xFFF))
    author = {"id": webhook_id or "1000000000000000001", "username": "Herald", "bot": True}
    message: dict[str, Any] = {
        "id": snowflake, "type": 0, "channel_id": channel_id, "content": content, "author": author,
        "timestamp": datetime.fromtimestamp(now, UTC).isoformat(), "tts": False,
        "edited_timestamp": datetime.fromtimestamp(now, UTC).isoformat() if edited else None,
        "mention_everyone": False, "mentions": [], "attachments": [], "embeds": [], "pinned": False,
        "components": components or [],
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
