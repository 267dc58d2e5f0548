"""circuit probe: the one half-open probe of a channel, claimed by one worker

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-12 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import herald.storage.types

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("channel_health") as batch:
        batch.add_column(sa.Column("probe_owner", sa.String(length=200), nullable=True))
        batch.add_column(
            sa.Column("probe_until", herald.storage.types.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("channel_health") as batch:
        batch.drop_column("probe_until")
        batch.drop_column("probe_owner")
