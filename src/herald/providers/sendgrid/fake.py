"""Fake SendGrid v3 API: ``POST /v3/mail/send``.

Checks the Bearer key and the body's shape (personalizations with recipients, from, subject, content, and
attachments as ``[{"content" (base64), "filename", "type"?, "disposition"?: attachment|inline}]``), answers
202 with an empty body and ``X-Message-Id``, and errors as ``{"errors": [{"message", "field", "help"}]}``.
A recipient whose local part starts with ``invalid`` is refused as an invalid address.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
import time
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from herald.providers.fakebase import FakeState, bearer, token_is_valid

PROVIDER = "sendgrid"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_MIME = re.compile(r"^[\w.+!#$&^-]+/[\w.+!#$&^-]+$")
MAX_BYTES = 30 * 1024 * 1024
# Headers SendGrid sets itself and refuses in ``headers`` (Message-ID, In-Reply-To and References are allowed).
RESERVED_HEADERS = frozenset(
    {
        "x-sg-id",
        "x-sg-eid",
        "received",
        "dkim-signature",
        "content-type",
        "content-transfer-encoding",
        "to",
        "from",
        "subject",
        "reply-to",
        "cc",
        "bcc",
    }
)


def router(state: FakeState) -> APIRouter:
    api = APIRouter(tags=["fake sendgrid"])

    @api.post("/v3/mail/send")
    async def mail_send(request: Request) -> Response:
        recorded = await state.record(PROVIDER, request)
        if not token_is_valid(bearer(request)):
            return _error(401, "The provided authorization grant is invalid, expired, or revoked")
        if len(recorded.body.encode()) > MAX_BYTES:
            return _error(413, "Payload too large")
        body: dict[str, Any] = recorded.json if isinstance(recorded.json, dict) else {}
        if not body:
            return _error(400, "Bad Request", field=None)
        problem = _shape_problem(body)
        if problem:
            return _error(400, *problem)
        recipients = [to["email"] for p in body["personalizations"] for to in p["to"]]
        for i, address in enumerate(recipients):
            if not _EMAIL.match(address) or address.startswith("invalid"):
                return _error(400, "Does not contain a valid address.", f"personalizations.0.to.{i}.email")
        behaviour = await state.behaviour(PROVIDER)
        if behaviour.kind == "rate_limited":
            reset = int(time.time() + behaviour.retry_after)
            return _error(
                429, "too many requests", None,
                {"X-RateLimit-Limit": "600", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset)},
            )  # fmt: skip
        if behaviour.kind == "server_error":
            return _error(behaviour.status, "internal error")
        if behaviour.kind == "permanent":
            return _error(
                403, "The from address does not match a verified Sender Identity.", "from",
            )  # fmt: skip
        message_id = f"{state.next_id():06d}{secrets.token_urlsafe(12)}"
        return Response(status_code=202, headers={"X-Message-Id": message_id})

    return api


def _shape_problem(body: dict[str, Any]) -> tuple[str, str] | None:
    """What SendGrid would refuse about the body's shape, as (message, field)."""
    personalizations = body.get("personalizations")
    if not isinstance(personalizations, list) or not personalizations:
        return "The personalizations field is required and must have at least one personalization.", "personalizations"  # fmt: skip
    for i, p in enumerate(personalizations):
        to = p.get("to") if isinstance(p, dict) else None
        if not isinstance(to, list) or not to or not all(isinstance(t, dict) and t.get("email") for t in to):
            return "The to array is required for all personalization objects, and must have at least one email object with a valid email address.", f"personalizations.{i}.to"  # fmt: skip
    sender = body.get("from")
    if not isinstance(sender, dict) or not _EMAIL.match(str(sender.get("email") or "")):
        return "The from object must be provided for every email send. It is an object that requires an email parameter, but may also contain a name parameter.", "from.email"  # fmt: skip
    if not body.get("subject") and not body.get("template_id"):
        return "The subject is required. You can get around this requirement if you use a template with a subject defined or if every personalization has a subject defined.", "subject"  # fmt: skip
    content = body.get("content")
    if (
        not isinstance(content, list)
        or not content
        or not all(
            isinstance(c, dict) and c.get("type") and isinstance(c.get("value"), str) and c["value"]
            for c in content
        )
    ):
        return "Unless a valid template_id is provided, the content parameter is required. There must be at least one defined content block.", "content"  # fmt: skip
    return _headers_problem(body.get("headers")) or _attachments_problem(body.get("attachments"))


def _headers_problem(headers: Any) -> tuple[str, str] | None:
    """SendGrid's checks of ``headers``: an object of string values, none of the headers it sets itself."""
    if headers is None:
        return None
    if not isinstance(headers, dict):
        return "The headers parameter must be an object.", "headers"
    for name, value in headers.items():
        if name.lower() in RESERVED_HEADERS:
            return f"The header {name} is reserved and cannot be set.", f"headers.{name}"
        if not isinstance(value, str) or "\n" in value or "\r" in value:
            return "Header values must be strings on one line.", f"headers.{name}"
    return None


def _attachments_problem(attachments: Any) -> tuple[str, str] | None:
    """SendGrid's checks of ``attachments``: a list of objects with base64 ``content`` and a ``filename``;
    ``type`` a MIME type and ``disposition`` attachment or inline when given."""
    if attachments is None:
        return None
    if not isinstance(attachments, list) or not attachments:
        return "The attachments field must be an array with at least one attachment object.", "attachments"
    for i, item in enumerate(attachments):
        if not isinstance(item, dict):
            return "Each attachment must be an object.", f"attachments.{i}"
        content = item.get("content")
        if not isinstance(content, str) or not content or not _is_base64(content):
            return "The attachment content must be base64 encoded.", f"attachments.{i}.content"
        if not isinstance(item.get("filename"), str) or not item["filename"]:
            return "The attachment filename parameter is required.", f"attachments.{i}.filename"
        if "type" in item and not (isinstance(item["type"], str) and _MIME.match(item["type"])):
            return "The attachment type must be a valid MIME type.", f"attachments.{i}.type"
        if item.get("disposition", "attachment") not in ("attachment", "inline"):
            return "The disposition of your attachment must be either inline or attachment.", f"attachments.{i}.disposition"  # fmt: skip
    return None


def _is_base64(value: str) -> bool:
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def _error(
    status: int, message: str, field: str | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        {"errors": [{"message": message, "field": field, "help": None}]}, status_code=status, headers=headers
    )
