"""Apprise: any of the 100+ services Apprise speaks, named by one Apprise URL (``tgram://...``, ``json://...``).

The URL embeds the service's tokens, so it is a secret credential. Apprise's ``notify`` is blocking, so it runs
in a worker thread with a fresh ``Apprise`` object per send (no state shared between channels or tenants).
Apprise does not classify failures: a failed notify is retryable; a URL Apprise cannot parse is permanent (and
refused when the channel is created). Apprise returns no message id, so the id is a generated UUID.

The recipient id is not used for addressing (the URL names the destination); it is kept for the audit trail.
"""

from __future__ import annotations

import asyncio
import functools
import uuid
import warnings
from typing import ClassVar

import apprise
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from herald.channels.base import Channel, OutboundMessage
from herald.errors import PermanentDeliveryError, RetryableDeliveryError


@functools.cache
def _load_plugins() -> None:
    """Load Apprise's plugins once, quietly: some import deprecated stdlib modules (``imghdr``) on 3.11+."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        apprise.Apprise.instantiate("json://localhost")


def _services(url: str) -> apprise.Apprise | None:
    """A fresh Apprise object holding ``url``'s service, or None when Apprise cannot parse the URL."""
    _load_plugins()
    notifier = apprise.Apprise()
    return notifier if notifier.add(url) else None


class AppriseCredentials(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=4, max_length=4_096, repr=False, description="an Apprise URL; embeds tokens")

    @field_validator("url")
    @classmethod
    def _apprise_can_parse(cls, value: str) -> str:
        if _services(value) is None:
            # Never echo the URL: it carries the service's tokens.
            raise ValueError("Apprise cannot parse this URL (unknown scheme or missing parts)")
        return value


class AppriseChannel(Channel):
    provider = "apprise"
    platforms: ClassVar[frozenset[str]] = frozenset({"*"})
    credentials_model = AppriseCredentials
    split_long = False
    timeout: ClassVar[float] = 60.0  # a ceiling over Apprise's own socket timeouts (4 s connect and read)

    async def send(self, message: OutboundMessage) -> str:
        try:
            creds = AppriseCredentials.model_validate(self.config.credentials)
        except ValidationError as exc:
            raise PermanentDeliveryError("apprise: the channel's URL is not a valid Apprise URL") from exc
        try:
            ok, status = await asyncio.wait_for(
                asyncio.to_thread(_notify, creds.url, message.content, message.subject or ""), self.timeout
            )
        except TimeoutError as exc:
            # The thread cannot be cancelled; it finishes on its own, the outcome unknown.
            raise RetryableDeliveryError("apprise timed out") from exc
        if ok is None:
            raise PermanentDeliveryError("apprise: the channel's URL is not a valid Apprise URL")
        if not ok:
            raise RetryableDeliveryError(f"apprise: notify failed ({status})")
        return str(uuid.uuid4())


def _notify(url: str, body: str, title: str) -> tuple[bool | None, str]:
    """Blocking: send once; (None, ...) when the URL does not parse, else (success, Apprise's status name)."""
    notifier = _services(url)
    if notifier is None:
        return None, "invalid url"
    result = notifier.notify(body=body, title=title)
    ok = bool(result)
    status = getattr(getattr(result, "status", None), "name", None) or ("SUCCESS" if ok else "FAILURE")
    close = getattr(result, "close", None)
    if callable(close):
        close()  # Apprise 2 may keep captured logs in temporary files
    return ok, str(status).lower()
