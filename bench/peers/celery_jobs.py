"""Celery 5 + Redis peer: the W1 task (one signed POST to the sink), the W2 no-op task, enqueue and endpoint.

Settings from bench/peers.py through the environment: BENCH_REDIS_URL, BENCH_KEYPREFIX (every Redis key of one
trial starts with it, so each trial gets fresh keys and its cleanup deletes only those), BENCH_SINK_URL and
BENCH_WEBHOOK_SECRET. ``task_acks_late=True`` and results ignored, as measured in issue 22.

    celery -A celery_jobs worker --pool prefork -c 2          # the workers
    python -m celery_jobs enqueue --n 20000 --prefix t1- --mode w1
    uvicorn celery_jobs:endpoint                               # single sends
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

import envelope
import httpx
from celery import Celery
from peer_common import endpoint as make_endpoint
from peer_common import enqueue_args, timed

app = Celery("bench_peers", broker=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"))
app.conf.update(
    task_acks_late=True,
    task_ignore_result=True,
    broker_transport_options={"global_keyprefix": os.environ.get("BENCH_KEYPREFIX", "bench-peers:")},
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)

_client: httpx.Client | None = None


def client() -> httpx.Client:
    """One client per worker process, made after the prefork fork."""
    global _client  # noqa: PLW0603 - a per-process singleton, like Herald's Runtime.http
    if _client is None:
        _client = httpx.Client(**envelope.client_kwargs())
    return _client


@app.task(name="bench.deliver")
def deliver(message: dict[str, Any]) -> None:
    body, headers = envelope.build(message, envelope.secret())
    envelope.check(client().post(envelope.sink_url(), content=body, headers=headers).status_code)


@app.task(name="bench.noop")
def noop(message: dict[str, Any]) -> None:
    del message


def enqueue_all(messages: list[dict[str, Any]], mode: str) -> None:
    """``apply_async`` per message: Celery has no bulk publish."""
    task = deliver if mode == "w1" else noop
    for message in messages:
        task.apply_async((message,))


async def _enqueue_one(message: dict[str, Any]) -> None:
    deliver.apply_async((message,))  # a blocking publish, as a user's handler would do it


endpoint = make_endpoint(_enqueue_one)


def main(argv: list[str] | None = None) -> None:
    args = enqueue_args(argv)
    if args.command == "setup":
        return
    messages = [envelope.message(args.prefix, i) for i in range(args.n)]
    with app.connection_for_write() as conn:  # connect before the clock starts
        conn.ensure_connection()

    async def run() -> None:
        enqueue_all(messages, args.mode)

    asyncio.run(timed(run, args.n))


if __name__ == "__main__":
    main(sys.argv[1:])
