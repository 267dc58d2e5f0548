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
import logging
import re
import uuid
import warnings
from typing import ClassVar

import apprise
from pydantic import BaseModel, ConfigDict, Field, field_validator

from herald.core.errors import PermanentDeliveryError, RetryableDeliveryError
from herald.providers.base import Channel, OutboundMessage


class _RedactUrls(logging.Filter):
    """Apprise logs the URLs it loads (only partly masked) and urllib3 logs request paths; both may carry the
    tokens of the channel's Apprise URL, so URLs and request paths are blanked in those log lines."""

    _URL = re.compile(r"\b([a-z][a-z0-9+.-]*)://\S+", re.IGNORECASE)
    _REQUEST_LINE = re.compile(r'"([A-Z]+) /\S*')

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.DEBUG:
            return False  # Apprise's TRACE lines list every parsed URL part, tokens included
        text = record.getMessage()
        redacted = self._REQUEST_LINE.sub(r'"\1 /[redacted]', self._URL.sub(r"\1://[redacted]", text))
        if redacted != text:
            record.msg, record.args = redacted, None
        return True


for _logger in ("apprise", "urllib3.connectionpool"):
    logging.getLogger(_logger).addFilter(_RedactUrls())


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
    # The whole URL is the secret: keep it out of validation error texts too.
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

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
        # Parsing happens once, in the worker thread with the send (loading Apprise's plugins the first time
        # takes a moment and must not block the event loop).
        url = self.config.credentials.get("url")
        if not isinstance(url, str) or not url:
            raise PermanentDeliveryError("apprise: the channel's URL is not a valid Apprise URL")
        try:
            ok, status = await asyncio.wait_for(
                asyncio.to_thread(_notify, url, message.content, message.subject or ""), self.timeout
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
