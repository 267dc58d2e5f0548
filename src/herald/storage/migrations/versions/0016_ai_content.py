"""ai content: how a message's text was composed (template, AI-enhanced, AI-written, fallback), tokens and cost

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05 12:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
# Written beside the other issue-18 migrations (0014-0016); the merge re-chains it after the last of them.
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("content_path", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("ai_model", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("ai_prompt_tokens", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("ai_completion_tokens", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("ai_cost", sa.Double(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("ai_cost")
        batch.drop_column("ai_completion_tokens")
        batch.drop_column("ai_prompt_tokens")
        batch.drop_column("ai_model")
        batch.drop_column("content_path")
