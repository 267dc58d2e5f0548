"""The loopback receiver every system's webhook posts go to: answers 200 and counts distinct message ids.

Run by bench/peers.py in its own process (``python -m sink --port P``, secret in BENCH_WEBHOOK_SECRET).
Every POST's ``webhook-signature`` is checked against its body, so a peer whose job built a different request
shows up as ``bad_signatures``. ``GET /stats`` answers the counts as JSON: ``total`` posts, ``distinct`` ids,
``duplicates`` and the monotonic times of the first and last post.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hmac
import json
import os
import time
from typing import Any

from envelope import signature

OK = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-type: application/json\r\n\r\n{}"


class Counts:
    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.ids: set[str] = set()
        self.total = 0
        self.bad_signatures = 0
        self.first: float | None = None
        self.last: float | None = None

    def record(self, headers: dict[str, str], body: bytes) -> None:
        msg_id = headers.get("webhook-id", "")
        try:
            expected = signature(self.secret, msg_id, int(headers.get("webhook-timestamp", "0")), body)
        except ValueError:
            expected = ""
        if not hmac.compare_digest(expected, headers.get("webhook-signature", "")):
            self.bad_signatures += 1
        now = time.monotonic()
        self.first = self.first if self.first is not None else now
        self.last = now
        self.total += 1
        self.ids.add(msg_id)

    def stats(self) -> bytes:
        body = json.dumps(
            {
                "total": self.total,
                "distinct": len(self.ids),
                "duplicates": self.total - len(self.ids),
                "bad_signatures": self.bad_signatures,
                "first": self.first,
                "last": self.last,
                "now": time.monotonic(),
            }
        ).encode()
        return b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (
            len(body),
            body,
        )


async def serve_connection(
    counts: Counts, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """HTTP/1.1 keep-alive, content-length bodies only (what httpx sends)."""
    with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError, ValueError):
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path = lines[0].split(" ")[:2]
            headers: dict[str, str] = {}
            for line in lines[1:]:
                name, sep, value = line.partition(":")
                if sep:
                    headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            if method == "GET" and path == "/stats":
                writer.write(counts.stats())
            else:
                counts.record(headers, body)
                writer.write(OK)
            await writer.drain()
    writer.close()


async def main(port: int) -> None:
    counts = Counts(os.environ["BENCH_WEBHOOK_SECRET"])

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await serve_connection(counts, reader, writer)

    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


def run(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="bench sink")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    runner: Any = asyncio.run
    with contextlib.suppress(ImportError):
        import uvloop

        runner = uvloop.run
    with contextlib.suppress(KeyboardInterrupt):
        runner(main(args.port))


if __name__ == "__main__":
    run()
