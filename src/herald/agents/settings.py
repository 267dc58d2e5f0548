"""An LLM agent's settings, as stored on the agent (``agents.llm``) and accepted by the API."""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field, field_validator

from herald.pipeline.llm import LLMEndpoint

DEFAULT_PERSONA = (
    "You are an assistant that reaches people on behalf of your team through Herald. Use the tools to look "
    "things up and to send, schedule or cancel messages. When you are done, answer with the message for the "
    "person who asked, or a short summary of what you did."
)


class LLMSettings(LLMEndpoint):
    """Where the model is (:class:`LLMEndpoint`) and how far one run may go. Limits end a run with a clear
    status, never silently. The same endpoint writes the agent's AI content (:mod:`herald.pipeline.content`)."""

    model_config = ConfigDict(extra="forbid")

    persona: str = Field(default=DEFAULT_PERSONA, min_length=1, max_length=20_000)
    tools: list[str] | None = Field(default=None, description="the tools it may use; null: all of them")
    max_steps: int = Field(default=8, ge=1, le=100, description="model answers per run")
    max_tokens: int = Field(
        default=50_000, ge=100, le=10_000_000, description="prompt + completion tokens per run"
    )
    timeout_seconds: float = Field(default=120.0, gt=0, le=3600, description="wall time per run")

    @field_validator("tools")
    @classmethod
    def _known_tools(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        from herald.agents.tools import TOOLS

        for i, name in enumerate(value):
            if TOOLS.get(name) is None:
                raise ValueError(f"tools.{i}: unknown tool {name!r}; known: {', '.join(TOOLS.names())}")
        return list(dict.fromkeys(value))

    def stored(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def load(stored: dict[str, Any] | None) -> LLMSettings | None:
    return LLMSettings.model_validate(stored) if stored else None
