"""What the benchmarks share: their own databases on the loopback PostgreSQL, percentiles, provenance."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

SECRET = "bench-secret-key-0123456789-abcdefghijklmnop"
LOOPBACK = frozenset({"127.0.0.1"})


class BenchError(RuntimeError):
    """A phase failed or timed out; the bench exits non-zero."""


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, round(q / 100 * len(ordered) + 0.5 - 1e-9))
    return ordered[min(rank, len(ordered)) - 1]


def check_loopback(url: str) -> None:
    host = urlsplit(url).hostname
    if host not in LOOPBACK:
        raise SystemExit(
            f"--postgres-url must point at 127.0.0.1 (got host {host!r}); the bench touches nothing else"
        )


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


async def pg_admin(admin_url: str, sql: str) -> None:
    conn = await asyncpg.connect(admin_url, timeout=10)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def scalar(engine: AsyncEngine, sql: str, params: dict[str, Any] | None = None) -> Any:
    async with engine.connect() as conn:
        return (await conn.execute(text(sql), params or {})).scalar()


async def wait_mp_event(event: Any, within: float | None) -> bool:
    """Wait for a multiprocessing Event without blocking the loop (in short slices, so the thread ends)."""
    deadline = None if within is None else time.monotonic() + within
    while True:
        if await asyncio.to_thread(event.wait, min(0.05, within) if within is not None else 0.05):
            return True
        if deadline is not None and time.monotonic() >= deadline:
            return False


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None
