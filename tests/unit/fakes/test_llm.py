"""The fake OpenAI-compatible server: scripted behaviours, the default echo, request checks, usage figures, and
answers the official ``openai`` library parses (it is what the LLM agents will call it with)."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import openai
import pytest
from fastapi import FastAPI
from pydantic import ValidationError

from herald.fakes import FakeLLMState, create_fake_app
from herald.fakes.llm import LLMBehaviour
from herald.providers.fakebase import FakeState

AUTH = {"authorization": "Bearer sk-test"}
USER = {"role": "user", "content": "What is the weather in Oslo?"}
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
CALL = {
    "id": "call_9",
    "type": "function",
    "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
}
ASKED = {"role": "assistant", "content": None, "tool_calls": [CALL]}
ANSWERED = {"role": "tool", "tool_call_id": "call_9", "content": "4°C, rain"}


@pytest.fixture
def state() -> FakeLLMState:
    return FakeLLMState()


@pytest.fixture
def provider_state() -> FakeState:
    return FakeState()


@pytest.fixture
def app(state: FakeLLMState, provider_state: FakeState) -> FastAPI:
    return create_fake_app(provider_state, llm_state=state)


@pytest.fixture
async def http(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://fake") as client:
        yield client


@pytest.fixture
async def llm(app: FastAPI) -> AsyncIterator[openai.AsyncOpenAI]:
    """The official client over the app in process; ``max_retries=0`` so a scripted 429 or 5xx surfaces once."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as inner:
        yield openai.AsyncOpenAI(
            base_url="http://fake/v1", api_key="sk-test", http_client=inner, max_retries=0
        )


