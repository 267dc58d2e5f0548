"""Herald's outbound HTTP client: httpx's API over aiohttp's connection pool.

Every message the worker delivers is one HTTP request through one shared client (``Runtime.http``). With
httpx's own transport, httpcore's pool bookkeeping ran for every pooled connection on every request
(assigning requests, ``is_idle``, ``has_expired``, a ``getpeername`` each), which made the worker CPU-bound
at a few dozen messages a second. aiohttp keeps idle connections in per-host lists and hands one out in
constant time, so the client keeps httpx's API (the provider adapters, callbacks and monitors all speak it)
and :class:`AiohttpTransport` moves the bytes.

Written here rather than taken from ``httpx-aiohttp`` (0.2.0), whose transport is the same idea in fewer
lines but gets what Herald depends on wrong: it maps every ``aiohttp.ClientConnectionError`` (a server that
hangs up mid-answer included) to ``httpx.ConnectTimeout``, lets a whole-request timeout escape as a bare
``TimeoutError``, raises httpx errors with no request attached, and has no place for the outbound guard at
connection time nor for the environment's proxies without aiohttp's ``trust_env`` (two thread-pool hops per
request, and ``~/.netrc`` credentials sent along).

What this transport keeps from httpx's:

* The outbound guard at connection time (:class:`GuardedResolver`): the addresses a connection goes to are
  the ones checked, from one lookup, so a DNS answer that changes between the request hook's check and the
  connect (DNS rebinding) cannot reach a private address. The request hook stays: it checks address literals
  (aiohttp does not resolve those), the scheme, and every redirect hop before anything is sent.
* ``HTTP_PROXY`` / ``HTTPS_PROXY`` / ``ALL_PROXY`` / ``NO_PROXY``, read once when the client is built, as
  httpx reads them (:class:`EnvironmentProxies`).
* Timeouts (httpx's connect, read and pool figures) and httpx's exception classes (:func:`httpx_error`), so
  callers still tell a timeout from a refused connection from a broken answer.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import aiohttp
import httpx
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from herald.core.netguard import BlockedDestination

if TYPE_CHECKING:
    from herald.core.config import Settings
    from herald.core.netguard import OutboundGuard

CONNECT_TIMEOUT = 5.0
LIMITS = httpx.Limits(max_connections=200, max_keepalive_connections=50)
USER_AGENT = "herald/0.1"
# aiohttp adds these when a request lacks them (Content-Type: application/octet-stream on a POST); httpx sets
# the first three itself, so they are skipped per request only when missing (a skip list costs a copy per request).
_AUTOMATIC = ("accept", "accept-encoding", "user-agent", "content-type")
_PROXY_CACHE_ENTRIES = 10_000


def outbound_client(settings: Settings, guard: OutboundGuard) -> httpx.AsyncClient:
    """The process's shared HTTP client (``Runtime.http``): httpx's API, the guard on every request and hop."""
    return httpx.AsyncClient(
        transport=AiohttpTransport(limits=LIMITS, guard=guard),
        timeout=httpx.Timeout(settings.send_timeout_seconds, connect=CONNECT_TIMEOUT),
        headers={"user-agent": USER_AGENT},
        event_hooks={"request": [guard.check_request]},
    )


class GuardedResolver(AbstractResolver):
    """aiohttp's resolver, refusing any answer the outbound guard forbids: the connection uses what was checked.

    Proxy hosts from the environment are the operator's and pass unchecked (they are often on a private
    network); the destination behind a proxy is checked by the request hook, since only the proxy resolves it.
    """

    def __init__(self, guard: OutboundGuard, inner: AbstractResolver, *, trusted: Iterable[str] = ()) -> None:
        self._guard = guard
        self._inner = inner
        self._trusted = frozenset(host.lower().rstrip(".") for host in trusted)

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        answers = await self._inner.resolve(host, port, family)
        if host.lower().rstrip(".") not in self._trusted:
            self._guard.check_resolved(host, [answer["host"] for answer in answers])
        return answers

    async def close(self) -> None:
        await self._inner.close()


class EnvironmentProxies:
    """The proxy for each destination, from ``*_PROXY`` / ``NO_PROXY`` read once (as httpx reads them)."""

    def __init__(self, proxies: dict[str, str] | None = None) -> None:
        found = urllib.request.getproxies_environment() if proxies is None else proxies
        self._proxies = {k: Proxy.parse(v) for k, v in found.items() if k in ("http", "https", "all") and v}
        self._no_proxy = found.get("no", "")
        self._chosen: dict[tuple[str, str, int | None], Proxy | None] = {}

    @property
    def hosts(self) -> set[str]:
        """The proxies' own host names (the guard trusts them: the operator configured them)."""
        return {proxy.url.host for proxy in self._proxies.values() if proxy.url.host}

    def for_url(self, url: httpx.URL) -> Proxy | None:
        """The proxy for ``url``, or None to connect directly."""
        if not self._proxies:
            return None
        key = (url.scheme, url.host, url.port)
        if key not in self._chosen:
            if len(self._chosen) >= _PROXY_CACHE_ENTRIES:
                self._chosen.clear()
            self._chosen[key] = self._choose(url)
        return self._chosen[key]

    def _choose(self, url: httpx.URL) -> Proxy | None:
        proxy = self._proxies.get(url.scheme) or self._proxies.get("all")
        if proxy is None:
            return None
        host = f"{url.host}:{url.port}" if url.port else url.host
        # NO_PROXY as urllib, requests and aiohttp read it (names, .suffixes, host:port, *); not in typeshed
        bypass = urllib.request.proxy_bypass_environment(host, {"no": self._no_proxy})  # type: ignore[attr-defined]
        return None if bypass else proxy


