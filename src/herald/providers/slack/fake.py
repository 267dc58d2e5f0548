"""Fake Slack Web API: ``POST /api/chat.postMessage`` (with Block Kit ``blocks`` checked when given),
``POST /api/chat.update`` (``message_not_found`` for a ``ts`` that is not one this fake writes) and
``POST /api/conversations.open`` (a user's DM: ``D`` + the user id).

Every call must be a JSON body sent as exactly ``application/json; charset=utf-8``, or a form. Slack itself
still reads a JSON body without the charset and only adds a ``missing_charset`` warning to the answer; this fake
refuses it (``{"ok": false, "error": "missing_charset"}``) so a request that would earn the warning fails a test.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from herald.providers.fakebase import FakeState, Recorded, bearer, token_is_valid

PROVIDER = "slack"
JSON_UTF8 = "application/json; charset=utf-8"
FORM = "application/x-www-form-urlencoded"
TS = re.compile(r"\d{9,10}\.\d{6}")  # a message's ts as Slack writes it; any other is no message of ours
BLOCK_TYPES = frozenset({"section", "actions", "context", "divider", "header", "image", "rich_text"})


def router(state: FakeState) -> APIRouter:
    api = APIRouter(tags=["fake slack"])

    @api.post("/api/chat.postMessage")
    async def post_message(request: Request) -> JSONResponse:
        recorded = await state.record(PROVIDER, request)
        if not token_is_valid(bearer(request)):
            return _error("invalid_auth" if bearer(request) else "not_authed")
        refused = _content_type_error(recorded)
        if refused:
            return _error(refused)
        body = _body(recorded)
        channel, text = body.get("channel"), body.get("text")
        if not channel:
            return _error("channel_not_found")
        if not text:
            return _error("no_text")
        if len(str(text)) > 40_000:
            return _error("msg_too_long")
        if "blocks" in body and not _valid_blocks(body["blocks"]):
            return _error("invalid_blocks")
        behaviour = await state.behaviour(PROVIDER)
        if behaviour.kind == "rate_limited":
            return JSONResponse(
                {"ok": False, "error": "ratelimited"}, status_code=429,
                headers={"Retry-After": str(int(behaviour.retry_after))},
            )  # fmt: skip
        if behaviour.kind == "server_error":
            return JSONResponse({"ok": False, "error": "internal_error"}, status_code=behaviour.status)
        if behaviour.kind == "permanent" or str(channel).startswith("UNKNOWN"):
            return _error("channel_not_found")
        ts = f"{int(time.time())}.{state.next_id():06d}"
        return JSONResponse({"ok": True, "channel": channel, "ts": ts, "message": {"text": text, "ts": ts}})

    @api.post("/api/chat.update")
    async def update(request: Request) -> JSONResponse:
        recorded = await state.record(PROVIDER, request)
        if not token_is_valid(bearer(request)):
            return _error("invalid_auth" if bearer(request) else "not_authed")
        refused = _content_type_error(recorded)
        if refused:
            return _error(refused)
        body = _body(recorded)
        channel, ts, text = body.get("channel"), body.get("ts"), body.get("text")
        if not channel:
            return _error("channel_not_found")
        if not ts:
            return _error("invalid_arguments")
        if not text and not body.get("blocks"):
            return _error("no_text")
        if len(str(text or "")) > 40_000:
            return _error("msg_too_long")
        if "blocks" in body and not _valid_blocks(body["blocks"]):
            return _error("invalid_blocks")
        behaviour = await state.behaviour(PROVIDER)
        if behaviour.kind == "rate_limited":
            return JSONResponse(
                {"ok": False, "error": "ratelimited"}, status_code=429,
                headers={"Retry-After": str(int(behaviour.retry_after))},
            )  # fmt: skip
        if behaviour.kind == "server_error":
            return JSONResponse({"ok": False, "error": "internal_error"}, status_code=behaviour.status)
        if behaviour.kind == "permanent" or not TS.fullmatch(str(ts)):
            return _error("message_not_found")
        return JSONResponse(
            {"ok": True, "channel": channel, "ts": ts, "text": text, "message": {"text": text, "ts": ts}}
        )

    @api.post("/api/conversations.open")
    async def open_conversation(request: Request) -> JSONResponse:
        recorded = await state.record(PROVIDER, request)
        if not token_is_valid(bearer(request)):
            return _error("invalid_auth" if bearer(request) else "not_authed")
        refused = _content_type_error(recorded)
        if refused:
            return _error(refused)
        users = str(_body(recorded).get("users") or "")
        if not users:
            return _error("users_list_not_supplied")
        if users[:1] not in ("U", "W") or "," in users or users.startswith(("UNKNOWN", "WUNKNOWN")):
            return _error("user_not_found")
        return JSONResponse({"ok": True, "channel": {"id": "D" + users[1:]}})

    return api


def _content_type_error(recorded: Recorded) -> str | None:
    """Slack's error name for a body not sent as UTF-8 JSON or a form, else None."""
    content_type = " ".join(recorded.headers.get("content-type", "").lower().split())
    if content_type == JSON_UTF8 or content_type.startswith(FORM):
        return None
    if content_type == "application/json":
        return "missing_charset"
    return "invalid_form_data"


def _body(recorded: Recorded) -> dict[str, Any]:
    """The call's arguments, from a JSON body or form fields (Slack takes either)."""
    if recorded.form is not None:
        return {k: v[0] for k, v in recorded.form.items()}
    return recorded.json if isinstance(recorded.json, dict) else {}


def _valid_blocks(blocks: Any) -> bool:
    """Blocks as Slack checks them, for the kinds Herald sends: sections with text, actions of buttons."""
    if isinstance(blocks, str):  # form-encoded calls pass blocks as a JSON string
        try:
            blocks = json.loads(blocks)
        except ValueError:
            return False
    if not isinstance(blocks, list) or len(blocks) > 50:
        return False
    for block in blocks:
        if not isinstance(block, dict) or block.get("type") not in BLOCK_TYPES:
            return False
        if block["type"] == "section" and not _valid_text(block.get("text"), 3_000, ("mrkdwn", "plain_text")):
            return False
        if block["type"] == "actions":
            elements = block.get("elements")
            if not isinstance(elements, list) or not 1 <= len(elements) <= 25:
                return False
            if not all(_valid_button(element) for element in elements):
                return False
    return True


def _valid_button(element: Any) -> bool:
    if not isinstance(element, dict) or element.get("type") != "button":
        return False
    if not _valid_text(element.get("text"), 75, ("plain_text",)):
        return False
    value, action_id = element.get("value"), element.get("action_id")
    if not (isinstance(value, str) and 1 <= len(value) <= 2_000):
        return False
    if not (isinstance(action_id, str) and 1 <= len(action_id) <= 255):
        return False
    return element.get("style", "primary") in ("primary", "danger")


def _valid_text(text: Any, limit: int, kinds: tuple[str, ...]) -> bool:
    return (
        isinstance(text, dict)
        and text.get("type") in kinds
        and isinstance(text.get("text"), str)
        and 1 <= len(text["text"]) <= limit
    )


def _error(name: str) -> JSONResponse:
    return JSONResponse({"ok": False, "error": name})
