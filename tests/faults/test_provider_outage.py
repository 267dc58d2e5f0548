"""A provider outage: the receiver answers 503 for some seconds while the real ``herald worker`` drains a backlog.
Nothing fails (503s are retried, the channel's circuit opens and lets a probe through after its cooldown), and
everything is delivered once the provider is back."""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path

import pytest

from tests.faults.harness import env_for, prepare, report, start, statuses, wait_for
from tests.faults.receiver import Receiver

MESSAGES = 1000
OUTAGE_SECONDS = 5.0


@pytest.mark.postgres_only
def test_provider_outage_fails_nothing_and_delivers_everything_after(
    tmp_path: Path, database_url: str
) -> None:
    receiver = Receiver(latency=lambda _: 0.005).start()
    worker = None
    try:
        _, ids = asyncio.run(prepare(database_url, tmp_path, receiver.url, MESSAGES))
        worker = start("worker", env_for(tmp_path, database_url), tmp_path / "worker.log")
        assert wait_for(lambda: receiver.delivered() >= MESSAGES // 5, 60)
        receiver.outage(OUTAGE_SECONDS)
        time.sleep(OUTAGE_SECONDS)
        recovered = time.monotonic()
        at_recovery = receiver.delivered()
        done = wait_for(
            lambda: asyncio.run(statuses(database_url, tmp_path)) == {"sent": MESSAGES}, 90, step=0.5
        )
        drained = time.monotonic() - recovered
        final = asyncio.run(statuses(database_url, tmp_path))
        duplicates = receiver.duplicates()
        report(
            "provider outage",
            {
                "messages": MESSAGES, "outage_seconds": OUTAGE_SECONDS, "refused_503": receiver.refused,
                "delivered_before_recovery": at_recovery, "lost": len(set(ids) - set(receiver.received)),
                "duplicated": len(duplicates), "failed": final.get("failed", 0),
                "seconds_to_drain_after_recovery": round(drained, 1), "statuses": final,
            },
        )  # fmt: skip
        assert done, final
        assert receiver.refused > 0, "the outage was never seen"
        assert set(receiver.received) == set(ids)
        assert duplicates == {}
    finally:
        if worker is not None:
            worker.terminate()
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                worker.kill()
        receiver.stop()
