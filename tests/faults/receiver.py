"""A provider for fault tests: Herald's signed webhook channel pointed at a local receiver that records every
request by its ``webhook-id`` (the Herald message id), knows which requests are in flight (received, not yet
answered), answers some slowly, and answers ``503`` on demand (a provider outage)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import uvicorn


@dataclass
class Snapshot:
    """The receiver at one moment (a kill): what was on the wire, and what had been answered when."""

    at: float
    in_flight: set[str]
    answered_at: dict[str, float]


@dataclass
class Receiver:
    latency: Callable[[str], float] = lambda _: 0.0
    received: Counter[str] = field(default_factory=Counter)
    answered_at: dict[str, float] = field(default_factory=dict)  # first 2xx answer per message
    in_flight: Counter[str] = field(default_factory=Counter)
    refused: int = 0  # requests answered 503
    down_until: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: uvicorn.Server | None = None
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> Receiver:
        """Serve on 127.0.0.1 and a free port, on an event loop of its own thread (uvicorn: asyncio, so a slow
        answer holds no thread and hundreds of connections cost nothing)."""
        config = uvicorn.Config(
            self._app,
            host="127.0.0.1",
            port=0,
            log_level="error",
            lifespan="off",
            interface="asgi3",
            backlog=2048,
        )
        self.server = uvicorn.Server(config)
        self.server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        threading.Thread(target=self.server.run, daemon=True).start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the receiver did not start")
            time.sleep(0.01)
        self.port = self.server.servers[0].sockets[0].getsockname()[1]
        return self

    async def _app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        more = True
        while more:
            event = await receive()
            more = event.get("more_body", False)
        message_id = dict(scope["headers"]).get(b"webhook-id", b"").decode()
        with self.lock:
            down = time.monotonic() < self.down_until
            if down:
                self.refused += 1
            else:
                self.received[message_id] += 1
                self.in_flight[message_id] += 1
        if down:
            await _answer(send, 503, b'{"error":"unavailable"}', [(b"retry-after", b"1")])
            return
        try:
            delay = self.latency(message_id)
            if delay:
                await asyncio.sleep(delay)
            await _answer(send, 200, b'{"id":"r-' + message_id.encode() + b'"}')
        finally:
            with self.lock:
                self.in_flight[message_id] -= 1
                if not self.in_flight[message_id]:
                    del self.in_flight[message_id]
                self.answered_at.setdefault(message_id, time.monotonic())

    def stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True

    def outage(self, seconds: float) -> None:
        """Answer 503 for the next ``seconds``."""
        with self.lock:
            self.down_until = time.monotonic() + seconds

    def snapshot(self, at: float | None = None) -> Snapshot:
        """The receiver now, as of ``at`` (the kill: taken a moment later, so requests written before the kill
        have arrived; those answered since count as answered at the kill, on the wire)."""
        with self.lock:
            return Snapshot(
                time.monotonic() if at is None else at, set(self.in_flight), dict(self.answered_at)
            )

    def delivered(self) -> int:
        with self.lock:
            return len(self.received)

    def duplicates(self) -> dict[str, int]:
        with self.lock:
            return {m: n for m, n in self.received.items() if n > 1}


async def _answer(
    send: Any, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    head = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *(headers or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": body})
