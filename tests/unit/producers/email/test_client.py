"""The IMAP client's pure parts: the XOAUTH2 initial response, UID sets, FETCH answers as aioimaplib gives them."""

from __future__ import annotations

import base64

from herald.producers.email.client import _literals_by_uid, quote, uid_set, xoauth2_string


def test_xoauth2_string_is_googles_and_microsofts_format() -> None:
    encoded = xoauth2_string("someuser@example.com", "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg")
    assert base64.b64decode(encoded) == (
        b"user=someuser@example.com\x01auth=Bearer ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg\x01\x01"
    )
    # Google's documented example, byte for byte.
    assert encoded == (
        "dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5LnZGOWRmdDRxbVRjMk52YjNSbGNrQmhkSFJoZG1semRH"
        "RXVZMjl0Q2cBAQ=="
    )


def test_uid_sets_collapse_runs() -> None:
    assert uid_set([7, 1, 2, 3, 9, 10]) == "1:3,7,9:10"
    assert uid_set([5]) == "5"


def test_folder_names_are_quoted() -> None:
    assert quote('My "Leads"') == '"My \\"Leads\\""'


def test_fetch_answers_by_uid_before_or_after_the_literal() -> None:
    lines = [
        b"1 FETCH (UID 11 BODY[] {5}", bytearray(b"hello"), b")",
        b"2 FETCH (BODY[] {5}", bytearray(b"world"), b" UID 12)",
        b"3 FETCH (FLAGS (\\Seen) UID 13)",  # an unsolicited flag change carries no body
        b"Fetch completed.",
    ]  # fmt: skip
    assert _literals_by_uid(lines) == {11: b"hello", 12: b"world"}
