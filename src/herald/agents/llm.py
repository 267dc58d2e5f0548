"""The model client LLM agents use; it lives in :mod:`herald.pipeline.llm` so producers share it."""

from __future__ import annotations

from herald.pipeline.llm import RETRY_DELAYS, LLMEndpoint, LLMFailed, ToolCall, Turn, complete

__all__ = ["RETRY_DELAYS", "LLMEndpoint", "LLMFailed", "ToolCall", "Turn", "complete"]
