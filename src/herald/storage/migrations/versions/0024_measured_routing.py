"""measured routing: why a message's channels are in their order, and recent attempts per tenant

Revision ID: 0024
Revises: 0022
Create Date: 2026-12-06 07:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0024"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch_op:
        batch_op.add_column(sa.Column("route_reason", sa.JSON(), nullable=True))
    op.create_index("ix_attempts_tenant_started", "attempts", ["tenant_id", "started_at"])


def downgrade() -> None:
    op.drop_index("ix_attempts_tenant_started", table_name="attempts")
    with op.batch_alter_table("messages") as batch_op:
        batch_op.drop_column("route_reason")
