"""Procrastinate peer: the W1 task (one signed POST to the sink), the W2 no-op task, enqueue and endpoint.

Settings through the environment: BENCH_PG_DSN (this trial's fresh database), BENCH_SINK_URL and
BENCH_WEBHOOK_SECRET. Workers: ``procrastinate --app procrastinate_jobs.app --log-level warning worker
--concurrency 10`` (at INFO it logs every job, which costs it about 6%).

    python -m procrastinate_jobs setup                          # apply the schema
    python -m procrastinate_jobs enqueue --n 20000 --prefix t1- --mode w1
    uvicorn procrastinate_jobs:endpoint                         # single sends
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

import envelope
import httpx
import procrastinate
from peer_common import endpoint as make_endpoint
from peer_common import enqueue_args, timed

CHUNK = 10_000  # batch_defer_async with 10,000 per call, as measured in issue 22

app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=os.environ.get("BENCH_PG_DSN", "")))

_client: httpx.AsyncClient | None = None


def client() -> httpx.AsyncClient:
    """One client per worker process (made inside the worker's loop)."""
    global _client  # noqa: PLW0603 - a per-process singleton, like Herald's Runtime.http
    if _client is None:
        _client = httpx.AsyncClient(**envelope.client_kwargs())
    return _client


@app.task(name="bench.deliver")
async def deliver(message: dict[str, Any]) -> None:
    body, headers = envelope.build(message, envelope.secret())
    envelope.check((await client().post(envelope.sink_url(), content=body, headers=headers)).status_code)


@app.task(name="bench.noop")
async def noop(message: dict[str, Any]) -> None:
    del message


async def enqueue_all(messages: list[dict[str, Any]], mode: str) -> None:
    task = deliver if mode == "w1" else noop
    for start in range(0, len(messages), CHUNK):
        await task.batch_defer_async(*({"message": m} for m in messages[start : start + CHUNK]))


class _Endpoint:
    """The single-send endpoint opens the app's pool on first use, inside uvicorn's loop."""

    opened = False

    async def enqueue_one(self, message: dict[str, Any]) -> None:
        if not self.opened:
            await app.open_async()
            self.opened = True
        await deliver.defer_async(message=message)


endpoint = make_endpoint(_Endpoint().enqueue_one)


async def _command(argv: list[str]) -> None:
    args = enqueue_args(argv)
    async with app.open_async():
        if args.command == "setup":
            await app.schema_manager.apply_schema_async()
            return
        messages = [envelope.message(args.prefix, i) for i in range(args.n)]
        await timed(lambda: enqueue_all(messages, args.mode), args.n)


def main(argv: list[str]) -> None:
    asyncio.run(_command(argv))


if __name__ == "__main__":
    main(sys.argv[1:])
