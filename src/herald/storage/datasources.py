"""Reading a tenant's own database: the one way Herald runs SQL it did not write.

Campaign audiences, external queues and monitor ``database_query`` sources all read through :func:`run_query`
(a registered data source) or :func:`run_on_url` (a monitor's legacy ``data_source_url``). Both guard the same
way, three times over:

1. the SQL must be one ``SELECT`` (or ``WITH ... SELECT``): :func:`check_query` strips comments and literals and
   refuses a second statement and any writing keyword;
2. it runs in a read-only transaction with a statement timeout: PostgreSQL ``SET TRANSACTION READ ONLY`` and
   ``SET LOCAL statement_timeout``; MySQL/MariaDB ``START TRANSACTION READ ONLY`` after ``max_statement_time``
   (MariaDB) or ``max_execution_time`` (MySQL); SQLite opened ``mode=ro`` with ``PRAGMA query_only`` and a
   progress handler that interrupts it at the deadline;
3. at most ``row_cap + 1`` rows are fetched, and the answer says whether there were more.

Values are bound by name (``:customer_id``), never interpolated. It lives in ``herald.storage`` because producers
(monitors, campaigns), which may not import one another, and admin all need it; it reaches the runtime only
through ``rt``.

What of the URL reaches the driver
    Herald builds the driver's connect arguments itself; the URL gives only the backend, host, port, user,
    password and database, plus these query parameters (anything else, repeated ones included, is refused with
    a 422 naming ``url``, since a driver reads ``host=``, ``unix_socket=``, ``read_default_file=``, ``passfile=``,
    ``sslrootcert=``, ``options=`` and the like as orders that reach past the outbound guard or into Herald's
    own files):

    ============  ==========================================================================================
    PostgreSQL    ``sslmode`` (or ``ssl``): disable, allow, prefer (the default), require, verify-ca,
                  verify-full (true = verify-full, false = disable); ``application_name`` (printable, at
                  most 63 characters); ``connect_timeout`` (seconds, at most :data:`CONNECT_TIMEOUT`)
    MySQL/MariaDB ``ssl_mode``: disabled (the default), preferred, required, verify_ca, verify_identity (or
                  ``ssl``: true = verify_identity, false = disabled); ``charset`` (a MySQL character set name);
                  ``connect_timeout``
    SQLite        none: Herald opens the file ``mode=ro`` itself
    ============  ==========================================================================================

    Certificates are verified against the system's trust store; certificate and key files are not accepted.
    Pinned whatever the URL says: asyncpg gets an explicit password (never ``PGPASSWORD`` or a ``.pgpass``),
    Herald's own TLS context (never ``~/.postgresql`` files) and ``server_settings`` of
    ``default_transaction_read_only=on`` and ``standard_conforming_strings=on`` (so ``'\\'`` ends a string
    where :func:`check_query` thinks it does); aiomysql gets ``local_infile=False``, no ``read_default_file``
    or ``init_command``, a fixed ``sql_mode`` (no ``ANSI_QUOTES``, no ``NO_BACKSLASH_ESCAPES``, for the same
    reason) and a ``client_flag`` without ``MULTI_STATEMENTS``, so the server itself runs one statement per call.

Where the connection goes
    The host is resolved once per new connection through the outbound guard
    (:meth:`~herald.core.netguard.OutboundGuard.resolve_checked`), and the driver connects to one of the
    addresses that were checked, never to the name again: a DNS answer that changes between the check and the
    connection (DNS rebinding) cannot reach a blocked address. TLS still names the server by its host name
    (:class:`ServerNameContext`), so ``verify-full`` checks the certificate against the name in the URL.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import re
import sqlite3
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from sqlalchemy import select, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from herald.core.errors import HeraldError, NotFound, ValidationFailed
from herald.core.netguard import BlockedDestination, OutboundGuard
from herald.storage.models import DataSource

if TYPE_CHECKING:
    from herald.runtime import Runtime

BACKENDS = ("postgresql", "mysql", "sqlite")
CONNECT_TIMEOUT = 5.0  # seconds to connect (and authenticate); a probe gets no longer than this
MASK = "***"
_DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306}
_SECRET_PARAMS = re.compile(r"pass|secret|token|key|auth", re.IGNORECASE)
# The statement timeout is the database's; this margin lets it answer before Herald gives up on its own.
_GRACE_SECONDS = 2.0
_SQLITE_CHECK_EVERY = 10_000  # SQLite virtual machine steps between two looks at the clock
# The URL query parameters each backend accepts (see the module docstring); every other one is refused.
URL_PARAMETERS: dict[str, frozenset[str]] = {
    "postgresql": frozenset({"sslmode", "ssl", "application_name", "connect_timeout"}),
    "mysql": frozenset({"ssl_mode", "ssl", "charset", "connect_timeout"}),
    "sqlite": frozenset(),
}
# TLS modes, in libpq's names; MySQL's are mapped onto them.
TLS_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
_MYSQL_TLS_MODES = {
    "disabled": "disable", "preferred": "prefer", "required": "require", "verify_ca": "verify-ca",
    "verify_identity": "verify-full",
}  # fmt: skip
_BOOLEAN_TLS = {"true": "verify-full", "1": "verify-full", "false": "disable", "0": "disable"}
# Every mode but ANSI_QUOTES (a "..." would become an identifier) and NO_BACKSLASH_ESCAPES (a \' would end a
# string): the quoting check_query lexes by. Only what matters to writes is left, and writes are refused.
_MYSQL_SQL_MODE = "STRICT_TRANS_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION"
_HOST_NAME = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_.-]{0,252})")


class DataSourceError(HeraldError):
    """A query on a data source failed (connection, timeout, SQL error); the message is a short reason."""


@dataclass(frozen=True)
class Target:
    """Where a data source URL points, parsed: the backend, the async SQLAlchemy URL, and the host to guard."""

    backend: str  # postgresql | mysql | sqlite
    url: URL  # without its query string: what the URL may say beyond the address is in ``options``
    host: str | None
    port: int | None
    path: str | None  # SQLite: the file
    options: dict[str, str] = field(default_factory=dict)  # the allow-listed query parameters, checked


@dataclass(frozen=True)
class QueryResult:
    """Rows as dicts keyed by column name, in the order the database returned them."""

    columns: list[str]
    rows: list[dict[str, Any]]
    truncated: bool  # the query had more rows than the cap; ``rows`` holds the first ``cap``


# --------------------------------------------------------------------------- URLs


def parse_url(raw: str) -> Target:
    """Parse a data source URL; raises ValueError with a reason a user can act on."""
    text_url = raw.strip()
    if "://" not in text_url:
        raise ValueError(
            "must be a URL such as postgresql://user:password@host:5432/db, "
            "mysql://user:password@host:3306/db or sqlite:///path/to/file.db"
        )
    try:
        url = make_url(text_url)
    except (ArgumentError, ValueError) as exc:
        raise ValueError(f"not a valid database URL: {exc}") from None
    base = url.drivername.split("+", 1)[0].lower()
    if base in ("postgresql", "postgres"):
        if not url.host:
            raise ValueError("a PostgreSQL URL needs a host: postgresql://user:password@host:5432/db")
        options = _checked_options("postgresql", url)
        driver_url = url.set(drivername="postgresql+asyncpg", query={})
        return Target("postgresql", driver_url, _checked_host(url.host), url.port or 5432, None, options)
    if base in ("mysql", "mariadb"):
        if not url.host:
            raise ValueError("a MySQL/MariaDB URL needs a host: mysql://user:password@host:3306/db")
        if not url.database:
            raise ValueError("a MySQL/MariaDB URL needs a database: mysql://user:password@host:3306/db")
        options = _checked_options("mysql", url)
        driver_url = url.set(drivername="mysql+aiomysql", query={})
        return Target("mysql", driver_url, _checked_host(url.host), url.port or 3306, None, options)
    if base == "sqlite":
        path = url.database or ""
        if not path or path == ":memory:":
            raise ValueError("a SQLite source needs a file: sqlite:///path/to/file.db")
        _checked_options("sqlite", url)
        return Target("sqlite", url, None, None, path)
    raise ValueError(
        f"unsupported scheme {url.drivername!r}: use postgresql://, mysql:// (MariaDB too) or sqlite:///"
    )


def _checked_host(host: str) -> str:
    """A host name or an IP address literal; a path (a Unix socket) or a host list is refused."""
    name = host.strip("[]")
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        pass
    if not _HOST_NAME.fullmatch(name):
        raise ValueError(f"the host {host!r} must be a host name or an IP address")
    return name


def _checked_options(backend: str, url: URL) -> dict[str, str]:
    """The URL's query parameters, each on the backend's allow-list with a value it accepts (see the module
    docstring), normalised; ValueError naming the first one refused."""
    allowed = URL_PARAMETERS[backend]
    options: dict[str, str] = {}
    for key, value in url.query.items():
        if key not in allowed:
            if not allowed:
                raise ValueError(
                    "a SQLite URL takes no query parameters: Herald opens the file read-only itself"
                )
            raise ValueError(
                f"the URL parameter {key!r} is not accepted; a {backend} URL may carry only "
                f"{', '.join(sorted(allowed))}"
            )
        if not isinstance(value, str):
            raise ValueError(f"the URL parameter {key!r} is given more than once")  # noqa: TRY004 - user input
        name, checked = _checked_option(backend, key, value)
        if name in options:
            raise ValueError(f"the URL parameter {key!r} repeats another that sets the TLS mode")
        options[name] = checked
    return options


def _checked_option(backend: str, key: str, value: str) -> tuple[str, str]:
    """One allow-listed parameter as (Herald's name for it, its checked value)."""
    text_value = value.strip()
    if key in ("sslmode", "ssl_mode", "ssl"):
        lowered = text_value.lower()
        mode = _BOOLEAN_TLS.get(lowered) if key == "ssl" else None
        if mode is None:
            mode = _MYSQL_TLS_MODES.get(lowered) if backend == "mysql" else lowered
        if mode not in TLS_MODES:
            shown = ", ".join(_MYSQL_TLS_MODES if backend == "mysql" else TLS_MODES)
            raise ValueError(f"the URL parameter {key!r} must be one of {shown} (or ssl=true/false)")
        return "tls", mode
    if key == "connect_timeout":
        try:
            seconds = float(text_value)
        except ValueError:
            seconds = -1.0
        if not 0 < seconds <= CONNECT_TIMEOUT:
            raise ValueError(f"connect_timeout must be a number of seconds up to {CONNECT_TIMEOUT:g}")
        return key, f"{seconds:g}"
    if key == "application_name":
        if not re.fullmatch(r"[\x20-\x7e]{1,63}", text_value):
            raise ValueError("application_name must be 1 to 63 printable ASCII characters")
        return key, text_value
    # charset (MySQL)
    from pymysql.charset import charset_by_name

    if not re.fullmatch(r"[A-Za-z0-9_]{1,32}", text_value) or charset_by_name(text_value) is None:
        raise ValueError(f"charset {text_value!r} is not a MySQL character set")
    return key, text_value


def mask_url(raw: str) -> str:
    """The URL as answers show it: the password and secret-looking query parameters replaced by ``***``."""
    url = make_url(raw.strip())
    query = {key: (MASK if _SECRET_PARAMS.search(key) else value) for key, value in url.query.items()}
    return url.set(query=query).render_as_string(hide_password=True).replace("%2A%2A%2A", MASK)


def keep_password(new: str, old: str) -> str:
    """``new`` with the password of ``old`` when ``new`` shows it masked: a client may send back the URL it read.

    Only to the same place: the stored password is kept when the backend, host, port, user and database are
    all unchanged (a new name or query parameter is fine). Otherwise ValueError: a masked URL pointed at another
    host would hand the stored password to whoever runs it. Any other masked query parameter is taken from
    ``old`` as well."""
    url, previous = make_url(new.strip()), make_url(old)
    if url.password == MASK:
        if _destination(url) != _destination(previous):
            raise ValueError(
                f"the password {MASK} keeps the stored one only when the backend, host, port, user and "
                "database are unchanged; give the password to point the source elsewhere"
            )
        url = url.set(password=previous.password)
    query = {
        key: (previous.query.get(key, value) if value == MASK else value) for key, value in url.query.items()
    }
    return url.set(query=query).render_as_string(hide_password=False)


def _destination(url: URL) -> tuple[object, ...]:
    """Where a URL sends its password: backend, host, port, user and database (ValueError for a bad URL)."""
    target = parse_url(url.render_as_string(hide_password=False))
    return (target.backend, (target.host or "").lower(), target.port, url.username, url.database)


async def check_destination(rt: Runtime, target: Target, *, field: str = "url") -> None:
    """ValidationFailed naming ``field`` when the outbound guard or the SQLite directory rule refuses it."""
    try:
        await _guard(rt, target)
    except (BlockedDestination, DataSourceError) as exc:
        raise ValidationFailed(str(exc), field=field) from None
    except OSError as exc:
        raise ValidationFailed(f"cannot resolve {target.host}: {exc}", field=field) from None


async def _guard(rt: Runtime, target: Target) -> None:
    """Before every connection: the host must pass the outbound guard; a SQLite file must be allowed."""
    if target.backend != "sqlite":
        assert target.host is not None
        await rt.outbound.check_host(target.host, target.port or _DEFAULT_PORTS[target.backend])
        return
    assert target.path is not None
    path = Path(target.path).expanduser().resolve()
    own = make_url(rt.settings.async_database_url)
    if own.get_backend_name() == "sqlite" and own.database and Path(own.database).resolve() == path:
        raise DataSourceError("Herald's own database cannot be a data source")
    root = rt.settings.data_source_sqlite_dir
    if root is None:
        if not rt.settings.is_development:
            raise DataSourceError(
                "SQLite data sources are refused here: set HERALD_DATA_SOURCE_SQLITE_DIR to the directory "
                "they may be read from"
            )
        return
    if not path.is_relative_to(Path(root).expanduser().resolve()):
        raise DataSourceError(f"a SQLite data source must be a file under {root}")


# --------------------------------------------------------------------------- query checking

REFUSED_KEYWORDS: frozenset[str] = frozenset(
    {
        "INSERT", "UPDATE", "DELETE", "DROP", "ALTER", "CREATE", "GRANT", "TRUNCATE", "COPY", "CALL", "DO",
        "VACUUM", "ATTACH", "PRAGMA", "MERGE", "INTO", "REVOKE", "DETACH", "REINDEX", "LOCK",
    }
)  # fmt: skip
# Functions that read or write the server's files, reach other servers, sleep, take locks or change settings:
# refused by name, in any case, quoted or not, qualified or not. A name ending in "*" is a family (a prefix).
REFUSED_FUNCTIONS: dict[str, frozenset[str]] = {
    "postgresql": frozenset({
        "pg_read_file", "pg_read_binary_file", "pg_ls_*", "pg_stat_file", "pg_file_*", "lo_import",
        "lo_export", "lo_get", "lo_put", "lo_open", "lo_create", "lo_creat", "lo_unlink", "lo_from_bytea",
        "lo_truncate", "lo_truncate64", "loread", "lowrite", "dblink*", "pg_sleep*", "set_config",
        "pg_advisory_*", "pg_try_advisory_*", "pg_terminate_backend", "pg_cancel_backend", "pg_reload_conf",
        "pg_rotate_logfile", "pg_promote", "pg_switch_wal", "pg_notify", "pg_logical_*", "pg_replication_*",
        "pg_create_*", "pg_drop_replication_slot", "query_to_xml*", "cursor_to_xml*", "pg_import_system_collations",
    }),
    "mysql": frozenset({
        "load_file", "load", "outfile", "dumpfile", "sleep", "benchmark", "get_lock", "release_lock",
        "release_all_locks", "master_pos_wait", "source_pos_wait", "master_gtid_wait",
        "wait_for_executed_gtid_set", "wait_until_sql_thread_after_gtids", "sys_exec", "sys_eval",
    }),
    "sqlite": frozenset({"load_extension", "readfile", "writefile", "fsdir", "fts3_tokenizer", "attach", "pragma"}),
}  # fmt: skip
_ROW_LOCKS = re.compile(
    r"\bFOR\s+(?:NO\s+KEY\s+)?UPDATE\b|\bFOR\s+(?:KEY\s+)?SHARE\b|\bLOCK\s+IN\s+SHARE\s+MODE\b", re.IGNORECASE
)
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")
_DOLLAR_TAG = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")


def _strip_sql(query: str, backend: str = "postgresql") -> tuple[str, list[str]]:
    """The query as ``backend`` reads it: comments removed, string literals and quoted identifiers blanked to
    ``''``; and the text of the quoted identifiers, which may name a function (``"pg_read_file"(...)``).

    What is left is the code whose words are keywords. The quoting rules are the backend's, since a difference
    is a hiding place: PostgreSQL nests ``/* */``, reads backslash escapes only in ``E'...'`` and quotes with
    ``$tag$``; MySQL escapes with a backslash in ``'...'`` and ``"..."`` (both strings), starts comments with
    ``#`` and with ``--`` only before a space; SQLite quotes identifiers in ``[...]`` too. Raises ValueError for
    an unterminated literal or comment, and for forms that run hidden code (MySQL ``/*! ... */``)."""
    out: list[str] = []
    names: list[str] = []
    i, n = 0, len(query)
    while i < n:
        ch = query[i]
        nxt = query[i + 1] if i + 1 < n else ""
        if _line_comment_at(query, i, backend):
            end = query.find("\n", i)
            i = n if end < 0 else end
            out.append(" ")
        elif ch == "/" and nxt == "*":
            if backend == "mysql" and (query.startswith("/*!", i) or query.startswith("/*M!", i)):
                raise ValueError("MySQL executable comments (/*! ... */) are not allowed")
            i = _end_of_comment(query, i, nested=backend == "postgresql")
            out.append(" ")
        elif ch == "'" or (ch == '"' and backend == "mysql"):
            escapes = backend == "mysql" or (backend == "postgresql" and _escape_string_prefix(query, i))
            i = _end_of_quoted(query, i, backslash=escapes) + 1
            out.append(" '' ")
        elif ch == '"' or (ch == "`" and backend != "postgresql") or (ch == "[" and backend == "sqlite"):
            if backend == "postgresql" and query[max(0, i - 2) : i].upper() == "U&":
                raise ValueError('Unicode-escaped identifiers (U&"...") are not allowed')
            end = query.find("]", i + 1) if ch == "[" else _end_of_quoted(query, i, backslash=False)
            if end < 0:
                raise ValueError("unterminated [ quote")
            names.append(query[i + 1 : end].replace(ch * 2, ch) if ch != "[" else query[i + 1 : end])
            out.append(" '' ")
            i = end + 1
        elif (
            ch == "$"
            and backend == "postgresql"
            and (tag := _DOLLAR_TAG.match(query, i)) is not None
            and not _ident_before(query, i)
        ):
            end = query.find(tag.group(0), tag.end())
            if end < 0:
                raise ValueError("unterminated dollar-quoted string")
            out.append(" '' ")
            i = end + len(tag.group(0))
        else:
            out.append(ch)
            i += 1
    return "".join(out), names


def _line_comment_at(query: str, i: int, backend: str) -> bool:
    """``--`` everywhere (on MySQL only before a space or the end: ``1--1`` is arithmetic), ``#`` on MySQL."""
    if query.startswith("--", i):
        after = query[i + 2 : i + 3]
        return backend != "mysql" or after == "" or after.isspace() or ord(after) < 32
    return query[i] == "#" and backend == "mysql"


def _end_of_comment(query: str, start: int, *, nested: bool) -> int:
    """Index just past the ``*/`` closing the comment opened at ``start`` (PostgreSQL counts nested ones)."""
    depth, j, n = 0, start, len(query)
    while j < n:
        if query.startswith("/*", j) and (nested or depth == 0):
            depth += 1
            j += 2
        elif query.startswith("*/", j):
            depth -= 1
            j += 2
            if depth == 0:
                return j
        else:
            j += 1
    raise ValueError("unterminated /* comment")


def _escape_string_prefix(query: str, index: int) -> bool:
    """Whether the ``'`` at ``index`` opens a PostgreSQL ``E'...'`` string (the only kind with backslashes)."""
    return index > 0 and query[index - 1] in "eE" and not _ident_before(query, index - 1)


def _end_of_quoted(query: str, start: int, *, backslash: bool = True) -> int:
    """Index of the quote closing the literal or identifier opened at ``start``."""
    quote_char, j, n = query[start], start + 1, len(query)
    while j < n:
        if backslash and query[j] == "\\" and j + 1 < n:
            j += 2  # backslash escapes (MySQL, PostgreSQL E'' strings)
            continue
        if query[j] == quote_char:
            if j + 1 < n and query[j + 1] == quote_char:  # a doubled quote inside
                j += 2
                continue
            return j
        j += 1
    raise ValueError(f"unterminated {quote_char} quote")


def _ident_before(query: str, index: int) -> bool:
    return index > 0 and (query[index - 1].isalnum() or query[index - 1] in "_$")


def check_query(query: str, backend: str | None = None) -> None:
    """Accept exactly one ``SELECT`` (or ``WITH ... SELECT``); raises ValueError saying why not.

    Keywords are matched as words outside literals, so a column named ``updated_at`` passes and a write hidden
    in a CTE (``WITH x AS (UPDATE ...)``) does not. Row locks (``FOR UPDATE``, ``FOR SHARE``, ``LOCK IN SHARE
    MODE``) and the backend's dangerous functions (:data:`REFUSED_FUNCTIONS`) are refused too. ``backend`` says
    how to read the quoting; without one (a source not yet known) the query must pass as every backend reads
    it. The read-only transaction is the guard below this one."""
    for dialect in (backend,) if backend else BACKENDS:
        _check_query_as(query, dialect)


def _check_query_as(query: str, backend: str) -> None:
    code, quoted_names = _strip_sql(query, backend)
    body = code.strip()
    if body.endswith(";"):
        body = body[:-1].rstrip()
    if not body:
        raise ValueError("the query is empty")
    if ";" in body:
        raise ValueError("only one statement is allowed (found ';' before the end)")
    first = re.match(r"\(*\s*([A-Za-z]+)", body)
    if first is None or first.group(1).upper() not in {"SELECT", "WITH"}:
        raise ValueError("the query must start with SELECT or WITH")
    if (lock := _ROW_LOCKS.search(body)) is not None:
        shown = " ".join(lock.group(0).upper().split())
        raise ValueError(f"row locks ({shown}) are not allowed: a data source is read without locking")
    words = {word.upper() for word in _WORD.findall(body)}
    refused_function = next(
        (
            name
            for name in sorted({*words, *(q.upper() for q in quoted_names)})
            if _refused_function(name, backend)
        ),
        None,
    )
    if refused_function is not None:
        raise ValueError(f"the function or clause {refused_function.lower()} is not allowed on a data source")
    refused = sorted(words & REFUSED_KEYWORDS)
    if refused:
        raise ValueError(f"only reads are allowed; found {', '.join(refused)}")
    if first.group(1).upper() == "WITH" and "SELECT" not in words:
        raise ValueError("a WITH query must end in a SELECT")


def _refused_function(name: str, backend: str) -> bool:
    lowered = name.lower()
    return any(
        lowered.startswith(entry[:-1]) if entry.endswith("*") else lowered == entry
        for entry in REFUSED_FUNCTIONS[backend]
    )


# --------------------------------------------------------------------------- engines


class DataSourceEngines:
    """One engine per data source, per process (``Runtime.data_sources``).

    Keyed by source id with the row's version (its ``updated_at``): a source changed by another process gets a
    new engine here at its next query, and the old one is disposed. PostgreSQL and MySQL keep a small pool;
    SQLite opens the file per query (NullPool), so no connection outlives the caller's event loop."""

    def __init__(self, max_engines: int = 256) -> None:
        self._engines: dict[str, tuple[str, AsyncEngine]] = {}
        self._max = max_engines

    async def engine(
        self, key: str, version: str, target: Target, guard: OutboundGuard | None = None
    ) -> AsyncEngine:
        """The engine of ``key``; a new one connects to the addresses ``guard`` checked (see the module)."""
        cached = self._engines.get(key)
        if cached is not None and cached[0] == version:
            return cached[1]
        if cached is not None:
            await self.forget(key)
        if len(self._engines) >= self._max:
            await self.forget(next(iter(self._engines)))
        engine = _create_engine(target, guard)
        self._engines[key] = (version, engine)
        return engine

    async def forget(self, key: str) -> None:
        """Drop and dispose the engine of ``key`` (a source changed or was deleted)."""
        cached = self._engines.pop(key, None)
        if cached is not None:
            await cached[1].dispose()

    async def close(self) -> None:
        for key in list(self._engines):
            await self.forget(key)


def _create_engine(target: Target, guard: OutboundGuard | None = None) -> AsyncEngine:
    if target.backend == "sqlite":
        import aiosqlite

        assert target.path is not None
        file_path = target.path
        uri = f"file:{quote(file_path)}?mode=ro"

        async def connect() -> Any:
            # A missing file is refused before aiosqlite starts its thread: a connection that fails inside
            # that thread can outlive the caller's event loop and report into a closed one.
            if not Path(file_path).exists():
                raise sqlite3.OperationalError("unable to open database file")
            return await aiosqlite.connect(uri, uri=True, timeout=CONNECT_TIMEOUT)

        return create_async_engine("sqlite+aiosqlite://", async_creator=connect, poolclass=NullPool)
    pool: dict[str, Any] = {"pool_size": 2, "max_overflow": 8, "pool_recycle": 300, "pool_pre_ping": True}
    # No URL reaches the dialect: the connection is the driver's, made by Herald from the checked Target.
    bare = "postgresql+asyncpg://" if target.backend == "postgresql" else "mysql+aiomysql://"
    return create_async_engine(bare, async_creator=_network_creator(target, guard), **pool)


Connector = Callable[[Target, str], Awaitable[Any]]


def _network_creator(target: Target, guard: OutboundGuard | None) -> Callable[[], Awaitable[Any]]:
    """A driver connection to one of the addresses the guard checked for this connection, tried in turn."""
    assert target.host is not None
    assert target.port is not None
    host, port = target.host, target.port
    connector: Connector = _connect_postgresql if target.backend == "postgresql" else _connect_mysql

    async def connect() -> Any:
        addresses = [host] if guard is None else await guard.resolve_checked(host, port)
        failure: OSError | None = None
        for address in addresses:
            try:
                return await connector(target, address)
            except OSError as exc:  # unreachable, refused, timed out: the next address may answer
                failure = exc
        assert failure is not None
        raise failure

    return connect


def _connect_timeout(target: Target) -> float:
    return min(float(target.options.get("connect_timeout", CONNECT_TIMEOUT)), CONNECT_TIMEOUT)


async def _connect_postgresql(target: Target, address: str) -> Any:
    """asyncpg, every argument Herald's: nothing read from PG* variables, ``.pgpass`` or ``~/.postgresql``."""
    import asyncpg

    mode = target.options.get("tls", "prefer")
    arguments: dict[str, Any] = {
        "host": address, "port": target.port, "user": target.url.username or "",
        "password": target.url.password or "", "database": target.url.database or "",
        "timeout": _connect_timeout(target), "direct_tls": False,
        "server_settings": {
            "application_name": target.options.get("application_name", "herald"),
            "default_transaction_read_only": "on",
            "standard_conforming_strings": "on",
        },
    }  # fmt: skip
    context = tls_context(mode, target.host)
    if context is None:
        return await asyncpg.connect(**arguments, ssl=False)
    try:
        return await asyncpg.connect(**arguments, ssl=context)
    except ConnectionError as exc:
        if mode in ("allow", "prefer") and "rejected SSL upgrade" in str(exc):
            return await asyncpg.connect(**arguments, ssl=False)  # the server has no TLS: prefer allows that
        raise


async def _connect_mysql(target: Target, address: str) -> Any:
    """aiomysql, every argument Herald's; the server is not told it may run several statements per call."""
    from aiomysql.connection import Connection
    from pymysql.constants import CLIENT, CR
    from pymysql.err import OperationalError

    mode = target.options.get("tls", "disable")
    context = tls_context(mode, target.host)
    conn = Connection(
        host=address, port=target.port or 3306, user=target.url.username or "",
        password=target.url.password or "", db=target.url.database,
        charset=target.options.get("charset", "utf8mb4"), sql_mode=f"'{_MYSQL_SQL_MODE}'",
        connect_timeout=_connect_timeout(target), local_infile=False, autocommit=False, ssl=context,
        read_default_file=None, init_command=None, program_name="herald",
    )  # fmt: skip
    conn.client_flag &= ~CLIENT.MULTI_STATEMENTS  # aiomysql always asks for them; Herald never does
    try:
        await conn._connect()  # aiomysql.connect() cannot drop MULTI_STATEMENTS
    except OperationalError as exc:
        if exc.args and exc.args[0] == CR.CR_CONN_HOST_ERROR:  # unreachable: let the next address try
            raise ConnectionError(f"cannot connect to the MySQL server at {address}: {exc.args[-1]}") from exc
        raise
    if mode not in ("disable", "allow", "prefer") and not conn._secure:  # aiomysql's only TLS flag
        conn.close()
        raise ConnectionError(f"the server at {address} offers no TLS and ssl_mode requires it")
    return conn


class ServerNameContext(ssl.SSLContext):
    """A TLS context that names the server by the host in the URL, whichever address the socket reached.

    Drivers pass the address they connected to as the TLS server name; Herald connects to a checked address,
    so without this ``verify-full`` would check the certificate against an IP and SNI would name none."""

    server_name: str | None = None

    def wrap_bio(
        self,
        incoming: ssl.MemoryBIO,
        outgoing: ssl.MemoryBIO,
        server_side: bool = False,
        server_hostname: str | bytes | None = None,
        session: ssl.SSLSession | None = None,
    ) -> ssl.SSLObject:
        return super().wrap_bio(
            incoming, outgoing, server_side=server_side,
            server_hostname=self.server_name or server_hostname, session=session,
        )  # fmt: skip


def tls_context(mode: str, host: str | None) -> ServerNameContext | None:
    """Herald's TLS context for a libpq-style ``mode`` (None for disable); verified modes trust the system's
    certificate authorities, and only those: no certificate or key file comes from the URL or the environment."""
    if mode == "disable":
        return None
    context = ServerNameContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if mode in ("verify-ca", "verify-full"):
        context.load_default_certs()
        context.check_hostname = mode == "verify-full"
        context.verify_mode = ssl.CERT_REQUIRED
    else:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if host is not None and not _is_address(host):
        context.server_name = host
    return context


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


async def _begin_read_only(conn: AsyncConnection, backend: str, seconds: float) -> None:
    """Open the read-only transaction with its statement timeout, as the backend spells it."""
    ms = max(1, int(seconds * 1000))
    if backend == "postgresql":
        await conn.exec_driver_sql("SET TRANSACTION READ ONLY")
        await conn.exec_driver_sql(f"SET LOCAL statement_timeout = {ms}")
    elif backend == "mysql":
        if getattr(conn.dialect, "is_mariadb", False):
            await conn.exec_driver_sql(f"SET SESSION max_statement_time = {ms / 1000:.3f}")
        else:
            await conn.exec_driver_sql(f"SET SESSION max_execution_time = {ms}")
        # The DBAPI's implicit transaction has not started yet (SET does not start one): this one is it.
        await conn.exec_driver_sql("START TRANSACTION READ ONLY")
    else:
        await conn.exec_driver_sql("PRAGMA query_only = ON")  # the file is opened read-only as well
        raw = await conn.get_raw_connection()
        deadline = time.monotonic() + seconds
        driver: Any = raw.driver_connection
        await driver.set_progress_handler(lambda: time.monotonic() > deadline, _SQLITE_CHECK_EVERY)


# --------------------------------------------------------------------------- running


async def run_query(
    rt: Runtime,
    tenant_id: str,
    source_id: str,
    sql: str,
    params: dict[str, Any] | None = None,
    *,
    row_cap: int | None = None,
    timeout: float | None = None,  # noqa: ASYNC109 - the database's own statement timeout
    field: str = "sql",
) -> QueryResult:
    """Run one read-only ``SELECT`` on the tenant's data source ``source_id``.

    ``params`` are bound by name (``:name`` in ``sql``). ``row_cap`` and ``timeout`` default to the settings
    ``data_source_row_cap`` and ``data_source_timeout_seconds`` and cannot exceed them.

    Raises NotFound for an unknown source (or another tenant's), ValidationFailed naming ``field`` (the caller's
    name for the query: ``query`` for a monitor, ``audience_query`` for a campaign) for a query that is not a
    single SELECT or uses a refused function, DataSourceError when the database refuses, fails or times out."""
    async with rt.sessions() as session:
        row = (
            await session.execute(
                select(DataSource).where(DataSource.id == source_id, DataSource.tenant_id == tenant_id)
            )
        ).scalar_one_or_none()
    if row is None:
        raise NotFound(f"no data source {source_id!r}")
    url = str(rt.credentials.open(row.credentials)["url"])
    version = row.updated_at.isoformat()
    return await _run(rt, f"dsr:{row.id}", version, url, sql, params, row_cap, timeout, field)


async def run_on_url(
    rt: Runtime,
    url: str,
    sql: str,
    params: dict[str, Any] | None = None,
    *,
    row_cap: int | None = None,
    timeout: float | None = None,  # noqa: ASYNC109 - the database's own statement timeout
    field: str = "sql",
) -> QueryResult:
    """:func:`run_query` on a URL rather than a registered source (a monitor's legacy ``data_source_url``)."""
    key = "url:" + hashlib.sha256(url.encode()).hexdigest()
    return await _run(rt, key, "", url, sql, params, row_cap, timeout, field)


async def probe(rt: Runtime, url: str, *, field: str = "url") -> Target:
    """Check a URL before it is saved: parse it, guard its host, connect and ``SELECT 1`` within
    :data:`CONNECT_TIMEOUT`. ValidationFailed naming ``field`` with the reason otherwise."""
    try:
        target = parse_url(url)
    except ValueError as exc:
        raise ValidationFailed(str(exc), field=field) from None
    await check_destination(rt, target, field=field)
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT + _GRACE_SECONDS):
            await execute_read_only(target, "SELECT 1", timeout=CONNECT_TIMEOUT, guard=rt.outbound)
    except TimeoutError:
        raise ValidationFailed(
            f"the database did not answer within {CONNECT_TIMEOUT:g} s", field=field
        ) from None
    except Exception as exc:
        raise ValidationFailed(f"cannot connect: {describe_error(exc)}", field=field) from None
    return target


