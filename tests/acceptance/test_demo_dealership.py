"""``herald demo dealership`` for real, against a running ``herald serve`` with the dev key found on its own:
it builds the database, registers it, creates one campaign per dealership preset (each readable back with the
preset's schedule and event type, so every preset's body passes Herald's own campaign schema) and runs each
once, every rule producing messages on the day the data was built around."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx

from herald.presets import dealership
from tests.acceptance import test_cli

HERALD = test_cli.HERALD
served = test_cli.served  # `herald serve` on a fresh SQLite file: (base URL, dev key)


def test_demo_dealership_end_to_end(served: tuple[str, str], tmp_path: Path) -> None:
    base, key = served
    headers = {"Authorization": f"Bearer {key}"}
    env = test_cli.env_for(tmp_path, f"sqlite:///{tmp_path / 'var' / 'herald.db'}")

    result = subprocess.run(
        [*HERALD, "demo", "dealership", "--herald-url", base, "--customers", "200", "--seed", "4"],
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip

    sources = httpx.get(f"{base}/api/v1/data-sources", headers=headers, timeout=10).json()["items"]
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "var" / "dealership.db").is_file()
    assert [s["backend"] for s in sources] == ["sqlite"]
    created = [line for line in result.stdout.splitlines() if line.startswith("campaign ")]
    assert len(created) == len(dealership.PRESETS)
    listed = httpx.get(f"{base}/api/v1/campaigns", params={"limit": 100}, headers=headers, timeout=10).json()
    by_type = {c["event_type"]: c for c in listed["items"]}
    assert set(by_type) == set(dealership.BY_KEY)
    for preset in dealership.PRESETS:
        assert by_type[preset.key]["schedule"] == preset.schedule
        assert by_type[preset.key]["data_source_id"] == sources[0]["id"]
    ran = [line for line in result.stdout.splitlines() if line.startswith("run ")]
    assert len(ran) == len(dealership.PRESETS)
    for preset in dealership.PRESETS:
        runs = httpx.get(
            f"{base}/api/v1/campaigns/{by_type[preset.key]['id']}/runs", headers=headers, timeout=10
        ).json()["items"]
        assert [r["status"] for r in runs] == ["completed"], preset.key
        assert runs[0]["created"] > 0, (preset.key, runs[0])
