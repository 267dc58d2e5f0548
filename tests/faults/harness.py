"""What the fault tests share: a tenant with a webhook channel to the receiver, a backlog, the real ``herald``
processes, and the figures each test prints (and appends to ``test-artifacts/faults.jsonl``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

from herald.runtime import Runtime
from herald.storage.models import Message
from herald.web.api.app import create_app
from tests.conftest import SECRET, make_settings, new_tenant

HERALD = [sys.executable, "-m", "herald"]
HOOK_SECRET = "whsec_dGVzdC1zZWNyZXQtMTIzNDU2Nzg5MA=="
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


async def prepare(
    database_url: str, tmp_path: Path, hook: str, backlog: int = 0
) -> tuple[dict[str, str], list[str]]:
    """A tenant, an AUTONOMOUS agent ``bot`` and a default webhook channel to ``hook``; ``backlog`` messages queued
    through the bulk API. Returns the tenant's auth headers and the queued ids."""
    rt = Runtime(make_settings(database_url, tmp_path))
    try:
        headers = await new_tenant(rt, "acme")
        app = create_app(rt.settings, runtime=rt, run_worker=False)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://h") as c:
            r = await c.post(
                "/api/v1/agents", json={"id": "bot", "maturity_level": "AUTONOMOUS"}, headers=headers
            )
            assert r.status_code == 201, r.text
            r = await c.post(
                "/api/v1/channels",
                json={"platform": "slack", "provider": "webhook", "name": "receiver", "is_default": True,
                      "credentials": {"url": hook, "secret": HOOK_SECRET}},
                headers=headers,
            )  # fmt: skip
            assert r.status_code == 201, r.text
            ids: list[str] = []
            for start in range(0, backlog, 5000):
                items = [
                    {
                        "agent_id": "bot",
                        "platform": "slack",
                        "recipient_id": f"C{10000 + i % 97}",
                        "content": f"m{i}",
                    }
                    for i in range(start, min(backlog, start + 5000))
                ]
                r = await c.post(
                    "/api/v1/messages/bulk", json={"messages": items}, headers=headers, timeout=120
                )
                assert r.status_code == 200, r.text
                assert r.json()["accepted"] == len(items), r.text[:500]
                ids.extend(item["id"] for item in r.json()["items"])
        return headers, ids
    finally:
        await rt.close()


def env_for(tmp_path: Path, database_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HERALD_")}
    env.update(
        HERALD_DATABASE_URL=database_url,
        HERALD_DATA_DIR=str(tmp_path / "var"),
        HERALD_SECRET_KEY=SECRET,
        HERALD_POLL_INTERVAL_SECONDS="0.2",
        HERALD_LOG_LEVEL="WARNING",
    )
    env.update(extra)
    return env


STARTED: list[subprocess.Popen[bytes]] = []
"""Every process :func:`start` made; tests/faults/conftest.py kills those still running after each test, so a
failed assertion between a start and its kill leaves no worker behind (one outliving its dropped database
would keep a core busy for the rest of the session)."""


def start(command: str, env: dict[str, str], log: Path, *args: str) -> subprocess.Popen[bytes]:
    """``herald <command>`` as a subprocess, its output appended to ``log``."""
    with log.open("ab") as out:
        proc = subprocess.Popen([*HERALD, command, *args], env=env, stdout=out, stderr=subprocess.STDOUT)
    STARTED.append(proc)
    return proc


def kill_leftovers() -> list[int]:
    """Kill (SIGKILL) every started process still running; returns their pids."""
    left = [p for p in STARTED if p.poll() is None]
    for proc in left:
        proc.kill()
        proc.wait(timeout=10)
    STARTED.clear()
    return [p.pid for p in left]


async def statuses(database_url: str, tmp_path: Path) -> dict[str, int]:
    rt = Runtime(make_settings(database_url, tmp_path))
    try:
        async with rt.sessions() as session:
            rows = await session.execute(select(Message.status, func.count()).group_by(Message.status))
            return {str(status): int(count) for status, count in rows.all()}
    finally:
        await rt.close()


async def sent_ids(database_url: str, tmp_path: Path) -> set[str]:
    """The ids recorded as sent: read right after a kill, what the dead worker had committed."""
    rt = Runtime(make_settings(database_url, tmp_path))
    try:
        async with rt.sessions() as session:
            return set((await session.execute(select(Message.id).where(Message.status == "sent"))).scalars())
    finally:
        await rt.close()


def wait_for(condition: Callable[[], bool], timeout: float, step: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return condition()


def report(name: str, figures: dict[str, Any]) -> None:
    """Print the figures (``pytest -s`` shows them; ``-rA`` too) and append them to test-artifacts/faults.jsonl."""
    line = json.dumps({"test": name, **figures}, sort_keys=True)
    print(f"\nFAULT FIGURES {line}")
    ARTIFACTS.mkdir(exist_ok=True)
    with (ARTIFACTS / "faults.jsonl").open("a") as out:
        out.write(line + "\n")
