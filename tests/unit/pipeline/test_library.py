"""The template library Herald ships: every event type the dealership presets and seed 004 name has a default on
each channel it declares, reads only its own variables, and renders with its samples; locale tags and their
fallback chain; the per-process cache's expiry and invalidation."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from herald.core.errors import ValidationFailed
from herald.pipeline import templates
from herald.pipeline.library import (
    BY_NAME,
    DEFAULT_LOCALE,
    EVENT_TYPES,
    EventType,
    ResolvedTemplate,
    TemplateCache,
    locale_chain,
    normalise_locale,
    render_resolved,
    template_variables,
)
from herald.pipeline.library.resolve import Stored, pick

# Seed 004's scheduler jobs (seasonal split in two), its contact-form auto-responses, and the transactional ones.
SEED_004 = {
    "seven_day_checkin", "post_service_survey", "annual_tuneup", "spring_reminder", "winterization_reminder",
    "ghost_customer_winback", "anniversary_offer", "warranty_expiration", "trade_in_alert", "first_service_alert",
    "usage_service_alert", "sales_inquiry_response", "service_inquiry_response", "appointment_reminder",
    "purchase_receipt",
}  # fmt: skip
NOW = datetime(2026, 3, 9, 14, 0, tzinfo=UTC)
CASES = [(event, key) for event in EVENT_TYPES for key in event.texts]


def test_at_least_the_fifteen_event_types_of_seed_004_are_shipped() -> None:
    assert set(BY_NAME) >= SEED_004
    assert len(EVENT_TYPES) == len(BY_NAME) >= 15


@pytest.mark.parametrize("name", sorted(SEED_004))
def test_each_event_type_has_sms_and_email_in_the_default_locale(name: str) -> None:
    texts = BY_NAME[name].texts
    assert ("sms", DEFAULT_LOCALE) in texts
    assert ("email", DEFAULT_LOCALE) in texts
    assert BY_NAME[name].description


@pytest.mark.parametrize(("event", "key"), CASES, ids=[f"{e.name}-{k[0]}-{k[1]}" for e, k in CASES])
def test_every_default_renders_with_its_samples(event: EventType, key: tuple[str, str]) -> None:
    text = event.texts[key]
    channel, locale = key
    used = set(template_variables(text.subject, text.body))
    assert used <= set(event.variables)
    assert set(event.variables) == set(event.sample)
    resolved = ResolvedTemplate(
        event.name, channel, locale, locale, "default", text.subject, text.body, tuple(sorted(used)), None
    )
    rendered = render_resolved(resolved, event.sample, now=NOW)
    assert "{{" not in rendered.body
    for value in (event.sample[name] for name in used):
        assert value in rendered.body or (rendered.subject and value in rendered.subject)
    if channel == "email":
        assert rendered.subject
        assert "\n" not in rendered.subject
        assert len(rendered.subject) <= 100
    else:
        assert text.subject is None
        assert len(rendered.body) <= 320  # two SMS segments at most with realistic values


def test_a_default_with_a_variable_missing_is_a_422_naming_the_field() -> None:
    text = BY_NAME["warranty_expiration"].texts[("email", DEFAULT_LOCALE)]
    resolved = ResolvedTemplate("warranty_expiration", "email", "en", "en", "default", text.subject, text.body,
                                template_variables(text.subject, text.body), None)  # fmt: skip
    variables = dict(BY_NAME["warranty_expiration"].sample)
    del variables["warranty_end_date"]
    with pytest.raises(ValidationFailed) as caught:
        render_resolved(resolved, variables, now=NOW)
    assert caught.value.field == "subject"
    assert "warranty_end_date" in str(caught.value)


@pytest.mark.parametrize(
    ("given", "normal"),
    [
        ("en", "en"),
        ("EN-gb", "en-GB"),
        ("pt-br", "pt-BR"),
        ("zh-hant-tw", "zh-Hant-TW"),
        ("es-419", "es-419"),
    ],
)
def test_locales_are_normalised(given: str, normal: str) -> None:
    assert normalise_locale(given) == normal


@pytest.mark.parametrize("bad", ["", "e", "english-language-x", "en_GB", "en-", "1a", "en-GB-" + "x" * 40])
def test_malformed_locales_are_a_422_naming_the_field(bad: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        normalise_locale(bad)
    assert caught.value.field == "locale"


def test_the_locale_chain_ends_in_the_default_locale() -> None:
    assert locale_chain("en-GB") == ["en-GB", "en"]
    assert locale_chain("zh-Hant-TW") == ["zh-Hant-TW", "zh-Hant", "zh", "en"]
    assert locale_chain("fr") == ["fr", "en"]


def _stored(body: str, subject: str | None = None) -> Stored:
    return Stored(subject, body, template_variables(subject, body), NOW)


def test_the_most_specific_locale_wins_then_the_tenant_over_the_default() -> None:
    overrides = {
        ("sms", "fr"): _stored("Bonjour {{ first_name }}"),
        ("sms", "en"): _stored("Hey {{ first_name }}"),
    }
    french = pick(overrides, "seven_day_checkin", "sms", "fr-CA")
    assert french is not None
    assert (french.locale, french.requested_locale, french.source) == ("fr", "fr-CA", "tenant")
    english = pick(overrides, "seven_day_checkin", "sms", "en-GB")
    assert english is not None
    assert (english.body, english.source) == ("Hey {{ first_name }}", "tenant")
    shipped = pick({}, "seven_day_checkin", "sms", "de-AT")
    assert shipped is not None
    assert (shipped.locale, shipped.source) == ("en", "default")
    assert shipped.body == BY_NAME["seven_day_checkin"].texts[("sms", "en")].body
    assert pick({}, "seven_day_checkin", "whatsapp", "en") is None
    assert pick({}, "no_such_event", "sms", "en") is None


def test_the_cache_keeps_an_entry_until_it_expires() -> None:
    cache = TemplateCache(ttl=60)
    entry = {("sms", "en"): _stored("hi")}
    cache.put("ten_1", "x", entry, generation=cache.generation("ten_1"), read_at=0.0)
    assert cache.get("ten_1", "x") is None  # read at monotonic 0: long expired
    cache.put("ten_1", "x", entry, generation=cache.generation("ten_1"), read_at=time.monotonic())
    assert cache.get("ten_1", "x") == entry
    assert cache.get("ten_2", "x") is None


def test_forgetting_a_tenant_drops_it_and_refuses_reads_that_started_before() -> None:
    cache = TemplateCache(ttl=60)
    entry = {("sms", "en"): _stored("old")}
    before = cache.generation("ten_1")
    cache.put("ten_1", "x", entry, generation=before, read_at=time.monotonic())
    cache.put("ten_2", "x", entry, generation=cache.generation("ten_2"), read_at=time.monotonic())
    cache.forget("ten_1")
    assert cache.get("ten_1", "x") is None
    assert cache.get("ten_2", "x") == entry  # other tenants keep theirs
    cache.put(
        "ten_1", "x", entry, generation=before, read_at=time.monotonic()
    )  # a read from before the change
    assert cache.get("ten_1", "x") is None


def test_variables_used_reports_syntax_errors_on_the_field() -> None:
    with pytest.raises(ValidationFailed) as caught:
        templates.variables_used("Hi {{ first_name ", field="body")
    assert caught.value.field == "body"
    assert templates.variables_used("Hi {{ first_name }} on {{ date }}", field="body") == {
        "first_name",
        "date",
    }
    assert templates.variables_used("no syntax", field="body") == frozenset()
