"""agentless monitors: a monitor without an agent is the tenant's own (its notices sent like OTP codes)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05 12:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("monitors") as batch:
        batch.alter_column("agent_id", existing_type=sa.String(length=200), nullable=True)


def downgrade() -> None:
    # A tenant's own monitor has no agent to keep: it cannot survive a schema that requires one.
    op.execute("DELETE FROM monitors WHERE agent_id IS NULL")
    with op.batch_alter_table("monitors") as batch:
        batch.alter_column("agent_id", existing_type=sa.String(length=200), nullable=False)
