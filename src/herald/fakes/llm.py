"""Fake OpenAI-compatible chat completions: the endpoint Herald's LLM agents call, served locally for tests and demos.

The agents use the official ``openai`` library with ``base_url`` pointing here (``http://host:port/v1``), so the
fake speaks that API's wire format: ``POST /v1/chat/completions`` and ``GET /v1/models``. Like the provider
fakes (:mod:`herald.providers.fakebase`) it checks each request as strictly as the real API would (bearer key,
model, message roles, every tool call answered, tool schemas; no streaming), records it whether or not it passes,
and answers according to the next scripted behaviour:

- ``reply``: an assistant message with ``content``;
- ``tool_calls``: an assistant message calling ``tool_calls`` (``{"name", "arguments"}``; a dict is sent as JSON,
  a string verbatim, so a test can send malformed arguments), ids ``call_<n>``, finish reason ``tool_calls``;
- ``rate_limited``: a 429 with ``retry-after: <retry_after>`` (default 0);
- ``server_error``: a 5xx (``status``, default 503);
- ``permanent``: a 4xx (``status``, default 400; 401 for a revoked key) whose error message is ``message``;
- ``malformed``: a 200 that is not a chat completion: ``{"unexpected": true}``, or ``content`` sent verbatim as
  the body (``'{"id": "chatcm'`` for truncated JSON);
- ``timeout``: hold the request for ``delay`` seconds (default 30), then reply.

With nothing scripted it answers ``Echo: <last user message>``, or ``Done.`` after a tool result, so a demo works
without scripting. Every successful answer reports usage: ``prompt_tokens`` = characters of all messages'
content // 4 + 1, ``completion_tokens`` = characters of the content (else of the tool call arguments) // 4 + 1,
unless a behaviour overrides them.

Script with ``POST /_fake/llm/script`` or :meth:`FakeLLMState.script`, read with ``GET /_fake/llm/requests`` or
:attr:`FakeLLMState.requests`, clear with ``POST /_fake/llm/reset`` (``POST /_fake/reset`` clears the provider
fakes only).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Self

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field, model_validator

from herald.core.errors import RequestError, Unauthorized

Kind = Literal["reply", "tool_calls", "rate_limited", "server_error", "permanent", "malformed", "timeout"]
ROLES = ("system", "user", "assistant", "tool")
MODELS = ("fake-model",)
MISSING_KEY = "missing API key: send 'Authorization: Bearer <key>'"
DEFAULT_STATUS = {"server_error": 503, "permanent": 400}
# The ``code`` OpenAI puts in its error body for a permanent status, where it has one.
PERMANENT_CODES = {401: "invalid_api_key", 404: "model_not_found"}


class ToolCall(BaseModel):
    name: str = Field(min_length=1)
    arguments: dict[str, Any] | str = Field(default_factory=dict)

    def arguments_text(self) -> str:
        """What goes on the wire: a dict as JSON, a string untouched (malformed arguments are a test case)."""
        return self.arguments if isinstance(self.arguments, str) else json.dumps(self.arguments)


class LLMBehaviour(BaseModel):
    kind: Kind = "reply"
    content: str | None = None
    tool_calls: list[ToolCall] = Field(default_factory=list)
    status: int | None = Field(default=None, ge=400, le=599)
    retry_after: float = Field(default=0.0, ge=0)
    delay: float = Field(default=30.0, ge=0, le=600)
    message: str = "invalid request"
    prompt_tokens: int | None = Field(default=None, ge=0)
    completion_tokens: int | None = Field(default=None, ge=0)
    times: int = Field(default=1, ge=1, le=100_000)

    @model_validator(mode="after")
    def _fits_kind(self) -> Self:
        """Catch a mis-scripted test at scripting time, not as a puzzling answer later."""
        if self.kind == "tool_calls" and not self.tool_calls:
            raise ValueError("a tool_calls behaviour needs at least one tool call")
        if self.status is not None and self.kind == "server_error" and self.status < 500:
            raise ValueError("a server_error status must be 5xx")
        if self.status is not None and self.kind == "permanent" and self.status >= 500:
            raise ValueError("a permanent status must be 4xx")
        return self

    def status_code(self) -> int:
        return self.status if self.status is not None else DEFAULT_STATUS.get(self.kind, 200)


@dataclass
class LLMRequest:
    """One request to ``/v1/chat/completions`` as received; ``json`` is ``None`` when the body is not JSON."""

    headers: dict[str, str]
    body: str
    json: Any = None

    def as_dict(self) -> dict[str, Any]:
        return {"headers": self.headers, "body": self.body, "json": self.json}


@dataclass
class FakeLLMState:
    behaviours: deque[LLMBehaviour] = field(default_factory=deque)
    requests: list[LLMRequest] = field(default_factory=list)
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def next_id(self) -> int:
        return next(self.ids)

    def script(self, behaviours: Iterable[LLMBehaviour | Mapping[str, Any]]) -> int:
        """Queue behaviours (models or plain dicts) after those already queued; returns the queue's length."""
        self.behaviours.extend(LLMBehaviour.model_validate(b) for b in behaviours)
        return len(self.behaviours)

    async def record(self, request: Request) -> LLMRequest:
        text = (await request.body()).decode(errors="replace")
        try:
            parsed: Any = json.loads(text)
        except ValueError:
            parsed = None
        recorded = LLMRequest(
            headers={k.lower(): v for k, v in request.headers.items()}, body=text, json=parsed
        )
        self.requests.append(recorded)
        return recorded

    async def behaviour(self) -> LLMBehaviour:
        """Pop the next scripted behaviour (``times`` counts down); ``timeout`` sleeps here, then acts as reply."""
        if not self.behaviours:
            return LLMBehaviour()
        current = self.behaviours[0]
        if current.times > 1:
            self.behaviours[0] = current.model_copy(update={"times": current.times - 1})
        else:
            self.behaviours.popleft()
        if current.kind == "timeout":
            await asyncio.sleep(current.delay)
            return current.model_copy(update={"kind": "reply"})
        return current

    def reset(self) -> None:
        self.behaviours.clear()
        self.requests.clear()


