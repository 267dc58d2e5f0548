"""receipt-driven escalation: a message's rule, deadline and link to the message that escalated it

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-06 07:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import herald.storage.types

revision: str = "0026"
down_revision: str | None = "0025"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = herald.storage.types.UTCDateTime(timezone=True)
WAITING = sa.text("escalation_state = 'waiting'")


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("escalation", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("escalation_state", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("escalate_at", UTC, nullable=True))
        batch.add_column(sa.Column("escalated_to_id", sa.String(length=40), nullable=True))
        batch.add_column(sa.Column("escalated_from_id", sa.String(length=40), nullable=True))
    op.create_index(
        "ix_messages_escalation_due", "messages", ["escalate_at"],
        postgresql_where=WAITING, sqlite_where=WAITING,
    )  # fmt: skip
    op.create_index("ux_messages_escalated_from", "messages", ["escalated_from_id"], unique=True)
    with op.batch_alter_table("contacts") as batch:
        batch.add_column(sa.Column("escalation", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("contacts") as batch:
        batch.drop_column("escalation")
    op.drop_index("ux_messages_escalated_from", table_name="messages")
    op.drop_index("ix_messages_escalation_due", table_name="messages")
    with op.batch_alter_table("messages") as batch:
        for column in (
            "escalated_from_id",
            "escalated_to_id",
            "escalate_at",
            "escalation_state",
            "escalation",
        ):
            batch.drop_column(column)
