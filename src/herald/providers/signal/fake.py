"""Fake signal-cli REST API (bbernhard/signal-cli-rest-api): ``POST /v2/send``.

It has no auth of its own (it runs next to Herald); the sender ``number`` must be a registered account (here: any
but ``+999...``). Success is 201 ``{"timestamp": "<ms>"}``; errors are ``{"error": "..."}``, and Signal's rate
limit is a 429 with challenge tokens and signal-cli's ``or wait "N" seconds``.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from herald.providers.fakebase import FakeState, token_is_valid

PROVIDER = "signal_cli_rest"
UNREGISTERED_PREFIX = "+999"  # 999 is no country calling code: such a sender is never a registered account


def router(state: FakeState) -> APIRouter:
    api = APIRouter(tags=["fake signal-cli-rest-api"])

    @api.post("/v2/send")
    async def send(request: Request) -> JSONResponse:
        recorded = await state.record(PROVIDER, request)
        body: dict[str, Any] = recorded.json if isinstance(recorded.json, dict) else {}
        if not body:
            return _error(400, "Couldn't process request - invalid request")
        number, recipients = body.get("number"), body.get("recipients")
        if not isinstance(number, str) or not number:
            return _error(400, "Couldn't process request - number missing")
        if not token_is_valid(number) or number.startswith(UNREGISTERED_PREFIX):
            return _error(400, f"User {number} is not registered.")
        if (
            not isinstance(recipients, list)
            or not recipients
            or not all(isinstance(r, str) for r in recipients)
        ):
            return _error(400, "Couldn't process request - please provide at least one recipient")
        if not isinstance(body.get("message"), str):
            return _error(400, "Couldn't process request - message missing")
        behaviour = await state.behaviour(PROVIDER)
        if behaviour.kind == "rate_limited":
            token = str(uuid.uuid4())
            return JSONResponse(
                {
                    "error": f"Failed to send message due to rate limiting: {recipients[0]}: CAPTCHA proof required "
                    f'for sending to "{recipients[0]}", available options "RECAPTCHA" with challenge token "{token}", '
                    f'or wait "{int(behaviour.retry_after)}" seconds. Use the attached challenge tokens to lift the '
                    "rate limit restrictions via the '/v1/accounts/{number}/rate-limit-challenge' endpoint.",
                    "challenge_tokens": [token],
                    "account": number,
                },
                status_code=429,
            )
        if behaviour.kind == "server_error":
            return _error(behaviour.status, "signal-cli is not responding")
        if behaviour.kind == "permanent":
            return _error(
                400, f'Failed to send (some) messages:\n{recipients[0]}: Unregistered user "{recipients[0]}"'
            )
        return JSONResponse({"timestamp": str(int(time.time() * 1000) + state.next_id())}, status_code=201)

    return api


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)