async def execute_read_only(
    target: Target,
    sql: str,
    params: dict[str, Any] | None = None,
    *,
    row_cap: int = 1,
    timeout: float,  # noqa: ASYNC109 - the database's own statement timeout
    guard: OutboundGuard | None = None,
) -> QueryResult:
    """The bottom layer alone: ``sql`` in a read-only transaction with the timeout, on an engine of its own.

    No query check: callers have done it (the probe), or test the transaction. With ``guard`` the connection
    goes to an address it checked (the probe); without, to the host by name (tests of the transaction)."""
    engines = DataSourceEngines()  # not cached: nothing is saved yet
    try:
        engine = await engines.engine("once", "", target, guard)
        return await _execute(engine, target.backend, sql, params or {}, row_cap, timeout)
    finally:
        await engines.close()


async def _run(
    rt: Runtime,
    key: str,
    version: str,
    url: str,
    sql: str,
    params: dict[str, Any] | None,
    row_cap: int | None,
    timeout: float | None,  # noqa: ASYNC109 - the database's own statement timeout
    field: str,
) -> QueryResult:
    try:
        target: Target | None = parse_url(url)
    except ValueError as exc:
        target, url_error = None, str(exc)
    try:
        check_query(sql, target.backend if target is not None else None)
    except ValueError as exc:
        raise ValidationFailed(str(exc), field=field) from None
    if target is None:
        raise DataSourceError(f"url: {url_error}")
    cap = min(row_cap or rt.settings.data_source_row_cap, rt.settings.data_source_row_cap)
    seconds = min(timeout or rt.settings.data_source_timeout_seconds, rt.settings.data_source_timeout_seconds)
    try:
        await _guard(rt, target)
    except BlockedDestination as exc:
        raise DataSourceError(str(exc)) from None
    except OSError as exc:
        raise DataSourceError(f"cannot resolve {target.host}: {exc}") from None
    engine = await rt.data_sources.engine(key, version, target, rt.outbound)
    statement = sql.strip().rstrip(";").strip()
    try:
        async with asyncio.timeout(seconds + _GRACE_SECONDS):
            return await _execute(engine, target.backend, statement, params or {}, cap, seconds)
    except TimeoutError:
        raise DataSourceError(f"timed out after {seconds:g} s") from None
    except Exception as exc:  # the driver's own errors (asyncpg, PyMySQL, sqlite3) are reasons too
        raise DataSourceError(describe_error(exc)) from None


