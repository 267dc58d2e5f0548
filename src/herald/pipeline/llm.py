"""One model turn against an OpenAI-compatible endpoint, through the official ``openai`` library.

It lives in the pipeline, below every producer, so that LLM agents (``herald.agents``) and producers that write
message content with a model (``herald.pipeline.content``; campaigns) share one client, one retry policy and one
endpoint configuration (:class:`LLMEndpoint`, which an agent's ``LLMSettings`` extends).

Retries are Herald's (the library's own are off): 429 and 5xx, timeouts and connection errors are retried with
backoff, honouring ``Retry-After`` within the run's remaining time; any other error ends the run with the
provider's own reason. The HTTP client is the runtime's, so the outbound guard applies to ``base_url``.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field

from herald.core.errors import HeraldError
from herald.providers.base import parse_retry_after

if TYPE_CHECKING:
    import openai

RETRY_DELAYS = (0.5, 2.0, 5.0, 10.0)


class LLMEndpoint(BaseModel):
    """Where a model is, which one, and what its tokens cost: the part of an LLM configuration every caller
    of the model shares. Unknown keys are ignored here so an agent's full settings read as an endpoint."""

    model_config = ConfigDict(extra="ignore")

    base_url: AnyHttpUrl = Field(description="an OpenAI-compatible endpoint, e.g. https://api.openai.com/v1")
    model: str = Field(min_length=1, max_length=200)
    temperature: float | None = Field(default=None, ge=0, le=2)
    prompt_price_per_million: float | None = Field(
        default=None, ge=0, le=1_000_000,
        description="USD per million prompt tokens, for the cost of AI-written content when the endpoint "
        "reports none; null: 0",
    )  # fmt: skip
    completion_price_per_million: float | None = Field(
        default=None, ge=0, le=1_000_000,
        description="USD per million completion tokens (see prompt_price_per_million)",
    )  # fmt: skip

    def cost_of(self, turn: Turn) -> float:
        """The endpoint's own figure when it gives one (OpenRouter's ``usage.cost``), else tokens times price."""
        if turn.cost is not None:
            return turn.cost
        prompt = (self.prompt_price_per_million or 0.0) * turn.prompt_tokens
        completion = (self.completion_price_per_million or 0.0) * turn.completion_tokens
        return round((prompt + completion) / 1_000_000, 8)


class LLMFailed(HeraldError):
    """The model endpoint refused or kept failing; ``reason`` is the provider's own words."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class ToolCall:
    id: str
    name: str
    arguments: str


@dataclass
class Turn:
    """What the model answered: text, tool calls, and the tokens it cost."""

    content: str | None
    tool_calls: list[ToolCall] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float | None = None  # what the endpoint says the turn cost, where it says (OpenRouter does)

    def as_step(self) -> dict[str, Any]:
        return {"content": self.content,
                "tool_calls": [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in self.tool_calls]}  # fmt: skip


async def complete(
    http: httpx.AsyncClient,
    settings: LLMEndpoint,
    api_key: str,
    messages: list[dict[str, Any]],
    tools: list[dict[str, Any]],
    *,
    deadline: float,
    max_tokens: int | None = None,
) -> Turn:
    """One chat completion, retried while transient and while the run has time left (``deadline``, loop time)."""
    # Imported here: the library takes 0.4 s to import, which every CLI command and process start would pay.
    import openai

    client = openai.AsyncOpenAI(base_url=str(settings.base_url), api_key=api_key or "none", max_retries=0,
                                http_client=http)  # fmt: skip
    loop = asyncio.get_running_loop()
    last = "no attempt"
    for planned in (*RETRY_DELAYS, None):
        delay = planned
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise TimeoutError
        try:
            async with asyncio.timeout(remaining):  # the run's deadline, whatever the transport enforces
                return _turn(await _create(client, settings, messages, tools, seconds=remaining,
                                                  max_tokens=max_tokens))  # fmt: skip
        except openai.APIStatusError as exc:
            last = f"HTTP {exc.status_code}: {_reason(exc)}"
            if exc.status_code != 429 and exc.status_code < 500:
                raise LLMFailed(last) from None
            asked = parse_retry_after(exc.response.headers.get("retry-after"))
            delay = max(delay, asked) if delay is not None and asked is not None else delay
        except (openai.APIConnectionError, openai.APITimeoutError) as exc:
            last = f"unreachable: {type(exc).__name__}"
        except _Malformed as exc:
            last = f"malformed answer: {exc}"
        if delay is None or loop.time() + delay >= deadline:
            break
        await asyncio.sleep(delay)
    raise LLMFailed(f"{last} (after {len(RETRY_DELAYS) + 1} tries)" if delay is None else last)


async def _create(
    client: openai.AsyncOpenAI,
    settings: LLMEndpoint,
    messages: list[dict[str, Any]],
    tools: list[dict[str, Any]],
    *,
    seconds: float,
    max_tokens: int | None = None,
) -> Any:
    extra: dict[str, Any] = {}
    if max_tokens is not None:
        extra["max_tokens"] = max_tokens
    if tools:
        extra["tools"] = tools
    if settings.temperature is not None:
        extra["temperature"] = settings.temperature
    try:
        return await client.chat.completions.create(
            model=settings.model,
            messages=messages,  # type: ignore[arg-type]  # plain dicts, shaped as the API takes them
            timeout=seconds,
            **extra,
        )
    except (ValueError, TypeError) as exc:  # a 200 whose body the library could not read
        raise _Malformed(str(exc)) from None


class _Malformed(HeraldError):
    """A 200 that is not a chat completion."""


def _turn(completion: Any) -> Turn:
    choices = getattr(completion, "choices", None)
    if not choices:
        raise _Malformed("no choices")
    message = getattr(choices[0], "message", None)
    if message is None:
        raise _Malformed("no message in the first choice")
    calls = [
        ToolCall(id=c.id, name=c.function.name, arguments=c.function.arguments or "")
        for c in (message.tool_calls or [])
        if getattr(c, "function", None) is not None
    ]
    usage = getattr(completion, "usage", None)
    return Turn(
        content=message.content,
        tool_calls=calls,
        prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
        completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
        cost=_reported_cost(usage),
    )


def _reported_cost(usage: Any) -> float | None:
    """``usage.cost`` (USD) where the endpoint reports it; the library keeps unknown fields as extras."""
    value = getattr(usage, "cost", None)
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return float(value)
    return None


def _reason(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])
    try:
        return str(json.loads(exc.response.text)["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return exc.message
