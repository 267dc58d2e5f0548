"""Twilio: SMS and WhatsApp through the Messages resource, voice calls through the Calls resource.

One provider serves three platforms; the message's platform picks the request:

- ``sms``: ``POST /2010-04-01/Accounts/{AccountSid}/Messages.json`` with ``To``, ``From`` (or
  ``MessagingServiceSid``) and ``Body``;
- ``whatsapp``: the same with ``whatsapp:``-prefixed ``To`` and ``From``;
- ``voice``: ``POST .../Calls.json`` with ``To``, ``From`` and inline ``Twiml`` that says the text, reading runs
  of 4 to 10 digits one digit at a time (so one-time codes are understood).

Auth is HTTP Basic ``AccountSid:AuthToken``. The message id is the resource ``sid`` (``SM...``/``CA...``). Errors
are ``{"code", "message", "more_info", "status"}``: 20429 (HTTP 429) and 5xx are retryable, every other 4xx
(21211 invalid To, 21610 unsubscribed, 21614 not a mobile, 21617 too long, 63016 outside the WhatsApp 24 h
window, 20003 bad credentials, ...) is permanent.
"""

from __future__ import annotations

import re
from typing import ClassVar
from xml.sax.saxutils import escape

import httpx
from pydantic import BaseModel, ConfigDict, Field, model_validator

from herald.core.errors import PermanentDeliveryError, RetryableDeliveryError
from herald.providers.base import Channel, OutboundMessage, parse_retry_after
from herald.providers.http import call, json_body, origin

E164 = re.compile(r"^\+[1-9]\d{7,14}$")
# Runs of 4 to 10 digits (one-time codes, PINs) not part of a longer number.
_DIGIT_RUN = re.compile(r"(?<!\d)\d{4,10}(?!\d)")
RATE_LIMITED_CODES = frozenset({20429})
MAX_BODY = 1_600  # Twilio error 21617 beyond this
MAX_TWIML = 4_000  # the Calls resource refuses longer inline Twiml


class TwilioCredentials(BaseModel):
    model_config = ConfigDict(extra="forbid")

    account_sid: str = Field(pattern=r"^AC\w{6,}$", description="AC..., the account (or subaccount) sid")
    auth_token: str = Field(min_length=8, repr=False)
    from_number: str | None = Field(
        default=None,
        description="E.164 sender number (or alphanumeric sender id for SMS); required for voice and WhatsApp",
    )
    messaging_service_sid: str | None = Field(
        default=None, pattern=r"^MG\w{6,}$", description="MG...; when set, SMS and WhatsApp send through it"
    )

    @model_validator(mode="after")
    def _has_a_sender(self) -> TwilioCredentials:
        if not self.from_number and not self.messaging_service_sid:
            raise ValueError("give from_number or messaging_service_sid")
        return self


def speakable(text: str) -> str:
    """``text`` with each run of 4 to 10 digits spelled out digit by digit ("1234" -> "1, 2, 3, 4")."""
    return _DIGIT_RUN.sub(lambda match: ", ".join(match.group()), text)


def twiml_say(text: str) -> str:
    """The TwiML document that speaks ``text`` once."""
    return f"<Response><Say>{escape(speakable(text))}</Say></Response>"


class TwilioChannel(Channel):
    provider = "twilio"
    platforms: ClassVar[frozenset[str]] = frozenset({"sms", "whatsapp", "voice"})
    read_receipts: ClassVar[frozenset[str]] = frozenset({"whatsapp"})  # SMS and voice report delivery only
    credentials_model = TwilioCredentials
    max_length = MAX_BODY
    split_long = False
    rate_per_second = 1.0  # a long-code number sends about one segment per second; calls are 1 per second
    default_origin = "https://api.twilio.com"

    async def send(self, message: OutboundMessage) -> str:
        creds = TwilioCredentials.model_validate(self.config.credentials)
        platform = message.platform or self.config.platform
        if platform not in self.platforms:
            raise PermanentDeliveryError(f"twilio does not serve platform {platform!r}")
        to = message.recipient_id.removeprefix("whatsapp:").strip()
        if platform == "whatsapp" and to[:1].isdigit():
            to = f"+{to}"  # WhatsApp recipients are often written without the plus
        if not E164.match(to):
            raise PermanentDeliveryError(f"twilio: {message.recipient_id!r} is not an E.164 phone number")
        if len(message.content) > MAX_BODY:
            raise PermanentDeliveryError(f"twilio: text longer than {MAX_BODY} characters (21617)")

        base = f"{origin(self.config.base_url, self.default_origin)}/2010-04-01/Accounts/{creds.account_sid}"
        form: dict[str, str]
        if platform == "voice":
            if not creds.from_number:
                raise PermanentDeliveryError("twilio: voice calls need from_number")
            twiml = twiml_say(message.content)
            if len(twiml) > MAX_TWIML:
                raise PermanentDeliveryError(f"twilio: TwiML longer than {MAX_TWIML} characters")
            url, form = f"{base}/Calls.json", {"To": to, "From": creds.from_number, "Twiml": twiml}
        else:
            prefix = "whatsapp:" if platform == "whatsapp" else ""
            form = {"To": f"{prefix}{to}", "Body": message.content}
            if creds.messaging_service_sid:
                form["MessagingServiceSid"] = creds.messaging_service_sid
            else:
                assert creds.from_number is not None  # the credentials validator insists on one
                form["From"] = f"{prefix}{creds.from_number.removeprefix('whatsapp:')}"
            url = f"{base}/Messages.json"

        response = await call(
            self.http, self.provider, "POST", url, data=form, auth=(creds.account_sid, creds.auth_token)
        )
        return _sid_or_raise(response)


def _sid_or_raise(response: httpx.Response) -> str:
    body = json_body(response)
    status = response.status_code
    if 200 <= status < 300:
        if body.get("sid"):
            return str(body["sid"])
        raise PermanentDeliveryError("twilio: malformed answer (no sid)")
    code = body.get("code")
    text = f"twilio answered HTTP {status}" + (
        f": {code} {body.get('message') or ''}".rstrip() if code else ""
    )
    if status == 429 or code in RATE_LIMITED_CODES or status >= 500:
        raise RetryableDeliveryError(text, retry_after=parse_retry_after(response.headers.get("retry-after")))
    raise PermanentDeliveryError(text)
