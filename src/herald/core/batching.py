"""Group commit: work submitted at the same moment shares one transaction.

Under load, many small writes (a webhook's stored message, an agent call's outcome) arrive together; writing
them in one transaction costs one round of statements and one commit instead of one each. At low load a
submission is written at once, alone: nothing waits for a batch to fill. Each submitter returns only after its
own item is committed, so durability is unchanged; when a group's transaction fails, its items are written
again one by one, so one bad item fails only its own submitter. ``write`` must therefore not depend on what a
rolled-back attempt changed. A failure that says nothing about the items (the database is down) can be
excluded from that with ``alone``: every submitter of the group then gets it at once, and retries as it sees fit.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")
K = TypeVar("K")


class GroupCommit(Generic[T]):
    def __init__(
        self,
        write: Callable[[list[T]], Awaitable[None]],
        *,
        max_batch: int = 500,
        alone: Callable[[Exception], bool] | None = None,
    ) -> None:
        """``alone(error)``: whether a group that failed with ``error`` is written again item by item (default:
        always); when not, each submitter of the group gets ``error``."""
        self._write = write
        self._max_batch = max_batch
        self._alone = alone
        self._pending: list[tuple[T, asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> None:
        """Return once ``item`` is written (or raise what writing it raised)."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((item, done))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        await done

    async def _flush(self) -> None:
        while self._pending:
            await asyncio.sleep(0)  # let submitters of the same moment join this transaction
            batch, self._pending = self._pending[: self._max_batch], self._pending[self._max_batch :]
            try:
                await self._write([item for item, _ in batch])
            except Exception as exc:
                if len(batch) == 1 or (self._alone is not None and not self._alone(exc)):
                    for _, done in batch:
                        _settle(done, exc)
                else:
                    # One bad item must not fail the others: the transaction rolled back, so write each alone.
                    for item, done in batch:
                        try:
                            await self._write([item])
                        except Exception as alone:
                            _settle(done, alone)
                        else:
                            _settle(done, None)
            else:
                for _, done in batch:
                    _settle(done, None)


class GroupCommits(Generic[K, T]):
    """One :class:`GroupCommit` per owner (a runtime: its own database and sessions), made on first use and
    dropped with its owner, for a module-level writer such as storing a webhook's messages."""

    def __init__(self, write: Callable[[K, list[T]], Awaitable[None]], **options: Any) -> None:
        self._write = write
        self._options = options
        self._groups: weakref.WeakKeyDictionary[Any, GroupCommit[T]] = weakref.WeakKeyDictionary()

    def of(self, owner: K) -> GroupCommit[T]:
        group = self._groups.get(owner)
        if group is None:
            write = self._write

            async def bound(items: list[T]) -> None:
                await write(owner, items)

            group = self._groups[owner] = GroupCommit(bound, **self._options)
        return group


def _settle(done: asyncio.Future[None], error: BaseException | None) -> None:
    if done.done():
        return
    if error is None:
        done.set_result(None)
    else:
        done.set_exception(error)
