"""Sessions that keep the pipeline's promises whatever the caller does with its transaction.

Two things must not depend on each caller remembering them:

- **After commit**: work that may only happen once a transaction is durable (waking in-process workers) is
  registered with :func:`after_commit` and runs right after the outermost commit; a rollback drops it.
- **Kept rows**: rows that record a decision even when the caller's request fails (a refused message's audit
  entry and event) are registered with :func:`keep`. They are written inside the caller's transaction when it
  commits; if it rolls back or never commits, :class:`HeraldSession` writes them in a transaction of their own
  when the session closes, after its connection is released (SQLite has one writer and one pooled connection).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Table, event, insert
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session, SessionTransaction

_AFTER_COMMIT = "herald.after_commit"
_KEPT = "herald.kept"
_KEPT_WRITTEN = "herald.kept_written"  # written into a transaction that has not committed yet

Kept = list[tuple[Table, list[dict[str, Any]]]]


class HeraldSession(AsyncSession):
    """An AsyncSession that writes its kept rows on close when its transaction did not commit them."""

    async def close(self) -> None:
        info = self.sync_session.info
        info.pop(_AFTER_COMMIT, None)
        leftover: Kept = info.pop(_KEPT, []) + info.pop(_KEPT_WRITTEN, [])
        await super().close()
        if leftover:
            await _write_alone(self.bind, leftover)


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, class_=HeraldSession, expire_on_commit=False)


def after_commit(session: AsyncSession, callback: Callable[[], None]) -> None:
    """Run ``callback`` once after this session's transaction commits (not at all if it rolls back).

    Registering the same callback twice in one transaction runs it once."""
    callbacks: dict[Callable[[], None], None] = session.info.setdefault(_AFTER_COMMIT, {})
    callbacks[callback] = None


def keep(session: AsyncSession, table: Table, rows: list[dict[str, Any]]) -> None:
    """Write ``rows`` into ``table`` whether or not the caller's transaction commits."""
    if rows:
        kept: Kept = session.info.setdefault(_KEPT, [])
        kept.append((table, rows))


async def _write_alone(bind: Any, kept: Kept) -> None:
    async with HeraldSession(bind=bind) as session, session.begin():
        for table, rows in kept:
            await session.execute(insert(table), rows)


@event.listens_for(Session, "before_commit")
def _write_kept(session: Session) -> None:
    kept: Kept | None = session.info.pop(_KEPT, None)
    if kept:
        for table, rows in kept:
            session.execute(insert(table), rows)
        session.info.setdefault(_KEPT_WRITTEN, []).extend(kept)


@event.listens_for(Session, "after_commit")
def _run_after_commit(session: Session) -> None:
    session.info.pop(_KEPT_WRITTEN, None)
    for callback in session.info.pop(_AFTER_COMMIT, {}):
        callback()


@event.listens_for(Session, "after_soft_rollback")
def _after_rollback(session: Session, previous: SessionTransaction) -> None:
    """The outermost transaction rolled back: its after-commit work is void, and kept rows it held are owed
    again (a savepoint's rollback leaves the rest of the transaction standing)."""
    if previous.parent is not None:
        return
    session.info.pop(_AFTER_COMMIT, None)
    lost: Kept | None = session.info.pop(_KEPT_WRITTEN, None)
    if lost:
        session.info.setdefault(_KEPT, []).extend(lost)
