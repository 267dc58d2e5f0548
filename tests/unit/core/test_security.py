"""Secrets: key hashing, credential encryption, Standard Webhooks signatures."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from herald.core.errors import ConfigError
from herald.core.security import (
    CredentialBox,
    hash_api_key,
    new_api_key,
    new_webhook_secret,
    standard_webhook_signature,
    verify_standard_webhook,
)

KEY = "k" * 40


def test_api_keys_are_random_and_stored_as_digests() -> None:
    a, b = new_api_key(), new_api_key()
    assert a != b
    assert a.startswith("hk_")
    assert len(a) > 40
    assert hash_api_key(a) == hashlib.sha256(a.encode()).hexdigest()
    assert a not in hash_api_key(a)


def test_credentials_round_trip_and_are_not_readable_at_rest() -> None:
    box = CredentialBox(KEY)
    sealed = box.seal({"secret": "s3cret-value"})
    assert b"s3cret-value" not in sealed
    assert box.open(sealed) == {"secret": "s3cret-value"}


def test_credentials_sealed_under_another_key_are_refused() -> None:
    sealed = CredentialBox(KEY).seal({"a": 1})
    with pytest.raises(ConfigError, match="HERALD_SECRET_KEY"):
        CredentialBox("z" * 40).open(sealed)


def test_signature_matches_the_standard_webhooks_spec() -> None:
    secret = new_webhook_secret()
    body = b'{"type":"message.sent"}'
    key = base64.b64decode(secret.removeprefix("whsec_"))
    expected = base64.b64encode(hmac.new(key, b"msg_1.1700000000." + body, hashlib.sha256).digest()).decode()
    signature = standard_webhook_signature(secret, "msg_1", 1700000000, body)
    assert signature == f"v1,{expected}"
    assert verify_standard_webhook(secret, "msg_1", 1700000000, body, f"v1,bogus {signature}")
    assert not verify_standard_webhook(secret, "msg_1", 1700000001, body, signature)
    assert not verify_standard_webhook(secret, "msg_2", 1700000000, body, signature)
    assert not verify_standard_webhook(new_webhook_secret(), "msg_1", 1700000000, body, signature)


def test_ids_strictly_increase_within_a_process() -> None:
    from herald.core.ids import new_id

    ids = [new_id("inb") for _ in range(10_000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert all(len(i) == len("inb_") + 28 for i in ids)
