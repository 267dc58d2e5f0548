"""Digest templates render the held messages in the message sandbox; which messages may be held, and by which
rule (the most specific)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from herald.core.errors import ValidationFailed
from herald.core.intent import Priority
from herald.pipeline import digests
from herald.pipeline.digests import Rule

NOW = datetime(2026, 3, 4, 9, 30, tzinfo=UTC)


def held(n: int, **extra: Any) -> dict[str, Any]:
    row = SimpleNamespace(id=f"msg_{n}", agent_id="agent_a", subject=None, content=f"text {n}",
                          priority=int(Priority.LOW), governance_metadata={"message_type": "build"},
                          created_at=NOW + timedelta(minutes=n), **extra)  # fmt: skip
    return digests.item(row)


def test_the_body_lists_every_message_in_order_with_its_fields() -> None:
    body = "{{ count }} on {{ date }}:\n{% for m in messages %}{{ m.id }} {{ m.priority }} {{ m.message_type }} " \
        "{{ m.content }} at {{ m.created_at }}\n{% endfor %}"  # fmt: skip
    subject, text = digests.render("{{ count }} builds", body, [held(1), held(2)], now=NOW)
    assert subject == "2 builds"
    assert text == (
        "2 on 2026-03-04:\n"
        "msg_1 LOW build text 1 at 2026-03-04T09:31:00+00:00\n"
        "msg_2 LOW build text 2 at 2026-03-04T09:32:00+00:00\n"
    )


def test_held_text_is_data_never_a_template() -> None:
    item = held(1)
    item["content"] = "{{ secret }}"
    _, text = digests.render(None, digests.DEFAULT_BODY, [item], now=NOW)
    assert text == "1 updates:\n- {{ secret }}\n"


def test_the_sandbox_holds_for_digest_templates() -> None:
    with pytest.raises(ValidationFailed) as caught:
        digests.render(None, "{{ messages.__class__.__mro__ }}", [held(1)], now=NOW)
    assert caught.value.field == "body"


@pytest.mark.parametrize(
    ("subject", "body", "field"),
    [
        (None, "{% for m in messages %}", "body"),
        (None, "{{ unknown }}", "body"),
        ("{{ messages[0].nope }}", "ok", "subject"),
        (None, "{{ '' }}", "body"),  # renders to nothing
    ],
)
def test_a_rule_whose_templates_cannot_render_is_refused_naming_the_field(
    subject: str | None, body: str, field: str
) -> None:
    with pytest.raises(ValidationFailed) as caught:
        digests.check_templates(subject, body, NOW)
    assert caught.value.field == field


def values(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"agent_id": "agent_a", "platform": "slack", "recipient_id": "C1", "priority": 2,
                            "scheduled_for": None, "attachments": None, "actions": None, "sealed_content": None,
                            "governance_metadata": {}}  # fmt: skip
    return {**base, **overrides}


@pytest.mark.parametrize(
    "overrides",
    [
        {"priority": int(Priority.CRITICAL)},
        {"scheduled_for": NOW + timedelta(hours=1)},
        {"attachments": [{"filename": "a.pdf"}]},
        {"actions": [{"value": "a", "label": "A"}]},
        {"sealed_content": b"sealed"},
        {"governance_metadata": {"conversation_id": "cnv_1"}},
        {"governance_metadata": {"human_request": "hrq_1"}},
        {"governance_metadata": {"digest_id": "dig_1"}},
    ],
)
def test_what_is_never_held(overrides: dict[str, Any]) -> None:
    assert digests.holdable(values(), NOW)
    assert not digests.holdable(values(**overrides), NOW)


def test_the_most_specific_matching_rule_wins() -> None:
    anyone = Rule("dgr_1", None, None, None, None, 60, None)
    slack = Rule("dgr_2", None, "slack", None, None, 60, None)
    builds = Rule("dgr_3", None, "slack", None, "build", 60, None)
    other_agent = Rule("dgr_4", "agent_b", "slack", "C1", "build", 60, None)
    rules = sorted([anyone, slack, builds, other_agent], key=lambda r: (-r.specificity, r.id))
    assert digests.choose(rules, values(governance_metadata={"message_type": "build"})) is builds
    assert digests.choose(rules, values()) is slack
    assert digests.choose(rules, values(platform="email", recipient_id="a@b.co")) is anyone
    assert digests.choose([slack], values(platform="email")) is None
