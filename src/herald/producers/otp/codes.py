"""One-time codes: derived, hashed and compared so that no readable code is ever stored.

A code is derived HOTP-style (RFC 4226's construction): ``HMAC-SHA256(k_code, tenant || verification id ||
counter)`` read as 64-bit integers, skipping values that would bias the digits (rejection sampling, so every
code is equally likely), reduced to ``length`` digits. The verification id carries 64 bits from ``secrets``
and ``k_code`` is derived from ``HERALD_SECRET_KEY``, so each verification gets a fresh, unpredictable code,
and a resend inside the window sends the *same* code without any copy of it being kept: the server derives it
again.

What the database holds is ``code_hash = HMAC-SHA256(k_hash, verification id || code)``: keyed, so a database
dump alone cannot be brute-forced, and bound to the verification id, so a code is worthless for any other
verification. Checks compare digests with :func:`hmac.compare_digest` (constant time).

Recipients are looked up by ``HMAC-SHA256(k_recipient, tenant || recipient)``, so the OTP tables hold no phone
numbers or email addresses. Each purpose has its own HKDF-derived key (:func:`herald.core.security.derive_key`).
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
from dataclasses import dataclass, field
from functools import lru_cache

from herald.core.security import derive_key

MIN_LENGTH = 4
MAX_LENGTH = 10
_WORD = 1 << 64


@dataclass(frozen=True)
class CodeBook:
    """The three OTP keys and what is done with them; build it with :func:`codebook`."""

    code_key: bytes = field(repr=False)
    hash_key: bytes = field(repr=False)
    recipient_key: bytes = field(repr=False)

    def code(self, tenant_id: str, verification_id: str, length: int) -> str:
        """The verification's code: ``length`` decimal digits, uniformly distributed, leading zeros kept."""
        if not MIN_LENGTH <= length <= MAX_LENGTH:
            raise ValueError(f"code length must be {MIN_LENGTH} to {MAX_LENGTH} digits")
        modulus = 10**length
        limit = _WORD - _WORD % modulus  # values from here up would make low codes likelier
        for counter in itertools.count():
            block = _mac(self.code_key, tenant_id, verification_id, str(counter))
            for start in range(0, len(block), 8):
                value = int.from_bytes(block[start : start + 8], "big")
                if value < limit:
                    return str(value % modulus).zfill(length)
        raise AssertionError("unreachable")  # pragma: no cover

    def digest(self, verification_id: str, code: str) -> str:
        """What is stored instead of the code: 64 hex digits."""
        return _mac(self.hash_key, verification_id, code).hex()

    def matches(self, verification_id: str, candidate: str, stored: str) -> bool:
        """Whether ``candidate`` is the code behind ``stored``, compared in constant time."""
        return hmac.compare_digest(self.digest(verification_id, candidate).encode(), stored.encode())

    def recipient(self, tenant_id: str, recipient: str) -> str:
        """The lookup key of a normalised recipient (``phone:+44...``, ``email:...``, ``contact:...``)."""
        return _mac(self.recipient_key, tenant_id, recipient).hex()


def _mac(key: bytes, *parts: str) -> bytes:
    # NUL cannot occur in ids, codes or normalised recipients, so the encoding of the parts is unambiguous.
    return hmac.new(key, "\x00".join(parts).encode(), hashlib.sha256).digest()


@lru_cache(maxsize=4)
def codebook(secret_key: str) -> CodeBook:
    """The code book for a ``HERALD_SECRET_KEY`` (cached: HKDF runs once per process)."""
    return CodeBook(
        code_key=derive_key(secret_key, "otp-code"),
        hash_key=derive_key(secret_key, "otp-code-hash"),
        recipient_key=derive_key(secret_key, "otp-recipient"),
    )


def mask(length: int) -> str:
    """What history shows in place of a code."""
    return "*" * length
