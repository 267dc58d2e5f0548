"""Fake Resend API: ``POST /emails``.

Checks the Bearer key (missing: 401 missing_api_key, invalid: 403 invalid_api_key) and the body (from, to,
subject, text or html, custom ``headers`` as an object of single-line strings, and attachments as ``[{"filename", "content" (base64)}]``, or a ``path`` instead of
content, at most 40 MB in all), honours ``Idempotency-Key`` (the same key and body answer the first id again without a
second delivery; the same key with another body is 409 invalid_idempotent_request), and errors as
``{"statusCode", "message", "name"}``. A recipient starting with ``daily-quota`` gets 429 daily_quota_exceeded.
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from herald.providers.fakebase import FakeState, Recorded, bearer, token_is_valid

PROVIDER = "resend"
MAX_ATTACHMENT_BYTES = 40 * 1024 * 1024
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_HEADER_NAME = re.compile(r"^[!-9;-~]+$")  # RFC 5322 field name: printable ASCII but the colon
_FROM = re.compile(r"^([^<>]*<[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+>|[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+)$")


def router(state: FakeState) -> APIRouter:
    api = APIRouter(tags=["fake resend"])
    # Idempotency-Key -> (the request that first used it, its body, the id answered). Entries whose first
    # request is gone from the record were cleared by a reset and are forgotten.
    seen: dict[str, tuple[Recorded, str, str]] = {}

    @api.post("/emails")
    async def send_email(request: Request) -> JSONResponse:
        recorded = await state.record(PROVIDER, request)
        token = bearer(request)
        if not token:
            return _error(401, "missing_api_key", "Missing API key in the authorization header")
        if not token_is_valid(token):
            return _error(403, "invalid_api_key", "API key is invalid")
        body: dict[str, Any] = recorded.json if isinstance(recorded.json, dict) else {}
        problem = _body_problem(body)
        if problem is not None:
            return problem
        to = body["to"] if isinstance(body["to"], list) else [body["to"]]
        key = request.headers.get("idempotency-key")
        if key is not None:
            if not 1 <= len(key) <= 256:
                return _error(400, "invalid_idempotency_key", "The key must be between 1-256 chars.")
            first = seen.get(key)
            if first and any(r is first[0] for r in state.requests):
                if first[1] != recorded.body:
                    return _error(409, "invalid_idempotent_request", "Same idempotency key used with a different request payload. Change your idempotency key or payload.")  # fmt: skip
                return JSONResponse({"id": first[2]})
        if any(str(a).startswith("daily-quota") for a in to):
            return _error(429, "daily_quota_exceeded", "You have reached your daily email sending quota.")
        behaviour = await state.behaviour(PROVIDER)
        if behaviour.kind == "rate_limited":
            retry = str(int(behaviour.retry_after))
            return _error(
                429, "rate_limit_exceeded", "Too many requests. You can only make 2 requests per second.",
                {"retry-after": retry, "ratelimit-limit": "2", "ratelimit-remaining": "0", "ratelimit-reset": retry},
            )  # fmt: skip
        if behaviour.kind == "server_error":
            return _error(behaviour.status, "internal_server_error", "An unexpected error occurred.")
        if behaviour.kind == "permanent":
            return _error(403, "validation_error", "You can only send testing emails to your own email address.")  # fmt: skip
        message_id = str(uuid.uuid4())
        state.next_id()
        if key is not None:
            seen[key] = (recorded, recorded.body, message_id)
        return JSONResponse({"id": message_id})

    return api


def _body_problem(body: dict[str, Any]) -> JSONResponse | None:
    """Resend's answer to a body it would refuse, or None."""
    for name in ("from", "to", "subject"):
        if not body.get(name):
            return _error(422, "missing_required_field", f"Missing `{name}` field.")
    if not body.get("text") and not body.get("html"):
        return _error(422, "missing_required_field", "Missing `html` or `text` field.")
    if not _FROM.match(str(body["from"])):
        return _error(422, "invalid_from_address", "Invalid `from` field. The email address needs to follow the `email@example.com` or `Name <email@example.com>` format.")  # fmt: skip
    to = body["to"] if isinstance(body["to"], list) else [body["to"]]
    if len(to) > 50 or not all(isinstance(a, str) and _EMAIL.match(a) for a in to):
        return _error(422, "validation_error", "Invalid `to` field. The email address needs to follow the `email@example.com` format.")  # fmt: skip
    if not _headers_valid(body.get("headers")):
        return _error(
            422, "validation_error", "Invalid `headers` field. It must be an object of string values."
        )
    return _attachments_problem(body.get("attachments"))


def _headers_valid(headers: Any) -> bool:
    """Custom headers: an object of header names to single-line string values."""
    if headers is None:
        return True
    return isinstance(headers, dict) and all(
        isinstance(name, str) and _HEADER_NAME.match(name) and isinstance(value, str) and "\n" not in value
        and "\r" not in value
        for name, value in headers.items()
    )  # fmt: skip


def _attachments_problem(attachments: Any) -> JSONResponse | None:
    """Resend's checks of ``attachments``: objects with a ``filename`` and base64 ``content`` (or a ``path``)."""
    if attachments is None:
        return None
    if not isinstance(attachments, list):
        return _error(422, "validation_error", "Invalid `attachments` field. It must be an array.")
    total = 0
    for item in attachments:
        if not isinstance(item, dict) or not isinstance(item.get("filename"), str) or not item["filename"]:
            return _error(422, "validation_error", "Invalid `attachments` field. Each attachment needs a `filename`.")  # fmt: skip
        content = item.get("content")
        if content is None and isinstance(item.get("path"), str):
            continue
        decoded = _decoded(content)
        if decoded is None:
            return _error(422, "validation_error", "Invalid `attachments` field. `content` must be a base64 string.")  # fmt: skip
        total += len(decoded)
    if total > MAX_ATTACHMENT_BYTES:
        return _error(422, "validation_error", "Attachments exceed the 40MB limit.")
    return None


def _decoded(content: Any) -> bytes | None:
    if not isinstance(content, str):
        return None
    try:
        return base64.b64decode(content, validate=True)
    except (binascii.Error, ValueError):
        return None


def _error(status: int, name: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"statusCode": status, "message": message, "name": name}, status_code=status, headers=headers)  # fmt: skip
