"""The inbound registry: one adapter per provider that takes inbound messages, keyed by the channel registry's
provider names, each secret an optional write-only credential of that channel."""

from __future__ import annotations

from datetime import datetime

import pytest

from herald.core.errors import Unauthorized
from herald.fakes import inbound as fake
from herald.providers import REGISTRY, provider_class, providers
from herald.providers.inbound import InboundAdapter, InboundMessage

INBOUND: dict[str, InboundAdapter] = {
    name: p.inbound for name in REGISTRY.names() if (p := REGISTRY.get(name)) and p.inbound is not None
}


def test_every_inbound_provider_is_a_channel_provider() -> None:
    assert set(INBOUND) == {
        "whatsapp_cloud",
        "messenger",
        "slack",
        "telegram",
        "twilio",
        "line",
        "discord_bot",
    }
    assert set(INBOUND) <= set(providers())
    assert all(adapter.provider == name for name, adapter in INBOUND.items())


@pytest.mark.parametrize("provider", sorted(INBOUND))
def test_the_inbound_secret_is_a_hidden_credential(provider: str) -> None:
    cls = provider_class(provider)
    assert cls is not None
    field = cls.credentials_model.model_fields[INBOUND[provider].secret_key]
    assert field.repr is False
    assert fake.SECRET_KEYS[provider] == INBOUND[provider].secret_key


@pytest.mark.parametrize("provider", sorted(INBOUND))
def test_every_builder_round_trips_and_forgeries_fail(provider: str) -> None:
    secret = fake.DISCORD_TEST_PUBLIC_KEY if provider == "discord_bot" else "inbound-secret-123"
    creds = {INBOUND[provider].secret_key: secret}
    request = fake.message(provider, creds, text="round trip")
    found = INBOUND[provider].receive(creds, request.callback())
    assert isinstance(found, list)
    assert len(found) == 1
    assert "round trip" in found[0].text
    wrong = fake.discord_key_pair()[0] if provider == "discord_bot" else "not-the-secret"
    forged = fake.message(provider, creds, text="round trip", secret=wrong)
    with pytest.raises(Unauthorized, match="does not match"):
        INBOUND[provider].receive(creds, forged.callback())


def test_sent_at_must_be_aware() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        InboundMessage("c", "s", "t", "id", datetime(2025, 1, 1))
