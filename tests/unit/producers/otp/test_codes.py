"""OTP codes: derived per verification, uniform digits, stored only as a keyed digest, compared in constant
time, recipients keyed per tenant."""

from __future__ import annotations

import hmac
from collections import Counter

import pytest

from herald.core.ids import new_id
from herald.producers.otp import codes
from herald.producers.otp.codes import CodeBook, codebook

SECRET = "s" * 40


@pytest.fixture
def book() -> CodeBook:
    return codebook(SECRET)


@pytest.mark.parametrize("length", range(4, 11))
def test_codes_have_the_asked_number_of_digits(book: CodeBook, length: int) -> None:
    for _ in range(50):
        code = book.code("ten_1", new_id("otp"), length)
        assert len(code) == length
        assert code.isdigit()


def test_lengths_outside_4_to_10_are_refused(book: CodeBook) -> None:
    for length in (3, 11):
        with pytest.raises(ValueError, match="4 to 10"):
            book.code("ten_1", "otp_1", length)


def test_a_code_is_stable_for_its_verification_and_different_for_another(book: CodeBook) -> None:
    first = new_id("otp")
    assert book.code("ten_1", first, 6) == book.code("ten_1", first, 6)  # a resend sends the same code
    assert codebook(SECRET).code("ten_1", first, 6) == book.code("ten_1", first, 6)
    many = {book.code("ten_1", new_id("otp"), 10) for _ in range(200)}
    assert len(many) == 200
    assert book.code("ten_1", first, 10) != book.code("ten_2", first, 10)  # tenants apart
    assert book.code("ten_1", first, 10) != codebook("t" * 40).code("ten_1", first, 10)  # key-dependent


def test_digits_are_roughly_uniform(book: CodeBook) -> None:
    digits = Counter("".join(book.code("ten_1", new_id("otp"), 10) for _ in range(2000)))
    assert set(digits) == set("0123456789")
    expected = 2000
    assert all(abs(count - expected) < expected * 0.15 for count in digits.values()), digits


def test_rejection_sampling_skips_biased_values(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 64-bit value at or above the largest multiple of 10**n is skipped, never reduced."""
    book = codebook(SECRET)
    top = (2**64 - 1).to_bytes(8, "big")  # always in the biased tail
    five = (5).to_bytes(8, "big")
    blocks = iter([top * 4, top * 3 + five])
    monkeypatch.setattr(codes, "_mac", lambda *_: next(blocks))
    assert book.code("ten_1", "otp_1", 6) == "000005"


def test_digest_is_keyed_bound_to_the_verification_and_holds_no_code(book: CodeBook) -> None:
    code = book.code("ten_1", "otp_a", 6)
    stored = book.digest("otp_a", code)
    assert len(stored) == 64
    assert code not in stored
    assert book.matches("otp_a", code, stored)
    assert not book.matches("otp_b", code, stored)  # the same digits for another verification fail
    assert not book.matches("otp_a", "000000" if code != "000000" else "111111", stored)
    assert not codebook("t" * 40).matches("otp_a", code, stored)


def test_matches_compares_in_constant_time(book: CodeBook, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(codes.hmac, "compare_digest", spy)
    stored = book.digest("otp_a", "123456")
    assert book.matches("otp_a", "123456", stored)
    assert not book.matches("otp_a", "654321", stored)
    assert len(calls) == 2


def test_recipient_keys_are_per_tenant_and_hide_the_address(book: CodeBook) -> None:
    key = book.recipient("ten_1", "phone:+447700900123")
    assert len(key) == 64
    assert "447700900123" not in key
    assert key == book.recipient("ten_1", "phone:+447700900123")
    assert key != book.recipient("ten_2", "phone:+447700900123")
    assert key != book.recipient("ten_1", "phone:+447700900124")


def test_keys_never_show_in_repr(book: CodeBook) -> None:
    assert book.code_key.hex() not in repr(book)
    assert "code_key" not in repr(book)


def test_mask_hides_every_digit() -> None:
    assert codes.mask(6) == "******"
