"""Reading contact-form notifications: fields by their labels, phone numbers, matching rules, and intent by
keywords."""

from __future__ import annotations

import pytest

from herald.producers.email.forms import DEFAULT_LABELS, extract, matches, phone_number
from herald.producers.email.intents import by_keywords, canonical, keywords_for
from herald.producers.email.parse import html_to_text, parse
from herald.storage.models import EmailForm


def test_fields_are_read_by_label_and_a_message_runs_to_the_next_label() -> None:
    text = ("New submission\n\nName:  Dana   Smith\nE-mail: Dana Smith <Dana@Example.COM>\n"
            "Message: My mower will not start.\nIt clicks.\n\nPhone: +44 7700 900123\nSent by WordPress")  # fmt: skip
    labels = {**DEFAULT_LABELS, "email": "E-mail"}
    assert extract(labels, text) == {
        "name": "Dana Smith", "email": "dana@example.com", "phone": "+447700900123",
        "message": "My mower will not start.\nIt clicks.",
    }  # fmt: skip


def test_a_value_on_the_next_line_bold_labels_and_any_case() -> None:
    text = "**NAME:**\nSam Lee\n**message:** Hi\n"
    assert extract(DEFAULT_LABELS, text) == {"name": "Sam Lee", "message": "Hi"}


def test_an_html_table_notification_reads_like_text() -> None:
    html = (
        "<table><tr><td>Name:</td><td>Sam</td></tr><tr><td>Email:</td><td>sam@example.com</td></tr></table>"
    )
    assert extract(DEFAULT_LABELS, html_to_text(html)) == {"name": "Sam", "email": "sam@example.com"}


def test_an_email_field_without_an_address_is_dropped() -> None:
    assert extract(DEFAULT_LABELS, "Email: none given\nName: Al") == {"name": "Al"}


@pytest.mark.parametrize(
    ("written", "e164"),
    [("(555) 010-2300", "+15550102300"), ("1-555-010-2300", "+15550102300"), ("0044 7700 900123", "+447700900123"),
     ("+49 (0)30 1234", "+49301234"), ("call me", "call me")],
)  # fmt: skip
def test_phone_numbers_become_e164_when_they_read_as_one(written: str, e164: str) -> None:
    assert phone_number(written) == e164


def form(**values: object) -> EmailForm:
    return EmailForm(**{"senders": [], "subject_contains": None, **values})


@pytest.mark.parametrize(
    ("rule", "sender", "subject", "expected"),
    [
        ({"senders": ["@site.example"]}, "noreply@site.example", "x", True),
        ({"senders": ["site.example"]}, "noreply@site.example", "x", True),
        ({"senders": ["@site.example"]}, "noreply@evil-site.example", "x", False),
        ({"senders": ["forms@site.example"]}, "noreply@site.example", "x", False),
        ({"subject_contains": "Contact Form"}, "a@b.example", "New contact form entry", True),
        (
            {"senders": ["@site.example"], "subject_contains": "contact"},
            "a@site.example",
            "Newsletter",
            False,
        ),
    ],
)
def test_a_rule_matches_when_every_condition_it_gives_holds(
    rule: dict[str, object], sender: str, subject: str, expected: bool
) -> None:
    email = parse(f"From: {sender}\r\nSubject: {subject}\r\n\r\nbody".encode())
    assert matches(form(**rule), email) is expected


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("Can I get a quote for the Z530? Do you offer financing?", "buying"),
        ("Time for the annual tune-up and blade sharpening", "service"),
        ("My mower will not start and there is smoke", "repair"),
        ("Need a service, it's broken", "repair"),  # one hit each: a tie goes to repair
        ("What are your opening hours?", "other"),
        ("I want to fixate on nothing", "other"),  # whole words only: no "fix" in "fixate"
    ],
)
def test_intent_by_keywords(text: str, intent: str) -> None:
    assert by_keywords(text, keywords_for(None)).intent == intent


def test_a_forms_own_keywords_replace_an_intents_list() -> None:
    lists = keywords_for({"sales": ["z530"]})
    assert lists["buying"] == ("z530",)
    found = by_keywords("About the Z530", lists)
    assert (found.intent, found.matched, found.source) == ("buying", ("z530",), "keywords")
    assert by_keywords("a quote please", lists).intent == "other"


def test_aliases() -> None:
    assert [canonical(n) for n in ("Sales", "repairing", "service", "weird")] == [
        "buying",
        "repair",
        "service",
        None,
    ]
