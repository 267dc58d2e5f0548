"""The tool registry: schemas generated from typed signatures, arguments validated against them."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import pytest
from pydantic import Field

from herald.agents.tools import TOOLS, Effect, ToolContext, ToolError, ToolRegistry


def test_every_tool_the_issue_names_is_registered_with_its_effect() -> None:
    effects = {name: TOOLS.get(name).effect for name in TOOLS.names()}  # type: ignore[union-attr]
    assert effects == {
        "send_message": Effect.SEND, "schedule_message": Effect.SEND, "cancel_message": Effect.SEND,
        "ask_human": Effect.SEND, "lookup_contact": Effect.READ, "read_conversation": Effect.READ,
        "list_pending_approvals": Effect.READ, "push_metric": Effect.ACT, "create_monitor": Effect.ACT,
        "pause_monitor": Effect.ACT, "fire_trigger": Effect.ACT, "get_question": Effect.READ,
    }  # fmt: skip


def test_the_schema_comes_from_the_signature() -> None:
    tool = TOOLS.get("schedule_message")
    assert tool is not None
    schema = tool.parameters()
    assert schema["type"] == "object"
    assert schema["additionalProperties"] is False
    assert sorted(schema["required"]) == ["content", "send_at"]
    assert schema["properties"]["send_at"]["format"] == "date-time"
    assert schema["properties"]["priority"]["enum"] == ["critical", "high", "medium", "low"]
    assert "ISO 8601" in schema["properties"]["send_at"]["description"]
    spec = tool.openai_spec()
    assert spec["type"] == "function"
    assert spec["function"]["name"] == "schedule_message"
    assert spec["function"]["description"].startswith("Schedule a message for later")


@pytest.mark.parametrize(
    ("raw", "field", "detail"),
    [
        ('{"content": ', None, "not valid JSON"),
        ("[1]", None, "must be a JSON object"),
        ({}, "content", "Field required"),
        ({"content": "x", "priority": "urgent"}, "priority", "Input should be"),
        ({"content": "x", "colour": "red"}, "colour", "Extra inputs"),
    ],
)
def test_malformed_arguments_name_what_is_wrong(raw: Any, field: str | None, detail: str) -> None:
    tool = TOOLS.get("send_message")
    assert tool is not None
    with pytest.raises(ToolError) as caught:
        tool.parse(raw)
    assert caught.value.field == field
    assert detail in caught.value.detail


def test_a_registry_refuses_a_name_twice_and_reads_defaults() -> None:
    registry = ToolRegistry()

    @registry.tool(Effect.READ)
    async def greet(
        ctx: ToolContext,
        *,
        who: Annotated[str, Field(description="a name")],
        tone: Literal["warm", "dry"] = "warm",
    ) -> dict[str, Any]:
        """Say hello."""
        return {"hello": who, "tone": tone}

    tool = registry.get("greet")
    assert tool is not None
    assert tool.parse('{"who": "Ada"}') == {"who": "Ada", "tone": "warm"}
    assert tool.parameters()["required"] == ["who"]
    with pytest.raises(ValueError, match="registered twice"):
        registry.tool(Effect.READ)(greet)
    assert [t.name for t in registry.select(["greet", "absent"])] == ["greet"]