async def _execute(
    engine: AsyncEngine, backend: str, sql: str, params: dict[str, Any], cap: int, seconds: float
) -> QueryResult:
    async with engine.connect() as conn:
        await _begin_read_only(conn, backend, seconds)
        try:
            result = await conn.stream(text(sql), params)
            rows = await result.fetchmany(cap + 1)
            columns = list(result.keys())
            await result.close()
        finally:
            await conn.rollback()  # nothing to keep: it was read-only
    return QueryResult(
        columns=columns,
        rows=[dict(zip(columns, r, strict=False)) for r in rows[:cap]],
        truncated=len(rows) > cap,
    )


def describe_error(exc: BaseException) -> str:
    """A short reason for an exception: the driver's own first line rather than SQLAlchemy's wrapping, which
    would repeat the statement (and its parameters)."""
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        exc = exc.orig
    message = str(exc).strip()
    first = message.splitlines()[0] if message else ""
    if "timeout" in first.lower() or "interrupted" in first.lower() or "max_statement_time" in first:
        return f"statement timeout: {first}" if "timeout" not in first.lower() else first
    name = type(exc).__name__
    return f"{name}: {first}" if first else name


# --------------------------------------------------------------------------- streaming (campaign audiences)
# Kept below the rest of the module (its import too) so that this section merges apart from changes above it.

