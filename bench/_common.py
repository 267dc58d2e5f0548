"""What the benchmarks share: their own databases on the loopback PostgreSQL, percentiles, provenance."""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing as mp
import os
import platform
import queue
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
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


@dataclass
class ProcessPool:
    """Spawned bench processes, each called as ``target(kwargs, index, option, ready, go, stop, out)``: they
    signal ``ready`` once set up, start on ``go``, end on ``stop`` and put their stats on ``out``."""

    target: Callable[..., None]
    kwargs: dict[str, Any]
    count: int
    option: Any
    label: str  # "checker", "scheduler": names the processes and the errors
    spawn_timeout: float
    collect_seconds: float = 60.0
    ctx: Any = field(default_factory=lambda: mp.get_context("spawn"))
    processes: list[Any] = field(default_factory=list)
    stats: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.go = self.ctx.Event()
        self.stop = self.ctx.Event()
        self.ready = [self.ctx.Event() for _ in range(self.count)]
        self.out = self.ctx.Queue()

    async def start(self) -> None:
        """Spawn the processes and wait until each has built its Runtime (imports and connections done)."""
        for index in range(self.count):
            process = self.ctx.Process(
                target=self.target,
                args=(self.kwargs, index, self.option, self.ready[index], self.go, self.stop, self.out),
                name=f"herald-bench-{self.label}-{index}",
                daemon=True,
            )
            process.start()
            self.processes.append(process)
        deadline = time.monotonic() + self.spawn_timeout
        for event in self.ready:
            while not await wait_mp_event(event, 0.5):
                self.check_alive()
                if time.monotonic() > deadline:
                    raise BenchError(
                        f"a {self.label} process did not start within {self.spawn_timeout:.0f} s"
                    )

    def release(self) -> None:
        self.go.set()

    def alive(self) -> int:
        return sum(1 for p in self.processes if p.is_alive())

    def check_alive(self) -> None:
        dead = [p for p in self.processes if not p.is_alive() and p.exitcode != 0]
        if dead:
            raise BenchError(f"{self.label} process failed (exit codes {[p.exitcode for p in dead]})")

    def collect(self, within: float) -> None:
        deadline = time.monotonic() + within
        while len(self.stats) < len(self.processes) and time.monotonic() < deadline:
            try:
                self.stats.append(self.out.get(timeout=0.2))
            except queue.Empty:
                if not any(p.is_alive() for p in self.processes):
                    try:
                        self.stats.append(self.out.get(timeout=1.0))
                    except queue.Empty:
                        break

    async def shutdown(self) -> None:
        self.stop.set()
        self.go.set()  # a process still waiting for "go" returns at once
        await asyncio.to_thread(self.collect, self.collect_seconds)
        for process in self.processes:
            await asyncio.to_thread(process.join, 30)
        for process in self.processes:  # only the processes this bench started, by handle
            if process.is_alive():
                process.terminate()
                await asyncio.to_thread(process.join, 5)


RESULTS_DIR = Path(__file__).resolve().parent / "results"


def prepare_results() -> Path:
    """The folder benches write their JSON to (kept out of git)."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    gitignore = RESULTS_DIR / ".gitignore"
    if not gitignore.exists():
        gitignore.write_text("*.json\n")
    return RESULTS_DIR


def describe_environment() -> dict[str, Any]:
    """What a result was measured on."""
    return {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(),
            "commit": git_commit()}  # fmt: skip


class Watched(Protocol):
    """Processes a bench started: ``check_alive`` raises when one has exited."""

    def check_alive(self) -> None: ...


async def wait_http(processes: Watched, url: str, within: float) -> None:
    """Until ``url`` answers at all (any status), failing fast when one of ``processes`` has died."""
    deadline = time.monotonic() + within
    async with httpx.AsyncClient(timeout=2.0) as client:
        while True:
            processes.check_alive()
            with contextlib.suppress(httpx.HTTPError):
                await client.get(url)
                return
            if time.monotonic() > deadline:
                raise BenchError(f"{url} did not answer within {within:.0f} s")
            await asyncio.sleep(0.1)


@dataclass
class Processes:
    """The processes a benchmark started, each logging to ``<workdir>/<name>.log`` in a process group of its own;
    stopped by handle (never by name, so nothing else on the machine is touched), group and all (Celery's pool
    children go with their parent)."""

    workdir: Path
    env: dict[str, str]
    cwd: Path | None = None
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    logs: list[Any] = field(default_factory=list)

    def start(self, name: str, argv: list[str], extra_env: dict[str, str] | None = None) -> None:
        log = (self.workdir / f"{name}.log").open("wb")
        self.logs.append(log)
        env = {**self.env, **(extra_env or {})}
        self.procs[name] = subprocess.Popen(
            argv, env=env, cwd=self.cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def check_alive(self) -> None:
        """A BenchError with the end of its log when any of them has exited."""
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                tail = (self.workdir / f"{name}.log").read_text(errors="replace")[-2000:]
                raise BenchError(f"{name} exited with {proc.returncode}:\n{tail}")

    def stop(self, *names: str) -> None:
        """SIGTERM to the chosen ones (all by default), SIGKILL to those still there after 20 s."""
        chosen = [n for n in (names or tuple(self.procs)) if n in self.procs]
        for name in chosen:
            proc = self.procs[name]
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        for name in chosen:
            proc = self.procs.pop(name)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)

    def close(self) -> None:
        self.stop()
        for log in self.logs:
            log.close()
