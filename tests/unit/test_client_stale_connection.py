"""A kept-alive connection the server closes as a request goes out: the SDK sends a replayable request again
(idempotent method or an Idempotency-Key), and never a plain POST, which the server may have acted on."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from herald.client import APIConnectionError, AsyncHerald, Herald
from herald.client._calls import Call

_BODY = b'{"status": "healthy", "database": "ok", "workers": 1}'
_ANSWER = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (
    len(_BODY),
    _BODY,
)


class DroppingServer:
    """Answers the first request on a connection, then reads the next one and closes without answering (the
    idle-timeout race, made certain); counts the requests it read."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.requests = 0
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._connection, args=(conn,), daemon=True).start()

    def _connection(self, conn: socket.socket) -> None:
        with conn:
            for answered in (True, False):
                if not self._read_request(conn):
                    return
                self.requests += 1
                if answered:
                    conn.sendall(_ANSWER)

    @staticmethod
    def _read_request(conn: socket.socket) -> bool:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return False
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = next(
            (
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length")
            ),
            0,
        )
        while len(body) < length:
            body += conn.recv(65536)
        return True

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def server() -> Iterator[DroppingServer]:
    found = DroppingServer()
    yield found
    found.close()


def test_a_get_is_sent_again_on_a_fresh_connection(server: DroppingServer) -> None:
    with Herald(server.url, api_key="hk_test") as herald:
        herald.health()
        herald.health()  # the server drops this one on the kept-alive connection
    assert server.requests == 3


def test_a_post_with_an_idempotency_key_is_sent_again(server: DroppingServer) -> None:
    with Herald(server.url, api_key="hk_test") as herald:
        herald.health()
        herald._request(_post({"Idempotency-Key": "k1"}))
    assert server.requests == 3


def test_a_plain_post_is_not_sent_twice(server: DroppingServer) -> None:
    with Herald(server.url, api_key="hk_test") as herald:
        herald.health()
        with pytest.raises(APIConnectionError, match="RemoteProtocolError"):
            herald._request(_post(None))
    assert server.requests == 2


def test_the_async_client_does_the_same(server: DroppingServer) -> None:
    async def go() -> None:
        async with AsyncHerald(server.url, api_key="hk_test") as herald:
            await herald.health()
            await herald.health()
            with pytest.raises(APIConnectionError):
                await herald._request(_post(None))

    asyncio.run(go())
    # health answered; health dropped and sent again on a new connection; the plain POST dropped, not again
    assert server.requests == 4


def _post(headers: dict[str, str] | None) -> Call[Any]:
    return Call("POST", "/api/v1/messages", json={"content": "hi"}, headers=headers)
