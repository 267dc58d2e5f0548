"""What the three peers' modules share: the enqueue command line and the single-send endpoint's ASGI plumbing."""

from __future__ import annotations

import argparse
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

Enqueue = Callable[[list[dict[str, Any]], str], Awaitable[None]]


def enqueue_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="enqueue a bench backlog")
    parser.add_argument("command", choices=["enqueue", "setup"])
    parser.add_argument("--n", type=int, default=0)
    parser.add_argument("--prefix", default="m")
    parser.add_argument("--mode", choices=["w1", "w2"], default="w1")
    return parser.parse_args(argv)


def report(n: int, seconds: float) -> None:
    """The one JSON line bench/peers.py reads from an enqueue run."""
    print(json.dumps({"messages": n, "seconds": seconds, "per_second": n / seconds if seconds else None}))


async def timed(call: Callable[[], Awaitable[None]], n: int) -> None:
    started = time.perf_counter()
    await call()
    report(n, time.perf_counter() - started)


async def _read_body(receive: Callable[[], Awaitable[dict[str, Any]]]) -> bytes:
    chunks = []
    while True:
        event = await receive()
        chunks.append(event.get("body", b""))
        if not event.get("more_body"):
            return b"".join(chunks)


async def _answer(
    send: Callable[[dict[str, Any]], Awaitable[None]], status: int, body: dict[str, Any]
) -> None:
    raw = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": raw})


def endpoint(enqueue_one: Callable[[dict[str, Any]], Awaitable[None]]) -> Callable[..., Awaitable[None]]:
    """A minimal ASGI app: ``POST /send`` validates four fields and enqueues one W1 job (201 with its id); the
    floor a queue user would build in front of a queue, not Herald's API."""
    from envelope import valid

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] != "http":
            return
        if scope["method"] == "GET":
            await _answer(send, 200, {"status": "ok"})
            return
        try:
            payload = json.loads(await _read_body(receive))
        except ValueError:
            payload = None
        fields = valid(payload)
        if fields is None:
            await _answer(send, 422, {"detail": "agent_id, platform, recipient_id and content are required"})
            return
        message = {"id": f"s{uuid.uuid4().hex}", **fields}
        await enqueue_one(message)
        await _answer(send, 201, {"id": message["id"], "status": "queued"})

    return app
