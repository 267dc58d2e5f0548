"""The outbound guard: no server-side request forgery through the URLs tenants give Herald.

Agent callbacks, event subscriptions, webhook channels and base URLs, HTTP monitor sources and SMTP hosts are
chosen by API callers, and Herald connects to them from inside the network it runs in. Unchecked, an API key
would be enough to make Herald call what only it can reach: the cloud metadata service at 169.254.169.254, an
admin port on localhost, a database on the private network. So in production (or with
``HERALD_OUTBOUND_GUARD=true``) a destination is refused when any address its host resolves to is not public
(loopback, link-local, private, shared, unspecified, multicast, reserved, and IPv6 forms embedding such an
IPv4 address), unless ``HERALD_OUTBOUND_ALLOW`` lists it. Development leaves it off: there the providers are
loopback fakes.

Checked when a URL is saved (a 422 naming the field) and again before every request, each redirect hop
included (a request hook on the shared HTTP client), because DNS answers change. The hook and the connection
resolve the name separately, so the shared HTTP client checks once more where it connects: its resolver
(:class:`herald.core.outbound_http.GuardedResolver`) refuses answers the guard forbids
(:meth:`OutboundGuard.check_resolved`), and the connection goes to the addresses checked, so a DNS server that
answers differently from one query to the next (DNS rebinding) is caught there. Connections Herald opens itself
(tenants' databases) do the same with :meth:`OutboundGuard.resolve_checked`: it resolves once, checks every
address and returns them, and the connection goes to one of those addresses, never to the name again.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING

import httpx

from herald.core.caching import TTLCache
from herald.core.errors import HeraldError, ValidationFailed

if TYPE_CHECKING:
    from herald.core.config import Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# (host, port) -> the host's addresses as text; the default asks the system resolver (getaddrinfo).
Resolver = Callable[[str, int], Awaitable[list[str]]]

RESOLVE_TIMEOUT = 5.0  # seconds for one lookup; the request's own timeout does not cover the guard
_RESOLVED_TTL = 30.0  # keeps a lookup per request off the send path
_SCHEMES = ("http", "https")
_SHARED = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT; not is_private, not public either
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # well-known NAT64 prefix: the last 32 bits are an IPv4 address
_PRIVATE = tuple(
    ipaddress.ip_network(net) for net in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")
)
# Not globally reachable, though ``is_global`` says so on some Python versions.
_SPECIAL = tuple(ipaddress.ip_network(net) for net in ("192.0.0.0/24", "fec0::/10"))


class BlockedDestination(HeraldError, httpx.TransportError):
    """The guard refuses a destination. Permanent: retrying cannot help until the allow-list changes.

    A :class:`httpx.TransportError` as well, so code that handles transport failures never sees an unexpected
    exception type; callers that retry transport failures catch this first.
    """


def _reaches_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one stands for: ::ffff:10.0.0.5 and 64:ff9b::a00:5 both reach 10.0.0.5."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address.ipv4_mapped


def refusal(address: IPAddress) -> str | None:  # noqa: PLR0911 - one answer per address class
    """Why ``address`` may not be called ("a private address"), or None when it is public."""
    if (embedded := _reaches_ipv4(address)) is not None:
        return refusal(embedded)
    sixtofour = address.sixtofour if isinstance(address, ipaddress.IPv6Address) else None
    if sixtofour is not None and (reason := refusal(sixtofour)):  # 2002:a00:5:: is tunnelled to 10.0.0.5
        return f"a 6to4 address embedding {reason}"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_multicast:
        return "a multicast address"
    if address in _SHARED:
        return f"in the shared address space {_SHARED}"
    if any(address in net for net in _PRIVATE):
        return "a private address"
    if address.is_reserved:
        return "a reserved address"
    if not address.is_global or any(address in net for net in _SPECIAL):
        return "a special-purpose address, not publicly routable"
    return None


class OutboundGuard:
    """Decides whether Herald may connect to a host; one per process (``Runtime.outbound``)."""

    def __init__(self, settings: Settings, *, resolver: Resolver | None = None) -> None:
        self.active = settings.outbound_guard_active
        # In production a host that does not resolve is refused when it is saved; a development setup with
        # the guard forced on may name hosts that only exist later.
        self.strict_resolution = not settings.is_development
        self._networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        self._hosts: set[str] = set()
        self._suffixes: tuple[str, ...] = ()
        for entry in settings.outbound_allow:  # validated and normalised by Settings
            try:
                self._networks.append(ipaddress.ip_network(entry))
            except ValueError:
                if entry.startswith("*."):
                    self._suffixes = (*self._suffixes, entry[1:])
                else:
                    self._hosts.add(entry)
        self._resolved: TTLCache[str, list[IPAddress]] = TTLCache(ttl=_RESOLVED_TTL, max_entries=10_000)
        self._resolver: Resolver = resolver or _system_resolve

    async def check_url(self, url: str | httpx.URL) -> None:
        """Raise BlockedDestination unless ``url`` is http(s) and its host is public or allowed.

        A host that does not resolve raises OSError (``socket.gaierror``, or TimeoutError after
        :data:`RESOLVE_TIMEOUT`).
        """
        if not self.active:
            return
        try:
            parsed = httpx.URL(url)
        except httpx.InvalidURL as exc:
            raise BlockedDestination(f"destination URL is not valid: {exc}") from None
        if parsed.scheme not in _SCHEMES:
            raise BlockedDestination(
                f"destination scheme {parsed.scheme or '(none)'!r} is not allowed: use http:// or https://"
            )
        host = parsed.raw_host.decode("ascii")  # IDNA-encoded, as the connection will use it
        if not host:
            raise BlockedDestination("destination URL has no host")
        await self.check_host(host, parsed.port or (443 if parsed.scheme == "https" else 80))

    async def check_host(self, host: str, port: int) -> None:
        """Raise BlockedDestination unless every address of ``host`` is public or allowed (SMTP and the like).

        A host that does not resolve raises OSError, as connecting to it would.
        """
        if not self.active:
            return
        name = _normalise(host)
        if name in self._hosts or name.endswith(self._suffixes):
            return
        await self._checked_addresses(name, port)

    async def resolve_checked(self, host: str, port: int) -> list[str]:
        """The addresses to connect to for ``host``, every one of them checked: connect to these, not to the name.

        One lookup serves both the check and the connection, so a DNS answer that changes in between (DNS
        rebinding) cannot reach a blocked address. Raises BlockedDestination as :meth:`check_host` does, OSError
        when the name does not resolve. With the guard off, or for an allow-listed name, the addresses are
        returned unchecked (still one lookup, still the addresses the connection uses)."""
        name = _normalise(host)
        if not self.active or name in self._hosts or name.endswith(self._suffixes):
            return [str(address) for address in await self._addresses(name, port)]
        return [str(address) for address in await self._checked_addresses(name, port)]

    def check_resolved(self, host: str, addresses: Iterable[str]) -> None:
        """Raise BlockedDestination unless every address ``host`` resolved to is public or allowed.

        For a connection that resolves the name itself (the shared HTTP client's resolver,
        :class:`herald.core.outbound_http.GuardedResolver`): the addresses it is about to connect to are the
        ones checked, so an answer that changed since the request hook's check (DNS rebinding) is caught."""
        if not self.active:
            return
        name = _normalise(host)
        if name in self._hosts or name.endswith(self._suffixes):
            return
        self._refuse_any(name, [ipaddress.ip_address(address) for address in addresses])

    async def _checked_addresses(self, name: str, port: int) -> list[IPAddress]:
        addresses = await self._addresses(name, port)
        self._refuse_any(name, addresses)
        return addresses

    def _refuse_any(self, name: str, addresses: list[IPAddress]) -> None:
        literal = _literal(name) is not None
        for address in addresses:
            reason = refusal(address)
            if reason is not None and not self._allowed(address):
                shown = name if literal else f"{name} ({address})"
                raise BlockedDestination(
                    f"destination {shown} is {reason}; allow it with HERALD_OUTBOUND_ALLOW"
                )

    async def _addresses(self, name: str, port: int) -> list[IPAddress]:
        literal = _literal(name)
        return [literal] if literal is not None else await self._resolve(name, port)

    async def check_request(self, request: httpx.Request) -> None:
        """httpx request hook: runs before each request the client sends, redirect hops included."""
        if not self.active:
            return
        try:
            await self.check_url(request.url)
        except BlockedDestination as exc:
            exc.request = request
            raise
        except TimeoutError as exc:
            raise httpx.ConnectTimeout(f"resolving {request.url.host} timed out", request=request) from exc
        except OSError as exc:  # what connecting would have raised: a transient failure, retried
            raise httpx.ConnectError(f"cannot resolve {request.url.host}: {exc}", request=request) from exc

    async def validate_url(self, url: str, *, field: str) -> None:
        """When a URL is saved: ValidationFailed naming ``field`` for a destination the guard would refuse."""
        try:
            await self.check_url(url)
        except BlockedDestination as exc:
            raise ValidationFailed(str(exc), field=field) from None
        except OSError as exc:
            self._unresolved(httpx.URL(url).host, exc, field)

    async def validate_host(self, host: str, port: int, *, field: str) -> None:
        """When a mail server is saved: ValidationFailed naming ``field`` if the guard would refuse it."""
        try:
            await self.check_host(host, port)
        except BlockedDestination as exc:
            raise ValidationFailed(str(exc), field=field) from None
        except OSError as exc:
            self._unresolved(host, exc, field)

    def _unresolved(self, host: str, exc: OSError, field: str) -> None:
        if self.strict_resolution:
            what = "the lookup timed out" if isinstance(exc, TimeoutError) else str(exc)
            raise ValidationFailed(f"cannot resolve {host}: {what}", field=field) from None

    def _allowed(self, address: IPAddress) -> bool:
        candidates = [address, _reaches_ipv4(address)]
        return any(c is not None and c in net for c in candidates for net in self._networks)

    async def _resolve(self, host: str, port: int) -> list[IPAddress]:
        found, cached = self._resolved.get(host)
        if found and cached is not None:
            return cached
        async with asyncio.timeout(RESOLVE_TIMEOUT):
            answers = await self._resolver(host, port)
        addresses = [ipaddress.ip_address(answer) for answer in answers]
        if not addresses:
            raise socket.gaierror(f"{host} has no addresses")
        self._resolved.put(host, addresses)
        return addresses


def _normalise(host: str) -> str:
    return host.strip().strip("[]").lower().rstrip(".")


def _literal(name: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(name)
    except ValueError:
        return None


async def _system_resolve(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]
