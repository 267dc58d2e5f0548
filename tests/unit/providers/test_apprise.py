"""Apprise adapter against the fake JSON receiver: Apprise's ``json://`` posts reach it; failures classified."""

from __future__ import annotations

import logging

import pytest
from pydantic import ValidationError

from herald.core.errors import PermanentDeliveryError, RetryableDeliveryError
from herald.providers.apprise.send import AppriseChannel, AppriseCredentials
from herald.providers.fakebase import Behaviour
from tests.unit.providers.conftest import Fake, outbound


def url(fake: Fake, suffix: str = "") -> str:
    return f"{fake.origin.replace('http://', 'json://')}/apprise/inbox{suffix}"


async def test_notifies_through_the_apprise_url_and_returns_an_id(fake: Fake) -> None:
    apprise = fake.adapter("apprise", "slack", {"url": url(fake)})
    message_id = await apprise.send(outbound("C12345", "Deploy finished", subject="CI"))
    (request,) = fake.requests("apprise")
    assert request.method == "POST"
    assert request.path == "/apprise/inbox"
    assert request.json["message"] == "Deploy finished"
    assert request.json["title"] == "CI"
    assert len(message_id) == 36  # a UUID: Apprise gives no provider id


async def test_basic_credentials_in_the_url_are_sent(fake: Fake) -> None:
    target = url(fake).replace("json://", "json://bot:token-123@")
    await fake.adapter("apprise", "email", {"url": target}).send(
        outbound("a@example.org", "Hi", platform="email")
    )
    (request,) = fake.requests("apprise")
    assert request.headers["authorization"].startswith("Basic ")


async def test_refused_credentials_are_retryable_since_apprise_does_not_classify(fake: Fake) -> None:
    target = url(fake).replace("json://", "json://bot:invalid-token@")
    with pytest.raises(RetryableDeliveryError, match="notify failed"):
        await fake.adapter("apprise", "slack", {"url": target}).send(outbound("C12345"))


@pytest.mark.parametrize("kind", ["server_error", "rate_limited", "permanent"])
async def test_a_failed_notify_is_retryable(fake: Fake, kind: str) -> None:
    fake.script("apprise", Behaviour(kind=kind))  # type: ignore[arg-type]
    with pytest.raises(RetryableDeliveryError, match="notify failed") as caught:
        await fake.adapter("apprise", "slack", {"url": url(fake)}).send(outbound("C12345"))
    assert caught.value.retry_after is None


async def test_timeout_is_retryable(fake: Fake) -> None:
    fake.script("apprise", Behaviour(kind="timeout", delay=1))
    apprise = fake.adapter("apprise", "slack", {"url": url(fake, "?rto=0.3")})
    with pytest.raises(RetryableDeliveryError, match="notify failed"):
        await apprise.send(outbound("C12345"))


async def test_our_own_ceiling_on_a_slow_notify_is_retryable(fake: Fake) -> None:
    fake.script("apprise", Behaviour(kind="timeout", delay=1))
    apprise = fake.adapter("apprise", "slack", {"url": url(fake)})
    apprise.timeout = 0.2  # type: ignore[misc]
    with pytest.raises(RetryableDeliveryError, match="timed out"):
        await apprise.send(outbound("C12345"))


async def test_unreachable_target_is_retryable(fake: Fake) -> None:
    apprise = fake.adapter("apprise", "slack", {"url": "json://127.0.0.1:9/apprise/inbox?cto=0.5"})
    with pytest.raises(RetryableDeliveryError):
        await apprise.send(outbound("C12345"))


@pytest.mark.parametrize("bad", ["not a url", "nosuchscheme://host/path", "json://"])
async def test_an_unparseable_url_is_permanent_at_send(fake: Fake, bad: str) -> None:
    with pytest.raises(PermanentDeliveryError, match="not a valid Apprise URL"):
        await fake.adapter("apprise", "slack", {"url": bad}).send(outbound("C12345"))
    assert fake.requests("apprise") == []


def test_an_unparseable_url_is_refused_when_the_channel_is_configured() -> None:
    with pytest.raises(ValidationError) as caught:
        AppriseCredentials.model_validate({"url": "nosuchscheme://secret-token@host"})
    assert "secret-token" not in str(caught.value)
    assert (
        AppriseCredentials.model_validate({"url": "json://example.com/hook"}).url == "json://example.com/hook"
    )


def test_serves_every_platform_without_a_length_limit() -> None:
    assert AppriseChannel.serves("slack")
    assert AppriseChannel.serves("sms")
    assert AppriseChannel.max_length is None


def test_credentials_never_show_in_repr(fake: Fake) -> None:
    secret = "json://bot:very-secret-token@example.com/hook"
    apprise = fake.adapter("apprise", "slack", {"url": secret})
    assert "very-secret-token" not in repr(apprise)
    assert "very-secret-token" not in repr(apprise.config)
    assert "very-secret-token" not in repr(AppriseCredentials.model_validate({"url": secret}))


async def test_the_url_stays_out_of_log_lines(fake: Fake, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(1)  # everything, Apprise's TRACE included
    target = url(fake, "/S3CRET-path-token").replace("json://", "json://bot:S3CRET-password@")
    with pytest.raises(ValidationError):
        AppriseCredentials.model_validate({"url": "nosuchscheme://S3CRET-token@host/S3CRET"})
    await fake.adapter("apprise", "slack", {"url": target}).send(outbound("C12345", "Hi"))
    fake.script("apprise", Behaviour(kind="server_error"))
    with pytest.raises(RetryableDeliveryError):
        await fake.adapter("apprise", "slack", {"url": target}).send(outbound("C12345", "Hi"))
    assert any(r.name == "apprise" for r in caplog.records)
    assert "S3CRET" not in caplog.text
    assert all(r.levelno >= logging.DEBUG for r in caplog.records if r.name == "apprise")