def router(state: FakeLLMState) -> APIRouter:
    api = APIRouter(tags=["fake llm"])

    @api.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Response:
        recorded = await state.record(request)
        try:
            body = check_request(recorded)
        except RequestError as problem:
            return error(problem.status, problem.detail, "invalid_request_error", param=problem.field)
        return answer(state, body, await state.behaviour())

    @api.get("/v1/models")
    async def models(request: Request) -> JSONResponse:
        if not has_key(request.headers):
            return error(401, MISSING_KEY, "invalid_request_error", code="invalid_api_key")
        data = [{"id": name, "object": "model", "created": 0, "owned_by": "herald-fake"} for name in MODELS]
        return JSONResponse({"object": "list", "data": data})

    @api.post("/_fake/llm/script")
    async def script(behaviours: list[LLMBehaviour]) -> dict[str, int]:
        return {"queued": state.script(behaviours)}

    @api.get("/_fake/llm/requests")
    async def requests() -> list[dict[str, Any]]:
        return [r.as_dict() for r in state.requests]

    @api.post("/_fake/llm/reset")
    async def reset() -> dict[str, bool]:
        state.reset()
        return {"reset": True}

    return api


# --- request checks -------------------------------------------------------------------------------------------


def check_request(recorded: LLMRequest) -> dict[str, Any]:
    """The request's body if the real API would take it; else a :class:`RequestError` (400, or 401 without a
    key) naming the first problem, as the real API's error message would."""
    if not has_key(recorded.headers):
        raise Unauthorized(MISSING_KEY)
    body = recorded.json
    if not isinstance(body, dict):
        raise RequestError("the request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise RequestError("'model' must be a non-empty string", field="model")
    if body.get("stream") is True:
        raise RequestError("streaming is not supported by the fake", field="stream")
    _check_messages(body.get("messages"))
    if "tools" in body:
        _check_tools(body["tools"])
    for name in ("max_tokens", "max_completion_tokens"):
        value = body.get(name)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise RequestError(f"'{name}' must be a positive integer", field=name)
    return body


def has_key(headers: Mapping[str, str]) -> bool:
    """Any non-empty bearer key will do: a bad key is scripted (``permanent`` with status 401), not guessed."""
    scheme, _, key = headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and bool(key.strip())


def _check_messages(messages: Any) -> None:
    """Roles and contents, and the tool-call protocol: each assistant tool call is answered by a ``tool``
    message (naming its ``tool_call_id``) before anything else is said."""
    if not isinstance(messages, list) or not messages:
        raise RequestError("'messages' must be a non-empty list", field="messages")
    pending: dict[str, int] = {}  # call id -> index of the assistant message that made it
    answered: set[str] = set()
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        role = _check_message(message, where)
        if role == "tool":
            call_id = message["tool_call_id"]
            if call_id not in pending:
                again = (
                    "answers it a second time"
                    if call_id in answered
                    else "matches no earlier assistant tool call"
                )
                raise RequestError(f"{where}.tool_call_id {call_id!r} {again}", field=f"{where}.tool_call_id")
            del pending[call_id]
            answered.add(call_id)
            continue
        if pending:
            raise RequestError(f"{_unanswered(pending)} before {where} ({role})", field=where)
        if role == "assistant":
            pending = dict.fromkeys(_check_assistant_calls(message, where), index)
    if pending:
        raise RequestError(f"{_unanswered(pending)} at the end of the conversation", field="messages")


def _unanswered(pending: dict[str, int]) -> str:
    calls = ", ".join(pending)
    origins = ", ".join(f"messages[{i}]" for i in sorted(set(pending.values())))
    return f"tool call(s) {calls} of {origins} not answered by a tool message"


def _check_message(message: Any, where: str) -> str:
    """One message's own shape; returns its role."""
    if not isinstance(message, dict):
        raise RequestError(f"{where} must be an object", field=where)
    role = message.get("role")
    if role not in ROLES:
        raise RequestError(
            f"{where}.role must be one of {', '.join(ROLES)} (got {role!r})", field=f"{where}.role"
        )
    content = message.get("content")
    if role != "assistant" and not isinstance(content, str | list):
        raise RequestError(
            f"{where}.content must be a string or a list of content parts", field=f"{where}.content"
        )
    if role == "tool" and not (isinstance(message.get("tool_call_id"), str) and message["tool_call_id"]):
        raise RequestError(f"{where} is a tool message without a tool_call_id", field=f"{where}.tool_call_id")
    return str(role)


def _check_assistant_calls(message: dict[str, Any], where: str) -> list[str]:
    """The ids of an assistant message's tool calls, each in the wire shape (arguments as a JSON string)."""
    calls = message.get("tool_calls") or []
    if not isinstance(calls, list):
        raise RequestError(f"{where}.tool_calls must be a list", field=f"{where}.tool_calls")
    ids: list[str] = []
    for number, call in enumerate(calls):
        at = f"{where}.tool_calls[{number}]"
        function = call.get("function") if isinstance(call, dict) else None
        if (
            not isinstance(call, dict)
            or not isinstance(call.get("id"), str)
            or call.get("type") != "function"
            or not isinstance(function, dict)
            or not isinstance(function.get("name"), str)
            or not isinstance(function.get("arguments"), str)
        ):
            raise RequestError(
                f'{at} must be {{"id": str, "type": "function", "function": {{"name": str, "arguments": str}}}}',
                field=at,
            )
        ids.append(call["id"])
    return ids


def _check_tools(tools: Any) -> None:
    if not isinstance(tools, list):
        raise RequestError("'tools' must be a list", field="tools")
    for number, tool in enumerate(tools):
        at = f"tools[{number}]"
        if not isinstance(tool, dict) or tool.get("type") != "function":
            raise RequestError(f"{at}.type must be 'function'", field=f"{at}.type")
        function = tool.get("function")
        if not isinstance(function, dict):
            raise RequestError(f"{at}.function must be an object", field=f"{at}.function")
        name = function.get("name")
        if not isinstance(name, str) or not name:
            raise RequestError(f"{at}.function.name must be a non-empty string", field=f"{at}.function.name")
        if "description" in function and not isinstance(function["description"], str):
            raise RequestError(
                f"{at}.function.description must be a string", field=f"{at}.function.description"
            )
        parameters = function.get("parameters")
        if not isinstance(parameters, dict) or parameters.get("type") != "object":
            raise RequestError(
                f'{at}.function.parameters must be a JSON schema with "type": "object"',
                field=f"{at}.function.parameters",
            )


# --- answers --------------------------------------------------------------------------------------------------


def answer(state: FakeLLMState, body: dict[str, Any], behaviour: LLMBehaviour) -> Response:
    """The response ``behaviour`` calls for to a request that passed the checks."""
    status = behaviour.status_code()
    if behaviour.kind == "rate_limited":
        headers = {"retry-after": f"{behaviour.retry_after:g}"}
        message = "Rate limit reached for requests (fake)"
        return error(429, message, "rate_limit_error", code="rate_limit_exceeded", headers=headers)
    if behaviour.kind == "server_error":
        return error(status, "The server had an error while processing your request (fake).", "server_error")
    if behaviour.kind == "permanent":
        return error(status, behaviour.message, "invalid_request_error", code=PERMANENT_CODES.get(status))
    if behaviour.kind == "malformed":
        raw = behaviour.content if behaviour.content is not None else '{"unexpected": true}'
        return Response(raw, media_type="application/json")
    return JSONResponse(completion(state, body, behaviour))


def completion(state: FakeLLMState, body: dict[str, Any], behaviour: LLMBehaviour) -> dict[str, Any]:
    """A ``chat.completion`` object: a reply, or tool calls when the behaviour makes them."""
    messages: list[dict[str, Any]] = body["messages"]
    message: dict[str, Any] = {"role": "assistant"}
    if behaviour.kind == "tool_calls":
        calls = [_wire_call(state, call) for call in behaviour.tool_calls]
        message.update(content=behaviour.content, tool_calls=calls)
        generated = behaviour.content or "".join(call["function"]["arguments"] for call in calls)
        finish = "tool_calls"
    else:
        content = behaviour.content if behaviour.content is not None else default_reply(messages)
        message["content"] = generated = content
        finish = "stop"
    prompt = behaviour.prompt_tokens
    if prompt is None:
        prompt = sum(len(text_of(m.get("content"))) for m in messages) // 4 + 1
    completion_tokens = behaviour.completion_tokens
    if completion_tokens is None:
        completion_tokens = len(generated) // 4 + 1
    return {
        "id": f"chatcmpl-{state.next_id()}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body["model"],
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt + completion_tokens,
        },
    }


def _wire_call(state: FakeLLMState, call: ToolCall) -> dict[str, Any]:
    return {
        "id": f"call_{state.next_id()}",
        "type": "function",
        "function": {"name": call.name, "arguments": call.arguments_text()},
    }


def default_reply(messages: list[dict[str, Any]]) -> str:
    """``Done.`` after a tool result, else an echo of the last user message: enough for an unscripted demo."""
    if messages[-1].get("role") == "tool":
        return "Done."
    users = [m for m in messages if m.get("role") == "user"]
    return f"Echo: {text_of(users[-1].get('content')) if users else ''}"


def text_of(content: Any) -> str:
    """A message's text: the string, or the text parts of a list of content parts joined."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            part["text"] for part in content if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return ""


def error(
    status: int,
    message: str,
    kind: str,
    *,
    param: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """An error in OpenAI's shape, which the ``openai`` library turns into the matching exception."""
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return JSONResponse(body, status_code=status, headers=headers)


__all__ = ["FakeLLMState", "LLMBehaviour", "LLMRequest", "ToolCall", "router"]
