"""A real IMAP server for tests and the benchmark: Debian's dovecot (``dovecot-imapd``), configured in a temporary
directory and listening on free loopback ports.

One server per test session (:func:`start`); each test takes its own account (:meth:`Dovecot.add_user`), so tests
never see one another's mail. Mail is delivered with IMAP APPEND through the standard library's ``imaplib``: what a
mail server's delivery agent would do, without an SMTP hop.

- Plain IMAP on :attr:`Dovecot.port` (STARTTLS offered there), IMAPS on :attr:`Dovecot.tls_port`, with a self-signed
  certificate for ``localhost`` and 127.0.0.1 made with ``cryptography`` (:attr:`Dovecot.ca_file` trusts it).
- Passwords from one passwd-file per user (a new account is a new file; a changed one is re-read by its mtime).
- XOAUTH2 and OAUTHBEARER through dovecot's oauth2 passdb, which asks an introspection endpoint about each token:
  the harness answers it itself (:attr:`Dovecot.tokens`, token -> user), on a loopback HTTP server of its own.

When ``dovecot`` is not installed the tests that need it are skipped, or fail under CI (``CI`` / ``HERALD_CI``), like
the PostgreSQL ones (:func:`tests.conftest.required_server`); ``.ci/run`` installs it.
"""

from __future__ import annotations

import contextlib
import datetime
import imaplib
import ipaddress
import json
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

DOVECOT = shutil.which("dovecot") or ("/usr/sbin/dovecot" if Path("/usr/sbin/dovecot").exists() else None)


class DovecotMissing(RuntimeError):
    """dovecot is not installed, or did not start."""


@dataclass(frozen=True)
class Account:
    """One mailbox on the test server."""

    user: str
    password: str
    host: str
    port: int
    tls_port: int


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for localhost and 127.0.0.1 and its key, as PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_file, key_file


def _identity() -> tuple[str, str, int, int]:
    """(internal user, login user, mail uid, mail gid): as root, dovecot's own unprivileged users and nobody's
    uid for the mail (dovecot refuses to run mail processes as root); otherwise the current user for all."""
    if os.geteuid() == 0:
        internal = "dovecot" if _user_exists("dovecot") else "nobody"
        login = "dovenull" if _user_exists("dovenull") else internal
        nobody = pwd.getpwnam("nobody")
        return internal, login, nobody.pw_uid, nobody.pw_gid
    me = pwd.getpwuid(os.geteuid())
    return me.pw_name, me.pw_name, me.pw_uid, me.pw_gid


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


class _Introspection(BaseHTTPRequestHandler):
    """dovecot's oauth2 passdb POSTs ``token=...``; the answer names the token's user when it is known."""

    tokens: dict[str, str]
    calls: list[str]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length") or 0)).decode()
        token = (parse_qs(body).get("token") or [""])[0]
        self.calls.append(token)
        user = self.tokens.get(token)
        answer = {"active": True, "username": user} if user else {"active": False}
        data = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:  # quiet
        return


