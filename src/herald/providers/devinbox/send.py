"""The dev inbox: a built-in channel that keeps every message it is given, for development and tests.

Writes are group-committed: concurrent sends share one INSERT, so the dev inbox keeps up with the worker.
"""

from __future__ import annotations

from typing import Any, ClassVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from herald.core.batching import GroupCommit
from herald.core.ids import new_id
from herald.providers.base import Channel, ChannelConfig, OutboundMessage
from herald.storage.bulk import insert_rows, table_of
from herald.storage.models import DevInboxMessage
from herald.storage.types import utcnow


class DevInboxStore:
    """Group-commits dev inbox rows; each ``append`` returns once its row is committed."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._group: GroupCommit[dict[str, Any]] = GroupCommit(self._write)

    async def append(self, row: dict[str, Any]) -> None:
        await self._group.submit(row)

    async def _write(self, rows: list[dict[str, Any]]) -> None:
        table = table_of(DevInboxMessage)
        async with self._sessions.begin() as session:
            await insert_rows(
                session, table, rows
            )  # Core (COPY when many): the ORM's bulk insert costs per row


class DevInboxChannel(Channel):
    """Delivers to the dev inbox table; ``GET /api/v1/devinbox`` shows what arrived."""

    provider = "devinbox"
    platforms: ClassVar[frozenset[str]] = frozenset({"*"})
    takes_attachments = True

    def __init__(self, config: ChannelConfig, store: DevInboxStore) -> None:
        self.config = config
        self.store = store

    async def send(self, message: OutboundMessage) -> str:
        row_id = new_id("dev")
        await self.store.append(
            {
                "id": row_id,
                "tenant_id": message.tenant_id,
                "message_id": message.id,
                "platform": message.platform,
                "recipient_id": message.recipient_id,
                "subject": message.subject,
                "content": message.content,
                "attachments": [
                    {
                        "filename": a.filename,
                        "content_type": a.content_type,
                        "size": a.size,
                        "content": a.base64,
                    }
                    for a in message.attachments
                ]
                or None,
                "received_at": utcnow(),
            }
        )
        return row_id


async def list_received(
    session: AsyncSession,
    tenant_id: str,
    *,
    platform: str | None = None,
    recipient_id: str | None = None,
    limit: int,
    cursor: str | None = None,
) -> list[DevInboxMessage]:
    """What the tenant's dev inbox received, newest first, before the row id ``cursor``, filtered by what is
    given."""
    query = select(DevInboxMessage).where(DevInboxMessage.tenant_id == tenant_id)
    if platform is not None:
        query = query.where(DevInboxMessage.platform == platform)
    if recipient_id is not None:
        query = query.where(DevInboxMessage.recipient_id == recipient_id)
    if cursor is not None:
        query = query.where(DevInboxMessage.id < cursor)
    return list((await session.execute(query.order_by(DevInboxMessage.id.desc()).limit(limit))).scalars())
