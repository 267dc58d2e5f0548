"""The dev inbox: a built-in channel that keeps every message it is given, for development and tests.

Writes are group-committed: concurrent sends share one INSERT, so the dev inbox keeps up with the worker.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from herald.channels.base import Channel, ChannelConfig, OutboundMessage
from herald.ids import new_id
from herald.storage.models import DevInboxMessage
from herald.storage.types import utcnow


class DevInboxStore:
    """Batches dev inbox rows; each ``append`` returns once its row is committed."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._pending: list[tuple[dict[str, Any], asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def append(self, row: dict[str, Any]) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((row, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        await future

    async def _flush(self) -> None:
        await asyncio.sleep(0)  # let the other sends of this batch join
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                async with self._sessions.begin() as session:
                    await session.execute(insert(DevInboxMessage), [row for row, _ in batch])
            except Exception as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
            else:
                for _, future in batch:
                    if not future.done():
                        future.set_result(None)


class DevInboxChannel(Channel):
    """Delivers to the dev inbox table; ``GET /api/v1/devinbox`` shows what arrived."""

    provider = "devinbox"
    platforms: ClassVar[frozenset[str]] = frozenset({"*"})

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
                "received_at": utcnow(),
            }
        )
        return row_id