from collections.abc import AsyncIterator  # noqa: E402 - see above


async def stream_query(
    rt: Runtime,
    tenant_id: str,
    source_id: str,
    sql: str,
    params: dict[str, Any] | None = None,
    *,
    batch_size: int = 1000,
    timeout: float | None = None,  # noqa: ASYNC109 - the database's own statement timeout, per fetch
    field: str = "sql",
) -> AsyncIterator[list[dict[str, Any]]]:
    """Every row of one read-only ``SELECT`` on the tenant's data source, in lists of at most ``batch_size``.

    For audiences past the row cap (a campaign over 100,000 customers): the same checks as :func:`run_query`
    (:func:`check_query`, a 422 naming ``field``; the outbound guard; a read-only transaction), no row cap, and
    a server-side cursor so memory holds one batch. The timeout bounds each fetch, not the whole stream: the
    caller does its own work between two batches while the read transaction stays open."""
    try:
        check_query(sql)  # every backend's rules at once (the strictest reading), before the source is read
    except ValueError as exc:
        raise ValidationFailed(str(exc), field=field) from None
    async with rt.sessions() as session:
        row = (
            await session.execute(
                select(DataSource).where(DataSource.id == source_id, DataSource.tenant_id == tenant_id)
            )
        ).scalar_one_or_none()
    if row is None:
        raise NotFound(f"no data source {source_id!r}")
    url = str(rt.credentials.open(row.credentials)["url"])
    seconds = min(timeout or rt.settings.data_source_timeout_seconds, rt.settings.data_source_timeout_seconds)
    try:
        target = parse_url(url)
        await _guard(rt, target)
    except ValueError as exc:
        raise DataSourceError(f"url: {exc}") from None
    except BlockedDestination as exc:
        raise DataSourceError(str(exc)) from None
    except OSError as exc:
        raise DataSourceError(f"cannot resolve {target.host}: {exc}") from None
    # Connections go to the addresses the outbound guard checked, as run_query's do.
    engine = await rt.data_sources.engine(f"dsr:{row.id}", row.updated_at.isoformat(), target, rt.outbound)
    statement = sql.strip().rstrip(";").strip()
    try:
        async with engine.connect() as conn:
            clock = await _begin_streaming(conn, target.backend, seconds)
            try:
                clock.restart()
                async with asyncio.timeout(seconds + _GRACE_SECONDS):
                    result = await conn.stream(text(statement), params or {})
                columns = list(result.keys())
                while True:
                    clock.restart()
                    async with asyncio.timeout(seconds + _GRACE_SECONDS):
                        chunk = await result.fetchmany(batch_size)
                    if not chunk:
                        break
                    yield [dict(zip(columns, r, strict=False)) for r in chunk]
                await result.close()
            finally:
                await conn.rollback()  # nothing to keep: it was read-only
    except (HeraldError, GeneratorExit):
        raise
    except TimeoutError:
        raise DataSourceError(f"timed out after {seconds:g} s") from None
    except Exception as exc:  # the driver's own errors (asyncpg, PyMySQL, sqlite3) are reasons too
        raise DataSourceError(describe_error(exc)) from None


class _FetchClock:
    """SQLite's deadline, moved forward before each fetch (its progress handler reads it)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.deadline = time.monotonic() + seconds

    def restart(self) -> None:
        self.deadline = time.monotonic() + self.seconds

    def expired(self) -> bool:
        return time.monotonic() > self.deadline


async def _begin_streaming(conn: AsyncConnection, backend: str, seconds: float) -> _FetchClock:
    """:func:`_begin_read_only` for a stream: the same transaction, with SQLite's deadline per fetch."""
    clock = _FetchClock(seconds)
    if backend != "sqlite":
        await _begin_read_only(conn, backend, seconds)
        return clock
    await conn.exec_driver_sql("PRAGMA query_only = ON")  # the file is opened read-only as well
    raw = await conn.get_raw_connection()
    driver: Any = raw.driver_connection
    await driver.set_progress_handler(clock.expired, _SQLITE_CHECK_EVERY)
    return clock
