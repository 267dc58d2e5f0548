"""Inbound email, minimal: one raw RFC 5322 message becomes an inbound message of its email interface.

TEMPORARY (issue 19): the ``email-intake`` branch replaces this module whole at merge (threading by In-Reply-To
and References, contact forms, intent, suppression of auto-replies and bounces). Only the signature of
:func:`receive` is the contract the mailbox follower (:mod:`herald.producers.email.imap`) relies on.
"""

from __future__ import annotations

import email
import email.policy
import email.utils
import html
import re
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import TYPE_CHECKING

from sqlalchemy import select

from herald.producers.conversations import service as conversations
from herald.providers.inbound import InboundMessage
from herald.storage.models import Channel
from herald.storage.models import InboundMessage as InboundRow

if TYPE_CHECKING:
    from herald.runtime import Runtime

MAX_TEXT = 20_000


async def receive(rt: Runtime, channel: Channel, raw: bytes, *, source: str) -> str | None:
    """Store ``raw`` as an inbound message of ``channel``; returns its id, or None when this Message-ID was
    stored already (idempotent per channel). ``source`` (mailbox:uidvalidity:uid) stands in for a missing
    Message-ID. Raises only for a transient failure (the database is away)."""
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    message_id = str(parsed.get("Message-ID") or "").strip() or f"<{source}@herald.imap>"
    name, address = email.utils.parseaddr(str(parsed.get("From") or ""))
    address = address.lower() or "unknown@invalid"
    subject = str(parsed.get("Subject") or "").strip()
    body = _text(parsed)
    inbound = InboundMessage(
        conversation_key=address, sender_id=address, sender_name=name or None,
        text=(f"{subject}\n\n{body}" if subject else body)[:MAX_TEXT], provider_message_id=message_id,
        sent_at=_date(parsed), raw_type="email",
    )  # fmt: skip
    if not await conversations.store(rt, channel, [inbound]):
        return None
    async with rt.sessions() as session:
        query = select(InboundRow.id).where(
            InboundRow.channel_id == channel.id, InboundRow.provider_message_id == message_id[:500]
        )
        return (await session.execute(query)).scalar_one_or_none()


def _text(message: EmailMessage) -> str:
    """The text part, or the HTML part stripped of its tags."""
    part = message.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    content = str(part.get_content())
    if part.get_content_type() == "text/html":
        content = re.sub(r"(?is)<(script|style).*?</\1>", " ", content)
        content = html.unescape(re.sub(r"(?s)<[^>]+>", " ", content))
        content = re.sub(r"[ \t]+", " ", content)
    return content.strip()


def _date(message: EmailMessage) -> datetime:
    try:
        when = email.utils.parsedate_to_datetime(str(message.get("Date") or ""))
    except (TypeError, ValueError):
        return datetime.now(UTC)
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)
