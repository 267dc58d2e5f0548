"""An IMAP session as the mailbox follower needs it, over ``aioimaplib``: connect (TLS, STARTTLS or plain) to an
address the outbound guard checked, authenticate (LOGIN or XOAUTH2), select a folder, and then the few commands
a follower uses, each over many UIDs at once (``UID SEARCH``, ``UID FETCH BODY.PEEK[]``, ``UID STORE``, ``UID MOVE``)
and IDLE.

``aioimaplib`` is a well-kept asyncio client with IDLE; three gaps are filled here rather than worked around by
callers: it has no STARTTLS (the upgrade is ``loop.start_tls`` on its transport), it connects to a name (the guard
wants the checked address, with the name kept for the certificate), and a refused ``AUTHENTICATE XOAUTH2``
answers with a challenge the client must acknowledge with an empty line before the server says NO (without it
the command hangs until the timeout). A lost connection also ends a wait on IDLE at once.

Every failure is an :class:`ImapError` naming the mailbox setting at fault (``host``, ``security``, ``password``,
``oauth2_token``, ``folder``, ``move_to``) with a short reason that never carries a secret.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import re
import ssl
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import aioimaplib

from herald.core.errors import HeraldError
from herald.core.netguard import BlockedDestination, OutboundGuard

IDLE_RESTART_SECONDS = 25 * 60  # servers may drop an IDLE after 30 minutes (RFC 2177): re-issue it before
FETCH_BATCH = 200  # UIDs per FETCH: one round trip for many messages, and a bounded response
KEYWORD = "$Herald"  # marks what Herald took, beside \Seen

_LOST = [b"connection lost"]


class ImapError(HeraldError):
    """The server could not be used; ``field`` names the setting at fault, ``reason`` says why in a few words."""

    def __init__(self, reason: str, *, field: str = "host") -> None:
        super().__init__(reason)
        self.reason = reason
        self.field = field


@dataclass(frozen=True, slots=True)
class Server:
    """Where and how to log in. ``secret`` is the password, or the OAuth2 bearer when ``auth`` is oauth2."""

    host: str
    port: int
    security: str  # tls | starttls | none
    username: str
    auth: str  # password | oauth2
    secret: str
    ca_cert: str | None = None

    def __repr__(self) -> str:  # never the secret
        return f"Server({self.username}@{self.host}:{self.port}, {self.security}, {self.auth})"


def xoauth2_string(user: str, token: str) -> str:
    """The SASL XOAUTH2 initial response (Google's and Microsoft's form): base64 of
    ``user=<user>^Aauth=Bearer <token>^A^A``."""
    return base64.b64encode(f"user={user}\x01auth=Bearer {token}\x01\x01".encode()).decode("ascii")


def uid_set(uids: Iterable[int]) -> str:
    """``1:3,7,9:10`` for 1, 2, 3, 7, 9, 10: short commands for long runs of UIDs."""
    ordered = sorted(set(uids))
    parts: list[str] = []
    start = prev = ordered[0]
    for uid in ordered[1:]:
        if uid == prev + 1:
            prev = uid
            continue
        parts.append(f"{start}:{prev}" if prev != start else str(start))
        start = prev = uid
    parts.append(f"{start}:{prev}" if prev != start else str(start))
    return ",".join(parts)


def quote(name: str) -> str:
    """A folder name as an IMAP quoted string."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


class _Protocol(aioimaplib.IMAP4ClientProtocol):  # type: ignore[misc]  # aioimaplib is untyped
    def _continuation(self, line: bytes) -> None:
        pending = self.pending_sync_command
        if pending is not None and pending.name == "AUTHENTICATE":
            # A challenge after the initial response is the server's error report (XOAUTH2): acknowledge it with
            # an empty line, and the server ends the command with NO.
            assert self.transport is not None
            self.transport.write(b"\r\n")
            return
        super()._continuation(line)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self.idle_queue.put_nowait(_LOST)  # wakes a follower waiting on IDLE


