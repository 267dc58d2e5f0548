"""Fake Meta Graph API: ``POST /v{N}/{object_id}/messages``, serving both WhatsApp Cloud API and Messenger.

The two share the path shape, so the body tells them apart: ``messaging_product == "whatsapp"`` is WhatsApp
(recorded and scripted as provider ``whatsapp_cloud``), anything else is the Messenger Send API (provider
``messenger``). Auth is a Bearer token or an ``access_token`` parameter, as on the real Graph API. Errors use
the Graph shape ``{"error": {"message", "type", "code", "error_subcode", "error_data", "fbtrace_id"}}``.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from herald.providers.fakebase import FakeState, bearer, token_is_valid

WHATSAPP = "whatsapp_cloud"
MESSENGER = "messenger"
WHATSAPP_MAX_LENGTH = 4096
MESSENGER_MAX_LENGTH = 2000
MESSAGING_TYPES = frozenset({"RESPONSE", "UPDATE", "MESSAGE_TAG"})
_VERSION = re.compile(r"^\d+\.\d+$")


def router(state: FakeState) -> APIRouter:
    api = APIRouter(tags=["fake graph (whatsapp, messenger)"])

    @api.post("/v{version}/{object_id}/messages")
    async def messages(version: str, object_id: str, request: Request) -> JSONResponse:
        params = _params(request, await request.body())
        provider = WHATSAPP if params.get("messaging_product") == "whatsapp" else MESSENGER
        await state.record(provider, request)
        token = bearer(request) or request.query_params.get("access_token") or params.get("access_token")
        if not token_is_valid(token if isinstance(token, str) else None):
            return _error(
                401, 190, "Invalid OAuth access token - Cannot parse access token", "OAuthException"
            )
        if not _VERSION.match(version):
            return _error(400, 100, f"Unknown path components: /v{version}/{object_id}/messages")
        if provider == WHATSAPP:
            return await _whatsapp(state, params)
        return await _messenger(state, params)

    return api


def _whatsapp_refusal(body: dict[str, Any]) -> JSONResponse | None:
    """The Graph error a malformed WhatsApp body gets, or None when it is well formed."""
    to, kind = body.get("to"), body.get("type", "text")
    if body.get("recipient_type", "individual") != "individual":
        return _error(400, 100, "(#100) Invalid parameter", details="Param recipient_type must be individual")
    if not to:
        return _error(
            400, 131008, "(#131008) Required parameter is missing", details="Parameter 'to' is required"
        )
    if kind == "text":
        text = body.get("text")
        text_body = text.get("body") if isinstance(text, dict) else None
        if not isinstance(text_body, str) or not text_body:
            return _error(
                400, 131008, "(#131008) Required parameter is missing", details="text['body'] is required"
            )
        if len(text_body) > WHATSAPP_MAX_LENGTH:
            return _error(
                400, 100, "(#100) Invalid parameter",
                details=f"Param text['body'] must be at most {WHATSAPP_MAX_LENGTH} characters long.",
            )  # fmt: skip
    elif kind == "template":
        template = body.get("template")
        language = template.get("language") if isinstance(template, dict) else None
        if not isinstance(template, dict) or not template.get("name"):
            return _error(400, 131008, "(#131008) Required parameter is missing", details="template['name']")
        if not isinstance(language, dict) or not language.get("code"):
            return _error(
                400, 131008, "(#131008) Required parameter is missing", details="template['language']"
            )
    else:
        return _error(
            400, 100, "(#100) Invalid parameter", details=f"the fake supports text and template, not {kind}"
        )
    return None


async def _whatsapp(state: FakeState, body: dict[str, Any]) -> JSONResponse:
    to, kind = body.get("to"), body.get("type", "text")
    refused = _whatsapp_refusal(body)
    if refused is not None:
        return refused
    behaviour = await state.behaviour(WHATSAPP)
    if behaviour.kind == "rate_limited":
        return _error(
            429, 130429, "(#130429) Rate limit hit", details="Cloud API message throughput has been reached.",
            headers={"Retry-After": str(int(behaviour.retry_after))},
        )  # fmt: skip
    if behaviour.kind == "server_error":
        if behaviour.status == 503:
            return _error(503, 2, "(#2) Service temporarily unavailable", transient=True)
        return _error(behaviour.status, 131000, "(#131000) Something went wrong", transient=True)
    if behaviour.kind == "permanent" or str(to).startswith("UNKNOWN"):
        return _error(400, 131026, "(#131026) Message undeliverable", details="Message failed to send.")
    message: dict[str, str] = {"id": "wamid." + _opaque(state.next_id())}
    if kind == "template":
        message["message_status"] = "accepted"
    wa_id = "".join(c for c in str(to) if c.isdigit()) or str(to)
    return JSONResponse(
        {
            "messaging_product": "whatsapp",
            "contacts": [{"input": str(to), "wa_id": wa_id}],
            "messages": [message],
        }
    )


async def _messenger(state: FakeState, body: dict[str, Any]) -> JSONResponse:
    recipient, message = body.get("recipient"), body.get("message")
    psid = recipient.get("id") if isinstance(recipient, dict) else None
    if not psid:
        return _error(400, 100, "(#100) The parameter recipient is required")
    if body.get("messaging_type") not in MESSAGING_TYPES:
        return _error(400, 100, "(#100) Param messaging_type must be one of {RESPONSE, UPDATE, MESSAGE_TAG}")
    text = message.get("text") if isinstance(message, dict) else None
    if not isinstance(text, str) or not text:
        return _error(400, 100, "(#100) Must send either message or sender action")
    if len(text) > MESSENGER_MAX_LENGTH:
        return _error(
            400,
            100,
            f"(#100) Length of param message[text] must be less than or equal to {MESSENGER_MAX_LENGTH}",
        )
    behaviour = await state.behaviour(MESSENGER)
    if behaviour.kind == "rate_limited":
        return _error(
            429, 613, "(#613) Calls to this api have exceeded the rate limit.",
            headers={"Retry-After": str(int(behaviour.retry_after))},
        )  # fmt: skip
    if behaviour.kind == "server_error":
        return _error(
            behaviour.status,
            2,
            "An unexpected error has occurred. Please retry your request later.",
            transient=True,
        )
    if str(psid).startswith("UNKNOWN"):
        return _error(400, 100, "(#100) No matching user found", subcode=2018001)
    if behaviour.kind == "permanent":
        return _error(400, 551, "This person isn't available right now.", subcode=1545041)
    return JSONResponse({"recipient_id": str(psid), "message_id": "m_" + _opaque(state.next_id())})


def _params(request: Request, raw: bytes) -> dict[str, Any]:
    """The request's parameters: a JSON body, or form/query fields whose JSON-looking values are decoded."""
    if "json" in request.headers.get("content-type", ""):
        try:
            parsed = json.loads(raw or b"null")
        except ValueError:
            return {}
        return parsed if isinstance(parsed, dict) else {}
    fields: dict[str, Any] = dict(request.query_params)
    if "form" in request.headers.get("content-type", ""):
        fields.update({k: v[0] for k, v in parse_qs(raw.decode(errors="replace")).items()})
    for key, value in list(fields.items()):
        if isinstance(value, str) and value.startswith("{"):
            with contextlib.suppress(ValueError):
                fields[key] = json.loads(value)
    return fields


def _opaque(n: int) -> str:
    return base64.urlsafe_b64encode(f"HBgLMTU1NTAxMjM0NTYVAgARGBI{n:012d}".encode()).decode().rstrip("=")


def _error(
    status: int,
    code: int,
    message: str,
    kind: str = "OAuthException",
    *,
    subcode: int | None = None,
    details: str | None = None,
    transient: bool = False,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    error: dict[str, Any] = {"message": message, "type": kind, "code": code}
    if subcode is not None:
        error["error_subcode"] = subcode
    if details is not None:
        error["error_data"] = {"messaging_product": "whatsapp", "details": details}
    if transient:
        error["is_transient"] = True
    error["fbtrace_id"] = "AFakeTrace" + base64.urlsafe_b64encode(message.encode()[:9]).decode().rstrip("=")
    return JSONResponse({"error": error}, status_code=status, headers=headers)