@dataclass
class Dovecot:
    """A running dovecot; see the module docstring."""

    root: Path
    port: int
    tls_port: int
    ca_file: Path
    host: str = "127.0.0.1"
    tokens: dict[str, str] = field(default_factory=dict)
    introspections: list[str] = field(default_factory=list)
    _process: subprocess.Popen[bytes] | None = None
    _http: ThreadingHTTPServer | None = None
    _users: dict[str, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _mtime: int = 0

    # -- accounts ---------------------------------------------------------------------------------------------

    def add_user(self, user: str, password: str = "pw-Secret-1") -> Account:
        """A new account (its maildir is created on first login)."""
        with self._lock:
            self._users[user] = password
            # One passwd-file per user (the path names %u): a new account is a new file, read on its first
            # lookup, so no test waits for dovecot to notice a changed shared file (one-second mtimes).
            tmp = self.root / "users" / f".{user}.tmp"
            tmp.write_text(f"{user}:{{PLAIN}}{password}::::::\n")
            # dovecot re-reads a changed file by its mtime, at one-second resolution: never the same second.
            self._mtime = max(self._mtime + 1, int(time.time()))
            os.utime(tmp, (self._mtime, self._mtime))
            tmp.replace(self.root / "users" / user)
        account = Account(user, password, self.host, self.port, self.tls_port)
        self._await_login(account)
        return account

    def _await_login(self, account: Account) -> None:
        """dovecot notices a changed passwd-file on its next lookups, not always the first: wait until it does."""
        deadline = time.monotonic() + 10
        while True:
            try:
                conn = self.connect(account)
            except imaplib.IMAP4.error:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
            else:
                _logout(conn)
                return

    def grant_token(self, token: str, user: str) -> None:
        """Make the introspection endpoint vouch for ``token`` as ``user`` (XOAUTH2)."""
        self.tokens[token] = user

    # -- mail ---------------------------------------------------------------------------------------------------

    def connect(self, account: Account) -> imaplib.IMAP4:
        conn = imaplib.IMAP4(self.host, self.port, timeout=10)
        try:
            conn.login(account.user, account.password)
        except BaseException:
            conn.shutdown()
            raise
        return conn

    def deliver(
        self, account: Account, *messages: bytes, folder: str = "INBOX", flags: str | None = None
    ) -> list[int]:
        """APPEND ``messages`` to ``folder`` (created if missing), with ``flags`` (``(\\Seen)``); their UIDs."""
        conn = self.connect(account)
        try:
            if folder != "INBOX":
                conn.create(_quote(folder))
            uids = []
            for raw in messages:
                typ, data = conn.append(_quote(folder), flags, None, raw)
                assert typ == "OK", data
                text = data[0].decode() if data and isinstance(data[0], bytes) else ""
                uids.append(int(text.split("APPENDUID ", 1)[1].split()[1].rstrip("]")))
            return uids
        finally:
            _logout(conn)

    def uidvalidity(self, account: Account, folder: str = "INBOX") -> int:
        conn = self.connect(account)
        try:
            conn.select(_quote(folder), readonly=True)
            _, data = conn.response("UIDVALIDITY")
            return int(data[0])
        finally:
            _logout(conn)

    def flags(self, account: Account, folder: str = "INBOX") -> dict[int, set[str]]:
        """UID -> flags of every message in ``folder``."""
        conn = self.connect(account)
        try:
            typ, _ = conn.select(_quote(folder), readonly=True)
            if typ != "OK":
                return {}
            typ, data = conn.uid("FETCH", "1:*", "(UID FLAGS)")
            found: dict[int, set[str]] = {}
            for item in data:
                if not isinstance(item, bytes):
                    continue
                text = item.decode()
                uid = int(text.split("UID ", 1)[1].split()[0].rstrip(")"))
                flags = text.split("FLAGS (", 1)[1].split(")", 1)[0]
                found[uid] = set(flags.split())
            return found
        finally:
            _logout(conn)

    def recreate(self, account: Account, folder: str) -> None:
        """Delete ``folder`` and create it again: the server gives it a new UIDVALIDITY."""
        conn = self.connect(account)
        try:
            conn.delete(_quote(folder))
            conn.create(_quote(folder))
        finally:
            _logout(conn)

    # -- life -------------------------------------------------------------------------------------------------

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(5)
        if self._process is not None and self._process.stderr is not None:
            self._process.stderr.close()
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
        shutil.rmtree(self.root, ignore_errors=True)

    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""


def _quote(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _logout(conn: imaplib.IMAP4) -> None:
    with contextlib.suppress(Exception):
        conn.logout()


_CONF = """\
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = yes
ssl_cert = <{cert}
ssl_key = <{key}
disable_plaintext_auth = no
auth_mechanisms = plain login xoauth2 oauthbearer
auth_failure_delay = 0
default_internal_user = {internal}
default_internal_group = {internal_group}
default_login_user = {login}
mail_location = maildir:{root}/mail/%u
first_valid_uid = 1
mail_max_userip_connections = 100
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {tls_port}
  }}
  chroot =
}}
service anvil {{
  chroot =
}}
passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {root}/oauth2.conf.ext
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/users/%u
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/mail/%u
}}
"""

_OAUTH2 = """\
introspection_mode = post
introspection_url = http://127.0.0.1:{http_port}/introspect
username_attribute = username
active_attribute = active
active_value = true
"""


def start() -> Dovecot:
    """Configure and start dovecot in a new temporary directory; raises DovecotMissing when it cannot."""
    if DOVECOT is None:
        raise DovecotMissing("dovecot is not installed (apt-get install dovecot-imapd)")
    # Not under pytest's tmp_path: that is private to its owner (0700), and dovecot's unprivileged processes
    # must reach the configuration, the sockets and the mail.
    root = Path(tempfile.mkdtemp(prefix="herald-dovecot-"))
    root.chmod(0o755)
    internal, login, uid, gid = _identity()
    for sub in ("run", "state", "mail", "users"):
        (root / sub).mkdir()
    if os.geteuid() == 0:
        os.chown(root / "mail", uid, gid)
    cert, key = _self_signed(root)
    tokens: dict[str, str] = {}
    calls: list[str] = []
    handler = type("Introspection", (_Introspection,), {"tokens": tokens, "calls": calls})
    http = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    port, tls_port = _free_port(), _free_port()
    (root / "oauth2.conf.ext").write_text(_OAUTH2.format(http_port=http.server_address[1]))
    internal_group = internal if os.geteuid() == 0 else ""
    conf = _CONF.format(
        root=root, cert=cert, key=key, internal=internal, internal_group=internal_group or "",
        login=login, uid=uid, gid=gid, port=port, tls_port=tls_port,
    )  # fmt: skip
    if not internal_group:
        conf = conf.replace("default_internal_group = \n", "")
    (root / "dovecot.conf").write_text(conf)
    server = Dovecot(root, port, tls_port, cert, tokens=tokens, introspections=calls, _http=http)
    server._process = subprocess.Popen(
        [DOVECOT, "-F", "-c", str(root / "dovecot.conf")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if server._process.poll() is not None:
            err = server._process.stderr.read().decode(errors="replace") if server._process.stderr else ""
            server.stop()
            raise DovecotMissing(f"dovecot exited at start: {err.strip() or server.log()}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            if s.recv(100).startswith(b"* OK"):
                return server
        time.sleep(0.05)
    server.stop()
    raise DovecotMissing("dovecot did not start listening within 15 s")


def email(
    n: int,
    *,
    sender: str = "Pat Buyer <pat@example.com>",
    subject: str | None = None,
    body: str | None = None,
    message_id: str | None = None,
) -> bytes:
    """A small plain-text email, numbered ``n`` (its Message-ID and subject say which)."""
    mid = message_id or f"<msg-{n}-{os.getpid()}-{time.monotonic_ns()}@example.com>"
    text = body if body is not None else f"Hello, this is message number {n}."
    return (
        f"From: {sender}\r\nTo: sales@dealer.example\r\nSubject: {subject or f'Question {n}'}\r\n"
        f"Message-ID: {mid}\r\nDate: Sun, 06 Dec 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n"
        f'Content-Type: text/plain; charset="utf-8"\r\n\r\n{text}\r\n'
    ).encode()
