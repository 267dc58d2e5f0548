"""Twilio inbound SMS and WhatsApp: X-Twilio-Signature (shared with receipts) over URL + sorted form fields,
messages parsed from form fields, status callbacks on the same URL skipped, TwiML acknowledgement."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import pytest
from twilio.request_validator import RequestValidator

from herald.core.errors import Unauthorized
from herald.fakes import inbound as fake
from herald.providers import inbound_adapter
from herald.providers.inbound import InboundMessage
from herald.providers.receipts import CallbackRequest
from herald.providers.twilio.receipts import twilio_signature

CREDS = {"account_sid": "AC12345678", "auth_token": "twilio-auth-token-123", "from_number": "+15017122661"}
ADAPTER = inbound_adapter("twilio")
assert ADAPTER is not None
URL = "https://herald.example/api/v1/interfaces/chn_sms/webhook"
SID = "SM1f0e8ae6ade43cb3c0ce4525424e404f"


def received(request: CallbackRequest) -> list[InboundMessage]:
    found = ADAPTER.receive(CREDS, request)
    assert isinstance(found, list)
    return found


def test_the_signature_matches_twilios_documented_example() -> None:
    params = {"CallSid": "CA1234567890ABCDE", "Caller": "+12349013030", "Digits": "1234", "From": "+12349013030", "To": "+18005551212"}  # fmt: skip
    assert (
        twilio_signature("12345", "https://mycompany.com/myapp.php?foo=1&bar=2", params)
        == "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
    )


def test_an_sms_is_verified_and_parsed() -> None:
    request = fake.twilio(CREDS, url=URL, text="Ahoy!", sender_id="+14155551212", message_id=SID).callback(
        URL
    )
    (message,) = received(request)
    assert message == InboundMessage(
        conversation_key="+14155551212",
        sender_id="+14155551212",
        text="Ahoy!",
        provider_message_id=SID,
        sent_at=message.sent_at,
        raw_type="text",
    )
    assert abs(datetime.now(UTC) - message.sent_at) < timedelta(seconds=5)  # Twilio sends no timestamp


def test_a_whatsapp_message_with_media_keeps_name_and_references() -> None:
    media = [("https://api.twilio.com/2010-04-01/Accounts/AC12345678/Messages/MM1/Media/ME1", "image/jpeg")]
    request = fake.twilio(
        CREDS, url=URL, text="", sender_id="whatsapp:+14155551212", sender_name="Ada", media=media
    )
    (message,) = received(request.callback(URL))
    assert (message.conversation_key, message.sender_name, message.text, message.raw_type) == (
        "whatsapp:+14155551212", "Ada", "", "image",
    )  # fmt: skip
    assert message.attachments == ({"kind": "image", "ref": media[0][0], "mime_type": "image/jpeg"},)


def test_a_status_callback_is_not_a_message() -> None:
    params = {"MessageSid": SID, "MessageStatus": "delivered", "AccountSid": "AC12345678", "From": "+15017122661", "To": "+14155551212", "SmsStatus": "delivered"}  # fmt: skip
    assert ADAPTER.receive(CREDS, fake.signed("twilio", CREDS, params, url=URL).callback(URL)) == []


def test_a_wrong_auth_token_is_refused() -> None:
    request = fake.twilio(CREDS, url=URL, secret="another-auth-token").callback(URL)
    with pytest.raises(Unauthorized, match="X-Twilio-Signature does not match"):
        ADAPTER.receive(CREDS, request)


def test_a_signature_for_another_url_is_refused() -> None:
    request = fake.twilio(CREDS, url=URL).callback(URL.replace("chn_sms", "chn_other"))
    with pytest.raises(Unauthorized):
        ADAPTER.receive(CREDS, request)


def _signed_by_twilio(
    signed_url: str, received_url: str, token: str = CREDS["auth_token"]
) -> CallbackRequest:
    """A form Twilio signed over ``signed_url`` (by its official library), as Herald receives it at
    ``received_url``."""
    params = {"MessageSid": SID, "From": "+14155551212", "To": "+15017122661", "Body": "Ahoy!"}
    signature = RequestValidator(token).compute_signature(signed_url, params)
    body = urlencode(params).encode()
    headers = {"content-type": "application/x-www-form-urlencoded", "x-twilio-signature": signature}
    return CallbackRequest(url=received_url, body=body, headers=headers, form=params)


PORTS = [
    ("https://herald.example/api/v1/interfaces/chn_sms/webhook?x=1",
     "https://herald.example:443/api/v1/interfaces/chn_sms/webhook?x=1"),
    ("http://herald.example/api/v1/interfaces/chn_sms/webhook",
     "http://herald.example:80/api/v1/interfaces/chn_sms/webhook"),
]  # fmt: skip


@pytest.mark.parametrize(("without", "with_port"), PORTS)
def test_a_signature_is_accepted_with_or_without_the_default_port_as_twilios_validator_does(
    without: str, with_port: str
) -> None:
    for signed_url, received_url in [(without, with_port), (with_port, without), (without, without), (with_port, with_port)]:  # fmt: skip
        request = _signed_by_twilio(signed_url, received_url)
        validator = RequestValidator(CREDS["auth_token"])
        assert validator.validate(received_url, request.form, request.headers["x-twilio-signature"])
        (message,) = received(request)
        assert message.text == "Ahoy!"


def test_only_the_default_port_is_interchangeable() -> None:
    for signed_url, received_url in [
        ("https://herald.example:8443/hook", "https://herald.example:443/hook"),
        ("https://herald.example:80/hook", "https://herald.example/hook"),  # :80 is not https's default
        ("http://herald.example:443/hook", "http://herald.example/hook"),
    ]:
        with pytest.raises(Unauthorized, match="X-Twilio-Signature does not match"):
            received(_signed_by_twilio(signed_url, received_url))
    with pytest.raises(Unauthorized, match="X-Twilio-Signature does not match"):
        received(_signed_by_twilio(PORTS[0][0], PORTS[0][1], token="another-auth-token"))


def test_a_changed_field_is_refused() -> None:
    request = fake.twilio(CREDS, url=URL, text="yes").callback(URL)
    request.form["Body"] = "no"
    with pytest.raises(Unauthorized):
        ADAPTER.verify(CREDS, request)


def test_a_missing_signature_is_refused() -> None:
    request = fake.twilio(CREDS, url=URL)
    del request.headers["x-twilio-signature"]
    with pytest.raises(Unauthorized, match="X-Twilio-Signature is missing"):
        ADAPTER.receive(CREDS, request.callback(URL))


def test_a_channel_without_auth_token_takes_no_inbound() -> None:
    with pytest.raises(Unauthorized, match="this channel has no auth_token configured; inbound is off"):
        ADAPTER.receive({"account_sid": "AC12345678"}, fake.twilio(CREDS, url=URL).callback(URL))


def test_the_acknowledgement_is_empty_twiml() -> None:
    assert ADAPTER.ack is not None
    assert ADAPTER.ack.media_type == "text/xml"
    assert ADAPTER.ack.body.endswith("<Response></Response>")
    assert ADAPTER.handshake(CREDS, fake.twilio(CREDS, url=URL).callback(URL)) is None
