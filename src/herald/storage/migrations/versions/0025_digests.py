"""digests: rules that hold matching messages and send them as one, the open batches, and each message's link

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-06 07:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import herald.storage.types

revision: str = "0025"
down_revision: str | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = herald.storage.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "digest_rules",
        sa.Column("id", sa.String(length=40), primary_key=True),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("agent_id", sa.String(length=200), nullable=True),
        sa.Column("platform", sa.String(length=32), nullable=True),
        sa.Column("recipient_id", sa.String(length=500), nullable=True),
        sa.Column("message_type", sa.String(length=100), nullable=True),
        sa.Column("window_seconds", sa.Integer(), nullable=False),
        sa.Column("max_messages", sa.Integer(), nullable=True),
        sa.Column("subject", sa.Text(), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("updated_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
    )
    op.create_index("ix_digest_rules_tenant", "digest_rules", ["tenant_id", "id"])
    op.create_table(
        "digests",
        sa.Column("id", sa.String(length=40), primary_key=True),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("rule_id", sa.String(length=40), nullable=False),
        sa.Column("platform", sa.String(length=32), nullable=False),
        sa.Column("recipient_id", sa.String(length=500), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("max_messages", sa.Integer(), nullable=True),
        sa.Column("opened_at", UTC, nullable=False),
        sa.Column("due_at", UTC, nullable=False),
        sa.Column("closed_at", UTC, nullable=True),
        sa.Column("message_id", sa.String(length=40), nullable=True),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
    )
    op.create_index(
        "ux_digests_open", "digests", ["rule_id", "platform", "recipient_id"], unique=True,
        postgresql_where=sa.text("status = 'open'"), sqlite_where=sa.text("status = 'open'"),
    )  # fmt: skip
    op.create_index(
        "ix_digests_due", "digests", ["due_at"],
        postgresql_where=sa.text("status IN ('open', 'full')"), sqlite_where=sa.text("status IN ('open', 'full')"),
    )  # fmt: skip
    op.create_index("ix_digests_tenant", "digests", ["tenant_id", "id"])
    op.add_column("messages", sa.Column("digest_id", sa.String(length=40), nullable=True))
    op.add_column("messages", sa.Column("digest_message_id", sa.String(length=40), nullable=True))
    op.create_index(
        "ix_messages_digest", "messages", ["digest_id"],
        postgresql_where=sa.text("digest_id IS NOT NULL"), sqlite_where=sa.text("digest_id IS NOT NULL"),
    )  # fmt: skip


def downgrade() -> None:
    op.drop_index("ix_messages_digest", table_name="messages")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("digest_message_id")
        batch.drop_column("digest_id")
    op.drop_index("ix_digests_tenant", table_name="digests")
    op.drop_index("ix_digests_due", table_name="digests")
    op.drop_index("ux_digests_open", table_name="digests")
    op.drop_table("digests")
    op.drop_index("ix_digest_rules_tenant", table_name="digest_rules")
    op.drop_table("digest_rules")
