"""Browser tests: Herald served for real (uvicorn in a thread, with its worker, scheduler and monitor loop) on a
fresh SQLite file, driven by Playwright through Debian's Chromium. No browser is ever downloaded.

Without a ``chromium`` binary (or Playwright) the tests are skipped with the reason; under CI (``CI`` set) they
fail instead, as the PostgreSQL tests do: ``.ci/run`` installs chromium with apt when it is missing. When a
test fails, a screenshot of each of its pages is saved under ``test-artifacts/`` (or
``$HERALD_TEST_ARTIFACTS``).
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import Request

from herald.core.config import Settings
from herald.fakes import FakeState, create_fake_app
from herald.runtime import Runtime
from herald.web.api.app import create_app
from tests.conftest import make_settings, new_tenant

ARTIFACTS = Path(
    os.environ.get("HERALD_TEST_ARTIFACTS") or Path(__file__).resolve().parents[2] / "test-artifacts"
)


def _missing(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"browser tests must run in CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def chromium_executable() -> str:
    """Debian's Chromium (``apt-get install chromium``), found on PATH or at /usr/bin/chromium."""
    path = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    if path is None:
        _missing("no chromium binary: install it with 'apt-get install chromium'")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _missing("playwright is not installed: pip install -e '.[dev]'")
    assert path is not None
    return path


@pytest.fixture(scope="module")
def browser(chromium_executable: str) -> Iterator[Any]:
    """One Chromium for the browser tests; each test gets its own context (cookies, pages).

    Module scope, not session: while Playwright's sync API is open it keeps an event loop marked as running on
    this thread, and every asyncio test collected after the browser tests would fail to start its own."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=chromium_executable)
        yield chromium
        chromium.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _serve(app: Any, name: str) -> tuple[str, uvicorn.Server, threading.Thread]:
    port = _free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", ws="none")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=name, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail(f"{name} did not start for the browser tests")
        time.sleep(0.05)
    return f"http://127.0.0.1:{port}", server, thread


@dataclass
class LiveHerald:
    """A running Herald: where it listens, a tenant's key, and an API client carrying that key."""

    base_url: str
    key: str
    api: httpx.Client
    settings: Settings

    def run(self, work: Callable[[Runtime], Any]) -> Any:
        """Run ``work`` (a coroutine function) with a runtime of its own on the same database, in a thread of
        its own: Playwright's sync API keeps an event loop running on the test's thread."""

        async def go() -> Any:
            rt = Runtime(self.settings)
            try:
                return await work(rt)
            finally:
                await rt.close()

        with ThreadPoolExecutor(max_workers=1) as pool:
            return pool.submit(asyncio.run, go()).result(timeout=60)


@pytest.fixture(scope="module")
def live_herald(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Iterator[LiveHerald]:
    """``create_app`` under uvicorn in a thread, exactly as ``herald serve`` runs it (worker included)."""
    tmp = tmp_path_factory.mktemp("browser")
    database = tmp / "herald.db"
    shutil.copy(sqlite_template, database)
    settings = make_settings(f"sqlite:///{database}", tmp, poll_interval_seconds=0.05, log_level="WARNING")

    async def seed(rt: Runtime) -> str:
        headers = await new_tenant(rt, "acme")
        return headers["Authorization"].removeprefix("Bearer ")

    # No keep-alive: uvicorn closes an idle connection after 5 s, and a request sent at that moment gets
    # "Server disconnected" (a race of the test client, not of Herald).
    api = httpx.Client(timeout=10, limits=httpx.Limits(max_keepalive_connections=0))
    live = LiveHerald("", "", api, settings)
    live.key = live.run(seed)
    live.base_url, server, thread = _serve(create_app(settings), "herald-live")
    live.api.base_url = httpx.URL(live.base_url)
    live.api.headers["Authorization"] = f"Bearer {live.key}"
    try:
        yield live
    finally:
        live.api.close()
        server.should_exit = True
        thread.join(timeout=30)


@dataclass
class Fakes:
    """Fake provider APIs and an agent, served for real next to Herald: channels point ``base_url`` here and
    agents their ``callback_url`` at :attr:`agent_url`, whose answer is ``{"reply": reply(data)}``."""

    base_url: str
    state: FakeState
    reply: Callable[[dict[str, Any]], str | None]

    @property
    def agent_url(self) -> str:
        return f"{self.base_url}/agent"


@pytest.fixture(scope="module")
def fakes() -> Iterator[Fakes]:
    state = FakeState()
    app = create_fake_app(state)
    found = Fakes("", state, lambda data: None)

    @app.post("/agent")
    async def agent(request: Request) -> dict[str, Any]:
        text = found.reply((await request.json())["data"])
        return {} if text is None else {"reply": text}

    found.base_url, server, thread = _serve(app, "herald-fakes")
    try:
        yield found
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Keep each phase's report on the item, so fixtures can tell whether the test failed."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture
def console_errors() -> list[str]:
    """Console errors and uncaught exceptions of every page the test opened."""
    return []


@pytest.fixture
def page(
    browser: Any, live_herald: LiveHerald, request: pytest.FixtureRequest, console_errors: list[str]
) -> Iterator[Any]:
    context = browser.new_context(base_url=live_herald.base_url, viewport={"width": 1280, "height": 800})
    context.set_default_timeout(10_000)
    visited: list[str] = []

    def watch(new_page: Any) -> None:
        new_page.on(
            "console",
            lambda msg: (
                console_errors.append(f"{msg.text} at {new_page.url}") if msg.type == "error" else None
            ),
        )
        new_page.on("pageerror", lambda exc: console_errors.append(f"uncaught {exc} at {new_page.url}"))
        new_page.on(
            "framenavigated",
            lambda frame: visited.append(frame.url) if frame == new_page.main_frame else None,
        )

    context.on("page", watch)
    first = context.new_page()
    try:
        yield first
    finally:
        report = getattr(request.node, "report_call", None)
        if report is not None and report.failed:
            _save_artifacts(request.node.name, context, visited, console_errors)
        context.close()


def _save_artifacts(test_name: str, context: Any, visited: list[str], errors: list[str]) -> None:
    """The failing state of each open page first, then a fresh look at every other page the test visited."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", test_name)
    shots = 0
    try:
        for open_page in list(context.pages):
            shots += 1
            open_page.screenshot(path=str(ARTIFACTS / f"{stem}-{shots:02d}-at-failure.png"), full_page=True)
            (ARTIFACTS / f"{stem}-{shots:02d}-at-failure.html").write_text(open_page.content())
        current = {p.url for p in context.pages}
        again = context.new_page()
        for url in dict.fromkeys(u for u in visited if u.startswith("http") and u not in current):
            shots += 1
            again.goto(url)
            name = re.sub(r"[^A-Za-z0-9]+", "_", url.split("://", 1)[-1].split("/", 1)[-1]) or "overview"
            again.screenshot(path=str(ARTIFACTS / f"{stem}-{shots:02d}-{name[:60]}.png"), full_page=True)
    except Exception as exc:  # a crashed page must not hide the test's own failure
        errors.append(f"could not save every screenshot: {exc}")
    if errors:
        (ARTIFACTS / f"{stem}-console.txt").write_text("\n".join(errors) + "\n")
