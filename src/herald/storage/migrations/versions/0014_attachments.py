"""attachments: what an email message carries (metadata readable, content sealed), and what the dev inbox got

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05 13:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("attachments", sa.JSON(), nullable=True))
    with op.batch_alter_table("devinbox_messages") as batch:
        batch.add_column(sa.Column("attachments", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("devinbox_messages") as batch:
        batch.drop_column("attachments")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("attachments")
