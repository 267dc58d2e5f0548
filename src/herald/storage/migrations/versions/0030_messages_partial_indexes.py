"""messages: the receipt, conversation, escalation-link and reply indexes hold only rows that have the value

Each message row is written three times on its way out (accepted, claimed, sent), and neither update is HOT
(``status`` is indexed), so every index takes a new entry each time, NULL keys included. Most messages have no
conversation and no escalation link, and have no provider id nor send time until they are sent: leaving those
NULLs out of these four indexes saves about a third of the index entries a delivery writes. Every query on
them compares the column with a value, which implies it is not NULL, so both databases still use them; the
unique index's meaning is unchanged (NULLs never conflicted).

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-07 06:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0030"
down_revision: str | None = "0029"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# name: (columns, unique, the column whose NULLs are left out)
INDEXES: dict[str, tuple[list[str], bool, str]] = {
    "ix_messages_receipt": (["channel_id", "provider_message_id"], False, "provider_message_id"),
    "ix_messages_conversation": (["conversation_id", "id"], False, "conversation_id"),
    "ux_messages_escalated_from": (["escalated_from_id"], True, "escalated_from_id"),
    "ix_messages_recipient_sent": (["channel_id", "recipient_id", "sent_at"], False, "sent_at"),
}


def upgrade() -> None:
    for name, (columns, unique, column) in INDEXES.items():
        present = sa.text(f"{column} IS NOT NULL")
        op.drop_index(name, table_name="messages")
        op.create_index(
            name, "messages", columns, unique=unique, postgresql_where=present, sqlite_where=present
        )


def downgrade() -> None:
    for name, (columns, unique, _) in INDEXES.items():
        op.drop_index(name, table_name="messages")
        op.create_index(name, "messages", columns, unique=unique)
