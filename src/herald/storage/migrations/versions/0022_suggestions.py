"""suggestions made from patterns, and when each tenant's are next recomputed

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-06 07:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import herald.storage.types

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = herald.storage.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "suggestions",
        sa.Column("id", sa.String(length=40), primary_key=True),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("pattern_kind", sa.String(length=32), nullable=False),
        sa.Column("agent_id", sa.String(length=200), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("title", sa.String(length=500), nullable=False),
        sa.Column("explanation", sa.Text(), nullable=False),
        sa.Column("explained_by", sa.String(length=200), nullable=False),
        sa.Column("confidence", sa.Double(), nullable=False),
        sa.Column("change", sa.JSON(), nullable=False),
        sa.Column("pattern", sa.JSON(), nullable=False),
        sa.Column("accepted_by", sa.String(length=200), nullable=True),
        sa.Column("accepted_at", UTC, nullable=True),
        sa.Column("result_id", sa.String(length=200), nullable=True),
        sa.Column("dismissed_by", sa.String(length=200), nullable=True),
        sa.Column("dismissed_at", UTC, nullable=True),
        sa.Column("dismissed_until", UTC, nullable=True),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("updated_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
    )
    op.create_index("ix_suggestions_tenant_status", "suggestions", ["tenant_id", "status", "id"])
    op.create_index(
        "uq_suggestions_open_key",
        "suggestions",
        ["tenant_id", "key"],
        unique=True,
        postgresql_where=sa.text("status = 'open'"),
        sqlite_where=sa.text("status = 'open'"),
    )
    op.create_index("ix_suggestions_tenant_key", "suggestions", ["tenant_id", "key", "dismissed_until"])
    op.create_table(
        "suggestion_refreshes",
        sa.Column("tenant_id", sa.String(length=40), primary_key=True),
        sa.Column("next_run_at", UTC, nullable=False),
        sa.Column("last_run_at", UTC, nullable=True),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
    )
    op.create_index("ix_suggestion_refreshes_next_run_at", "suggestion_refreshes", ["next_run_at"])


def downgrade() -> None:
    op.drop_index("ix_suggestion_refreshes_next_run_at", table_name="suggestion_refreshes")
    op.drop_table("suggestion_refreshes")
    op.drop_index("ix_suggestions_tenant_key", table_name="suggestions")
    op.drop_index("uq_suggestions_open_key", table_name="suggestions")
    op.drop_index("ix_suggestions_tenant_status", table_name="suggestions")
    op.drop_table("suggestions")
