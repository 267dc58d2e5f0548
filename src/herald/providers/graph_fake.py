"""Fake Meta Graph API: ``POST /v{N}/{object_id}/messages``, serving both WhatsApp Cloud API and Messenger.

The two share the path shape, so the body tells them apart: ``messaging_product == "whatsapp"`` is WhatsApp
(recorded and scripted as provider ``whatsapp_cloud``), anything else is the Messenger Send API (provider
``messenger``). Auth is a Bearer token or an ``access_token`` parameter, as on the real Graph API. Errors use
the Graph shape ``{"error": {"message", "type", "code", "error_subcode", "error_data", "fbtrace_id"}}``.

WhatsApp bodies may be ``text``, ``template`` or ``interactive`` reply buttons (``"button"``: 1-3 buttons, ids
of 1-256 characters, titles of 1-20, both unique) or a list (``"list"``: a button label of 1-20 characters, at
most 10 sections and 10 rows in all, row ids of 1-200 characters, unique, titles of 1-24, descriptions of at most
72); the body text of either takes 1-1,024 characters. A value outside those limits is refused as Meta does, with
HTTP 400 and code 131009 "Parameter value is not valid"; a missing one with 131008.
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
INTERACTIVE_BODY_MAX = 1024
MAX_BUTTONS, BUTTON_ID_MAX, BUTTON_TITLE_MAX = 3, 256, 20
MAX_ROWS, ROW_ID_MAX, ROW_TITLE_MAX, ROW_DESCRIPTION_MAX, SECTION_TITLE_MAX = 10, 200, 24, 72, 24
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
    elif kind == "interactive":
        return _interactive_refusal(body.get("interactive"))
    else:
        return _error(
            400, 100, "(#100) Invalid parameter",
            details=f"the fake supports text, template and interactive, not {kind}",
        )  # fmt: skip
    return None


def _missing(details: str) -> JSONResponse:
    return _error(400, 131008, "(#131008) Required parameter is missing", details=details)


def _invalid(details: str) -> JSONResponse:
    return _error(400, 131009, "(#131009) Parameter value is not valid", details=details)


def _text(value: Any, low: int, high: int) -> bool:
    return isinstance(value, str) and low <= len(value) <= high


def _interactive_refusal(interactive: Any) -> JSONResponse | None:
    """The refusal of a malformed ``interactive`` object (reply buttons or a list), or None."""
    if not isinstance(interactive, dict) or not interactive.get("type"):
        return _missing("interactive['type'] is required")
    kind, body, action = interactive["type"], interactive.get("body"), interactive.get("action")
    if kind not in ("button", "list"):
        return _invalid(f"the fake supports interactive button and list, not {kind}")
    text = body.get("text") if isinstance(body, dict) else None
    if not isinstance(text, str) or not text:
        return _missing("interactive['body']['text'] is required")
    if len(text) > INTERACTIVE_BODY_MAX:
        return _invalid(f"Body text length invalid. Max length is {INTERACTIVE_BODY_MAX}")
    if not isinstance(action, dict):
        return _missing("interactive['action'] is required")
    if kind == "button":
        return _buttons_refusal(action.get("buttons"))
    return _list_refusal(action)


def _buttons_refusal(buttons: Any) -> JSONResponse | None:
    if not isinstance(buttons, list) or not buttons:
        return _missing("interactive['action']['buttons'] is required")
    if len(buttons) > MAX_BUTTONS:
        return _invalid(f"Buttons count invalid. Min allowed buttons: 1, Max allowed buttons: {MAX_BUTTONS}")
    ids, titles = [], []
    for button in buttons:
        reply = button.get("reply") if isinstance(button, dict) else None
        if not isinstance(button, dict) or button.get("type") != "reply" or not isinstance(reply, dict):
            return _invalid("Button type must be reply, with a reply object")
        if not _text(reply.get("id"), 1, BUTTON_ID_MAX):
            return _invalid(f"Button id length invalid. Min length: 1, Max length: {BUTTON_ID_MAX}")
        if not _text(reply.get("title"), 1, BUTTON_TITLE_MAX):
            return _invalid(f"Button title length invalid. Min length: 1, Max length: {BUTTON_TITLE_MAX}")
        ids.append(reply["id"])
        titles.append(reply["title"])
    if len(set(ids)) != len(ids) or len(set(titles)) != len(titles):
        return _invalid("Button ids and titles must be unique")
    return None


def _list_refusal(action: dict[str, Any]) -> JSONResponse | None:
    sections = action.get("sections")
    if not _text(action.get("button"), 1, BUTTON_TITLE_MAX):
        return _invalid(f"Button label length invalid. Min length: 1, Max length: {BUTTON_TITLE_MAX}")
    if not isinstance(sections, list) or not sections:
        return _missing("interactive['action']['sections'] is required")
    rows = [row for section in sections if isinstance(section, dict) for row in section.get("rows") or []]
    if len(sections) > MAX_ROWS or not all(isinstance(s, dict) and s.get("rows") for s in sections):
        return _invalid(f"Sections count invalid, or a section without rows. Max sections: {MAX_ROWS}")
    for section in sections:
        title = section.get("title")
        if title is None and len(sections) > 1:
            return _missing("Section title is required when there are several sections")
        if title is not None and not _text(title, 1, SECTION_TITLE_MAX):
            return _invalid(f"Section title length invalid. Max length: {SECTION_TITLE_MAX}")
    if len(rows) > MAX_ROWS:
        return _invalid(f"Total row count exceed max allowed count: {MAX_ROWS}")
    for row in rows:
        if not isinstance(row, dict) or not _text(row.get("id"), 1, ROW_ID_MAX):
            return _invalid(f"Row id length invalid. Min length: 1, Max length: {ROW_ID_MAX}")
        if not _text(row.get("title"), 1, ROW_TITLE_MAX):
            return _invalid(f"Row title length invalid. Min length: 1, Max length: {ROW_TITLE_MAX}")
        if not _text(row.get("description", ""), 0, ROW_DESCRIPTION_MAX):
            return _invalid(f"Row description length invalid. Max length: {ROW_DESCRIPTION_MAX}")
    if len({row["id"] for row in rows}) != len(rows):
        return _invalid("Row ids must be unique")
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
