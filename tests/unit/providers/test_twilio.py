"""Twilio adapter against the fake Twilio: SMS, WhatsApp and voice requests, ids, error classes, TwiML."""

from __future__ import annotations

import base64
import xml.etree.ElementTree as ET

import httpx
import pytest
from pydantic import ValidationError

from herald.core.errors import PermanentDeliveryError, RetryableDeliveryError
from herald.providers.fakebase import Behaviour
from herald.providers.twilio.send import TwilioChannel, TwilioCredentials, speakable, twiml_say
from tests.unit.providers.conftest import Fake, outbound

SID = "AC" + "0123456789abcdef" * 2
TOKEN = "twilio-auth-token-123"
CREDS = {"account_sid": SID, "auth_token": TOKEN, "from_number": "+15017122661"}
BASIC = "Basic " + base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()


def _form(request: object) -> dict[str, str]:
    return {k: v[0] for k, v in request.form.items()}  # type: ignore[attr-defined]


async def test_sms_posts_messages_json_with_basic_auth_and_returns_sid(fake: Fake) -> None:
    twilio = fake.adapter("twilio", "sms", CREDS)
    sid = await twilio.send(outbound("+14155551212", "Your order shipped", platform="sms"))
    (request,) = fake.requests("twilio")
    assert request.path == f"/2010-04-01/Accounts/{SID}/Messages.json"
    assert request.headers["authorization"] == BASIC
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert _form(request) == {"To": "+14155551212", "From": "+15017122661", "Body": "Your order shipped"}
    assert sid.startswith("SM")


async def test_messaging_service_replaces_from(fake: Fake) -> None:
    creds = {**CREDS, "messaging_service_sid": "MG" + "1" * 32}
    await fake.adapter("twilio", "sms", creds).send(outbound("+14155551212", platform="sms"))
    (request,) = fake.requests("twilio")
    assert _form(request) == {"To": "+14155551212", "MessagingServiceSid": "MG" + "1" * 32, "Body": "Hello"}


async def test_whatsapp_prefixes_to_and_from(fake: Fake) -> None:
    twilio = fake.adapter("twilio", "whatsapp", CREDS)
    sid = await twilio.send(outbound("14155551212", "Hi there", platform="whatsapp"))
    (request,) = fake.requests("twilio")
    assert request.path == f"/2010-04-01/Accounts/{SID}/Messages.json"
    assert _form(request) == {
        "To": "whatsapp:+14155551212", "From": "whatsapp:+15017122661", "Body": "Hi there",
    }  # fmt: skip
    assert sid.startswith("SM")


async def test_voice_posts_calls_json_with_twiml_reading_codes_digit_by_digit(fake: Fake) -> None:
    twilio = fake.adapter("twilio", "voice", CREDS)
    sid = await twilio.send(
        outbound("+14155551212", "Your code is 482913 & <expires> soon", platform="voice")
    )
    (request,) = fake.requests("twilio")
    assert request.path == f"/2010-04-01/Accounts/{SID}/Calls.json"
    assert request.headers["authorization"] == BASIC
    form = _form(request)
    assert form["To"] == "+14155551212"
    assert form["From"] == "+15017122661"
    assert form["Twiml"] == (
        "<Response><Say>Your code is 4, 8, 2, 9, 1, 3 &amp; &lt;expires&gt; soon</Say></Response>"
    )
    root = ET.fromstring(form["Twiml"])  # noqa: S314
    assert root.tag == "Response"
    assert root[0].text == "Your code is 4, 8, 2, 9, 1, 3 & <expires> soon"
    assert sid.startswith("CA")


def test_digit_runs_of_four_to_ten_are_spelled_out() -> None:
    assert speakable("PIN 1234, ref 12345678901, id 123, otp 0123456789") == (
        "PIN 1, 2, 3, 4, ref 12345678901, id 123, otp 0, 1, 2, 3, 4, 5, 6, 7, 8, 9"
    )
    assert twiml_say("a<b") == "<Response><Say>a&lt;b</Say></Response>"


async def test_bad_auth_token_is_permanent(fake: Fake) -> None:
    twilio = fake.adapter("twilio", "sms", {**CREDS, "auth_token": "invalid-token-xyz"})
    with pytest.raises(PermanentDeliveryError, match="20003"):
        await twilio.send(outbound("+14155551212", platform="sms"))


@pytest.mark.parametrize(
    ("number", "code"),
    [("+15005550001", "21211"), ("+15005550004", "21610"), ("+15005550009", "21614")],
)
async def test_recipient_errors_are_permanent(fake: Fake, number: str, code: str) -> None:
    with pytest.raises(PermanentDeliveryError, match=code):
        await fake.adapter("twilio", "sms", CREDS).send(outbound(number, platform="sms"))