class _Client(aioimaplib.IMAP4):  # type: ignore[misc]  # aioimaplib is untyped
    """aioimaplib's client, connecting to a checked address and verifying the certificate for the host name."""

    def __init__(self, address: str, port: int, *, tls: ssl.SSLContext | None, hostname: str, timeout: float):
        self._hostname = hostname
        self._tls = tls
        super().__init__(host=address, port=port, timeout=timeout)

    def create_client(
        self,
        host: str,
        port: int,
        loop: asyncio.AbstractEventLoop | None,
        conn_lost_cb: Any = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        running = asyncio.get_running_loop()
        self.protocol = _Protocol(running, conn_lost_cb)
        protocol = self.protocol
        extra: dict[str, Any] = {"ssl": self._tls, "server_hostname": self._hostname} if self._tls else {}
        self._client_task = running.create_task(
            running.create_connection(lambda: protocol, host, port, **extra)
        )


def tls_context(ca_cert: str | None) -> ssl.SSLContext:
    """The system's trusted roots, or only ``ca_cert`` (PEM) for a server with its own certificate authority."""
    try:
        return ssl.create_default_context(cadata=ca_cert) if ca_cert else ssl.create_default_context()
    except (ssl.SSLError, ValueError):
        raise ImapError("ca_cert is not a PEM certificate", field="ca_cert") from None


class Session:
    """One logged-in connection. Use :func:`open_session`; close with :meth:`close`."""

    def __init__(self, client: _Client, server: Server) -> None:
        self._client = client
        self.server = server
        self.uidvalidity = 0
        self.uidnext = 0

    @property
    def capabilities(self) -> set[str]:
        return {c.upper() for c in self._client.protocol.capabilities}

    @property
    def can_idle(self) -> bool:
        return "IDLE" in self.capabilities

    # -- folders --------------------------------------------------------------------------------------------

    async def select(self, folder: str) -> None:
        """SELECT ``folder``; reads its UIDVALIDITY and UIDNEXT."""
        response = await self._client.select(quote(folder))
        if response.result != "OK":
            raise ImapError(f"cannot open folder {folder!r}: {_said(response)}", field="folder")
        text = b" ".join(line for line in response.lines if isinstance(line, bytes)).decode(errors="replace")
        validity = re.search(r"UIDVALIDITY (\d+)", text)
        following = re.search(r"UIDNEXT (\d+)", text)
        if validity is None:
            raise ImapError(f"folder {folder!r} has no UIDVALIDITY", field="folder")
        self.uidvalidity = int(validity.group(1))
        self.uidnext = int(following.group(1)) if following else 0

    async def folder_exists(self, folder: str) -> bool:
        response = await self._client.status(quote(folder), "(UIDVALIDITY)")
        return bool(response.result == "OK")

    # -- messages -------------------------------------------------------------------------------------------

    async def search(self, *criteria: str) -> list[int]:
        """UIDs matching ``criteria`` (``UID 5:*``, ``UNSEEN``...), ascending."""
        response = await self._client.uid_search(*criteria, charset=None)
        _ok(response, "UID SEARCH")
        found: set[int] = set()
        for line in response.lines[:-1]:  # aioimaplib drops the "SEARCH" word; the last line is the OK text
            if isinstance(line, bytes):
                found.update(int(n) for n in line.split() if n.isdigit())
        return sorted(found)

    async def fetch_bodies(self, uids: Sequence[int]) -> dict[int, bytes]:
        """UID -> the whole message (RFC 5322 bytes), without setting \\Seen (BODY.PEEK)."""
        return await self._fetch(uids, "BODY.PEEK[]")

    async def fetch_message_ids(self, uids: Sequence[int]) -> dict[int, str | None]:
        """UID -> its Message-ID header (None when it has none)."""
        headers = await self._fetch(uids, "BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]")
        found: dict[int, str | None] = {}
        for uid, raw in headers.items():
            match = re.search(rb"(?im)^message-id:\s*(.+?)\s*$", raw)
            found[uid] = match.group(1).decode(errors="replace") if match else None
        return found

    async def _fetch(self, uids: Sequence[int], part: str) -> dict[int, bytes]:
        found: dict[int, bytes] = {}
        for start in range(0, len(uids), FETCH_BATCH):
            chunk = uids[start : start + FETCH_BATCH]
            response = await self._client.uid("fetch", uid_set(chunk), f"(UID {part})")
            _ok(response, "UID FETCH")
            found.update(_literals_by_uid(response.lines))
        return found

    async def mark(self, uids: Sequence[int]) -> None:
        """\\Seen and the $Herald keyword on ``uids``."""
        if uids:
            response = await self._client.uid("store", uid_set(uids), "+FLAGS.SILENT", f"(\\Seen {KEYWORD})")
            _ok(response, "UID STORE")

    async def move(self, uids: Sequence[int], folder: str) -> None:
        """Move ``uids`` to ``folder``: MOVE when offered, else COPY, \\Deleted and EXPUNGE."""
        if not uids:
            return
        which = uid_set(uids)
        if "MOVE" in self.capabilities:
            _ok(await self._client.uid("move", which, quote(folder)), "UID MOVE")
            return
        copied = await self._client.uid("copy", which, quote(folder))
        if copied.result != "OK":
            raise ImapError(f"cannot copy to {folder!r}: {_said(copied)}", field="move_to")
        _ok(await self._client.uid("store", which, "+FLAGS.SILENT", "(\\Deleted)"), "UID STORE")
        if "UIDPLUS" in self.capabilities:
            _ok(await self._client.uid("expunge", which), "UID EXPUNGE")
        else:
            _ok(await self._client.expunge(), "EXPUNGE")

    async def noop(self) -> None:
        _ok(await self._client.noop(), "NOOP")

    # -- IDLE -----------------------------------------------------------------------------------------------

    async def idle(self, seconds: float) -> bool:
        """IDLE for up to ``seconds``; True as soon as the server reports new mail (EXISTS), False when the time
        is up. Raises ImapError when the connection is lost meanwhile."""
        idle = await self._client.idle_start(timeout=max(seconds, 0.01))
        arrived = False
        try:
            while True:
                try:
                    pushed = await self._client.wait_server_push(timeout=seconds + 5)
                except TimeoutError:
                    break
                if pushed is _LOST or pushed == _LOST:
                    raise ImapError("connection lost while idle")
                if pushed == aioimaplib.STOP_WAIT_SERVER_PUSH:
                    break
                if any(isinstance(line, bytes) and line.endswith(b"EXISTS") for line in pushed):
                    arrived = True
                    break
        finally:
            if self._client.has_pending_idle():
                self._client.idle_done()
                with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                    await asyncio.wait_for(idle, self._client.timeout)
        return arrived

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            if self._client.get_state() not in ("LOGOUT", "STARTED"):
                await asyncio.wait_for(self._client.logout(), 3)
        transport = self._client.protocol.transport
        if transport is not None:
            transport.close()


async def open_session(
    server: Server,
    guard: OutboundGuard,
    *,
    command_timeout: float = 15.0,
    folder: str | None = None,
) -> Session:
    """Connect, upgrade, authenticate and (when ``folder`` is given) select; raises ImapError."""
    try:
        addresses = await guard.resolve_checked(server.host, server.port)
    except BlockedDestination as exc:
        raise ImapError(str(exc)) from None
    except OSError as exc:
        raise ImapError(f"cannot resolve {server.host}: {exc.strerror or exc}") from None
    client = await _connect(server, addresses, command_timeout)
    session = Session(client, server)
    try:
        if server.security == "starttls":
            await _starttls(client, server)
        await _authenticate(client, server)
        await client.protocol.capability()  # after login: IDLE, MOVE, UIDPLUS may only be announced now
        if folder is not None:
            await session.select(folder)
    except BaseException:
        await session.close()
        raise
    return session


async def _connect(server: Server, addresses: list[str], command_timeout: float) -> _Client:
    tls = tls_context(server.ca_cert) if server.security == "tls" else None
    reason = "no address"
    for address in addresses:
        client = _Client(address, server.port, tls=tls, hostname=server.host, timeout=command_timeout)
        try:
            await client.wait_hello_from_server()
        except ssl.SSLCertVerificationError as exc:
            _drop(client)
            raise ImapError(f"TLS certificate refused: {exc.verify_message}", field="security") from None
        except ssl.SSLError as exc:
            _drop(client)
            raise ImapError(f"TLS failed: {exc.reason or exc}", field="security") from None
        except TimeoutError:
            _drop(client)
            reason = "timed out"
            continue
        except (OSError, aioimaplib.AioImapException) as exc:
            _drop(client)
            reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
            continue
        return client
    raise ImapError(f"cannot connect to {server.host}:{server.port}: {reason}")


def _drop(client: _Client) -> None:
    transport = client.protocol.transport
    if transport is not None:
        transport.close()
    if not client._client_task.done():
        client._client_task.cancel()


async def _starttls(client: _Client, server: Server) -> None:
    protocol = client.protocol
    if "STARTTLS" not in {c.upper() for c in protocol.capabilities}:
        raise ImapError("the server offers no STARTTLS", field="security")
    response = await asyncio.wait_for(
        protocol.execute(aioimaplib.Command("STARTTLS", protocol.new_tag(), loop=protocol.loop)),
        client.timeout,
    )
    if response.result != "OK":
        raise ImapError(f"STARTTLS refused: {_said(response)}", field="security")
    loop = asyncio.get_running_loop()
    assert protocol.transport is not None
    try:
        upgraded = await asyncio.wait_for(
            loop.start_tls(
                protocol.transport, protocol, tls_context(server.ca_cert), server_hostname=server.host
            ),
            client.timeout,
        )
    except ssl.SSLCertVerificationError as exc:
        raise ImapError(f"TLS certificate refused: {exc.verify_message}", field="security") from None
    except (ssl.SSLError, OSError) as exc:
        raise ImapError(f"TLS failed: {exc}", field="security") from None
    protocol.transport = upgraded
    await protocol.capability()  # what the server said before TLS no longer counts (RFC 3501 6.2.1)


async def _authenticate(client: _Client, server: Server) -> None:
    if server.auth == "oauth2":
        if "AUTH=XOAUTH2" not in {c.upper() for c in client.protocol.capabilities}:
            raise ImapError("the server does not offer XOAUTH2", field="oauth2_token")
        protocol = client.protocol
        command = aioimaplib.Command(
            "AUTHENTICATE", protocol.new_tag(), "XOAUTH2", xoauth2_string(server.username, server.secret),
            loop=protocol.loop,
        )  # fmt: skip
        response = await asyncio.wait_for(protocol.execute(command, scrub=server.secret), client.timeout)
        if response.result == "OK":
            protocol.state = aioimaplib.AUTH
            return
        raise ImapError(f"authentication failed: {_said(response)}", field="oauth2_token")
    response = await client.login(server.username, server.secret)
    if response.result != "OK":
        raise ImapError(f"authentication failed: {_said(response)}", field="password")


def _ok(response: aioimaplib.Response, what: str) -> None:
    if response.result != "OK":
        raise ImapError(f"{what} failed: {_said(response)}")


def _said(response: aioimaplib.Response) -> str:
    """The server's last words on a command, cut short."""
    lines = [line for line in response.lines if isinstance(line, bytes)]
    text = lines[-1].decode(errors="replace") if lines else response.result
    return text.strip()[:200]


_FETCH_LINE = re.compile(rb"^\d+ FETCH \(")
_UID = re.compile(rb"UID (\d+)")


def _literals_by_uid(lines: Sequence[Any]) -> dict[int, bytes]:
    """UID -> literal from a UID FETCH answer. aioimaplib gives each message as its ``n FETCH (... {size}`` line,
    the literal (a bytearray), then the line closing it; UID may come before or after the literal."""
    found: dict[int, bytes] = {}
    uid: int | None = None
    literal: bytes | None = None

    def settle() -> None:
        if uid is not None and literal is not None:
            found[uid] = literal

    for line in lines:
        if isinstance(line, bytearray):
            literal = bytes(line)
            continue
        if _FETCH_LINE.match(line):
            settle()
            match = _UID.search(line)
            uid = int(match.group(1)) if match else None
            literal = None
            continue
        if uid is None and (match := _UID.search(line)):
            uid = int(match.group(1))
    settle()
    return found
