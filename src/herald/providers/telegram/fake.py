"""Fake Telegram Bot API: ``POST /bot<token>/{sendMessage,editMessageText,answerCallbackQuery}``.

Parameters come as JSON, form or query parameters, as on the real one (``reply_markup`` as an object or as a JSON
string). ``sendMessage`` checks an inline keyboard's shape (an array of button rows; each button with ``text`` and
``callback_data`` of 1-64 bytes, else ``BUTTON_DATA_INVALID``) and remembers what it sent, so ``editMessageText``
can answer "message to edit not found" for a message it never sent and "message is not modified" for an edit that
changes neither text nor keyboard. ``answerCallbackQuery`` needs ``callback_query_id``. Scripted behaviours
(rate limits, server errors, blocked users) apply to all three.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections import OrderedDict
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from herald.providers.fakebase import FakeState, Recorded, token_is_valid

PROVIDER = "telegram"
MAX_LENGTH = 4096
MAX_CALLBACK_DATA = 64  # bytes
MAX_ANSWER_TEXT = 200
REMEMBERED = 10_000  # sent messages kept for editMessageText (oldest forgotten first)


def router(state: FakeState) -> APIRouter:
    api = APIRouter(tags=["fake telegram"])
    # (chat id, message id) -> (text, reply_markup) of the messages sent, for editMessageText.
    sent: OrderedDict[tuple[str, int], tuple[str, Any]] = OrderedDict()

    @api.post("/bot{token}/sendMessage")
    async def send_message(token: str, request: Request) -> JSONResponse:
        recorded = await state.record(PROVIDER, request)
        if not token_is_valid(token):
            return _error(401, "Unauthorized")
        params = _params(recorded)
        chat_id, text = params.get("chat_id"), params.get("text")
        refused = _text_refusal(chat_id, text) or _markup_refusal(params.get("reply_markup"))
        if refused is not None:
            return refused
        failed = await _scripted(state, chat_id)
        if failed is not None:
            return failed
        message_id = state.next_id()
        markup = params.get("reply_markup")
        sent[(str(chat_id), message_id)] = (str(text), markup)
        while len(sent) > REMEMBERED:
            sent.popitem(last=False)
        return _ok(_message(token, chat_id, message_id, str(text), markup))

    @api.post("/bot{token}/editMessageText")
    async def edit_message_text(token: str, request: Request) -> JSONResponse:
        recorded = await state.record(PROVIDER, request)
        if not token_is_valid(token):
            return _error(401, "Unauthorized")
        params = _params(recorded)
        chat_id, text, message_id = params.get("chat_id"), params.get("text"), params.get("message_id")
        if params.get("inline_message_id") is not None:
            return _error(400, "Bad Request: the fake edits chat messages, not inline messages")
        refused = _text_refusal(chat_id, text) or _markup_refusal(params.get("reply_markup"))
        if refused is not None:
            return refused
        if not str(message_id or "").isdigit():
            return _error(400, "Bad Request: message identifier is not specified")
        failed = await _scripted(state, chat_id)
        if failed is not None:
            return failed
        key = (str(chat_id), int(str(message_id)))
        if key not in sent:
            return _error(400, "Bad Request: message to edit not found")
        markup = params.get("reply_markup")
        if sent[key] == (text, markup):
            return _error(
                400,
                "Bad Request: message is not modified: specified new message content and reply markup are "
                "exactly the same as a current content and reply markup of the message",
            )
        sent[key] = (str(text), markup)
        edited = _message(token, chat_id, key[1], str(text), markup)
        return _ok({**edited, "edit_date": int(time.time())})

    @api.post("/bot{token}/answerCallbackQuery")
    async def answer_callback_query(token: str, request: Request) -> JSONResponse:
        recorded = await state.record(PROVIDER, request)
        if not token_is_valid(token):
            return _error(401, "Unauthorized")
        params = _params(recorded)
        if not params.get("callback_query_id"):
            return _error(400, "Bad Request: query_id is empty")
        text = params.get("text")
        if text is not None and (not isinstance(text, str) or len(text) > MAX_ANSWER_TEXT):
            return _error(400, "Bad Request: MESSAGE_TOO_LONG")
        failed = await _scripted(state, None)
        if failed is not None:
            return failed
        return _ok(True)

    return api


def _params(recorded: Recorded) -> dict[str, Any]:
    """Query, then JSON or form parameters; a JSON-encoded ``reply_markup`` string is decoded."""
    params: dict[str, Any] = {k: v[0] for k, v in recorded.query.items()}
    if isinstance(recorded.json, dict):
        params.update(recorded.json)
    elif recorded.form is not None:
        params.update({k: v[0] for k, v in recorded.form.items()})
    markup = params.get("reply_markup")
    if isinstance(markup, str):
        with contextlib.suppress(ValueError):
            params["reply_markup"] = json.loads(markup)
    return params


def _text_refusal(chat_id: Any, text: Any) -> JSONResponse | None:
    if chat_id is None or str(chat_id) == "":
        return _error(400, "Bad Request: chat_id is empty")
    if not isinstance(text, str) or not text.strip():
        return _error(400, "Bad Request: message text is empty")
    if len(text) > MAX_LENGTH:
        return _error(400, "Bad Request: message is too long")
    return None


def _markup_refusal(markup: Any) -> JSONResponse | None:
    """Telegram's refusal of a malformed inline keyboard, or None (no markup, or a well-formed one)."""
    if markup is None:
        return None
    rows = markup.get("inline_keyboard") if isinstance(markup, dict) else None
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        return _error(400, "Bad Request: can't parse inline keyboard button: field \"inline_keyboard\" must be an Array of Arrays")  # fmt: skip
    for button in (button for row in rows for button in row):
        if not isinstance(button, dict) or not isinstance(button.get("text"), str) or not button["text"]:
            return _error(400, "Bad Request: can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard")  # fmt: skip
        data = button.get("callback_data")
        if not isinstance(data, str) or not 1 <= len(data.encode()) <= MAX_CALLBACK_DATA:
            return _error(400, "Bad Request: BUTTON_DATA_INVALID")
    return None


