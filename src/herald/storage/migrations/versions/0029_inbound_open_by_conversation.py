"""inbound messages still open, by conversation: the processor's in-order check reads only those

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-07 03:50:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0029"
down_revision: str | None = "0028"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPEN = sa.text("status IN ('pending', 'processing')")


def upgrade() -> None:
    op.create_index(
        "ix_inbound_conversation_open", "inbound_messages", ["conversation_id", "id"],
        postgresql_where=OPEN, sqlite_where=OPEN,
    )  # fmt: skip


def downgrade() -> None:
    op.drop_index("ix_inbound_conversation_open", table_name="inbound_messages")
