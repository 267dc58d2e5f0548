"""The shared HTTP client over aiohttp (herald.core.outbound_http): requests and answers go through unchanged,
the outbound guard also refuses what a connection resolves to (DNS rebinding), proxies from the environment
apply (NO_PROXY too), aiohttp's failures arrive as httpx's exceptions with the request attached, and closing
the client closes the aiohttp session."""

from __future__ import annotations

import asyncio
import gzip
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from herald.core.config import Settings, load_settings
from herald.core.netguard import BlockedDestination, OutboundGuard
from herald.core.outbound_http import AiohttpTransport, EnvironmentProxies, outbound_client
from herald.runtime import Runtime
from tests.conftest import SECRET

PUBLIC = "93.184.215.14"


def settings(tmp_path: Path, env: str = "production", **overrides: Any) -> Settings:
    return load_settings(env=env, secret_key=SECRET, data_dir=tmp_path, **overrides)


@dataclass
class Seen:
    """One request as the server read it off the socket."""

    head: list[str]
    body: bytes

    @property
    def target(self) -> str:
        return self.head[0].split(" ")[1]

    def header(self, name: str) -> list[str]:
        return [
            line.split(":", 1)[1].strip() for line in self.head[1:] if line.lower().startswith(f"{name}:")
        ]


Answer = Callable[[Seen], Awaitable[bytes | None]]  # raw bytes to write, or None to hang up


@dataclass
class Server:
    """A loopback HTTP/1.1 server that records each request and answers it with raw bytes."""

    answer: Answer
    seen: list[Seen] = field(default_factory=list)
    port: int = 0

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while head := (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")[:-2]:
                request = Seen(head, b"")
                length = request.header("content-length")
                request.body = await reader.readexactly(int(length[0])) if length else b""
                self.seen.append(request)
                raw = await self.answer(request)
                if raw is None:
                    break
                writer.write(raw)
                await writer.drain()
                if b"\r\nconnection: close\r\n" in raw.lower():
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Answer], Awaitable[Server]]]:
    servers: list[asyncio.Server] = []

    async def start(answer: Answer) -> Server:
        server = Server(answer)
        listening = await asyncio.start_server(server._serve, "127.0.0.1", 0)
        server.port = listening.sockets[0].getsockname()[1]
        servers.append(listening)
        return server

    yield start
    for listening in servers:
        listening.close()
        await listening.wait_closed()


def ok(body: bytes = b"hello", *extra: str) -> Answer:
    async def answer(_: Seen) -> bytes:
        headers = "".join(f"{h}\r\n" for h in extra)
        return f"HTTP/1.1 200 OK\r\ncontent-length: {len(body)}\r\n{headers}\r\n".encode() + body

    return answer


class RebindingDNS:
    """One DNS server behind both the guard's lookup and the connection's: each query pops the next answer."""

    def __init__(self, **answers: list[str]) -> None:
        self.answers = {name.replace("_", "."): list(seq) for name, seq in answers.items()}
        self.queries: list[str] = []

    async def __call__(self, host: str, port: int) -> list[str]:  # the guard's Resolver
        self.queries.append(host)
        return [self.answers[host].pop(0)]

    def resolver(self) -> AbstractResolver:  # the connection's (aiohttp's) resolver
        dns = self

        class Resolver(AbstractResolver):
            async def resolve(
                self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
            ) -> list[ResolveResult]:
                address = (await dns(host, port))[0]
                return [ResolveResult(hostname=host, host=address, port=port, family=socket.AF_INET,
                                      proto=0, flags=socket.AI_NUMERICHOST)]  # fmt: skip

            async def close(self) -> None:
                return None

        return Resolver()


def guarded_client(guard: OutboundGuard, transport: AiohttpTransport) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=transport, event_hooks={"request": [guard.check_request]})


# --------------------------------------------------------------------------- the runtime's client