@dataclass(frozen=True)
class Proxy:
    """A proxy's address and, when its URL carries credentials, the Proxy-Authorization to send it."""

    url: URL
    authorization: str | None

    @classmethod
    def parse(cls, given: str) -> Proxy:
        url = URL(given if "://" in given else f"http://{given}")
        auth = aiohttp.BasicAuth.from_url(url)
        return cls(url.with_user(None), auth.encode() if auth else None)

    @property
    def connect_headers(self) -> dict[str, str] | None:
        """Headers for the CONNECT that tunnels an https:// request (a fresh dict: aiohttp adds Host to it)."""
        return {"Proxy-Authorization": self.authorization} if self.authorization else None


class AiohttpTransport(httpx.AsyncBaseTransport):
    """An httpx transport sending through one aiohttp session, created on first use in the running loop.

    The session lives as long as the transport and is closed by ``aclose`` (``httpx.AsyncClient.aclose``):
    the pool's connections belong to one event loop, so a transport serves the loop it first ran in.
    """

    def __init__(
        self,
        *,
        limits: httpx.Limits = LIMITS,
        guard: OutboundGuard | None = None,
        proxies: EnvironmentProxies | None = None,
        resolver: Callable[[], AbstractResolver] | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._limits = limits
        self._guard = guard if guard is not None and guard.active else None
        self._proxies = proxies if proxies is not None else EnvironmentProxies()
        self._resolver = resolver or aiohttp.DefaultResolver
        self._ssl = ssl_context
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timeouts: dict[tuple[float | None, ...], aiohttp.ClientTimeout] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        session = self._session_for(asyncio.get_running_loop())
        headers = request.headers.multi_items()  # names in lower case
        names = {name for name, _ in headers}
        missing = [name for name in _AUTOMATIC if name not in names] or None
        proxy = self._proxies.for_url(request.url)
        if proxy is not None and proxy.authorization and request.url.scheme == "http":
            headers.append(
                ("Proxy-Authorization", proxy.authorization)
            )  # aiohttp sends proxy_headers on CONNECT only
        try:
            response = await session.request(
                request.method,
                URL(str(request.url), encoded=True),  # httpx has quoted it already
                headers=headers,
                skip_auto_headers=missing,
                data=_body(request),
                allow_redirects=False,  # httpx follows redirects, hook and all, when asked to
                timeout=self._timeout(request),
                proxy=proxy.url if proxy is not None else None,
                proxy_headers=proxy.connect_headers if proxy is not None else None,
                server_hostname=request.extensions.get("sni_hostname"),
            )
        except BlockedDestination as exc:  # from GuardedResolver, as the request hook raises it
            exc.request = request
            raise
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise httpx_error(exc, request) from exc
        return httpx.Response(
            status_code=response.status,
            headers=response.raw_headers,
            stream=_ResponseBody(response, request),
            request=request,
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": (response.reason or "").encode()},
        )

    async def aclose(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    def _session_for(self, loop: asyncio.AbstractEventLoop) -> aiohttp.ClientSession:
        if self._session is None:
            self._session, self._loop = self._new_session(), loop
        elif self._loop is not loop:
            raise RuntimeError("this HTTP client's connections belong to another event loop")
        return self._session

    def _new_session(self) -> aiohttp.ClientSession:
        resolver = self._resolver()
        if self._guard is not None:
            resolver = GuardedResolver(self._guard, resolver, trusted=self._proxies.hosts)
        connector = aiohttp.TCPConnector(
            limit=self._limits.max_connections or 0,
            limit_per_host=0,
            keepalive_timeout=self._limits.keepalive_expiry or 0,
            ssl=self._ssl if self._ssl is not None else httpx.create_ssl_context(),
            resolver=resolver,
        )
        return aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),  # httpx keeps the client's cookies
            auto_decompress=False,  # httpx decodes Content-Encoding
            trust_env=False,  # proxies come from EnvironmentProxies; no ~/.netrc
        )

    def _timeout(self, request: httpx.Request) -> aiohttp.ClientTimeout:
        given = request.extensions.get("timeout", {})
        key = (given.get("connect"), given.get("read"), given.get("pool"))
        timeout = self._timeouts.get(key)
        if timeout is None:
            connect, read, pool = key
            # aiohttp's ``connect`` covers waiting for a pooled connection and opening one.
            timeout = aiohttp.ClientTimeout(total=None, connect=pool, sock_connect=connect, sock_read=read)
            self._timeouts[key] = timeout
        return timeout


