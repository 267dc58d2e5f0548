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

Values are bound by name (``:customer_id``), never interpolated. The host passes the outbound guard before every
connection, as HTTP destinations do. It lives in ``herald.storage`` because producers (monitors, campaigns),
which may not import one another, and admin all need it; it reaches the runtime only through ``rt``.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from sqlalchemy import select, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from herald.core.errors import HeraldError, NotFound, ValidationFailed
from herald.core.netguard import BlockedDestination
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


class DataSourceError(HeraldError):
    """A query on a data source failed (connection, timeout, SQL error); the message is a short reason."""


@dataclass(frozen=True)
class Target:
    """Where a data source URL points, parsed: the backend, the async SQLAlchemy URL, and the host to guard."""

    backend: str  # postgresql | mysql | sqlite
    url: URL
    host: str | None
    port: int | None
    path: str | None  # SQLite: the file


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
        return Target(
            "postgresql", url.set(drivername="postgresql+asyncpg"), url.host, url.port or 5432, None
        )
    if base in ("mysql", "mariadb"):
        if not url.host:
            raise ValueError("a MySQL/MariaDB URL needs a host: mysql://user:password@host:3306/db")
        if not url.database:
            raise ValueError("a MySQL/MariaDB URL needs a database: mysql://user:password@host:3306/db")
        return Target("mysql", url.set(drivername="mysql+aiomysql"), url.host, url.port or 3306, None)
    if base == "sqlite":
        path = url.database or ""
        if not path or path == ":memory:":
            raise ValueError("a SQLite source needs a file: sqlite:///path/to/file.db")
        return Target("sqlite", url, None, None, path)
    raise ValueError(
        f"unsupported scheme {url.drivername!r}: use postgresql://, mysql:// (MariaDB too) or sqlite:///"
    )


def mask_url(raw: str) -> str:
    """The URL as answers show it: the password and secret-looking query parameters replaced by ``***``."""
    url = make_url(raw.strip())
    query = {key: (MASK if _SECRET_PARAMS.search(key) else value) for key, value in url.query.items()}
    return url.set(query=query).render_as_string(hide_password=True).replace("%2A%2A%2A", MASK)


def keep_password(new: str, old: str) -> str:
    """``new`` with the password of ``old`` when ``new`` shows it masked: a client may send back the URL it read.

    Any other masked query parameter is taken from ``old`` as well."""
    url, previous = make_url(new.strip()), make_url(old)
    if url.password == MASK:
        url = url.set(password=previous.password)
    query = {
        key: (previous.query.get(key, value) if value == MASK else value) for key, value in url.query.items()
    }
    return url.set(query=query).render_as_string(hide_password=False)


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
_DOLLAR_TAG = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")


def _strip_sql(query: str) -> str:
    """The query with comments removed and string literals and quoted identifiers blanked to ``''``.

    What is left is the code whose words are keywords. Raises ValueError for an unterminated literal or comment.
    """
    out: list[str] = []
    i, n = 0, len(query)
    while i < n:
        ch = query[i]
        nxt = query[i + 1] if i + 1 < n else ""
        if (ch == "-" and nxt == "-") or ch == "#":  # '#' starts a comment on MySQL
            end = query.find("\n", i)
            i = n if end < 0 else end
            out.append(" ")
        elif ch == "/" and nxt == "*":
            end = query.find("*/", i + 2)
            if end < 0:
                raise ValueError("unterminated /* comment")
            if query.startswith("/*!", i):  # MySQL runs the text of /*! ... */ as code
                raise ValueError("MySQL executable comments (/*! ... */) are not allowed")
            i = end + 2
            out.append(" ")
        elif ch in "'\"`":
            out.append(" '' ")
            i = _end_of_quoted(query, i) + 1
        elif ch == "$" and (tag := _DOLLAR_TAG.match(query, i)) is not None and not _ident_before(query, i):
            end = query.find(tag.group(0), tag.end())
            if end < 0:
                raise ValueError("unterminated dollar-quoted string")
            out.append(" '' ")
            i = end + len(tag.group(0))
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _end_of_quoted(query: str, start: int) -> int:
    """Index of the quote closing the literal or identifier opened at ``start``."""
    quote_char, j, n = query[start], start + 1, len(query)
    while j < n:
        if query[j] == "\\" and quote_char == "'" and j + 1 < n:
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
    return index > 0 and (query[index - 1].isalnum() or query[index - 1] == "_")


