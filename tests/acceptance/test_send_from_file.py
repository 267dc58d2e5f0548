"""The real ``herald send --from-file`` against a running ``herald serve``: seed 003's JSON format, a summary of
accepted and rejected items, exit status, the dev key found on its own, and ``--idempotent`` reruns."""

from __future__ import annotations

import json
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from tests.acceptance import test_cli

HERALD = test_cli.HERALD
served = test_cli.served  # `herald serve` on a fresh SQLite file: (base URL, dev key)


def send_file(tmp_path: Path, path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = test_cli.env_for(tmp_path, f"sqlite:///{tmp_path / 'var' / 'herald.db'}")
    return subprocess.run(
        [*HERALD, "send", "--from-file", str(path), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def seed_messages(count: int) -> list[dict[str, Any]]:
    types = ["otp", "alert", "notification", "reminder"]
    priorities = ["CRITICAL", "HIGH", "MEDIUM", "LOW"]
    return [
        {"phone_number": f"+4477009{i:05d}", "message_type": types[i % 4], "content": f"Message {i}",
         "priority": priorities[i % 4]}
        for i in range(count)
    ]  # fmt: skip


def test_send_from_file_reports_accepted_and_rejected_items(served: tuple[str, str], tmp_path: Path) -> None:
    base, key = served
    messages = seed_messages(300)
    messages[7]["phone_number"] = "12"
    messages[150]["priority"] = "URGENT"
    messages[201]["colour"] = "red"
    del messages[299]["content"]
    path = tmp_path / "messages.json"
    path.write_text(json.dumps(messages))

    result = send_file(tmp_path, path, "--base-url", base, "--api-key", key, "--chunk-size", "100")

    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "accepted 296, rejected 4"
    assert [line.split(":")[0] for line in lines[1:]] == [
        "  item 7",
        "  item 150",
        "  item 201",
        "  item 299",
    ]
    assert lines[1].startswith("  item 7: recipient_id: '12' is not a valid sms recipient")
    assert lines[2].startswith("  item 150: priority: ")
    assert lines[3] == "  item 201: colour: Extra inputs are not permitted (422)"
    assert lines[4].startswith("  item 299: content: ")

    headers = {"Authorization": f"Bearer {key}"}
    deadline = time.monotonic() + 30
    while True:
        page = httpx.get(f"{base}/api/v1/messaging/proactive/history?limit=1000", headers=headers, timeout=5)
        statuses = [m["status"] for m in page.json()["items"]]
        if len(statuses) == 296 and set(statuses) == {"sent"} or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert (len(statuses), set(statuses)) == (296, {"sent"})
    kinds = Counter(m["governance_metadata"]["message_type"] for m in page.json()["items"])
    assert kinds == {"otp": 75, "alert": 74, "notification": 74, "reminder": 73}  # less the 4 refused
    assert {m["platform"] for m in page.json()["items"]} == {"sms"}


def test_send_finds_the_dev_key_and_idempotent_reruns_replay(served: tuple[str, str], tmp_path: Path) -> None:
    base, _ = served
    path = tmp_path / "ok.json"
    path.write_text(json.dumps(seed_messages(5)))

    first = send_file(tmp_path, path, "--base-url", base, "--idempotent")
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == "accepted 5, rejected 0"
    again = send_file(tmp_path, path, "--base-url", base, "--idempotent")
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == "accepted 5, rejected 0 (5 replayed)"

    wrong = send_file(tmp_path, path, "--base-url", base, "--api-key", "hk_wrong")
    assert wrong.returncode == 2
    assert "401" in wrong.stderr
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    unreadable = send_file(tmp_path, broken, "--base-url", base)
    assert unreadable.returncode == 2
    assert "not JSON" in unreadable.stderr