async def _scripted(state: FakeState, chat_id: Any) -> JSONResponse | None:
    """The failure a scripted behaviour or an unknown chat stands for, or None to go on."""
    behaviour = await state.behaviour(PROVIDER)
    if behaviour.kind == "rate_limited":
        seconds = int(behaviour.retry_after)
        return _error(429, f"Too Many Requests: retry after {seconds}", {"retry_after": seconds})
    if behaviour.kind == "server_error":
        return _error(behaviour.status, "Internal Server Error")
    if chat_id is not None and not _known_chat(chat_id):
        return _error(400, "Bad Request: chat not found")
    if behaviour.kind == "permanent":
        return _error(403, "Forbidden: bot was blocked by the user")
    return None


def _message(token: str, chat_id: Any, message_id: int, text: str, markup: Any) -> dict[str, Any]:
    result: dict[str, Any] = {
        "message_id": message_id,
        "from": {"id": _bot_id(token), "is_bot": True, "first_name": "Herald fake bot"},
        "chat": {
            "id": _chat(chat_id),
            "type": "private" if str(chat_id).lstrip("-").isdigit() else "channel",
        },
        "date": int(time.time()),
        "text": text,
    }
    if markup is not None:
        result["reply_markup"] = markup
    return result


def _known_chat(chat_id: Any) -> bool:
    """Numeric ids and ``@channelusername`` exist; ``UNKNOWN...`` (and anything else) is "chat not found"."""
    text = str(chat_id)
    return text.lstrip("-").isdigit() or (text.startswith("@") and not text[1:].startswith("UNKNOWN"))


def _chat(chat_id: Any) -> int | str:
    text = str(chat_id)
    return int(text) if text.lstrip("-").isdigit() else text


def _bot_id(token: str) -> int:
    head = token.partition(":")[0]
    return int(head) if head.isdigit() else 1


def _ok(result: Any) -> JSONResponse:
    return JSONResponse({"ok": True, "result": result})


def _error(status: int, description: str, parameters: dict[str, Any] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if parameters:
        body["parameters"] = parameters
    return JSONResponse(body, status_code=status)
