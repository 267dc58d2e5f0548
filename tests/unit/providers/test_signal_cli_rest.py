"""signal-cli REST adapter against the fake signal-cli REST API: request shape, timestamp id, error classes,
retry-after, and the required base_url."""

from __future__ import annotations

import httpx
import pytest
from pydantic import ValidationError

from herald.core.errors import PermanentDeliveryError, RetryableDeliveryError
from herald.providers.fakebase import Behaviour
from tests.unit.providers.conftest import Fake, outbound

CREDS = {"number": "+431212131491291"}
TO = "+4354546464654"


async def test_posts_v2_send_and_returns_the_timestamp(fake: Fake) -> None:
    signal = fake.adapter("signal_cli_rest", "signal", CREDS)
    timestamp = await signal.send(outbound(TO, "Hello! I have important updates.", platform="signal"))
    (request,) = fake.requests("signal_cli_rest")
    assert request.method == "POST"
    assert request.path == "/v2/send"
    assert request.json == {
        "message": "Hello! I have important updates.",
        "number": CREDS["number"],
        "recipients": [TO],
    }
    assert timestamp.isdigit()


async def test_unregistered_sender_is_permanent(fake: Fake) -> None:
    signal = fake.adapter("signal_cli_rest", "signal", {"number": "+9991234567"})
    with pytest.raises(PermanentDeliveryError, match=r"User \+9991234567 is not registered"):
        await signal.send(outbound(TO, platform="signal"))


async def test_unregistered_recipient_is_permanent(fake: Fake) -> None:
    fake.script("signal_cli_rest", Behaviour(kind="permanent"))
    with pytest.raises(PermanentDeliveryError, match="Unregistered user"):
        await fake.adapter("signal_cli_rest", "signal", CREDS).send(outbound(TO, platform="signal"))


async def test_rate_limit_is_retryable_with_signals_wait(fake: Fake) -> None:
    fake.script("signal_cli_rest", Behaviour(kind="rate_limited", retry_after=7))
    with pytest.raises(RetryableDeliveryError, match="429") as caught:
        await fake.adapter("signal_cli_rest", "signal", CREDS).send(outbound(TO, platform="signal"))
    assert caught.value.retry_after == 7


async def test_server_error_is_retryable(fake: Fake) -> None:
    fake.script("signal_cli_rest", Behaviour(kind="server_error", status=500))
    with pytest.raises(RetryableDeliveryError, match="500"):
        await fake.adapter("signal_cli_rest", "signal", CREDS).send(outbound(TO, platform="signal"))


async def test_timeout_is_retryable(fake: Fake) -> None:
    fake.script("signal_cli_rest", Behaviour(kind="timeout", delay=1))
    with pytest.raises(RetryableDeliveryError, match="timed out"):
        await fake.adapter("signal_cli_rest", "signal", CREDS).send(outbound(TO, platform="signal"))


async def test_unreachable_provider_is_retryable(fake: Fake) -> None:
    signal = fake.adapter("signal_cli_rest", "signal", CREDS, base_url="http://127.0.0.1:9")
    signal.http = httpx.AsyncClient(timeout=1)
    with pytest.raises(RetryableDeliveryError, match="unreachable"):
        await signal.send(outbound(TO, platform="signal"))
    await signal.http.aclose()


async def test_without_base_url_it_says_so(fake: Fake) -> None:
    signal = fake.adapter("signal_cli_rest", "signal", CREDS, base_url=None)
    with pytest.raises(PermanentDeliveryError, match="needs the channel's base_url"):
        await signal.send(outbound(TO, platform="signal"))
    assert fake.requests("signal_cli_rest") == []


def test_a_400_naming_a_transient_failure_is_retryable() -> None:
    from herald.providers.signal.send import raise_for_signal

    network = {
        "error": 'Failed to send (some) messages:\n+4354546464654: Network failure for "+4354546464654"'
    }
    with pytest.raises(RetryableDeliveryError, match="Network failure"):
        raise_for_signal(httpx.Response(400, json=network), "signal_cli_rest")
    captcha = {
        "error": 'CAPTCHA proof required for sending to "+43...", with challenge token "t", or wait "86400" seconds'
    }
    with pytest.raises(RetryableDeliveryError) as caught:
        raise_for_signal(httpx.Response(400, json=captcha), "signal_cli_rest")
    assert caught.value.retry_after == 86400
    with pytest.raises(PermanentDeliveryError, match="Invalid group id"):
        raise_for_signal(httpx.Response(400, json={"error": "Invalid group id"}), "signal_cli_rest")


def test_number_must_be_e164_and_the_model_mentions_base_url() -> None:
    from herald.providers.signal.send import SignalCliRestCredentials

    with pytest.raises(ValidationError):
        SignalCliRestCredentials(number="0650123456")
    assert "base_url" in str(SignalCliRestCredentials.model_json_schema())


def test_declares_no_length_limit() -> None:
    from herald.providers.signal.send import SignalCliRestChannel

    assert SignalCliRestChannel.max_length is None


def test_credentials_never_show_in_repr(fake: Fake) -> None:
    from herald.providers.signal.send import SignalCliRestCredentials

    signal = fake.adapter("signal_cli_rest", "signal", CREDS)
    assert "1212131491291" not in repr(signal)
    assert "1212131491291" not in repr(signal.config)
    assert "1212131491291" not in repr(SignalCliRestCredentials.model_validate(CREDS))
