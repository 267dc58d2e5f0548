"""humans in the loop: approvers, approval policies, requests and questions, their deliveries and votes

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 08:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import herald.storage.types

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = herald.storage.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("actions", sa.JSON(), nullable=True))
    op.create_table(
        "approvers",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("addresses", sa.JSON(), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("updated_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_approvers_tenant_id", "approvers", ["tenant_id"])
    op.create_table(
        "approval_policies",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("agent_ids", sa.JSON(), nullable=False),
        sa.Column("priorities", sa.JSON(), nullable=False),
        sa.Column("approver_ids", sa.JSON(), nullable=False),
        sa.Column("quorum", sa.Integer(), nullable=False),
        sa.Column("escalate_after_seconds", sa.Integer(), nullable=True),
        sa.Column("escalate_to", sa.JSON(), nullable=False),
        sa.Column("expires_after_seconds", sa.Integer(), nullable=True),
        sa.Column("created_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_approval_policies_tenant_id", "approval_policies", ["tenant_id"])
    op.create_table(
        "human_requests",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("agent_id", sa.String(length=200), nullable=True),
        sa.Column("message_id", sa.String(length=40), nullable=True),
        sa.Column("policy_id", sa.String(length=40), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("answer", sa.JSON(), nullable=True),
        sa.Column("quorum", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=8), nullable=False),
        sa.Column("approver_ids", sa.JSON(), nullable=False),
        sa.Column("direct", sa.JSON(), nullable=True),
        sa.Column("escalate_after_seconds", sa.Integer(), nullable=True),
        sa.Column("escalate_to", sa.JSON(), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("next_check_at", UTC, nullable=True),
        sa.Column("expires_at", UTC, nullable=True),
        sa.Column("run_id", sa.String(length=40), nullable=True),
        sa.Column("call_id", sa.String(length=120), nullable=True),
        sa.Column("notify_status", sa.String(length=16), nullable=False),
        sa.Column("notify_due_at", UTC, nullable=True),
        sa.Column("notify_attempts", sa.Integer(), nullable=False),
        sa.Column("decided_by", sa.String(length=200), nullable=True),
        sa.Column("decided_at", UTC, nullable=True),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("updated_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_human_requests_open", "human_requests", ["status", "next_check_at"])
    op.create_index("ix_human_requests_code", "human_requests", ["tenant_id", "code", "status"])
    op.create_index("ux_human_requests_message", "human_requests", ["message_id"], unique=True)
    op.create_index("ix_human_requests_notify", "human_requests", ["notify_status", "notify_due_at"])
    op.create_table(
        "human_deliveries",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("request_id", sa.String(length=40), nullable=False),
        sa.Column("approver_id", sa.String(length=40), nullable=True),
        sa.Column("approver_name", sa.String(length=200), nullable=False),
        sa.Column("platform", sa.String(length=32), nullable=False),
        sa.Column("recipient_id", sa.String(length=500), nullable=False),
        sa.Column("channel_id", sa.String(length=40), nullable=True),
        sa.Column("user_id", sa.String(length=500), nullable=True),
        sa.Column("message_id", sa.String(length=40), nullable=True),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("answered_at", UTC, nullable=True),
        sa.Column("settled_at", UTC, nullable=True),
        sa.Column("created_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(["request_id"], ["human_requests.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_human_deliveries_request_id", "human_deliveries", ["request_id"])
    op.create_index("ix_human_deliveries_message_id", "human_deliveries", ["message_id"])
    op.create_table(
        "human_votes",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("request_id", sa.String(length=40), nullable=False),
        sa.Column("voter", sa.String(length=200), nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("via", sa.String(length=32), nullable=False),
        sa.Column("delivery_id", sa.String(length=40), nullable=True),
        sa.Column("created_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(["request_id"], ["human_requests.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ux_human_votes_voter", "human_votes", ["request_id", "voter"], unique=True)


def downgrade() -> None:
    op.drop_index("ux_human_votes_voter", table_name="human_votes")
    op.drop_table("human_votes")
    op.drop_index("ix_human_deliveries_message_id", table_name="human_deliveries")
    op.drop_index("ix_human_deliveries_request_id", table_name="human_deliveries")
    op.drop_table("human_deliveries")
    for name in ("ix_human_requests_notify", "ux_human_requests_message", "ix_human_requests_code",
                 "ix_human_requests_open"):  # fmt: skip
        op.drop_index(name, table_name="human_requests")
    op.drop_table("human_requests")
    op.drop_index("ix_approval_policies_tenant_id", table_name="approval_policies")
    op.drop_table("approval_policies")
    op.drop_index("ix_approvers_tenant_id", table_name="approvers")
    op.drop_table("approvers")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("actions")
