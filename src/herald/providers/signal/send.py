"""Signal through a self-hosted signal-cli REST API (bbernhard/signal-cli-rest-api): ``POST {base_url}/v2/send``.

There is no public Signal API, so the channel's ``base_url`` is required: it is where your signal-cli REST API
listens (for example ``http://signal-api:8080``); ``number`` is the registered sender. Success is 201
``{"timestamp": "<ms>"}``: the message id. Errors are ``{"error": "..."}``: 429 (Signal's rate limit, with
challenge tokens) and 5xx retryable; 400 permanent unless its text names a transient failure (rate limiting, a
network failure). signal-cli may say how long to wait (``or wait "N" seconds``); that becomes the retry-after.
"""

from __future__ import annotations

import re
from typing import ClassVar

import httpx
from pydantic import BaseModel, ConfigDict, Field

from herald.core.errors import PermanentDeliveryError, RetryableDeliveryError
from herald.providers.base import Channel, OutboundMessage, parse_retry_after
from herald.providers.http import call, json_body, origin

_TRANSIENT = re.compile(
    r"rate.?limit|RateLimitException|CAPTCHA proof required|network failure|timed? ?out|temporar|try again",
    re.IGNORECASE,
)
_WAIT = re.compile(r"""wait ["']?(\d+(?:\.\d+)?)["']? seconds""")


class SignalCliRestCredentials(BaseModel):
    """The sender's number. The channel's ``base_url`` (the signal-cli REST API's address) is required too."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    number: str = Field(
        pattern=r"^\+[1-9]\d{6,14}$",
        repr=False,
        description="the registered sender in E.164 (+4912345678); also set the channel's base_url to the "
        "signal-cli REST API (e.g. http://signal-api:8080): Signal has no public API",
    )


def raise_for_signal(response: httpx.Response, provider: str) -> None:
    status = response.status_code
    if 200 <= status < 300:
        return
    error = str(json_body(response).get("error") or "").strip()
    text = f"{provider} answered HTTP {status}" + (f": {error[:300]}" if error else "")
    if status == 429 or status >= 500 or (status == 400 and _TRANSIENT.search(error)):
        wait = parse_retry_after(response.headers.get("retry-after"))
        if wait is None and (said := _WAIT.search(error)):
            wait = float(said.group(1))
        raise RetryableDeliveryError(text, retry_after=wait)
    raise PermanentDeliveryError(text)


class SignalCliRestChannel(Channel):
    provider = "signal_cli_rest"
    requires_base_url = True
    platforms: ClassVar[frozenset[str]] = frozenset({"signal"})
    credentials_model = SignalCliRestCredentials

    async def send(self, message: OutboundMessage) -> str:
        if not self.config.base_url:
            raise PermanentDeliveryError(
                f"{self.provider} needs the channel's base_url: the address of your signal-cli REST API "
                "(for example http://signal-api:8080); Signal has no public API to default to"
            )
        creds = SignalCliRestCredentials.model_validate(self.config.credentials)
        response = await call(
            self.http, self.provider, "POST", f"{origin(self.config.base_url, '')}/v2/send",
            json={"message": message.content, "number": creds.number, "recipients": [message.recipient_id]},
        )  # fmt: skip
        raise_for_signal(response, self.provider)
        timestamp = json_body(response).get("timestamp")
        if timestamp is None or timestamp == "":
            raise PermanentDeliveryError(f"{self.provider}: HTTP {response.status_code} without a timestamp")
        return str(timestamp)
