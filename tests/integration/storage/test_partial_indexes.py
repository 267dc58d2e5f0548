"""The messages indexes on values most rows lack (migration 0030) leave those rows out, and the lookups that need
them still use them: a delivery writes fewer index entries, and a receipt, a conversation's history, an
escalation link or a reply's window is still found by index, not by reading the table."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from herald.runtime import Runtime

# index: (the column whose NULLs are left out, a lookup as the code makes it)
LOOKUPS = {
    "ix_messages_receipt": (
        "provider_message_id",
        "SELECT id FROM messages WHERE channel_id = 'ch_1' AND provider_message_id = 'p-1'",
    ),
    "ix_messages_conversation": (
        "conversation_id",
        "SELECT id FROM messages WHERE conversation_id = 'cv_1' ORDER BY id DESC LIMIT 5",
    ),
    "ux_messages_escalated_from": (
        "escalated_from_id",
        "SELECT id FROM messages WHERE escalated_from_id = 'msg_1'",
    ),
    "ix_messages_recipient_sent": (
        "sent_at",
        "SELECT id FROM messages WHERE channel_id = 'ch_1' AND recipient_id IN ('+441', '+442') "
        "AND sent_at >= '2026-12-01 00:00:00' AND sent_at < '2026-12-01 01:00:00'",
    ),
}


async def _definition(rt: Runtime, backend: str, name: str) -> str:
    query = (
        "SELECT indexdef FROM pg_indexes WHERE indexname = :name"
        if backend == "postgresql"
        else "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = :name"
    )
    async with rt.sessions() as session:
        return str(await session.scalar(text(query), {"name": name}))


async def _plan(rt: Runtime, backend: str, query: str) -> str:
    async with rt.sessions.begin() as session:
        if backend == "postgresql":
            await session.execute(
                text("SET LOCAL enable_seqscan = off")
            )  # an empty table is read whole otherwise
            rows = await session.execute(text(f"EXPLAIN {query}"))
        else:
            rows = await session.execute(text(f"EXPLAIN QUERY PLAN {query}"))
        return "\n".join(str(part) for row in rows for part in row)


@pytest.mark.parametrize("name", sorted(LOOKUPS))
async def test_the_index_leaves_out_rows_without_the_value(rt: Runtime, backend: str, name: str) -> None:
    column, _ = LOOKUPS[name]
    definition = await _definition(rt, backend, name)
    assert f"{column} IS NOT NULL" in definition.replace("(", "").replace(")", "")


@pytest.mark.parametrize("name", sorted(LOOKUPS))
async def test_the_lookup_still_uses_the_index(rt: Runtime, backend: str, name: str) -> None:
    _, query = LOOKUPS[name]
    assert name in await _plan(rt, backend, query)
