"""Fake Twilio REST API: ``POST /2010-04-01/Accounts/{AccountSid}/Messages.json`` and ``.../Calls.json``.

Checks HTTP Basic auth (the username must be the account sid in the path), the form fields and, for calls, that
``Twiml`` is a ``<Response>`` document. Twilio's magic test numbers answer their documented errors:
+15005550001 invalid (21211), +15005550002 not routable (21612), +15005550004 blocked/unsubscribed (21610),
+15005550009 not a mobile (21614).
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
import xml.etree.ElementTree as ET
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from herald.providers.fakebase import FakeState, token_is_valid

PROVIDER = "twilio"
_E164 = re.compile(r"^\+[1-9]\d{7,14}$")
MAGIC_NUMBERS = {
    "+15005550001": (21211, "The 'To' number +15005550001 is not a valid phone number."),
    "+15005550002": (21612, "The 'To' phone number is not currently reachable via SMS."),
    "+15005550004": (21610, "Attempt to send to unsubscribed recipient"),
    "+15005550009": (21614, "'To' number is not a valid mobile number"),
}


def router(state: FakeState) -> APIRouter:
    api = APIRouter(tags=["fake twilio"])

    @api.post("/2010-04-01/Accounts/{account_sid}/Messages.json")
    async def create_message(account_sid: str, request: Request) -> JSONResponse:
        recorded = await state.record(PROVIDER, request)
        if not _authenticated(request, account_sid):
            return _error(20003, "Authenticate", 401)
        form = _form(recorded.form)
        to, body = form.get("To", ""), form.get("Body", "")
        sender, service = form.get("From", ""), form.get("MessagingServiceSid", "")
        if not to:
            return _error(21604, "A 'To' phone number is required.", 400)
        if not sender and not service:
            return _error(21603, "A 'From' phone number is required.", 400)
        if not body:
            return _error(21602, "Message body is required.", 400)
        whatsapp = to.startswith("whatsapp:")
        if sender and whatsapp != sender.startswith("whatsapp:"):
            return _error(63007, "Twilio could not find a Channel with the specified From address", 400)
        number = to.removeprefix("whatsapp:")
        if not _E164.match(number):
            return _error(21211, f"The 'To' number {number} is not a valid phone number.", 400)
        if len(body) > 1_600:
            return _error(21617, "The concatenated message body exceeds the 1600 character limit.", 400)
        if number in MAGIC_NUMBERS:
            return _error(*MAGIC_NUMBERS[number], 400)
        behaviour = await state.behaviour(PROVIDER)
        if behaviour.kind == "rate_limited":
            return _error(20429, "Too Many Requests", 429, {"Retry-After": str(int(behaviour.retry_after))})
        if behaviour.kind == "server_error":
            return _error(20500, "Internal Server Error", behaviour.status)
        if behaviour.kind == "permanent":
            if whatsapp:
                return _error(63016, "Failed to send freeform message because you are outside the allowed window.", 400)  # fmt: skip
            return _error(21211, f"The 'To' number {number} is not a valid phone number.", 400)
        sid = _sid("SM", state)
        return JSONResponse(
            {
                "sid": sid, "account_sid": account_sid, "to": to, "from": sender or None,
                "messaging_service_sid": service or None, "body": body, "status": "queued",
                "num_segments": "1", "direction": "outbound-api", "error_code": None, "error_message": None,
                "uri": f"/2010-04-01/Accounts/{account_sid}/Messages/{sid}.json",
            },
            status_code=201,
        )  # fmt: skip

    @api.post("/2010-04-01/Accounts/{account_sid}/Calls.json")
    async def create_call(account_sid: str, request: Request) -> JSONResponse:
        recorded = await state.record(PROVIDER, request)
        if not _authenticated(request, account_sid):
            return _error(20003, "Authenticate", 401)
        form = _form(recorded.form)
        to, sender, twiml = form.get("To", ""), form.get("From", ""), form.get("Twiml", "")
        if not to:
            return _error(21201, "No 'To' number is specified", 400)
        if not sender:
            return _error(21213, "No 'From' number is specified", 400)
        if not twiml and not form.get("Url"):
            return _error(21205, "Url parameter is required.", 400)
        if not _E164.match(to):
            return _error(21211, f"The 'To' number {to} is not a valid phone number.", 400)
        if twiml and not _valid_twiml(twiml):
            return _error(12100, "Document parse failure", 400)
        if len(twiml) > 4_000:
            return _error(13225, "The Twiml parameter exceeds 4000 characters", 400)
        if to in MAGIC_NUMBERS:
            return _error(*MAGIC_NUMBERS[to], 400)
        behaviour = await state.behaviour(PROVIDER)
        if behaviour.kind == "rate_limited":
            return _error(20429, "Too Many Requests", 429, {"Retry-After": str(int(behaviour.retry_after))})
        if behaviour.kind == "server_error":
            return _error(20500, "Internal Server Error", behaviour.status)
        if behaviour.kind == "permanent":
            return _error(21211, f"The 'To' number {to} is not a valid phone number.", 400)
        sid = _sid("CA", state)
        return JSONResponse(
            {
                "sid": sid, "account_sid": account_sid, "to": to, "from": sender, "status": "queued",
                "direction": "outbound-api", "uri": f"/2010-04-01/Accounts/{account_sid}/Calls/{sid}.json",
            },
            status_code=201,
        )  # fmt: skip

    return api


def _authenticated(request: Request, account_sid: str) -> bool:
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return False
    try:
        username, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    return username == account_sid and token_is_valid(password)


def _form(form: dict[str, list[str]] | None) -> dict[str, str]:
    return {key: values[0] for key, values in (form or {}).items() if values}


def _valid_twiml(twiml: str) -> bool:
    try:
        root = ET.fromstring(twiml)  # noqa: S314 - our own test fake parsing what Herald sent
    except ET.ParseError:
        return False
    return root.tag == "Response"


def _sid(prefix: str, state: FakeState) -> str:
    return f"{prefix}{state.next_id():08x}{secrets.token_hex(12)}"


def _error(code: int, message: str, status: int, headers: dict[str, str] | None = None) -> JSONResponse:
    body: dict[str, Any] = {
        "code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}", "status": status,
    }  # fmt: skip
    return JSONResponse(body, status_code=status, headers=headers)
