"""Identifiers: a readable prefix plus a time-ordered body, so ids sort by creation and make good cursors."""

from __future__ import annotations

import secrets
import time


def new_id(prefix: str) -> str:
    """Return ``prefix_`` + 12 hex digits of milliseconds + 16 random hex digits (sortable, unguessable)."""
    return f"{prefix}_{time.time_ns() // 1_000_000:012x}{secrets.token_hex(8)}"
