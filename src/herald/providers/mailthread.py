"""Email threading shared by the email providers (SMTP, SendGrid, Resend): Herald's own ``Message-ID`` and the
headers that keep a reply in its thread.

Herald names each email it sends ``<{message id}@{sender's domain}>``: a retry of the same message carries the
same id (so a reader's client shows one email, not two), and a person's reply, whose ``In-Reply-To`` and
``References`` name it, leads back to the message whatever id the provider reports for it
(:func:`herald_message_id`).

A conversation reply's ``reply_context`` (stored with the inbound email it answers) gives the rest:
``reply_to`` (that email's ``Message-ID``), ``references`` (its thread) and ``subject``. The answer goes out as
``Re: <subject>`` (never ``Re: Re:``), with ``In-Reply-To`` the email answered and ``References`` its
references plus its own id. The subject is worked out here, at sending, and not rendered as a template: it is
a stranger's text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_HERALD_ID = re.compile(r"^<(msg_[0-9a-f]{28})@[^<>\s]+>$")
_MESSAGE_ID = re.compile(r"^<[^<>\s]+>$")
_REPLY_PREFIX = re.compile(r"^\s*((re|aw|sv|antw|vs|ref|r)\s*(\[\d+\])?\s*:\s*)+", re.IGNORECASE)
# Long threads: keep the root and the latest ids, as RFC 5322 suggests, so the header stays a sane size.
MAX_REFERENCES = 20


def message_id(herald_id: str, from_email: str) -> str:
    """The ``Message-ID`` of Herald's message ``herald_id`` sent from ``from_email``."""
    return f"<{herald_id}@{from_email.rpartition('@')[2] or 'herald.invalid'}>"


def herald_message_id(header_id: str) -> str | None:
    """Herald's message id inside a ``Message-ID`` Herald made (see :func:`message_id`), else None."""
    found = _HERALD_ID.match(header_id.strip())
    return found.group(1) if found else None


def reply_subject(subject: str | None, context: Mapping[str, Any] | None) -> str | None:
    """``subject`` when the message has its own, else ``Re: <the subject answered>`` for a threaded reply."""
    if subject:
        return subject
    answered = str((context or {}).get("subject") or "").strip()
    if not answered:
        return None
    answered = " ".join(answered.split())  # no line breaks from a stranger's subject into ours
    return f"Re: {_REPLY_PREFIX.sub('', answered)}".rstrip()


def thread_headers(context: Mapping[str, Any] | None) -> dict[str, str]:
    """``In-Reply-To`` and ``References`` for a reply to the email ``context`` describes; {} when it is not one."""
    answered = str((context or {}).get("reply_to") or "")
    if not _MESSAGE_ID.match(answered):
        return {}
    given = (context or {}).get("references") or []
    earlier = [r for r in given if isinstance(r, str) and _MESSAGE_ID.match(r) and r != answered]
    chain = [*dict.fromkeys(earlier), answered]
    if len(chain) > MAX_REFERENCES:
        chain = [chain[0], *chain[-(MAX_REFERENCES - 1) :]]
    return {"In-Reply-To": answered, "References": " ".join(chain)}
