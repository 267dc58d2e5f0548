"""Reading raw emails: senders and subjects in any charset, the body from text or HTML, attachments listed,
threads, what the agent reads once quotes and signatures are cut, and auto-replies and bounces recognised."""

from __future__ import annotations

from datetime import UTC, datetime
from email.message import EmailMessage

import pytest

from herald.producers.email.parse import html_to_text, parse, reply_text


def raw(headers: str, body: str = "Hello") -> bytes:
    return (headers.strip() + "\r\n\r\n" + body).encode()


def test_a_plain_email() -> None:
    got = parse(
        raw(
            """
From: Dana Smith <Dana@Example.com>
To: service@dealer.example
Subject: Mower will not start
Message-ID: <abc123@example.com>
Date: Tue, 03 Mar 2026 10:02:00 +0100
""",
            "My mower will not start.\r\nCan you help?",
        )
    )
    assert (got.sender, got.sender_name) == ("dana@example.com", "Dana Smith")
    assert got.subject == "Mower will not start"
    assert got.text == "My mower will not start.\nCan you help?"
    assert got.reply_text == got.text
    assert got.message_id == "<abc123@example.com>"
    assert got.date == datetime(2026, 3, 3, 9, 2, tzinfo=UTC)
    assert (got.in_reply_to, got.references, got.attachments, got.automated) == (None, (), (), None)


def test_rfc2047_headers_and_a_non_ascii_body_are_decoded() -> None:
    message = EmailMessage()
    message["From"] = "Jörg Müller <joerg@example.de>"
    message["Subject"] = "Rasenmäher – Angebot?"
    message["Message-ID"] = "<m1@example.de>"
    message.set_content("Grüße aus Köln: ½ Preis?", charset="iso-8859-1")
    got = parse(message.as_bytes())
    assert b"=?utf-8?" in message.as_bytes()  # really encoded words on the wire
    assert got.sender_name == "Jörg Müller"
    assert got.subject == "Rasenmäher – Angebot?"
    assert got.text == "Grüße aus Köln: ½ Preis?"


def test_html_only_becomes_readable_text() -> None:
    html = (
        "<html><head><style>p{color:red}</style><title>x</title></head><body>"
        "<p>Hi&nbsp;there,</p><p>We need a <b>quote</b> for:</p><ul><li>two mowers</li><li>a trimmer</li></ul>"
        "<script>alert(1)</script><div>Thanks<br>Sam</div></body></html>"
    )
    got = parse(raw("From: sam@example.com\nSubject: Quote\nContent-Type: text/html; charset=utf-8", html))
    assert got.text == "Hi\xa0there,\n\nWe need a quote for:\n\n- two mowers\n- a trimmer\n\nThanks\nSam"
    assert "alert" not in got.text
    assert "color" not in got.text


def test_text_is_preferred_over_html_and_attachments_are_listed_not_kept() -> None:
    message = EmailMessage()
    message["From"] = "ann@example.com"
    message["Subject"] = "Photo of the damage"
    message.set_content("See the photo.")
    message.add_alternative("<p>See the <i>photo</i>.</p>", subtype="html")
    message.add_attachment(b"\x89PNG" + b"0" * 996, maintype="image", subtype="png", filename="deck.png")
    message.add_attachment(
        b"%PDF-1.4 invoice", maintype="application", subtype="pdf", filename="Rechnung ä.pdf"
    )
    got = parse(message.as_bytes())
    assert got.text == "See the photo."
    assert [(a.filename, a.content_type, a.size) for a in got.attachments] == [
        ("deck.png", "image/png", 1000),
        ("Rechnung ä.pdf", "application/pdf", 16),
    ]


def test_thread_headers() -> None:
    got = parse(
        raw("""
From: a@example.com
Subject: Re: Your service is due
Message-ID: <r2@example.com>
In-Reply-To: <herald-1@dealer.example>
References: <root@dealer.example>
 <herald-1@dealer.example>
""")
    )
    assert got.in_reply_to == "<herald-1@dealer.example>"
    assert got.references == ("<root@dealer.example>", "<herald-1@dealer.example>")
    assert got.thread == ("<herald-1@dealer.example>", "<root@dealer.example>")


