"""The demo dealership, written by the generator and read by every preset: on any run date each rule finds
someone to write to (SQLite on dates across the year, a leap day among them; PostgreSQL and MariaDB once)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import httpx
import pytest

from herald.presets import dealership
from herald.presets.dealership_data import build
from herald.runtime import Runtime
from tests.integration.presets.conftest import audience, register

DATES = [date(2026, 1, 1), date(2026, 3, 18), date(2026, 7, 4), date(2026, 10, 31), date(2028, 2, 29)]


async def matches(
    rt: Runtime, client: httpx.AsyncClient, auth: dict[str, str], url: str, today: date
) -> dict[str, int]:
    counts = await build(url, today, seed=3, customers=300)
    assert counts["customers"] > 300
    source, backend = await register(client, auth, url)
    return {p.key: len(await audience(rt, source, backend, p, today)) for p in dealership.PRESETS}


@pytest.mark.parametrize("today", DATES, ids=str)
async def test_every_preset_matches_on_any_date_sqlite(
    rt: Runtime, client: httpx.AsyncClient, auth: dict[str, str], tmp_path: Path, today: date
) -> None:
    url = f"sqlite:///{tmp_path}/dealer.db"
    found = await matches(rt, client, auth, url, today)
    assert all(found.values()), found


async def test_every_preset_matches_on_each_backend(
    rt: Runtime, client: httpx.AsyncClient, auth: dict[str, str], tenant_url: str
) -> None:
    found = await matches(rt, client, auth, tenant_url, date(2026, 3, 18))
    assert all(found.values()), found
