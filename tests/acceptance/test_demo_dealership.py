"""END-TO-END DEMO (lead: read before merging ``campaigns``): the real ``herald demo dealership`` against a
running ``herald serve``, with the dev key found on its own.

It runs in both states of the code base and asserts each, never skipping:
- while Herald has no campaigns API (``GET /api/v1/campaigns`` is 404): the command says so, exits 1, and
  registers nothing;
- once the ``campaigns`` branch is merged: it builds the database, registers it, and creates one campaign per
  dealership preset, each one readable back through the API with the preset's schedule and event type. This
  branch is the check that the presets' bodies pass Herald's own campaign schema.
"""

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
    has_campaigns = httpx.get(f"{base}/api/v1/campaigns", headers=headers, timeout=10).status_code != 404
    env = test_cli.env_for(tmp_path, f"sqlite:///{tmp_path / 'var' / 'herald.db'}")

    result = subprocess.run(
        [*HERALD, "demo", "dealership", "--herald-url", base, "--customers", "200", "--seed", "4"],
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip

    sources = httpx.get(f"{base}/api/v1/data-sources", headers=headers, timeout=10).json()["items"]
    if not has_campaigns:
        assert result.returncode == 1, result.stdout + result.stderr
        assert "no campaigns API" in result.stderr
        assert sources == []
        return
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