async def test_the_runtime_client_is_httpx_over_aiohttp_and_sends_what_httpx_built(
    tmp_path: Path, serve: Callable[[Answer], Awaitable[Server]]
) -> None:
    server = await serve(ok(gzip.compress(b'{"ok": true}'), "content-encoding: gzip", "x-extra: 1"))
    rt = Runtime(settings(tmp_path, "development"), engine=None)
    try:
        assert isinstance(rt.http, httpx.AsyncClient)
        assert isinstance(rt.http._transport, AiohttpTransport)
        url = f"http://127.0.0.1:{server.port}/hook?a=b%20c"
        first = await rt.http.post(url, content=b"signed body", headers={"x-signature": "abc"})
        second = await rt.http.get(url)
    finally:
        await rt.close()
    assert (first.status_code, first.reason_phrase, first.json()) == (200, "OK", {"ok": True})
    assert first.headers["x-extra"] == "1"
    assert first.request.url == url
    sent = server.seen[0]
    assert sent.head[0] == "POST /hook?a=b%20c HTTP/1.1"
    assert sent.body == b"signed body"
    assert sent.header("x-signature") == ["abc"]
    assert sent.header("user-agent") == ["herald/0.1"]
    names = {line.split(":", 1)[0].lower() for line in sent.head[1:]}
    assert names == {"host", "accept", "accept-encoding", "connection", "user-agent", "x-signature",
                     "content-length"}  # fmt: skip
    assert sent.header("user-agent") == ["herald/0.1"]  # aiohttp adds none of its own (no Content-Type)
    assert second.status_code == 200
    assert len(server.seen) == 2


async def test_a_streamed_request_body_is_sent_whole(
    tmp_path: Path, serve: Callable[[Answer], Awaitable[Server]]
) -> None:
    server = await serve(ok())

    async def parts() -> AsyncIterator[bytes]:
        for part in (b"one ", b"two"):
            yield part

    async with outbound_client(settings(tmp_path, "development"), OutboundGuard(
        settings(tmp_path, "development")
    )) as http:  # fmt: skip
        response = await http.post(f"http://127.0.0.1:{server.port}/", content=parts(),
                                   headers={"content-length": "7"})  # fmt: skip
    assert response.status_code == 200
    assert server.seen[0].body == b"one two"


# --------------------------------------------------------------------------- the guard where it connects


async def test_a_name_rebound_to_loopback_after_the_check_is_refused_when_connecting(
    tmp_path: Path, serve: Callable[[Answer], Awaitable[Server]]
) -> None:
    """The request hook's lookup says public, the connection's says loopback: nothing reaches the server."""
    server = await serve(ok(b"admin console"))
    dns = RebindingDNS(rebind_example=[PUBLIC, "127.0.0.1"])
    guard = OutboundGuard(settings(tmp_path), resolver=dns)
    async with guarded_client(guard, AiohttpTransport(guard=guard, resolver=dns.resolver)) as http:
        with pytest.raises(
            BlockedDestination, match=r"rebind\.example \(127\.0\.0\.1\) is a loopback"
        ) as caught:
            await http.get(f"http://rebind.example:{server.port}/admin")
    assert dns.queries == ["rebind.example", "rebind.example"]  # the hook's, then the connection's
    assert caught.value.request.url.host == "rebind.example"
    assert server.seen == []


async def test_names_the_guard_allows_connect(
    tmp_path: Path, serve: Callable[[Answer], Awaitable[Server]]
) -> None:
    server = await serve(ok())
    dns = RebindingDNS(inside_example=["127.0.0.1", "127.0.0.1"])
    guard = OutboundGuard(settings(tmp_path, outbound_allow="inside.example"), resolver=dns)
    async with guarded_client(guard, AiohttpTransport(guard=guard, resolver=dns.resolver)) as http:
        assert (await http.get(f"http://inside.example:{server.port}/")).status_code == 200
    off = OutboundGuard(settings(tmp_path, "development"))
    dns = RebindingDNS(anything_example=["127.0.0.1"])
    async with guarded_client(off, AiohttpTransport(guard=off, resolver=dns.resolver)) as http:
        assert (await http.get(f"http://anything.example:{server.port}/")).status_code == 200


# --------------------------------------------------------------------------- proxies from the environment


def proxy_answer(seen_hosts: list[str]) -> Answer:
    async def answer(request: Seen) -> bytes:
        seen_hosts.append(request.header("host")[0])
        return b"HTTP/1.1 200 OK\r\ncontent-length: 7\r\n\r\nproxied"

    return answer


async def test_http_proxy_from_the_environment_carries_requests_except_no_proxy(
    tmp_path: Path, serve: Callable[[Answer], Awaitable[Server]], monkeypatch: pytest.MonkeyPatch
) -> None:
    hosts: list[str] = []
    proxy = await serve(proxy_answer(hosts))
    direct = await serve(ok(b"direct"))
    monkeypatch.setenv("HTTP_PROXY", f"http://user:pw@localhost:{proxy.port}")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,.internal.example")
    rt = Runtime(settings(tmp_path, "development"), engine=None)
    try:
        via_proxy = await rt.http.get("http://upstream.example/path?q=1")
        straight = await rt.http.get(f"http://127.0.0.1:{direct.port}/")
    finally:
        await rt.close()
    assert via_proxy.text == "proxied"
    assert proxy.seen[0].target == "http://upstream.example/path?q=1"
    assert proxy.seen[0].header("proxy-authorization") == ["Basic dXNlcjpwdw=="]
    assert hosts == ["upstream.example"]
    assert straight.text == "direct"
    assert [s.target for s in direct.seen] == ["/"]


