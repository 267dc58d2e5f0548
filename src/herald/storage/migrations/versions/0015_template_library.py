"""template library: tenants' overrides of the templates Herald ships, keyed by event type, channel and locale

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05 12:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import herald.storage.types

revision: str = "0015"
down_revision: str | None = "0014"  # re-chained after 0014 when the branches of issue 18 merge
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = herald.storage.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "template_overrides",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("event_type", sa.String(length=50), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("locale", sa.String(length=35), nullable=False),
        sa.Column("subject", sa.Text(), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("variables", sa.JSON(), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("updated_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ux_template_overrides_key",
        "template_overrides",
        ["tenant_id", "event_type", "channel", "locale"],
        unique=True,
    )


def downgrade() -> None:
    op.drop_index("ux_template_overrides_key", table_name="template_overrides")
    op.drop_table("template_overrides")
