"""Email threading shared by the email providers: Herald's Message-ID and a reply's subject and headers."""

from __future__ import annotations

from herald.providers.mailthread import (
    MAX_REFERENCES,
    herald_message_id,
    message_id,
    reply_subject,
    thread_headers,
)


def test_herald_message_ids_are_found_again() -> None:
    header = message_id("msg_0190c0ffee0000000000000000aa", "service@dealer.example")
    assert header == "<msg_0190c0ffee0000000000000000aa@dealer.example>"
    assert herald_message_id(header) == "msg_0190c0ffee0000000000000000aa"
    assert herald_message_id("<msg_0190c0ffee0000000000000000aa.x@dealer.example>") is None
    assert herald_message_id("<abc@example.com>") is None


def test_reply_subjects_are_not_doubled() -> None:
    assert reply_subject(None, {"subject": "RE: Aw: re:  Service due"}) == "Re: Service due"
    assert reply_subject(None, {"subject": "Service due"}) == "Re: Service due"
    assert reply_subject("Own subject", {"subject": "Service due"}) == "Own subject"
    assert reply_subject(None, {}) is None
    assert reply_subject(None, None) is None


def test_thread_headers_append_the_answered_email_and_keep_long_threads_short() -> None:
    many = [f"<r{i}@x.example>" for i in range(40)]
    headers = thread_headers({"reply_to": "<last@x.example>", "references": many})
    chain = headers["References"].split(" ")
    assert headers["In-Reply-To"] == "<last@x.example>"
    assert len(chain) == MAX_REFERENCES
    assert chain[0] == "<r0@x.example>"
    assert chain[-2:] == ["<r39@x.example>", "<last@x.example>"]


def test_no_thread_headers_for_what_is_not_an_email_reply() -> None:
    assert thread_headers(None) == {}
    assert thread_headers({"reply_to": "1234.5678"}) == {}  # a Slack timestamp, say
    assert thread_headers({"reply_to": "<a@b>\r\nBcc: x@y"}) == {}
