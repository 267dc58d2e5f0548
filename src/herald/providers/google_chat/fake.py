"""Fake Google Chat incoming webhook: ``POST /v1/spaces/{space}/messages?key=KEY&token=TOKEN``, answering a Message
or Google's ``{"error": {"code", "message", "status"}}``; a 429 carries a ``google.rpc.RetryInfo`` detail."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from herald.providers.fakebase import FakeState, token_is_valid

PROVIDER = "google_chat_webhook"
MAX_BYTES = 32_000


def router(state: FakeState) -> APIRouter:
    api = APIRouter(tags=["fake google chat"])

    @api.post("/v1/spaces/{space}/messages")
    async def create_message(space: str, request: Request) -> JSONResponse:
        recorded = await state.record(PROVIDER, request)
        key, token = request.query_params.get("key"), request.query_params.get("token")
        if not key:
            return _error(403, "PERMISSION_DENIED", "The request is missing a valid API key.")
        if not token_is_valid(key):
            return _error(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.")
        if not token_is_valid(token):
            return _error(
                401, "UNAUTHENTICATED",
                "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or "
                "other valid authentication credential.",
            )  # fmt: skip
        body: dict[str, Any] = recorded.json if isinstance(recorded.json, dict) else {}
        if recorded.json is None:
            return _error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.")
        text = body.get("text")
        if not (isinstance(text, str) and text.strip()) and not body.get("cardsV2"):
            return _error(400, "INVALID_ARGUMENT", "Message cannot be empty. Discarding empty message.")
        if isinstance(text, str) and len(text.encode()) > MAX_BYTES:
            return _error(400, "INVALID_ARGUMENT", "Message text is too long.")
        behaviour = await state.behaviour(PROVIDER)
        if behaviour.kind == "rate_limited":
            return _error(
                429, "RESOURCE_EXHAUSTED",
                "Resource has been exhausted (e.g. check quota).",
                details=[{"@type": "type.googleapis.com/google.rpc.RetryInfo",
                          "retryDelay": f"{behaviour.retry_after:g}s"}],
            )  # fmt: skip
        if behaviour.kind == "server_error":
            return _error(behaviour.status, "UNAVAILABLE", "The service is currently unavailable.")
        if behaviour.kind == "permanent":
            return _error(404, "NOT_FOUND", "Requested entity was not found.")
        now = time.time()
        message_id = f"{int(now * 1000)}.{state.next_id()}"
        return JSONResponse(
            {
                "name": f"spaces/{space}/messages/{message_id}",
                "sender": {"name": "users/114022495153014004089", "displayName": "Herald", "type": "BOT"},
                "text": text,
                "createTime": datetime.fromtimestamp(now, UTC).isoformat().replace("+00:00", "Z"),
                "thread": {"name": f"spaces/{space}/threads/{message_id}"},
                "space": {"name": f"spaces/{space}", "type": "ROOM", "spaceType": "SPACE"},
                "argumentText": text,
            }
        )

    return api


def _error(
    status: int, code_name: str, message: str, details: list[dict[str, Any]] | None = None
) -> JSONResponse:
    error: dict[str, Any] = {"code": status, "message": message, "status": code_name}
    if details:
        error["details"] = details
    return JSONResponse({"error": error}, status_code=status)
