"""email intake: contact-form rules with intents, and what an inbound message carries besides its text

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-06 16:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import herald.storage.types

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = herald.storage.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "email_forms",
        sa.Column("id", sa.String(length=40), primary_key=True),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("channel_id", sa.String(length=40), nullable=True),
        sa.Column("agent_id", sa.String(length=200), nullable=False),
        sa.Column("senders", sa.JSON(), nullable=False),
        sa.Column("subject_contains", sa.String(length=200), nullable=True),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("intents", sa.JSON(), nullable=False),
        sa.Column("keywords", sa.JSON(), nullable=True),
        sa.Column("classifier_agent_id", sa.String(length=200), nullable=True),
        sa.Column("variables", sa.JSON(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("updated_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
    )
    op.create_index("ix_email_forms_tenant", "email_forms", ["tenant_id", "id"])
    op.add_column("inbound_messages", sa.Column("details", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("inbound_messages") as batch:
        batch.drop_column("details")
    op.drop_index("ix_email_forms_tenant", table_name="email_forms")
    op.drop_table("email_forms")
