"""each message's first delivery receipt and first read receipt or reply, written where they arrive

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-06 23:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import herald.storage.types
from herald.storage.responses import backfill_statements

revision: str = "0028"
down_revision: str | None = "0027"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = herald.storage.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("delivered_at", UTC, nullable=True))
        batch.add_column(sa.Column("responded_at", UTC, nullable=True))
    op.create_index("ix_messages_recipient_sent", "messages", ["channel_id", "recipient_id", "sent_at"])
    for statement in backfill_statements(op.get_bind().dialect.name):
        op.execute(statement)


def downgrade() -> None:
    op.drop_index("ix_messages_recipient_sent", table_name="messages")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("responded_at")
        batch.drop_column("delivered_at")