def _body(request: httpx.Request) -> bytes | AsyncIterator[bytes] | None:
    try:
        content = request.content
    except httpx.RequestNotRead:  # streamed: aiohttp sends it chunked unless a Content-Length is given
        request.headers.pop("transfer-encoding", None)
        return _chunks(request.stream)
    return content or None


async def _chunks(stream: httpx.SyncByteStream | httpx.AsyncByteStream) -> AsyncIterator[bytes]:
    if not isinstance(stream, httpx.AsyncByteStream):
        raise TypeError("an async HTTP client needs an async request body")
    async for chunk in stream:
        yield chunk


class _ResponseBody(httpx.AsyncByteStream):
    """The answer's body as it arrives; closing it returns the connection to the pool (or drops it if unread)."""

    def __init__(self, response: aiohttp.ClientResponse, request: httpx.Request) -> None:
        self._response = response
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise httpx_error(exc, self._request) from exc

    async def aclose(self) -> None:
        self._response.release()


# Most specific first: the first class ``exc`` is an instance of decides.
_ERRORS: tuple[tuple[type[BaseException], type[httpx.TransportError]], ...] = (
    (aiohttp.ConnectionTimeoutError, httpx.ConnectTimeout),  # opening, or waiting for a pooled connection
    (aiohttp.ServerTimeoutError, httpx.ReadTimeout),  # no byte of the answer within the read timeout
    (TimeoutError, httpx.TimeoutException),
    (aiohttp.ClientProxyConnectionError, httpx.ProxyError),
    (aiohttp.ClientHttpProxyError, httpx.ProxyError),
    (aiohttp.ClientConnectorError, httpx.ConnectError),  # DNS, refused, unreachable, TLS handshake
    (aiohttp.ServerDisconnectedError, httpx.RemoteProtocolError),  # hung up before or while answering
    (aiohttp.ClientPayloadError, httpx.RemoteProtocolError),  # a body cut short or malformed
    (aiohttp.ClientResponseError, httpx.RemoteProtocolError),  # an answer that is not HTTP
    (aiohttp.InvalidURL, httpx.UnsupportedProtocol),
    (aiohttp.ClientOSError, httpx.ReadError),  # reset while sending or receiving
    (aiohttp.ClientConnectionError, httpx.NetworkError),
)


def httpx_error(exc: BaseException, request: httpx.Request) -> httpx.TransportError:
    """The httpx exception a request's aiohttp failure stands for, with the request attached."""
    for kind, mapped in _ERRORS:
        if isinstance(exc, kind):
            return mapped(str(exc) or type(exc).__name__, request=request)
    return httpx.TransportError(str(exc) or type(exc).__name__, request=request)
