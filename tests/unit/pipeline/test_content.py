"""What AI text Herald refuses to send, the length it may take, and what its tokens cost."""

from __future__ import annotations

import pytest

from herald.pipeline.content import DEFAULT_MAX_LENGTH, clean, limit_for, unusable
from herald.pipeline.llm import LLMEndpoint, Turn

GOOD = "Hi Dana, your mower is due its tune-up on 14 March. Reply YES to book."


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("x" * 161, "161 characters"),
        ("Hi {{ first_name }}, see you soon.", "template syntax"),
        ("Hi {% if vip %}friend{% endif %}", "template syntax"),
        ("Hi [Name], your mower is due.", "[Name]"),
        ("Hi [Customer Name], your mower is due.", "[Customer Name]"),
        ("Hi {first_name}, your mower is due.", "{first_name}"),
        ("I'm sorry, but I can't write that.", "refusal"),
        ("I cannot help with that request.", "refusal"),
        ("As an AI language model, I think your mower is due.", "refusal"),
    ],
)
def test_unusable_answers_are_named(text: str, reason: str) -> None:
    problem = unusable(text, 160)
    assert problem is not None
    assert reason in problem


@pytest.mark.parametrize(
    "text", [GOOD, "Sorry we missed you, Dana! Your mower is due.", "Save 20% (today only)."]
)
def test_ordinary_messages_pass(text: str) -> None:
    assert unusable(text, 160) is None


def test_clean_drops_wrapping_quotes_and_spaces_only() -> None:
    assert clean(f'  "{GOOD}"\n') == GOOD
    assert clean("'Hi' she said, 'bye'") == "'Hi' she said, 'bye'"  # quotes of its own, not a wrapping


def test_limit_is_the_smallest_of_the_callers_the_providers_and_the_platforms() -> None:
    assert limit_for("sms", None, None) == 320
    assert limit_for("sms", 1600, 160) == 160
    assert limit_for("email", None, None) == DEFAULT_MAX_LENGTH
    assert limit_for("telegram", 4096, None) == 4096


def test_cost_is_the_endpoints_figure_else_tokens_times_price() -> None:
    priced = LLMEndpoint(base_url="https://llm.example/v1", model="m", prompt_price_per_million=0.5,
                         completion_price_per_million=1.5)  # fmt: skip
    assert priced.cost_of(Turn(content="x", prompt_tokens=1000, completion_tokens=200)) == pytest.approx(
        0.0008
    )
    assert priced.cost_of(Turn(content="x", prompt_tokens=1000, completion_tokens=200, cost=0.01)) == 0.01
    free = LLMEndpoint(base_url="https://llm.example/v1", model="m")
    assert free.cost_of(Turn(content="x", prompt_tokens=1000, completion_tokens=200)) == 0.0
