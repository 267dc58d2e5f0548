"""mailboxes: an email interface's inbound IMAP mailbox, and the messages taken from it (issue 19)

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-06 15:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import herald.storage.types

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = herald.storage.types.UTCDateTime(timezone=True)
OPEN = "status IN ('pending', 'received')"


def upgrade() -> None:
    op.create_table(
        "mailboxes",
        sa.Column("id", sa.String(length=40), primary_key=True),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("channel_id", sa.String(length=40), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("port", sa.Integer(), nullable=False),
        sa.Column("security", sa.String(length=16), nullable=False),
        sa.Column("username", sa.String(length=320), nullable=False),
        sa.Column("auth", sa.String(length=16), nullable=False),
        sa.Column("credentials", sa.LargeBinary(), nullable=False),
        sa.Column("folder", sa.String(length=200), nullable=False),
        sa.Column("poll_interval_seconds", sa.Integer(), nullable=False),
        sa.Column("idle", sa.Boolean(), nullable=False),
        sa.Column("after_processing", sa.String(length=8), nullable=False),
        sa.Column("move_to", sa.String(length=200), nullable=True),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("updated_at", UTC, nullable=False),
        sa.Column("uidvalidity", sa.BigInteger(), nullable=True),
        sa.Column("last_uid", sa.BigInteger(), nullable=False),
        sa.Column("mode", sa.String(length=8), nullable=True),
        sa.Column("last_poll_at", UTC, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_error_at", UTC, nullable=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("lease_owner", sa.String(length=80), nullable=True),
        sa.Column("lease_until", UTC, nullable=True),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["channel_id"], ["channels.id"], ondelete="CASCADE"),
        sa.UniqueConstraint("channel_id"),
    )
    op.create_index("ix_mailboxes_tenant", "mailboxes", ["tenant_id", "id"])
    op.create_index("ix_mailboxes_lease", "mailboxes", ["lease_until"])
    op.create_table(
        "mailbox_messages",
        sa.Column("mailbox_id", sa.String(length=40), nullable=False),
        sa.Column("uidvalidity", sa.BigInteger(), nullable=False),
        sa.Column("uid", sa.BigInteger(), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("message_id", sa.String(length=500), nullable=True),
        sa.Column("inbound_id", sa.String(length=40), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("next_attempt_at", UTC, nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("processed_at", UTC, nullable=True),
        sa.ForeignKeyConstraint(["mailbox_id"], ["mailboxes.id"], ondelete="CASCADE"),
        # The unique key two processes meet on: only one can record (and so take) a message.
        sa.PrimaryKeyConstraint("mailbox_id", "uidvalidity", "uid"),
    )
    op.create_index(
        "ix_mailbox_messages_open", "mailbox_messages", ["mailbox_id", "next_attempt_at"],
        postgresql_where=sa.text(OPEN), sqlite_where=sa.text(OPEN),
    )  # fmt: skip
    op.create_index("ix_mailbox_messages_message_id", "mailbox_messages", ["mailbox_id", "message_id"])
    op.create_index("ix_mailbox_messages_created", "mailbox_messages", ["mailbox_id", "created_at"])


def downgrade() -> None:
    op.drop_table("mailbox_messages")
    op.drop_index("ix_mailboxes_lease", table_name="mailboxes")
    op.drop_index("ix_mailboxes_tenant", table_name="mailboxes")
    op.drop_table("mailboxes")
