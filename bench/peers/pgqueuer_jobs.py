"""PgQueuer peer: the W1 entrypoint (one signed POST to the sink), the W2 no-op entrypoint, enqueue, endpoint.

Settings through the environment: BENCH_PG_DSN (this trial's fresh database), BENCH_SINK_URL and
BENCH_WEBHOOK_SECRET. Workers start through ``pgqueuer.run`` in Python: ``pgq run`` of pgqueuer 1.6.0 exits at
once with typer 0.29 (``setup_fancy_logger``). Batch size 10, PgQueuer's default.

    python -m pgqueuer_jobs setup                               # install the schema
    python -m pgqueuer_jobs worker                              # one worker process
    python -m pgqueuer_jobs enqueue --n 20000 --prefix t1- --mode w1
    uvicorn pgqueuer_jobs:endpoint                              # single sends
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import envelope
import httpx
import pgqueuer
from peer_common import endpoint as make_endpoint
from peer_common import enqueue_args, timed
from pgqueuer import AsyncpgDriver, Job, PgQueuer, Queries

CHUNK = 10_000  # Queries.enqueue with lists of 10,000, as measured in issue 22


def dsn() -> str:
    return os.environ["BENCH_PG_DSN"]


@asynccontextmanager
async def factory() -> AsyncIterator[PgQueuer]:
    """What ``pgqueuer.run`` supervises: a PgQueuer with both entrypoints and one httpx client."""
    conn = await asyncpg.connect(dsn())
    http = httpx.AsyncClient(**envelope.client_kwargs())
    manager = PgQueuer(AsyncpgDriver(conn))
    secret, url = envelope.secret(), envelope.sink_url()

    @manager.entrypoint("deliver")
    async def deliver(job: Job) -> None:
        body, headers = envelope.build(json.loads(job.payload or b"{}"), secret)
        envelope.check((await http.post(url, content=body, headers=headers)).status_code)

    @manager.entrypoint("noop")
    async def noop(job: Job) -> None:
        del job

    try:
        yield manager
    finally:
        await http.aclose()
        await conn.close()


async def enqueue_all(queries: Queries, messages: list[dict[str, Any]], mode: str) -> None:
    entrypoint = "deliver" if mode == "w1" else "noop"
    for start in range(0, len(messages), CHUNK):
        chunk = messages[start : start + CHUNK]
        await queries.enqueue(
            [entrypoint] * len(chunk), [json.dumps(m).encode() for m in chunk], [0] * len(chunk)
        )


class _Endpoint:
    """The single-send endpoint's pool, opened on first use inside uvicorn's loop."""

    pool: asyncpg.Pool | None = None

    async def enqueue_one(self, message: dict[str, Any]) -> None:
        if self.pool is None:
            self.pool = await asyncpg.create_pool(dsn(), min_size=4, max_size=16)
        async with self.pool.acquire() as conn:
            await Queries(AsyncpgDriver(conn)).enqueue("deliver", json.dumps(message).encode())


endpoint = make_endpoint(_Endpoint().enqueue_one)


async def _command(argv: list[str]) -> None:
    args = enqueue_args(argv)
    conn = await asyncpg.connect(dsn())
    try:
        queries = Queries(AsyncpgDriver(conn))
        if args.command == "setup":
            await queries.install()
            return
        messages = [envelope.message(args.prefix, i) for i in range(args.n)]
        await timed(lambda: enqueue_all(queries, messages, args.mode), args.n)
    finally:
        await conn.close()


def main(argv: list[str]) -> None:
    if argv[:1] == ["worker"]:
        asyncio.run(pgqueuer.run(factory, batch_size=10))
    else:
        asyncio.run(_command(argv))


if __name__ == "__main__":
    main(sys.argv[1:])
