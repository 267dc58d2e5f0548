"""The processes assemble their loops from the composition root: ``serve`` (``create_app(run_worker=True)``)
starts every loop, ``herald worker`` and ``herald scheduler`` their role's, and the worker's heartbeat is
withdrawn when it stops."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from herald import app as loops
from herald.cli import main
from herald.core.background import Loop
from herald.runtime import Runtime
from herald.storage.models import WorkerHeartbeat
from herald.storage.types import utcnow
from herald.web.api.app import create_app
from tests.conftest import SECRET


def record_starts(monkeypatch: pytest.MonkeyPatch, *, hold: bool) -> list[str]:
    """Replace the runner: note each loop started, and (``hold``) keep it running until stop."""
    started: list[str] = []

    async def fake_run_loop(loop: Loop, rt: Runtime, stop: asyncio.Event) -> None:
        started.append(loop.name)
        if hold:
            await stop.wait()

    monkeypatch.setattr(loops, "run_loop", fake_run_loop)
    return started


async def test_serve_starts_every_loop_and_api_none(rt: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    started = record_starts(monkeypatch, hold=True)
    app = create_app(rt.settings, runtime=rt, run_worker=False)
    async with app.router.lifespan_context(app):
        await asyncio.sleep(0.05)
    assert started == []

    app = create_app(rt.settings, runtime=rt, run_worker=True)
    async with app.router.lifespan_context(app):
        for _ in range(100):
            if len(started) == len(loops.LOOPS):
                break
            await asyncio.sleep(0.01)
    assert sorted(started) == sorted(loop.name for loop in loops.LOOPS)


async def test_serve_runs_the_real_loops_and_withdraws_the_heartbeat_on_shutdown(rt: Runtime) -> None:
    app = create_app(rt.settings, runtime=rt, run_worker=True)

    async def heartbeats() -> list[WorkerHeartbeat]:
        async with rt.sessions() as session:
            return list((await session.execute(select(WorkerHeartbeat))).scalars())

    async with app.router.lifespan_context(app):
        for _ in range(200):
            if await heartbeats():
                break
            await asyncio.sleep(0.02)
        (beat,) = await heartbeats()
        assert beat.last_seen > utcnow() - timedelta(minutes=1)
    (beat,) = await heartbeats()
    assert beat.last_seen < utcnow() - timedelta(hours=1)  # /health no longer counts it


@pytest.mark.parametrize("command", ["worker", "scheduler"])
def test_the_worker_and_scheduler_commands_start_their_roles_loops(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    started = record_starts(monkeypatch, hold=False)  # every loop ends at once, so the command returns
    env = {"HERALD_DATABASE_URL": database_url, "HERALD_SECRET_KEY": SECRET, "HERALD_DATA_DIR": str(tmp_path)}
    result = CliRunner().invoke(main, [command], env=env)
    assert result.exit_code == 0, result.output
    wanted = [loop.name for loop in loops.LOOPS if loop.role == command]
    assert started == wanted