async def test_whatsapp_outside_the_window_is_permanent(fake: Fake) -> None:
    fake.script("twilio", Behaviour(kind="permanent"))
    with pytest.raises(PermanentDeliveryError, match="63016"):
        await fake.adapter("twilio", "whatsapp", CREDS).send(outbound("+14155551212", platform="whatsapp"))


async def test_recipient_not_e164_is_refused_before_sending(fake: Fake) -> None:
    with pytest.raises(PermanentDeliveryError, match=r"E\.164"):
        await fake.adapter("twilio", "sms", CREDS).send(outbound("4155551212", platform="sms"))
    with pytest.raises(PermanentDeliveryError, match=r"E\.164"):
        await fake.adapter("twilio", "voice", CREDS).send(outbound("call me", platform="voice"))
    assert fake.requests("twilio") == []


async def test_rate_limit_is_retryable_with_retry_after(fake: Fake) -> None:
    fake.script("twilio", Behaviour(kind="rate_limited", retry_after=7))
    with pytest.raises(RetryableDeliveryError, match="20429") as caught:
        await fake.adapter("twilio", "sms", CREDS).send(outbound("+14155551212", platform="sms"))
    assert caught.value.retry_after == 7


async def test_voice_rate_limit_is_retryable(fake: Fake) -> None:
    fake.script("twilio", Behaviour(kind="rate_limited", retry_after=2))
    with pytest.raises(RetryableDeliveryError) as caught:
        await fake.adapter("twilio", "voice", CREDS).send(outbound("+14155551212", platform="voice"))
    assert caught.value.retry_after == 2


async def test_20429_without_http_429_is_retryable() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"code": 20429, "message": "Too Many Requests", "status": 400})

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
        from herald.providers import ChannelConfig

        config = ChannelConfig(id="c", tenant_id="t", platform="sms", provider="twilio", credentials=CREDS)
        with pytest.raises(RetryableDeliveryError, match="20429"):
            await TwilioChannel(config, http).send(outbound("+14155551212", platform="sms"))


async def test_server_error_is_retryable(fake: Fake) -> None:
    fake.script("twilio", Behaviour(kind="server_error", status=503))
    with pytest.raises(RetryableDeliveryError, match="503"):
        await fake.adapter("twilio", "sms", CREDS).send(outbound("+14155551212", platform="sms"))


async def test_timeout_is_retryable(fake: Fake) -> None:
    fake.script("twilio", Behaviour(kind="timeout", delay=1))
    with pytest.raises(RetryableDeliveryError, match="timed out"):
        await fake.adapter("twilio", "sms", CREDS).send(outbound("+14155551212", platform="sms"))


async def test_unreachable_provider_is_retryable(fake: Fake) -> None:
    twilio = fake.adapter("twilio", "sms", CREDS, base_url="http://127.0.0.1:9")
    with pytest.raises(RetryableDeliveryError, match="unreachable"):
        await twilio.send(outbound("+14155551212", platform="sms"))


async def test_body_over_1600_is_permanent_and_declared(fake: Fake) -> None:
    assert TwilioChannel.max_length == 1_600
    assert TwilioChannel.split_long is False
    with pytest.raises(PermanentDeliveryError, match="1600"):
        await fake.adapter("twilio", "sms", CREDS).send(outbound("+14155551212", "x" * 1_601, platform="sms"))
    assert fake.requests("twilio") == []


async def test_fake_refuses_a_long_body_with_21617(fake: Fake) -> None:
    response = await fake.http.post(
        f"{fake.origin}/2010-04-01/Accounts/{SID}/Messages.json",
        data={"To": "+14155551212", "From": "+15017122661", "Body": "x" * 1_601},
        auth=(SID, TOKEN),
    )
    assert response.status_code == 400
    assert response.json()["code"] == 21617


async def test_fake_checks_the_account_in_the_path(fake: Fake) -> None:
    response = await fake.http.post(
        f"{fake.origin}/2010-04-01/Accounts/AC_other/Messages.json",
        data={"To": "+14155551212", "From": "+15017122661", "Body": "Hi"},
        auth=(SID, TOKEN),
    )
    assert response.status_code == 401
    assert response.json()["code"] == 20003


def test_default_origin_and_platforms() -> None:
    assert TwilioChannel.default_origin == "https://api.twilio.com"
    assert TwilioChannel.platforms == frozenset({"sms", "whatsapp", "voice"})


def test_credentials_need_a_sender() -> None:
    with pytest.raises(ValidationError, match="from_number or messaging_service_sid"):
        TwilioCredentials.model_validate({"account_sid": SID, "auth_token": TOKEN})


def test_credentials_never_show_in_repr(fake: Fake) -> None:
    twilio = fake.adapter("twilio", "sms", CREDS)
    assert TOKEN not in repr(twilio)
    assert TOKEN not in repr(twilio.config)
    assert TOKEN not in repr(TwilioCredentials.model_validate(CREDS))
