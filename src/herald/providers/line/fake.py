"""Fake LINE Messaging API: ``POST /v2/bot/message/push`` with ``X-Line-Retry-Key`` idempotency.

A request whose retry key was accepted before (a 2xx, or still being processed) is answered 409 with
``x-line-accepted-request-id`` naming the accepted request, as LINE does; keys of requests that failed are free
for a retry. Keys are forgotten on ``/_fake/reset``.
"""

from __future__ import annotations

import secrets
import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from herald.providers.fakebase import FakeState, Recorded, bearer, token_is_valid

PROVIDER = "line"
MAX_LENGTH = 5000
MAX_MESSAGES = 5


def router(state: FakeState) -> APIRouter:
    api = APIRouter(tags=["fake line"])
    # retry key -> (the request that holds it, its x-line-request-id); only counts while that request is recorded,
    # so a reset of the fake state forgets every key.
    accepted: dict[str, tuple[Recorded, str]] = {}

    def holder(key: str) -> str | None:
        entry = accepted.get(key)
        if entry is None:
            return None
        if not any(r is entry[0] for r in state.requests):
            del accepted[key]
            return None
        return entry[1]

    @api.post("/v2/bot/message/push")
    async def push(request: Request) -> JSONResponse:
        recorded = await state.record(PROVIDER, request)
        request_id = str(uuid.uuid4())
        headers = {"x-line-request-id": request_id}
        if not token_is_valid(bearer(request)):
            return _error(
                401, "Authentication failed. Confirm that the access token in the authorization header is valid.",
                headers=headers,
            )  # fmt: skip
        key = request.headers.get("x-line-retry-key")
        if key is not None:
            try:
                key = str(uuid.UUID(key))
            except ValueError:
                return _error(400, "The value for the 'X-Line-Retry-Key' header is invalid", headers=headers)
            earlier = holder(key)
            if earlier is not None:
                return _error(
                    409, "The retry key is already accepted",
                    headers={**headers, "x-line-accepted-request-id": earlier},
                )  # fmt: skip
        body: dict[str, Any] = recorded.json if isinstance(recorded.json, dict) else {}
        problems = _problems(body)
        if problems:
            return _error(400, f"The request body has {len(problems)} error(s)", problems, headers=headers)
        if key is not None:
            accepted[key] = (recorded, request_id)  # held while processing, released below if it fails
        answer = await _answer(state, body, headers)
        if key is not None and answer.status_code >= 300:
            accepted.pop(key, None)
        return answer

    return api


async def _answer(state: FakeState, body: dict[str, Any], headers: dict[str, str]) -> JSONResponse:
    behaviour = await state.behaviour(PROVIDER)
    if behaviour.kind == "rate_limited":
        return _error(
            429, "The API rate limit has been exceeded. Try again later.",
            headers={**headers, "Retry-After": str(int(behaviour.retry_after))},
        )  # fmt: skip
    if behaviour.kind == "server_error":
        return _error(behaviour.status, "An error occurred in the API server.", headers=headers)
    if behaviour.kind == "permanent" or str(body["to"]).startswith("UNKNOWN"):
        return _error(
            400, "The property, 'to', in the request body is invalid (line: -, column: -)", headers=headers
        )
    sent = [
        {"id": str(460_000_000_000_000_000 + state.next_id()), "quoteToken": secrets.token_urlsafe(24)}
        for _ in body["messages"]
    ]
    return JSONResponse({"sentMessages": sent}, headers=headers)


def _problems(body: dict[str, Any]) -> list[dict[str, str]]:
    problems: list[dict[str, str]] = []
    if not isinstance(body.get("to"), str) or not body["to"]:
        problems.append({"message": "Must not be empty", "property": "to"})
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        problems.append({"message": "Size must be between 1 and 5", "property": "messages"})
        return problems
    if len(messages) > MAX_MESSAGES:
        problems.append({"message": "Size must be between 1 and 5", "property": "messages"})
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("type") != "text":
            problems.append(
                {"message": "The fake supports text messages only", "property": f"messages[{index}].type"}
            )
            continue
        text = message.get("text")
        if not isinstance(text, str) or not text:
            problems.append({"message": "Must not be empty", "property": f"messages[{index}].text"})
        elif len(text) > MAX_LENGTH:
            problems.append(
                {
                    "message": f"Length must be between 0 and {MAX_LENGTH}",
                    "property": f"messages[{index}].text",
                }
            )
    return problems


def _error(
    status: int, message: str, details: list[dict[str, str]] | None = None, *, headers: dict[str, str]
) -> JSONResponse:
    body: dict[str, Any] = {"message": message}
    if details:
        body["details"] = details
    return JSONResponse(body, status_code=status, headers=headers)
