"""A PostgreSQL restart under load, on a throwaway cluster the test starts itself: the real ``herald api`` keeps
accepting sends (503 with Retry-After while the database is down, never another 5xx) and the real ``herald
worker`` keeps draining; neither is restarted. Nothing is lost and nothing is sent twice: outcomes the worker
could not record during the outage are recorded when the database is back, within the lease."""

from __future__ import annotations

import asyncio
import subprocess
import threading
import time
import uuid
import zlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.faults.cluster import Cluster, free_port
from tests.faults.harness import HERALD, env_for, prepare, report, start, statuses, wait_for
from tests.faults.receiver import Receiver

BACKLOG = 600
SENDERS = 4
DOWN_SECONDS = 3.0  # longer than a worker used to retry its outcomes (1.2 s)
LEASE_SECONDS = 15  # a lost outcome would be resent after this: the test waits for it


def _latency(message_id: str) -> float:
    return 1.0 if zlib.crc32(message_id.encode()) % 20 == 0 else 0.005


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    try:
        pg = Cluster().init()
    except (FileNotFoundError, RuntimeError) as exc:
        pytest.skip(f"cannot make a throwaway PostgreSQL cluster: {exc}")
    try:
        pg.start()
        yield pg
    finally:
        pg.destroy()


class Load:
    """Senders posting one message at a time with an Idempotency-Key, retrying the same key after a 503 (as a
    client should) until it is accepted."""

    def __init__(self, base: str, headers: dict[str, str]) -> None:
        self.base, self.headers = base, headers
        self.accepted: set[str] = set()
        self.answers: Counter[int] = Counter()
        self.unavailable_without_retry_after = 0
        self.connection_errors = 0
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(SENDERS)]

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=30)

    def _run(self, n: int) -> None:
        with httpx.Client(base_url=self.base, headers=self.headers, timeout=30) as client:
            i = 0
            while not self.stop.is_set():
                i += 1
                key = str(uuid.uuid4())
                body = {
                    "agent_id": "bot",
                    "platform": "slack",
                    "recipient_id": f"C{20000 + n}",
                    "content": f"s{n}-{i}",
                }
                while True:  # the same key until accepted: a retry cannot make a second message
                    try:
                        r = client.post(
                            "/api/v1/messaging/proactive/send", json=body, headers={"idempotency-key": key}
                        )
                    except httpx.TransportError:
                        with self.lock:
                            self.connection_errors += 1
                        time.sleep(0.2)
                        continue
                    with self.lock:
                        self.answers[r.status_code] += 1
                        if r.status_code == 503 and not r.headers.get("retry-after"):
                            self.unavailable_without_retry_after += 1
                    if r.status_code in (200, 201):
                        with self.lock:
                            self.accepted.add(r.json()["id"])
                        break
                    time.sleep(0.2)


@pytest.mark.postgres_only  # the cluster is the test's own; this only runs it once, with the PostgreSQL half
def test_postgres_restart_under_load_no_5xx_nothing_lost_nothing_twice(
    tmp_path: Path, database_url: str, cluster: Cluster
) -> None:
    del database_url  # the shared server is not used: the test restarts its own cluster
    url = cluster.url
    receiver = Receiver(latency=_latency).start()
    env = env_for(tmp_path, url, HERALD_LEASE_SECONDS=str(LEASE_SECONDS))
    api = worker = None
    try:
        subprocess.run([*HERALD, "migrate"], env=env, check=True, capture_output=True, timeout=120)
        headers, backlog = asyncio.run(prepare(url, tmp_path, receiver.url, BACKLOG))
        port = free_port()
        api = start("api", env, tmp_path / "api.log", "--host", "127.0.0.1", "--port", str(port))
        worker = start("worker", env, tmp_path / "worker.log")
        base = f"http://127.0.0.1:{port}"
        assert wait_for(lambda: _up(base), 30), (tmp_path / "api.log").read_text()[-3000:]
        with Load(base, headers) as load:
            time.sleep(2.0)
            cluster.restart(down_seconds=DOWN_SECONDS)
            back = time.monotonic()
            time.sleep(3.0)
        assert api.poll() is None, "the API process died"
        assert worker.poll() is None, "the worker process died"
        expected = set(backlog) | load.accepted
        assert wait_for(lambda: _done(url, tmp_path, len(expected)), LEASE_SECONDS + 30, step=0.5), (
            asyncio.run(statuses(url, tmp_path))
        )
        drained = time.monotonic() - back
        final = asyncio.run(statuses(url, tmp_path))
        fivexx = sum(n for status, n in load.answers.items() if status >= 500 and status != 503)
        duplicates = receiver.duplicates()
        report(
            "postgres restart",
            {
                "messages": len(expected), "accepted_during_test": len(load.accepted), "restarts": 1,
                "down_seconds": DOWN_SECONDS, "answers": dict(load.answers), "5xx_other_than_503": fivexx,
                "503_without_retry_after": load.unavailable_without_retry_after,
                "connection_errors": load.connection_errors,
                "lost": len(expected - set(receiver.received)), "duplicated": len(duplicates),
                "seconds_to_drain_after_restart": round(drained, 1), "statuses": final,
            },
        )  # fmt: skip
        assert fivexx == 0
        assert load.unavailable_without_retry_after == 0
        assert load.connection_errors == 0
        assert set(receiver.received) == expected
        assert final == {"sent": len(expected)}
        assert duplicates == {}
    finally:
        for proc in (api, worker):
            if proc is not None:
                proc.terminate()
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
        receiver.stop()


def _up(base: str) -> bool:
    try:
        return httpx.get(f"{base}/health", timeout=2).status_code in (200, 503)
    except httpx.TransportError:
        return False


def _done(url: str, tmp_path: Path, expected: int) -> bool:
    """Every message sent and none still leased (a lost outcome shows as a lease that runs out, then a resend)."""
    try:
        return asyncio.run(statuses(url, tmp_path)) == {"sent": expected}
    except OSError:
        return False