def test_in_reply_to_missing_from_references_is_added_and_a_missing_message_id_is_derived() -> None:
    body = raw("From: a@example.com\nIn-Reply-To: <x@y>\nReferences: <root@y>")
    got = parse(body)
    assert got.references == ("<root@y>", "<x@y>")
    assert got.message_id.endswith("@herald.invalid>")
    assert parse(body).message_id == got.message_id  # the same bytes, the same id: read twice, stored once


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "Yes, Tuesday works.\n\nOn Mon, 2 Mar 2026 at 09:00, Riverside <s@dealer.example> wrote:\n> Does Tuesday work?",
            "Yes, Tuesday works.",
        ),
        (
            "Yes.\n\nOn Mon, 2 Mar 2026 at 09:00, Riverside Power Equipment\n<s@dealer.example> wrote:\n> Tuesday?",
            "Yes.",
        ),
        ("Fine by me.\n> quoted\n> more\nAnd one more thing.", "Fine by me.\nAnd one more thing."),
        (
            "Sounds good\n\n-----Original Message-----\nFrom: Service\nSent: Monday\nSubject: x\n\nold text",
            "Sounds good",
        ),
        (
            "Sounds good\n\nFrom: Service <s@dealer.example>\nSent: Monday, March 2, 2026 9:00 AM\nTo: me\n\nold",
            "Sounds good",
        ),
        ("Call me.\n________________________________\nFrom: Service\nSent: Monday\n\nold", "Call me."),
        ("Call me tomorrow.\n\n-- \nDana Smith\nAcme Farms", "Call me tomorrow."),
        ("Call me tomorrow.\n\nSent from my iPhone", "Call me tomorrow."),
        ("Ok\n\nGet Outlook for Android", "Ok"),
        (
            "Am 2. März 2026 um 09:00 schrieb Service <s@h.example>:\n> alt",
            "Am 2. März 2026 um 09:00 schrieb Service <s@h.example>:\n> alt",
        ),
        (
            "On second thought, Tuesday.\nOn Mon, 2 Mar 2026, S <s@x.example> wrote:\n> old",
            "On second thought, Tuesday.",
        ),
    ],
)
def test_quotes_and_signatures_are_cut_from_what_the_agent_reads(body: str, expected: str) -> None:
    assert reply_text(body) == expected


def test_an_html_reply_loses_its_blockquote() -> None:
    html = "<div>Tuesday is fine.</div><blockquote><div>Does Tuesday work?</div></blockquote>"
    assert html_to_text(html) == "Tuesday is fine.\n\n> Does Tuesday work?"
    assert reply_text(html_to_text(html)) == "Tuesday is fine."


@pytest.mark.parametrize(
    "headers",
    [
        "From: a@example.com\nAuto-Submitted: auto-replied",
        "From: a@example.com\nPrecedence: bulk",
        "From: a@example.com\nPrecedence: auto_reply",
        "From: a@example.com\nX-Autoreply: yes",
        "From: a@example.com\nX-Autorespond: Out of office",
        "From: MAILER-DAEMON@mx.example.com",
        "From: Mail Delivery System <postmaster@mx.example.com>",
        "From: a@example.com\nReturn-Path: <>",
        'From: a@example.com\nContent-Type: multipart/report; report-type=delivery-status; boundary="b"',
    ],
)
def test_auto_replies_and_bounces_are_recognised(headers: str) -> None:
    got = parse(raw(headers, "--b\r\nContent-Type: text/plain\r\n\r\nDelivery failed\r\n--b--\r\n"))
    assert got.suppressed
    assert got.automated


def test_a_person_is_not_automated() -> None:
    got = parse(
        raw("From: a@example.com\nAuto-Submitted: no\nPrecedence: normal\nReturn-Path: <a@example.com>")
    )
    assert got.automated is None


@pytest.mark.parametrize(
    "data",
    [
        b"From: =?x-unknown?q?J=F6rg?= <j@example.com>\r\nSubject: =?utf-8?b?!!!notbase64?=\r\n"
        b"Content-Type: text/plain; charset=x-no-such-charset\r\n\r\nGr\xfc\xdfe",
        b"From: <<<>>>@@@\r\nDate: not a date\r\nMessage-ID: \r\nReferences: garbage\r\n\r\nbody",
        b'From: a@example.com\r\nContent-Type: multipart/mixed; boundary="never"\r\n\r\nno parts at all',
        b"\xff\xfe\x00garbage without headers",
        b"",
        b"From: a@example.com\r\nSubject: line\r\n break\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!###",
        b"From: a@example.com\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>unclosed <b>bold <div><<<>>>",
    ],
)
def test_malformed_input_never_raises(data: bytes) -> None:
    got = parse(data)
    assert isinstance(got.text, str)
    assert got.message_id
    assert "\n" not in got.subject


def test_undecodable_charset_falls_back() -> None:
    got = parse(
        b"From: a@example.com\r\nContent-Type: text/plain; charset=x-no-such-charset\r\n\r\nGr\xfc\xdfe"
    )
    assert got.text == "Grüße"


def test_reply_to_is_where_answers_go() -> None:
    got = parse(raw("From: Website <noreply@site.example>\nReply-To: Dana <dana@example.com>"))
    assert (got.sender, got.reply_address) == ("noreply@site.example", "dana@example.com")