async def test_the_guard_trusts_the_operators_proxy_and_checks_the_destination(
    tmp_path: Path, serve: Callable[[Answer], Awaitable[Server]]
) -> None:
    """The proxy on loopback is configuration, not a tenant's destination; the destination is still checked."""
    hosts: list[str] = []
    proxy = await serve(proxy_answer(hosts))
    guard = OutboundGuard(settings(tmp_path))
    proxies = EnvironmentProxies({"http": f"localhost:{proxy.port}"})
    async with guarded_client(guard, AiohttpTransport(guard=guard, proxies=proxies)) as http:
        assert (await http.get(f"http://{PUBLIC}/status")).text == "proxied"
        with pytest.raises(BlockedDestination, match="10.0.0.1 is a private address"):
            await http.get("http://10.0.0.1/")
    assert hosts == [PUBLIC]


def test_no_proxy_and_all_proxy_choose_per_destination() -> None:
    proxies = EnvironmentProxies({"all": "http://proxy.corp:3128", "https": "http://tls.corp:3128",
                                  "no": "localhost,.svc.cluster,api.example:8443"})  # fmt: skip
    chosen = {url: proxies.for_url(httpx.URL(url)) for url in (
        "http://a.example/", "https://a.example/", "http://x.svc.cluster/", "http://localhost:9000/",
        "https://api.example:8443/", "https://api.example/",
    )}  # fmt: skip
    assert {url: str(p.url) if p else None for url, p in chosen.items()} == {
        "http://a.example/": "http://proxy.corp:3128",
        "https://a.example/": "http://tls.corp:3128",
        "http://x.svc.cluster/": None,
        "http://localhost:9000/": None,
        "https://api.example:8443/": None,
        "https://api.example/": "http://tls.corp:3128",
    }
    assert EnvironmentProxies({}).for_url(httpx.URL("http://a.example/")) is None
    assert (
        EnvironmentProxies({"http": "http://p:1", "no": "*"}).for_url(httpx.URL("http://a.example/")) is None
    )


# --------------------------------------------------------------------------- failures as httpx's exceptions


async def test_a_refused_connection_is_a_connect_error(tmp_path: Path) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    async with httpx.AsyncClient(transport=AiohttpTransport()) as http:
        with pytest.raises(httpx.ConnectError) as caught:
            await http.get(f"http://127.0.0.1:{port}/")
    assert caught.value.request.url.port == port


async def test_a_slow_answer_is_a_read_timeout_and_a_hang_up_a_protocol_error(
    serve: Callable[[Answer], Awaitable[Server]],
) -> None:
    async def slow(_: Seen) -> bytes:
        await asyncio.sleep(1)
        return b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"

    async def hang_up(_: Seen) -> None:
        return None

    async def cut_short(_: Seen) -> bytes:
        return b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\nconnection: close\r\n\r\npartial"

    slow_server, gone, short = await serve(slow), await serve(hang_up), await serve(cut_short)
    async with httpx.AsyncClient(transport=AiohttpTransport(), timeout=httpx.Timeout(0.2)) as http:
        with pytest.raises(httpx.ReadTimeout) as timed_out:
            await http.get(f"http://127.0.0.1:{slow_server.port}/")
        with pytest.raises(httpx.RemoteProtocolError):
            await http.post(f"http://127.0.0.1:{gone.port}/", content=b"x")
        with pytest.raises(httpx.RemoteProtocolError) as partial:
            await http.get(f"http://127.0.0.1:{short.port}/")
    assert timed_out.value.request.url.port == slow_server.port
    assert partial.value.request.url.port == short.port


async def test_closing_the_client_closes_the_aiohttp_session(
    tmp_path: Path, serve: Callable[[Answer], Awaitable[Server]]
) -> None:
    server = await serve(ok())
    transport = AiohttpTransport()
    async with httpx.AsyncClient(transport=transport) as http:
        await http.get(f"http://127.0.0.1:{server.port}/")
        session = transport._session
        assert session is not None
        assert not session.closed
    assert session.closed
