"""When each sent message was first answered: its first delivery receipt (``messages.delivered_at``) and its first
read receipt or reply (``messages.responded_at``).

Each recipient's best hour (:mod:`herald.learning.patterns`) is the hour whose messages are answered fastest.
Finding a month of answers at every detection means grouping every receipt event and joining every inbound
message to the sends of its conversation's day: seconds over a million messages. So the answer is written once,
where it arrives: a receipt moves its message forward (:func:`herald.providers.receipts.apply`) and a reply marks
the sends it answers (:func:`mark_replies`, called as inbound messages are stored); the detector then reads two
columns. Migration ``0028`` fills existing rows with :func:`backfill_statements`.

A reply answers the recipient's messages sent on the same channel within :data:`REPLY_WINDOW_SECONDS` before
it, outside any conversation (a reply inside a conversation answers the person, not a proactive send). Only the
first answer counts: later ones leave the time alone.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from herald.storage.models import Message

REPLY_WINDOW_SECONDS: Final = 86_400
"""A reply counts as the answer to sends at most this long before it."""


async def mark_replies(
    session: AsyncSession, tenant_id: str, channel_id: str, recipient_ids: Iterable[str], at: datetime
) -> None:
    """Record ``at`` as the first answer of the messages sent to ``recipient_ids`` on ``channel_id`` within the
    window before it (on the ``ix_messages_recipient_sent`` index)."""
    recipients = sorted(set(recipient_ids))
    if not recipients:
        return
    await session.execute(
        update(Message)
        .where(
            Message.channel_id == channel_id,
            Message.recipient_id.in_(recipients),
            Message.sent_at >= at - timedelta(seconds=REPLY_WINDOW_SECONDS),
            Message.sent_at < at,
            Message.tenant_id == tenant_id,
            Message.conversation_id.is_(None),
            Message.responded_at.is_(None),
        )
        .values(responded_at=at)
        .execution_options(synchronize_session=False)
    )


def backfill_statements(dialect: str) -> list[str]:
    """SQL that fills ``delivered_at`` and ``responded_at`` of existing messages from their receipt events and
    the replies of their conversations, as if each had been written when it arrived (both backends read
    ``UPDATE ... FROM``; SQLite since 3.33)."""
    if dialect == "postgresql":
        within = f"i.received_at <= m.sent_at + interval '{REPLY_WINDOW_SECONDS} seconds'"
    else:
        within = f"julianday(i.received_at) <= julianday(m.sent_at) + {REPLY_WINDOW_SECONDS / 86_400!r}"
    receipts = """
        UPDATE messages SET delivered_at = r.delivered_at, responded_at = r.read_at
        FROM (SELECT tenant_id, subject_id,
                     MIN(CASE WHEN type = 'message.delivered' THEN created_at END) AS delivered_at,
                     MIN(CASE WHEN type = 'message.read' THEN created_at END) AS read_at
              FROM events WHERE type IN ('message.delivered', 'message.read')
              GROUP BY tenant_id, subject_id) AS r
        WHERE messages.id = r.subject_id AND messages.tenant_id = r.tenant_id"""
    replies = f"""
        UPDATE messages SET responded_at = CASE
                WHEN messages.responded_at IS NULL OR r.reply_at < messages.responded_at THEN r.reply_at
                ELSE messages.responded_at END
        FROM (SELECT m.id, MIN(i.received_at) AS reply_at
              FROM messages AS m
              JOIN conversations AS c
                ON c.tenant_id = m.tenant_id AND c.channel_id = m.channel_id AND c.external_id = m.recipient_id
              JOIN inbound_messages AS i
                ON i.conversation_id = c.id AND i.received_at > m.sent_at AND {within}
              WHERE m.conversation_id IS NULL AND m.sent_at IS NOT NULL
              GROUP BY m.id) AS r
        WHERE messages.id = r.id"""  # noqa: S608 (constants only)
    return [receipts, replies]
