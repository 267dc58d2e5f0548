"""human requests for held campaign runs: an approval request points at a message or at a whole campaign run

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06 14:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("human_requests", sa.Column("campaign_run_id", sa.String(length=40), nullable=True))
    # One request per held run: two outreach processes finding the same run cannot both open one.
    op.create_index("ux_human_requests_campaign_run", "human_requests", ["campaign_run_id"], unique=True)


def downgrade() -> None:
    op.drop_index("ux_human_requests_campaign_run", table_name="human_requests")
    with op.batch_alter_table("human_requests") as batch:
        batch.drop_column("campaign_run_id")