async def chat(http: httpx.AsyncClient, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    content = body if isinstance(body, str) else json.dumps(body)
    headers = AUTH if headers is None else headers
    return await http.post("/v1/chat/completions", content=content, headers=headers)


def request(*messages: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"model": "gpt-test", "messages": list(messages) or [USER], **extra}


# --- the default answer ---------------------------------------------------------------------------------------


async def test_unscripted_it_echoes_the_last_user_message(http: httpx.AsyncClient) -> None:
    first = {"role": "user", "content": "first"}
    reply = {"role": "assistant", "content": "Echo: first"}
    response = await chat(http, request({"role": "system", "content": "be brief"}, first, reply, USER))
    assert response.status_code == 200
    choice = response.json()["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": "Echo: What is the weather in Oslo?"}
    assert choice["finish_reason"] == "stop"


async def test_the_echo_reads_text_parts(http: httpx.AsyncClient) -> None:
    parts = {
        "role": "user",
        "content": [{"type": "text", "text": "hello "}, {"type": "text", "text": "there"}],
    }
    response = await chat(http, request(parts))
    assert response.json()["choices"][0]["message"]["content"] == "Echo: hello there"


async def test_unscripted_it_says_done_after_a_tool_result(http: httpx.AsyncClient) -> None:
    response = await chat(http, request(USER, ASKED, ANSWERED, tools=[WEATHER_TOOL]))
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == "Done."


# --- behaviours -----------------------------------------------------------------------------------------------


async def test_reply(http: httpx.AsyncClient, state: FakeLLMState) -> None:
    state.script([{"kind": "reply", "content": "Sunny."}])
    body = (await chat(http, request())).json()
    assert body["choices"][0]["message"] == {"role": "assistant", "content": "Sunny."}
    assert (await chat(http, request())).json()["choices"][0]["message"]["content"].startswith("Echo: ")


async def test_tool_calls_parse_with_the_openai_library(llm: openai.AsyncOpenAI, state: FakeLLMState) -> None:
    state.script([
        {"kind": "tool_calls", "tool_calls": [{"name": "get_weather", "arguments": {"city": "Oslo"}}]}
    ])  # fmt: skip
    completion = await llm.chat.completions.create(
        model="gpt-test", messages=[USER], tools=[WEATHER_TOOL], max_tokens=100
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls is not None
    call = choice.message.tool_calls[0]
    assert call.type == "function"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Oslo"}
    assert call.id.startswith("call_")
    assert completion.model == "gpt-test"
    assert completion.object == "chat.completion"


async def test_a_reply_parses_with_the_openai_library(llm: openai.AsyncOpenAI) -> None:
    completion = await llm.chat.completions.create(
        model="gpt-test", messages=[{"role": "user", "content": "hi"}]
    )
    assert completion.choices[0].message.content == "Echo: hi"
    assert completion.choices[0].message.tool_calls is None
    assert completion.usage is not None
    assert (
        completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens
    )


async def test_several_tool_calls_get_distinct_ids(http: httpx.AsyncClient, state: FakeLLMState) -> None:
    calls = [{"name": "get_weather", "arguments": {"city": "Oslo"}}, {"name": "get_weather", "arguments": {}}]
    state.script([{"kind": "tool_calls", "tool_calls": calls, "content": "Checking."}])
    message = (await chat(http, request(tools=[WEATHER_TOOL]))).json()["choices"][0]["message"]
    assert message["content"] == "Checking."
    ids = [c["id"] for c in message["tool_calls"]]
    assert len(set(ids)) == 2
    assert all(i.startswith("call_") and i[5:].isdigit() for i in ids)


async def test_string_arguments_are_sent_verbatim(http: httpx.AsyncClient, state: FakeLLMState) -> None:
    state.script(
        [{"kind": "tool_calls", "tool_calls": [{"name": "get_weather", "arguments": '{"city": "Os'}]}]
    )
    call = (await chat(http, request())).json()["choices"][0]["message"]["tool_calls"][0]
    assert call["function"]["arguments"] == '{"city": "Os'


async def test_rate_limited(http: httpx.AsyncClient, state: FakeLLMState) -> None:
    state.script([{"kind": "rate_limited", "retry_after": 7}, {"kind": "rate_limited"}])
    response = await chat(http, request())
    assert response.status_code == 429
    assert response.headers["retry-after"] == "7"
    error = response.json()["error"]
    assert error["type"] == "rate_limit_error"
    assert error["code"] == "rate_limit_exceeded"
    assert error["message"]
    assert (await chat(http, request())).headers["retry-after"] == "0"


async def test_rate_limited_raises_in_the_openai_library(
    llm: openai.AsyncOpenAI, state: FakeLLMState
) -> None:
    state.script([{"kind": "rate_limited", "retry_after": 2}])
    with pytest.raises(openai.RateLimitError) as caught:
        await llm.chat.completions.create(model="gpt-test", messages=[USER])
    assert caught.value.response.headers["retry-after"] == "2"


async def test_server_error(http: httpx.AsyncClient, state: FakeLLMState) -> None:
    state.script([{"kind": "server_error"}, {"kind": "server_error", "status": 500}])
    first, second = await chat(http, request()), await chat(http, request())
    assert (first.status_code, second.status_code) == (503, 500)
    assert first.json()["error"]["type"] == "server_error"


async def test_server_error_raises_in_the_openai_library(
    llm: openai.AsyncOpenAI, state: FakeLLMState
) -> None:
    state.script([{"kind": "server_error", "status": 502}])
    with pytest.raises(openai.InternalServerError):
        await llm.chat.completions.create(model="gpt-test", messages=[USER])


async def test_permanent(http: httpx.AsyncClient, state: FakeLLMState) -> None:
    state.script([{"kind": "permanent"}])
    response = await chat(http, request())
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "invalid request"
    assert response.json()["error"]["type"] == "invalid_request_error"


async def test_permanent_invalid_key_raises_in_the_openai_library(
    llm: openai.AsyncOpenAI, state: FakeLLMState
) -> None:
    state.script([{"kind": "permanent", "status": 401, "message": "Incorrect API key provided"}])
    with pytest.raises(openai.AuthenticationError) as caught:
        await llm.chat.completions.create(model="gpt-test", messages=[USER])
    assert caught.value.status_code == 401
    assert "Incorrect API key provided" in str(caught.value)


async def test_malformed(http: httpx.AsyncClient, state: FakeLLMState) -> None:
    state.script([{"kind": "malformed"}, {"kind": "malformed", "content": '{"id": "chatcmpl-1", "choi'}])
    first = await chat(http, request())
    assert first.status_code == 200
    assert first.json() == {"unexpected": True}
    second = await chat(http, request())
    assert second.status_code == 200
    with pytest.raises(ValueError, match="Unterminated"):
        second.json()


async def test_timeout_waits_then_replies(http: httpx.AsyncClient, state: FakeLLMState) -> None:
    state.script([{"kind": "timeout", "delay": 0.2, "content": "Late."}])
    started = time.monotonic()
    response = await chat(http, request())
    assert time.monotonic() - started >= 0.2
    assert response.json()["choices"][0]["message"]["content"] == "Late."


async def test_times_repeats_a_behaviour(http: httpx.AsyncClient, state: FakeLLMState) -> None:
    state.script([{"kind": "server_error", "times": 2}, {"kind": "reply", "content": "ok"}])
    statuses = [(await chat(http, request())).status_code for _ in range(4)]
    assert statuses == [503, 503, 200, 200]


async def test_a_refused_request_leaves_the_script_alone(
    http: httpx.AsyncClient, state: FakeLLMState
) -> None:
    state.script([{"kind": "reply", "content": "kept"}])
    assert (await chat(http, request(), headers={})).status_code == 401
    assert (await chat(http, request())).json()["choices"][0]["message"]["content"] == "kept"


@pytest.mark.parametrize(
    "behaviour",
    [
        {"kind": "tool_calls"},
        {"kind": "server_error", "status": 404},
        {"kind": "permanent", "status": 503},
        {"kind": "tool_calls", "tool_calls": [{"name": ""}]},
        {"kind": "nonsense"},
    ],
    ids=["no tool calls", "4xx server error", "5xx permanent", "nameless tool", "unknown kind"],
)
def test_a_misscripted_behaviour_is_refused(state: FakeLLMState, behaviour: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        state.script([behaviour])
    assert not state.behaviours


def test_script_takes_models_and_dicts(state: FakeLLMState) -> None:
    assert state.script([LLMBehaviour(kind="reply", content="a")]) == 1
    assert state.script([{"kind": "malformed"}, {"kind": "rate_limited"}]) == 3
    assert [b.kind for b in state.behaviours] == ["reply", "malformed", "rate_limited"]


# --- usage ----------------------------------------------------------------------------------------------------


async def test_usage_counts_characters(http: httpx.AsyncClient, state: FakeLLMState) -> None:
    messages = [{"role": "system", "content": "x" * 10}, {"role": "user", "content": "y" * 30}]
    state.script([{"kind": "reply", "content": "z" * 17}])
    usage = (await chat(http, request(*messages))).json()["usage"]
    assert usage == {"prompt_tokens": 40 // 4 + 1, "completion_tokens": 17 // 4 + 1, "total_tokens": 11 + 5}


async def test_usage_counts_tool_call_arguments(http: httpx.AsyncClient, state: FakeLLMState) -> None:
    state.script(
        [{"kind": "tool_calls", "tool_calls": [{"name": "f", "arguments": "a" * 12}, {"name": "g"}]}]
    )
    usage = (await chat(http, request(USER, ASKED, ANSWERED))).json()["usage"]
    prompt = len(USER["content"] + ANSWERED["content"]) // 4 + 1
    assert usage["prompt_tokens"] == prompt
    assert usage["completion_tokens"] == len("a" * 12 + "{}") // 4 + 1


async def test_usage_can_be_overridden(http: httpx.AsyncClient, state: FakeLLMState) -> None:
    state.script([{"kind": "reply", "content": "hi", "prompt_tokens": 1000, "completion_tokens": 50}])
    usage = (await chat(http, request())).json()["usage"]
    assert usage == {"prompt_tokens": 1000, "completion_tokens": 50, "total_tokens": 1050}


async def test_a_completion_has_the_full_shape(http: httpx.AsyncClient) -> None:
    body = (await chat(http, request())).json()
    assert body["id"].startswith("chatcmpl-")
    assert body["object"] == "chat.completion"
    assert isinstance(body["created"], int)
    assert body["model"] == "gpt-test"
    assert body["choices"][0]["index"] == 0
    assert "tool_calls" not in body["choices"][0]["message"]


# --- request checks -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [{}, {"authorization": "Bearer "}, {"authorization": "Basic dXNlcjpwYXNz"}, {"authorization": "sk-test"}],
    ids=["missing", "empty", "basic", "no scheme"],
)
async def test_a_bearer_key_is_required(
    http: httpx.AsyncClient, state: FakeLLMState, headers: dict[str, str]
) -> None:
    response = await chat(http, request(), headers=headers)
    assert response.status_code == 401
    assert "API key" in response.json()["error"]["message"]
    assert len(state.requests) == 1


BAD_REQUESTS: list[tuple[str, Any, str]] = [
    ("not json", "{model: gpt}", "JSON object"),
    ("not an object", [1, 2], "JSON object"),
    ("no model", {"messages": [USER]}, "'model'"),
    ("empty model", {"model": " ", "messages": [USER]}, "'model'"),
    ("streaming", request(stream=True), "streaming is not supported by the fake"),
    ("no messages", {"model": "gpt-test"}, "'messages'"),
    ("empty messages", {"model": "gpt-test", "messages": []}, "'messages'"),
    ("message not an object", request("hello"), "messages[0] must be an object"),
    ("unknown role", request({"role": "robot", "content": "hi"}), "messages[0].role"),
    ("no content", request({"role": "user"}), "messages[0].content"),
    ("tool without id", request(USER, ASKED, {"role": "tool", "content": "4°C"}), "without a tool_call_id"),
    (
        "tool answers nothing",
        request(USER, {"role": "tool", "tool_call_id": "call_1", "content": "x"}),
        "messages[1].tool_call_id 'call_1' matches no earlier assistant tool call",
    ),
    (
        "tool answers twice",
        request(USER, ASKED, ANSWERED, ANSWERED),
        "messages[3].tool_call_id 'call_9' answers it a second time",
    ),
    (
        "unanswered before the next message",
        request(USER, ASKED, USER),
        "tool call(s) call_9 of messages[1] not answered by a tool message before messages[2] (user)",
    ),
    (
        "unanswered at the end",
        request(USER, ASKED),
        "call_9 of messages[1] not answered by a tool message at the end",
    ),
    (
        "tool call arguments not a string",
        request(
            USER, {"role": "assistant", "tool_calls": [{**CALL, "function": {"name": "f", "arguments": {}}}]}
        ),
        "messages[1].tool_calls[0] must be",
    ),
    ("tools not a list", request(tools=WEATHER_TOOL), "'tools' must be a list"),
    ("tool type", request(tools=[{**WEATHER_TOOL, "type": "retrieval"}]), "tools[0].type must be 'function'"),
    ("tool function missing", request(tools=[{"type": "function"}]), "tools[0].function must be an object"),
    (
        "tool name missing",
        request(tools=[{"type": "function", "function": {"parameters": {"type": "object"}}}]),
        "tools[0].function.name",
    ),
    (
        "tool description not a string",
        request(tools=[{"type": "function", "function": {"name": "f", "description": 3, "parameters": {}}}]),
        "tools[0].function.description must be a string",
    ),
    (
        "tool parameters missing",
        request(tools=[WEATHER_TOOL, {"type": "function", "function": {"name": "f"}}]),
        "tools[1].function.parameters",
    ),
    (
        "tool parameters not an object schema",
        request(tools=[{"type": "function", "function": {"name": "f", "parameters": {"type": "array"}}}]),
        'tools[0].function.parameters must be a JSON schema with "type": "object"',
    ),
    ("max_tokens", request(max_tokens=0), "'max_tokens' must be a positive integer"),
]


@pytest.mark.parametrize(("body", "problem"), [c[1:] for c in BAD_REQUESTS], ids=[c[0] for c in BAD_REQUESTS])
async def test_a_bad_request_is_refused_naming_the_problem(
    http: httpx.AsyncClient, state: FakeLLMState, body: Any, problem: str
) -> None:
    state.script([{"kind": "reply", "content": "unused"}])
    response = await chat(http, body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert problem in error["message"]
    assert error["type"] == "invalid_request_error"
    assert len(state.requests) == 1
    assert len(state.behaviours) == 1


async def test_a_bad_request_raises_in_the_openai_library(llm: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="messages\\[0\\].role"):
        await llm.chat.completions.create(model="gpt-test", messages=[{"role": "robot", "content": "hi"}])


async def test_a_whole_tool_round_trip_passes(llm: openai.AsyncOpenAI, state: FakeLLMState) -> None:
    """What an agent does: ask, get a tool call, send back the assistant message and the tool's result."""
    state.script(
        [{"kind": "tool_calls", "tool_calls": [{"name": "get_weather", "arguments": {"city": "Oslo"}}]}]
    )
    first = await llm.chat.completions.create(model="gpt-test", messages=[USER], tools=[WEATHER_TOOL])
    asked = first.choices[0].message
    assert asked.tool_calls is not None
    result = {"role": "tool", "tool_call_id": asked.tool_calls[0].id, "content": "4°C"}
    messages: Any = [USER, asked.model_dump(exclude_none=True), result]
    second = await llm.chat.completions.create(model="gpt-test", messages=messages, tools=[WEATHER_TOOL])
    assert second.choices[0].message.content == "Done."
    sent = state.requests[-1].json
    assert sent["messages"][1]["tool_calls"][0]["function"]["arguments"] == '{"city": "Oslo"}'
    assert sent["tools"] == [WEATHER_TOOL]


async def test_requests_are_recorded_with_headers(http: httpx.AsyncClient, state: FakeLLMState) -> None:
    await chat(http, request(max_tokens=64))
    recorded = state.requests[0]
    assert recorded.json == request(max_tokens=64)
    assert recorded.headers["authorization"] == "Bearer sk-test"


# --- models and control routes --------------------------------------------------------------------------------


async def test_models_lists_the_fake_model(llm: openai.AsyncOpenAI, http: httpx.AsyncClient) -> None:
    page = await llm.models.list()
    assert [m.id for m in page.data] == ["fake-model"]
    assert (await http.get("/v1/models")).status_code == 401


async def test_control_routes(
    http: httpx.AsyncClient, state: FakeLLMState, provider_state: FakeState
) -> None:
    queued = await http.post(
        "/_fake/llm/script", json=[{"kind": "reply", "content": "scripted"}, {"kind": "malformed"}]
    )
    assert queued.json() == {"queued": 2}
    assert not provider_state.scripts.get("llm"), "the provider control routes must not take /_fake/llm/..."
    assert (await chat(http, request())).json()["choices"][0]["message"]["content"] == "scripted"
    recorded = (await http.get("/_fake/llm/requests")).json()
    assert [r["json"]["model"] for r in recorded] == ["gpt-test"]
    assert recorded[0]["headers"]["authorization"] == "Bearer sk-test"
    assert (await http.post("/_fake/llm/reset")).json() == {"reset": True}
    assert state.requests == []
    assert not state.behaviours
    assert (await http.get("/_fake/llm/requests")).json() == []


async def test_control_script_refuses_bad_behaviours(http: httpx.AsyncClient, state: FakeLLMState) -> None:
    response = await http.post("/_fake/llm/script", json=[{"kind": "tool_calls"}])
    assert response.status_code == 422
    assert not state.behaviours


async def test_the_provider_reset_leaves_the_llm_alone(http: httpx.AsyncClient, state: FakeLLMState) -> None:
    await chat(http, request())
    assert (await http.post("/_fake/reset")).json() == {"reset": True}
    assert len(state.requests) == 1


def test_the_app_has_an_llm_state_by_default() -> None:
    assert isinstance(create_fake_app().state.llm, FakeLLMState)
