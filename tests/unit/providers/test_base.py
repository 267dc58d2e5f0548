"""Channel helpers: retry-after parsing and the registry."""

from __future__ import annotations

import email.utils
import time

import pytest

from herald.providers import provider_class, providers, register
from herald.providers.base import parse_retry_after
from herald.providers.webhook.send import WebhookChannel


def test_retry_after_seconds_and_http_dates() -> None:
    assert parse_retry_after("120") == 120
    assert parse_retry_after("1.5") == 1.5
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    future = email.utils.formatdate(time.time() + 60, usegmt=True)
    parsed = parse_retry_after(future)
    assert parsed is not None
    assert 55 <= parsed <= 61


def test_registry_is_explicit_and_refuses_duplicates() -> None:
    assert {"devinbox", "webhook"} <= set(providers())
    assert provider_class("webhook") is WebhookChannel
    assert provider_class("nope") is None
    with pytest.raises(ValueError, match="registered twice"):
        register(WebhookChannel)
