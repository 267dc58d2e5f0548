"""agents that act: LLM agents, default recipients, agent-bound keys, durable runs, answers kept

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05 05:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import herald.storage.types

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = herald.storage.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("agents") as batch:
        batch.add_column(sa.Column("kind", sa.String(length=16), nullable=False, server_default="external"))
        batch.add_column(sa.Column("llm", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("llm_api_key", sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column("default_recipient", sa.JSON(), nullable=True))
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("agent_id", sa.String(length=200), nullable=True))
    for table in ("schedule_executions", "monitor_alerts", "trigger_firings"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("answer", sa.Text(), nullable=True))
    with op.batch_alter_table("monitor_alerts") as batch:
        batch.add_column(sa.Column("analysis_status", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("analysis_due_at", UTC, nullable=True))
    op.create_table(
        "agent_runs",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("agent_id", sa.String(length=200), nullable=False),
        sa.Column("origin", sa.String(length=120), nullable=False),
        sa.Column("woken_by", sa.String(length=24), nullable=False),
        sa.Column("task", sa.Text(), nullable=False),
        sa.Column("context", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("steps", sa.Integer(), nullable=False),
        sa.Column("prompt_tokens", sa.Integer(), nullable=False),
        sa.Column("completion_tokens", sa.Integer(), nullable=False),
        sa.Column("answer", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("sent_messages", sa.JSON(), nullable=False),
        sa.Column("simulated", sa.Boolean(), nullable=False),
        sa.Column("lease_owner", sa.String(length=80), nullable=True),
        sa.Column("lease_until", UTC, nullable=True),
        sa.Column("started_at", UTC, nullable=True),
        sa.Column("finished_at", UTC, nullable=True),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("updated_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ux_agent_runs_origin", "agent_runs", ["tenant_id", "origin"], unique=True)
    op.create_index("ix_agent_runs_agent", "agent_runs", ["tenant_id", "agent_id", "created_at"])
    op.create_index("ix_agent_runs_due", "agent_runs", ["status", "lease_until"])
    op.create_table(
        "agent_run_steps",
        sa.Column("run_id", sa.String(length=40), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("prompt_tokens", sa.Integer(), nullable=False),
        sa.Column("completion_tokens", sa.Integer(), nullable=False),
        sa.Column("duration_ms", sa.Double(), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["agent_runs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("run_id", "seq"),
    )


def downgrade() -> None:
    op.drop_table("agent_run_steps")
    op.drop_index("ix_agent_runs_due", table_name="agent_runs")
    op.drop_index("ix_agent_runs_agent", table_name="agent_runs")
    op.drop_index("ux_agent_runs_origin", table_name="agent_runs")
    op.drop_table("agent_runs")
    with op.batch_alter_table("monitor_alerts") as batch:
        batch.drop_column("analysis_due_at")
        batch.drop_column("analysis_status")
    for table in ("trigger_firings", "monitor_alerts", "schedule_executions"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("answer")
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("agent_id")
    with op.batch_alter_table("agents") as batch:
        batch.drop_column("default_recipient")
        batch.drop_column("llm_api_key")
        batch.drop_column("llm")
        batch.drop_column("kind")
