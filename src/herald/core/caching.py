"""A small in-process cache with a time to live, for lookups that change rarely (policies, default channels).

Entries expire after ``ttl`` seconds, so a change made by another process shows within that time; the process
that makes a change clears its own cache at once.
"""

from __future__ import annotations

import time
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class TTLCache(Generic[K, V]):
    def __init__(self, ttl: float, max_entries: int = 50_000) -> None:
        self._ttl = ttl
        self._max = max_entries
        self._entries: dict[K, tuple[V, float]] = {}

    def get(self, key: K) -> tuple[bool, V | None]:
        """(found, value): ``found`` is False on a miss or an expired entry."""
        entry = self._entries.get(key)
        if entry is None or entry[1] < time.monotonic():
            return False, None
        return True, entry[0]

    def put(self, key: K, value: V) -> None:
        if len(self._entries) >= self._max:
            self._entries.clear()
        self._entries[key] = (value, time.monotonic() + self._ttl)

    def clear(self) -> None:
        self._entries.clear()
