"""OTP policy: Twilio Verify's defaults, per-tenant overrides, validation naming the field; message texts."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from herald.core.errors import ValidationFailed
from herald.producers.otp import texts
from herald.producers.otp.policy import DEFAULT_ROUTE, OtpPolicy, load_policy

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_empty_means_twilio_verify_defaults() -> None:
    policy = load_policy({})
    assert policy == load_policy(None)
    assert (policy.code_length, policy.ttl_seconds, policy.max_checks) == (6, 600, 5)
    assert (policy.max_sends, policy.send_window_seconds) == (5, 600)
    assert policy.route == list(DEFAULT_ROUTE) == ["sms", "voice", "whatsapp", "email"]
    assert policy.template is None


def test_overrides_keep_the_other_defaults() -> None:
    policy = load_policy({"max_checks": 3, "route": ["email", "sms"]})
    assert (policy.max_checks, policy.route, policy.max_sends) == (3, ["email", "sms"], 5)


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"code_length": 3}, "code_length"),
        ({"code_length": 11}, "code_length"),
        ({"ttl_seconds": 10}, "ttl_seconds"),
        ({"max_checks": 0}, "max_checks"),
        ({"max_sends": 0}, "max_sends"),
        ({"send_window_seconds": 86_401}, "send_window_seconds"),
        ({"route": []}, "route"),
        ({"route": ["slack"]}, "route"),
        ({"route": ["sms", "sms"]}, "route"),
        ({"unknown": 1}, "unknown"),
    ],
)
def test_bad_values_are_refused_naming_the_field(raw: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        OtpPolicy.model_validate(raw)
    assert caught.value.errors()[0]["loc"][0] == field


def test_texts_per_locale_fall_back_to_english() -> None:
    assert texts.render(texts.source(None, "fr-CA"), "123456", 600, NOW).startswith("Votre code")
    assert texts.render(texts.source(None, "pt_BR"), "123456", 600, NOW).startswith("Seu código")
    assert texts.render(texts.source(None, "xx"), "123456", 600, NOW) == (
        "Your verification code is 123456. Do not share it."
    )
    assert "123456" not in texts.subject("de")


def test_templates_must_show_the_code() -> None:
    texts.check_template("{{code}} is your Acme code, valid {{minutes}} minutes", NOW)
    assert texts.render("{{code}} ({{minutes}} min)", "0042", 300, NOW) == "0042 (5 min)"
    with pytest.raises(ValidationFailed) as caught:
        texts.check_template("Your code is on its way", NOW)
    assert caught.value.field == "template"
    with pytest.raises(ValidationFailed, match="plain text"):
        texts.check_template("{{code}} for {{name}}", NOW)


@pytest.mark.parametrize(
    "template",
    [
        # Branching on the code would turn which error comes back into an oracle for the code.
        "{% if code[0] == '7' %}{{1/0}}{% endif %}{{code}}",
        "{{ code[0] }} {{code}}",
        "{{code}} {# hidden #}",
        "{{code|length}} {{code}}",
    ],
)
def test_templates_cannot_compute_on_the_code(template: str) -> None:
    with pytest.raises(ValidationFailed, match="plain text"):
        texts.check_template(template, NOW)


def test_placeholders_are_substituted_not_evaluated() -> None:
    assert (
        texts.render("Code: {{ code }} / {{minutes}}m / {literal}", "987654", 120)
        == "Code: 987654 / 2m / {literal}"
    )
