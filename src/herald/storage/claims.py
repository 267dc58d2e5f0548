"""Claiming due rows: the one way every background loop takes its work.

A pass of a loop selects the rows that are due, locks them so that concurrent processes take disjoint rows,
leases them (moves them out of "due" for a while, so the next pass, here or in another process, leaves them
alone while the work runs outside the transaction), and commits, which releases the locks. A lease that runs
out by itself (its process died) makes the rows due again: work is done at least once. Loops that do their
work inside the claiming transaction (schedules, retention) need no lease: the lock covers them until commit.

Locking is ``FOR UPDATE SKIP LOCKED`` on PostgreSQL: a claimer passes over rows another transaction holds
instead of waiting for them. SQLite needs nothing: the engine begins every transaction with ``BEGIN
IMMEDIATE`` (:mod:`herald.storage.engine`), so one writer at a time claims.

:func:`claim` takes the due rows as an ORM select (leased row by row, or in the claiming statement itself with
:class:`Stamp`) or as a hand-written :class:`~herald.storage.sql.NamedClaim` (the outbox's).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any, TypeVar, overload

from sqlalchemy import Column, Row, Select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import QueryableAttribute

from herald.storage.sql import NamedClaim
from herald.storage.types import utcnow

T = TypeVar("T")


class Stamp:
    """A lease written by the claiming statement itself: ``UPDATE <table> SET <values> WHERE <key> IN (<the due
    keys, locked>) RETURNING <key>``, one round-trip instead of a select and an update. The due select names
    the key column alone (``select(Model.id)``); the claim returns the keys it took, in no particular order."""

    __slots__ = ("values",)

    def __init__(self, **values: Any) -> None:
        self.values = values


Lease = Callable[[T], object]
"""Leases one claimed ORM row (sets its due column ahead); flushed with the claiming transaction."""


def hold(column: QueryableAttribute[Any], duration: timedelta) -> Callable[[object], None]:
    """A :data:`Lease` that sets ``column`` to now + ``duration`` on each claimed row (``next_attempt_at``,
    say): the row is not due again until then, unless its work finishes first."""
    key = column.key

    def lease(row: object) -> None:
        setattr(row, key, utcnow() + duration)

    return lease


def locked(due: Select[T], dialect: str) -> Select[T]:
    """``due`` as a claim must run it: skipping rows other transactions hold, on PostgreSQL."""
    return due.with_for_update(skip_locked=True) if dialect == "postgresql" else due


@overload
async def claim(session: AsyncSession, due: NamedClaim, params: Mapping[str, Any]) -> Sequence[Row[Any]]: ...


@overload
async def claim(
    session: AsyncSession, due: Select[T], *, lease: Lease[T] | Stamp | None = None
) -> list[T]: ...


async def claim(
    session: AsyncSession,
    due: NamedClaim | Select[Any],
    params: Mapping[str, Any] | None = None,
    *,
    lease: Lease[Any] | Stamp | None = None,
) -> Sequence[Any]:
    """Claim the rows ``due`` selects (ordered and limited as it says), in the caller's transaction.

    - An ORM select returns its first column (the entities, or the keys): locked until the caller's
      transaction ends, each leased with ``lease`` if given (for example :func:`hold`).
    - An ORM select of a key with a :class:`Stamp` lease claims and leases in one ``UPDATE … RETURNING``.
    - A :class:`~herald.storage.sql.NamedClaim` runs with ``params`` and returns its rows.

    Commit promptly: the locks are held until then, and other claimers skip those rows.
    """
    dialect = session.get_bind().dialect.name
    if isinstance(due, NamedClaim):
        for statement in due.setup(dialect):
            await session.execute(statement)
        return (await session.execute(due.statement(dialect), params)).all()
    if isinstance(lease, Stamp):
        return await _claim_stamped(session, locked(due, dialect), lease)
    rows = list((await session.execute(locked(due, dialect))).scalars())
    if lease is not None:
        for row in rows:
            lease(row)
    return rows


async def _claim_stamped(session: AsyncSession, due: Select[Any], stamp: Stamp) -> list[Any]:
    key = due.selected_columns[0]
    if len(due.selected_columns) != 1 or not isinstance(key, Column):
        raise TypeError("a Stamp lease needs a select of one key column, such as select(Model.id)")
    statement = (
        update(key.table)
        .where(key.in_(due.scalar_subquery()))
        .values(**stamp.values)
        .returning(key)
        .execution_options(synchronize_session=False)
    )
    return list((await session.execute(statement)).scalars())
