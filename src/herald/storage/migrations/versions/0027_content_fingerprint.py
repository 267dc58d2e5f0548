"""a message's content fingerprint (its text modulo digits, as a BIGINT) for pattern detection

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-06 20:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from herald.storage.fingerprint import PG_SQL, content_fingerprint

revision: str = "0027"
down_revision: str | None = "0026"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 5_000


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("content_fingerprint", sa.BigInteger(), nullable=True))
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute(f"UPDATE messages SET content_fingerprint = {PG_SQL.format(column='content')}")  # noqa: S608 (constants)
        return
    # SQLite has no MD5: the rows are read and written back in batches, in id order.
    after = ""
    while True:
        rows = bind.execute(
            sa.text("SELECT id, content FROM messages WHERE id > :after ORDER BY id LIMIT :n"),
            {"after": after, "n": BATCH},
        ).all()
        if not rows:
            return
        bind.execute(
            sa.text("UPDATE messages SET content_fingerprint = :f WHERE id = :id"),
            [{"id": i, "f": content_fingerprint(c)} for i, c in rows],
        )
        after = rows[-1][0]


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("content_fingerprint")
