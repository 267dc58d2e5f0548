"""Identifiers: a readable prefix plus a time-ordered body, so ids sort by creation and make good cursors."""

from __future__ import annotations

import secrets
import threading
import time

_lock = threading.Lock()
_last = [0, 0]  # the last id's (milliseconds, sequence) in this process


def new_id(prefix: str) -> str:
    """Return ``prefix_`` + 12 hex digits of milliseconds + 16 hex digits (sortable, hard to guess).

    Within a process ids strictly increase: the body starts at a random value in each millisecond and counts up
    within it (and the clock is never allowed to step back), so messages stored together keep their order.
    """
    now = time.time_ns() // 1_000_000
    with _lock:
        if now <= _last[0]:
            now, sequence = _last[0], _last[1] + 1
        else:
            sequence = secrets.randbits(62)  # leaves room to count up without overflowing 16 digits
        _last[0], _last[1] = now, sequence
    return f"{prefix}_{now:012x}{sequence:016x}"