def check_query(query: str) -> None:
    """Accept exactly one ``SELECT`` (or ``WITH ... SELECT``); raises ValueError saying why not.

    Keywords are matched as words outside literals, so a column named ``updated_at`` passes and a write hidden
    in a CTE (``WITH x AS (UPDATE ...)``) does not. The read-only transaction is the guard below this one."""
    body = _strip_sql(query).strip()
    if body.endswith(";"):
        body = body[:-1].rstrip()
    if not body:
        raise ValueError("the query is empty")
    if ";" in body:
        raise ValueError("only one statement is allowed (found ';' before the end)")
    first = re.match(r"\(*\s*([A-Za-z]+)", body)
    if first is None or first.group(1).upper() not in {"SELECT", "WITH"}:
        raise ValueError("the query must start with SELECT or WITH")
    words = {word.upper() for word in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", body)}
    refused = sorted(words & REFUSED_KEYWORDS)
    if refused:
        raise ValueError(f"only reads are allowed; found {', '.join(refused)}")
    if first.group(1).upper() == "WITH" and "SELECT" not in words:
        raise ValueError("a WITH query must end in a SELECT")


# --------------------------------------------------------------------------- engines


class DataSourceEngines:
    """One engine per data source, per process (``Runtime.data_sources``).

    Keyed by source id with the row's version (its ``updated_at``): a source changed by another process gets a
    new engine here at its next query, and the old one is disposed. PostgreSQL and MySQL keep a small pool;
    SQLite opens the file per query (NullPool), so no connection outlives the caller's event loop."""

    def __init__(self, max_engines: int = 256) -> None:
        self._engines: dict[str, tuple[str, AsyncEngine]] = {}
        self._max = max_engines

    async def engine(self, key: str, version: str, target: Target) -> AsyncEngine:
        cached = self._engines.get(key)
        if cached is not None and cached[0] == version:
            return cached[1]
        if cached is not None:
            await self.forget(key)
        if len(self._engines) >= self._max:
            await self.forget(next(iter(self._engines)))
        engine = _create_engine(target)
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


def _create_engine(target: Target) -> AsyncEngine:
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
    if target.backend == "postgresql":
        return create_async_engine(target.url, connect_args={"timeout": CONNECT_TIMEOUT}, **pool)
    return create_async_engine(target.url, connect_args={"connect_timeout": int(CONNECT_TIMEOUT)}, **pool)


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
) -> QueryResult:
    """Run one read-only ``SELECT`` on the tenant's data source ``source_id``.

    ``params`` are bound by name (``:name`` in ``sql``). ``row_cap`` and ``timeout`` default to the settings
    ``data_source_row_cap`` and ``data_source_timeout_seconds`` and cannot exceed them.

    Raises NotFound for an unknown source (or another tenant's), ValidationFailed (field ``sql``) for a query
    that is not a single SELECT, DataSourceError when the database refuses, fails or times out."""
    async with rt.sessions() as session:
        row = (
            await session.execute(
                select(DataSource).where(DataSource.id == source_id, DataSource.tenant_id == tenant_id)
            )
        ).scalar_one_or_none()
    if row is None:
        raise NotFound(f"no data source {source_id!r}")
    url = str(rt.credentials.open(row.credentials)["url"])
    return await _run(rt, f"dsr:{row.id}", row.updated_at.isoformat(), url, sql, params, row_cap, timeout)


async def run_on_url(
    rt: Runtime,
    url: str,
    sql: str,
    params: dict[str, Any] | None = None,
    *,
    row_cap: int | None = None,
    timeout: float | None = None,  # noqa: ASYNC109 - the database's own statement timeout
) -> QueryResult:
    """:func:`run_query` on a URL rather than a registered source (a monitor's legacy ``data_source_url``)."""
    key = "url:" + hashlib.sha256(url.encode()).hexdigest()
    return await _run(rt, key, "", url, sql, params, row_cap, timeout)


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
            await execute_read_only(target, "SELECT 1", timeout=CONNECT_TIMEOUT)
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
) -> QueryResult:
    """The bottom layer alone: ``sql`` in a read-only transaction with the timeout, on an engine of its own.

    No query check and no outbound guard: callers have done both (the probe), or test the transaction."""
    engines = DataSourceEngines()  # not cached: nothing is saved yet
    try:
        engine = await engines.engine("once", "", target)
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
) -> QueryResult:
    try:
        check_query(sql)
    except ValueError as exc:
        raise ValidationFailed(str(exc), field="sql") from None
    cap = min(row_cap or rt.settings.data_source_row_cap, rt.settings.data_source_row_cap)
    seconds = min(timeout or rt.settings.data_source_timeout_seconds, rt.settings.data_source_timeout_seconds)
    try:
        target = parse_url(url)
    except ValueError as exc:
        raise DataSourceError(f"url: {exc}") from None
    try:
        await _guard(rt, target)
    except BlockedDestination as exc:
        raise DataSourceError(str(exc)) from None
    except OSError as exc:
        raise DataSourceError(f"cannot resolve {target.host}: {exc}") from None
    engine = await rt.data_sources.engine(key, version, target)
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
        check_query(sql)
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
    engine = await rt.data_sources.engine(f"dsr:{row.id}", row.updated_at.isoformat(), target)
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
