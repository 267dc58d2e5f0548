"""campaigns: audience queries or external queues on a data source, their runs and the dedupe ledger

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import herald.storage.types

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = herald.storage.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "campaigns",
        sa.Column("id", sa.String(length=40), primary_key=True),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("agent_id", sa.String(length=200), nullable=False),
        sa.Column("data_source_id", sa.String(length=40), nullable=False),
        sa.Column("audience_query", sa.Text(), nullable=True),
        sa.Column("query_params", sa.JSON(), nullable=False),
        sa.Column("queue", sa.JSON(), nullable=True),
        sa.Column("queue_position", sa.JSON(), nullable=True),
        sa.Column("schedule", sa.String(length=500), nullable=False),
        sa.Column("cron_expression", sa.String(length=200), nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("event_type", sa.String(length=50), nullable=False),
        sa.Column("locale", sa.String(length=35), nullable=False),
        sa.Column("channels", sa.JSON(), nullable=False),
        sa.Column("timezone_column", sa.String(length=200), nullable=True),
        sa.Column("variables", sa.JSON(), nullable=False),
        sa.Column("dedupe_key", sa.JSON(), nullable=False),
        sa.Column("dedupe_period", sa.String(length=8), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("compose", sa.JSON(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("next_run", UTC, nullable=True),
        sa.Column("last_run", UTC, nullable=True),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("updated_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
    )
    op.create_index(
        "ix_campaigns_due",
        "campaigns",
        ["next_run"],
        postgresql_where=sa.text("status = 'active'"),
        sqlite_where=sa.text("status = 'active'"),
    )
    op.create_index("ix_campaigns_tenant", "campaigns", ["tenant_id", "id"])
    op.create_table(
        "campaign_runs",
        sa.Column("id", sa.String(length=40), primary_key=True),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("campaign_id", sa.String(length=40), nullable=False),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("due_at", UTC, nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("started_at", UTC, nullable=True),
        sa.Column("finished_at", UTC, nullable=True),
        sa.Column("lease_expires_at", UTC, nullable=True),
        sa.Column("audience", sa.Integer(), nullable=False),
        sa.Column("created", sa.Integer(), nullable=False),
        sa.Column("deduped", sa.Integer(), nullable=False),
        sa.Column("opted_out", sa.Integer(), nullable=False),
        sa.Column("quiet_hours", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("failures", sa.JSON(), nullable=False),
        sa.Column("preview", sa.JSON(), nullable=True),
        sa.Column("approved_by", sa.String(length=200), nullable=True),
        sa.Column("decided_at", UTC, nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"], ondelete="CASCADE"),
    )
    op.create_index("ix_campaign_runs_campaign", "campaign_runs", ["campaign_id", "id"])
    op.create_index("ix_campaign_runs_due", "campaign_runs", ["campaign_id", "due_at"], unique=True)
    op.create_index(
        "ix_campaign_runs_work",
        "campaign_runs",
        ["lease_expires_at"],
        postgresql_where=sa.text("status IN ('queued', 'running')"),
        sqlite_where=sa.text("status IN ('queued', 'running')"),
    )
    op.create_table(
        "campaign_deliveries",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("campaign_id", sa.String(length=40), nullable=False),
        sa.Column("period", sa.String(length=16), nullable=False),
        sa.Column("dedupe_value", sa.String(length=500), nullable=False),
        sa.Column("run_id", sa.String(length=40), nullable=False),
        sa.Column("message_id", sa.String(length=40), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "campaign_id", "period", "dedupe_value"),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"], ondelete="CASCADE"),
    )


def downgrade() -> None:
    op.drop_table("campaign_deliveries")
    op.drop_index("ix_campaign_runs_work", table_name="campaign_runs")
    op.drop_index("ix_campaign_runs_due", table_name="campaign_runs")
    op.drop_index("ix_campaign_runs_campaign", table_name="campaign_runs")
    op.drop_table("campaign_runs")
    op.drop_index("ix_campaigns_tenant", table_name="campaigns")
    op.drop_index("ix_campaigns_due", table_name="campaigns")
    op.drop_table("campaigns")
