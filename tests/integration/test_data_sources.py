"""Data sources: a tenant's own database on SQLite, PostgreSQL and MariaDB, registered through the API (URL
sealed, shown masked, probed when saved) and read only through run_query: one SELECT, read-only, with a
statement timeout and a row cap. Herald's own database is SQLite or PostgreSQL (the usual fixtures).

MariaDB comes from ``HERALD_TEST_MARIADB`` (default 127.0.0.1:3306, root without a password); when it is
unreachable these tests fail in CI (``CI`` or ``HERALD_CI`` set; ``.ci/run`` starts MariaDB and sets ``CI``) and
are skipped elsewhere, as the PostgreSQL ones are."""

from __future__ import annotations

import itertools
import os
import re
import socket
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiomysql
import asyncpg
import httpx
import pytest
from sqlalchemy import select

from herald.admin.tenants import get_or_create_tenant
from herald.core.errors import NotFound, ValidationFailed
from herald.core.netguard import OutboundGuard
from herald.runtime import Runtime
from herald.storage import datasources
from herald.storage.models import AuditEntry, DataSource
from tests.conftest import PG_URL, new_tenant, required_server

MARIADB_HOST = os.environ.get("HERALD_TEST_MARIADB", "127.0.0.1:3306")
PASSWORD = "s3cret-Pw-never-shown"
_counter = itertools.count()
ROWS = [(i, f"customer {i}", f"c{i}@example.com") for i in range(1, 6)]


@dataclass
class TenantDb:
    backend: str
    url: str  # with the password, when the backend has one
    other_url: str  # a second database of the same backend (same schema, one row)
    has_password: bool


def _sqlite_db(path: Path, rows: list[tuple[int, str, str]]) -> str:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, email TEXT)")
        conn.executemany("INSERT INTO customers VALUES (?, ?, ?)", rows)
    conn.close()
    return f"sqlite:///{path}"


async def _pg_db(name: str, rows: list[tuple[int, str, str]]) -> str:
    admin = await asyncpg.connect(PG_URL, timeout=5)
    try:
        await admin.execute(f"CREATE DATABASE {name}")
    finally:
        await admin.close()
    base = PG_URL.rsplit("/", 1)[0]
    conn = await asyncpg.connect(f"{base}/{name}", timeout=5)
    try:
        await conn.execute("CREATE TABLE customers (id int PRIMARY KEY, name text, email text)")
        await conn.executemany("INSERT INTO customers VALUES ($1, $2, $3)", rows)
    finally:
        await conn.close()
    # PostgreSQL here trusts local connections: the password is carried, sealed and masked all the same.
    return base.replace("postgresql://postgres@", f"postgresql://postgres:{PASSWORD}@") + f"/{name}"


async def _pg_drop(name: str) -> None:
    admin = await asyncpg.connect(PG_URL, timeout=5)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        await admin.close()


async def _maria(sql: list[str], db: str | None = None, rows: list[Any] | None = None) -> None:
    host, port = MARIADB_HOST.split(":")
    conn = await aiomysql.connect(
        host=host, port=int(port), user="root", password="", db=db, connect_timeout=5
    )
    try:
        async with conn.cursor() as cur:
            for statement in sql:
                await cur.execute(statement)
            if rows:
                await cur.executemany("INSERT INTO customers VALUES (%s, %s, %s)", rows)
        await conn.commit()
    finally:
        conn.close()


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
async def tenant_db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[TenantDb]:
    n = f"{os.getpid()}_{next(_counter)}"
    if request.param == "sqlite":
        yield TenantDb(
            "sqlite",
            _sqlite_db(tmp_path / "tenant.db", ROWS),
            _sqlite_db(tmp_path / "other.db", ROWS[:1]),
            has_password=False,
        )
        return
    if request.param == "postgresql":
        names = [f"ds_t_{n}", f"ds_o_{n}"]
        try:
            url = await _pg_db(names[0], ROWS)
        except (OSError, asyncpg.PostgresError) as exc:
            required_server(f"PostgreSQL at {PG_URL}", exc)
        other = await _pg_db(names[1], ROWS[:1])
        yield TenantDb("postgresql", url, other, has_password=True)
        for name in names:
            await _pg_drop(name)
        return
    names, user = [f"ds_t_{n}", f"ds_o_{n}"], f"ds_u_{n}"
    try:
        await _maria([f"CREATE DATABASE {names[0]}", f"CREATE DATABASE {names[1]}"])
    except (OSError, aiomysql.Error) as exc:
        required_server(f"MariaDB at {MARIADB_HOST}", exc)
    table = "CREATE TABLE customers (id int PRIMARY KEY, name varchar(100), email varchar(200))"
    await _maria([table], names[0], ROWS)
    await _maria([table], names[1], ROWS[:1])
    await _maria(
        [
            f"CREATE USER '{user}'@'%' IDENTIFIED BY '{PASSWORD}'",
            f"GRANT ALL ON {names[0]}.* TO '{user}'@'%'",
            f"GRANT ALL ON {names[1]}.* TO '{user}'@'%'",
        ]
    )
    base = f"mysql://{user}:{PASSWORD}@{MARIADB_HOST}"
    yield TenantDb("mysql", f"{base}/{names[0]}", f"{base}/{names[1]}", has_password=True)
    await _maria([f"DROP DATABASE IF EXISTS {names[0]}", f"DROP DATABASE IF EXISTS {names[1]}"])
    await _maria([f"DROP USER IF EXISTS '{user}'@'%'"])


_fail_or_skip = required_server  # the name other test modules import


async def tenant_id(rt: Runtime, name: str = "acme") -> str:
    async with rt.sessions.begin() as session:
        return (await get_or_create_tenant(session, name)).id


async def register(
    client: httpx.AsyncClient, auth: dict[str, str], url: str, name: str = "crm"
) -> dict[str, Any]:
    response = await client.post("/api/v1/data-sources", json={"name": name, "url": url}, headers=auth)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def stored_url(rt: Runtime, source_id: str) -> str:
    async with rt.sessions() as session:
        row = (await session.execute(select(DataSource).where(DataSource.id == source_id))).scalar_one()
    return str(rt.credentials.open(row.credentials)["url"])


def timeout_sql(backend: str) -> str:
    """A query that runs for long without a sleep function (those are refused)."""
    endless = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"
    return {
        "postgresql": endless,
        # MariaDB stops a recursive CTE after 1000 rounds; a cross join of the catalog runs for minutes.
        "mysql": "SELECT count(*) AS n FROM information_schema.columns a, information_schema.columns b, "
        "information_schema.columns c",
        "sqlite": endless,
    }[backend]


# --------------------------------------------------------------------------- the API


async def test_crud_never_shows_the_secret(
    rt: Runtime, client: httpx.AsyncClient, auth: dict[str, str], tenant_db: TenantDb
) -> None:
    created = await register(client, auth, tenant_db.url)
    assert created["backend"] == tenant_db.backend
    assert created["id"].startswith("dsr_")
    if tenant_db.has_password:
        assert ":***@" in created["url"]
    second = await register(client, auth, tenant_db.other_url, name="warehouse")

    first_page = (await client.get("/api/v1/data-sources", params={"limit": 1}, headers=auth)).json()
    assert len(first_page["items"]) == 1
    rest = await client.get(
        "/api/v1/data-sources", params={"limit": 1, "cursor": first_page["next_cursor"]}, headers=auth
    )
    assert {first_page["items"][0]["id"], rest.json()["items"][0]["id"]} == {created["id"], second["id"]}
    got = await client.get(f"/api/v1/data-sources/{created['id']}", headers=auth)
    assert got.json() == created

    # The masked URL sent back keeps the stored password; pointing it at the other database is a real change.
    if tenant_db.has_password:
        elsewhere = await client.patch(
            f"/api/v1/data-sources/{created['id']}",
            json={"url": datasources.mask_url(tenant_db.other_url)},
            headers=auth,
        )
        assert elsewhere.status_code == 422, elsewhere.text
        assert elsewhere.json()["errors"][0]["field"] == "url"
        assert "unchanged" in elsewhere.json()["errors"][0]["message"]
        kept = await client.patch(
            f"/api/v1/data-sources/{created['id']}", json={"url": created["url"]}, headers=auth
        )
        assert kept.status_code == 200, kept.text
        assert PASSWORD in await stored_url(rt, created["id"])
    patched = await client.patch(
        f"/api/v1/data-sources/{created['id']}",
        json={"name": "crm2", "url": tenant_db.other_url},
        headers=auth,
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["name"] == "crm2"
    result = await datasources.run_query(rt, await tenant_id(rt), created["id"], "SELECT id FROM customers")
    assert [row["id"] for row in result.rows] == [1]

    listed = await client.get("/api/v1/data-sources", headers=auth)
    answers = " ".join(r.text for r in (got, patched, listed))
    assert PASSWORD not in answers
    async with rt.sessions() as session:
        stored = (await session.execute(select(DataSource))).scalars().all()
        audit = (await session.execute(select(AuditEntry))).scalars().all()
    assert all(PASSWORD.encode() not in row.credentials for row in stored)
    assert all(PASSWORD not in str(entry.detail) for entry in audit)
    assert {e.action for e in audit} >= {"data_source.created", "data_source.updated"}

    deleted = await client.delete(f"/api/v1/data-sources/{created['id']}", headers=auth)
    assert deleted.status_code == 204
    assert (await client.get(f"/api/v1/data-sources/{created['id']}", headers=auth)).status_code == 404
    assert f"dsr:{created['id']}" not in rt.data_sources._engines


async def test_a_source_that_cannot_connect_is_a_422_naming_url(
    client: httpx.AsyncClient, auth: dict[str, str], tenant_db: TenantDb, tmp_path: Path
) -> None:
    bad = {
        "sqlite": f"sqlite:///{tmp_path / 'absent.db'}",
        "postgresql": tenant_db.url.rsplit("/", 1)[0] + "/no_such_database_here",
        "mysql": tenant_db.url.replace(PASSWORD, "wrong-password"),
    }[tenant_db.backend]
    response = await client.post("/api/v1/data-sources", json={"name": "x", "url": bad}, headers=auth)
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["errors"][0]["field"] == "url"
    assert "cannot connect" in problem["errors"][0]["message"]
    assert "wrong-password" not in response.text
    not_a_url = await client.post(
        "/api/v1/data-sources", json={"name": "x", "url": "oracle://h/db"}, headers=auth
    )
    assert not_a_url.status_code == 422
    assert not_a_url.json()["errors"][0]["field"] == "url"


async def test_another_tenants_source_is_not_found(
    rt: Runtime, client: httpx.AsyncClient, auth: dict[str, str], tenant_db: TenantDb
) -> None:
    created = await register(client, auth, tenant_db.url)
    other = await new_tenant(rt, "globex")
    for method in ("GET", "DELETE"):
        response = await client.request(method, f"/api/v1/data-sources/{created['id']}", headers=other)
        assert response.status_code == 404
    patched = await client.patch(
        f"/api/v1/data-sources/{created['id']}", json={"name": "mine"}, headers=other
    )
    assert patched.status_code == 404
    assert (await client.get("/api/v1/data-sources", headers=other)).json()["items"] == []
    with pytest.raises(NotFound):
        await datasources.run_query(rt, await tenant_id(rt, "globex"), created["id"], "SELECT 1")


# --------------------------------------------------------------------------- run_query


async def test_run_query_binds_caps_and_refuses_writes(
    rt: Runtime, client: httpx.AsyncClient, auth: dict[str, str], tenant_db: TenantDb
) -> None:
    source = (await register(client, auth, tenant_db.url))["id"]
    tenant = await tenant_id(rt)

    found = await datasources.run_query(
        rt, tenant, source, "SELECT id, email FROM customers WHERE name = :name", {"name": "customer 3"}
    )
    assert found.columns == ["id", "email"]
    assert found.rows == [{"id": 3, "email": "c3@example.com"}]
    assert found.truncated is False
    # A bound value is a value, never SQL.
    injected = await datasources.run_query(
        rt, tenant, source, "SELECT id FROM customers WHERE name = :name", {"name": "x' OR '1'='1"}
    )
    assert injected.rows == []

    capped = await datasources.run_query(
        rt, tenant, source, "SELECT id FROM customers ORDER BY id", row_cap=2
    )
    assert [row["id"] for row in capped.rows] == [1, 2]
    assert capped.truncated is True
    exact = await datasources.run_query(rt, tenant, source, "SELECT id FROM customers", row_cap=5)
    assert len(exact.rows) == 5
    assert exact.truncated is False

    for sql in (
        "SELECT 1; DELETE FROM customers",
        "UPDATE customers SET name = 'pwned'",
        "WITH gone AS (DELETE FROM customers RETURNING id) SELECT count(*) FROM gone",
        "SELECT id INTO copied FROM customers",
    ):
        with pytest.raises(ValidationFailed) as exc:
            await datasources.run_query(rt, tenant, source, sql)
        assert exc.value.field == "sql"
    still = await datasources.run_query(rt, tenant, source, "SELECT count(*) AS n FROM customers")
    assert still.rows == [{"n": 5}]


async def test_the_transaction_itself_is_read_only(tenant_db: TenantDb) -> None:
    """Below the query check: a write that got past it would still be refused by the database."""
    target = datasources.parse_url(tenant_db.url)
    with pytest.raises(Exception, match=r"(?i)read.only|readonly|query_only"):
        await datasources.execute_read_only(target, "UPDATE customers SET name = 'pwned'", timeout=5.0)
    result = await datasources.execute_read_only(
        target, "SELECT count(*) AS n FROM customers WHERE name = 'pwned'", timeout=5.0
    )
    assert result.rows == [{"n": 0}]


async def test_a_slow_query_is_stopped_by_the_timeout(
    rt: Runtime, client: httpx.AsyncClient, auth: dict[str, str], tenant_db: TenantDb
) -> None:
    source = (await register(client, auth, tenant_db.url))["id"]
    with pytest.raises(datasources.DataSourceError) as exc:
        await datasources.run_query(
            rt, await tenant_id(rt), source, timeout_sql(tenant_db.backend), timeout=1.0
        )
    assert (
        "timeout" in str(exc.value).lower() or "timed out" in str(exc.value) or "interrupt" in str(exc.value)
    )


@pytest.mark.parametrize("settings_overrides", [{"outbound_guard": True}])
async def test_the_outbound_guard_applies_to_the_host(
    rt: Runtime, client: httpx.AsyncClient, auth: dict[str, str], tenant_db: TenantDb
) -> None:
    if tenant_db.backend == "sqlite":
        pytest.skip("a SQLite source is a file, not a host")
    refused = await client.post(
        "/api/v1/data-sources", json={"name": "x", "url": tenant_db.url}, headers=auth
    )
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "url"
    assert "loopback" in refused.json()["errors"][0]["message"]
    # Allowed by the existing setting, it is accepted; taken off the list, queries are refused again.
    allowing = rt.settings.model_copy(update={"outbound_allow": ["127.0.0.1"]})
    rt.outbound = OutboundGuard(allowing)
    source = (await register(client, auth, tenant_db.url))["id"]
    rt.outbound = OutboundGuard(rt.settings)
    with pytest.raises(datasources.DataSourceError, match="loopback"):
        await datasources.run_query(rt, await tenant_id(rt), source, "SELECT 1")


REFUSED_PARAMETERS = {
    "postgresql": ["host=/var/run/postgresql", "hostaddr=10.0.0.5", "passfile=/etc/passwd", "service=prod",
                   "options=-c%20default_transaction_read_only%3Doff", "sslrootcert=/etc/ssl/certs/ca.pem"],
    "mysql": ["host=10.0.0.5", "unix_socket=/run/mysqld/mysqld.sock", "read_default_file=/etc/mysql/my.cnf",
              "read_default_group=client", "local_infile=1", "init_command=SET%20autocommit%3D1",
              "ssl_ca=/etc/ssl/certs/ca.pem"],
    "sqlite": ["mode=rw", "immutable=1"],
}  # fmt: skip


async def test_url_parameters_off_the_allow_list_are_a_422_naming_url(
    client: httpx.AsyncClient, auth: dict[str, str], tenant_db: TenantDb
) -> None:
    for parameter in REFUSED_PARAMETERS[tenant_db.backend]:
        url = f"{tenant_db.url}?{parameter}"
        response = await client.post("/api/v1/data-sources", json={"name": "x", "url": url}, headers=auth)
        assert response.status_code == 422, (parameter, response.text)
        error = response.json()["errors"][0]
        assert error["field"] == "url"
        name = parameter.split("=", 1)[0]
        assert f"'{name}' is not accepted" in error["message"] or "no query parameters" in error["message"]
    created = await register(client, auth, tenant_db.url)
    patched = await client.patch(
        f"/api/v1/data-sources/{created['id']}",
        json={"url": f"{created['url']}?{REFUSED_PARAMETERS[tenant_db.backend][0]}"},
        headers=auth,
    )
    assert patched.status_code == 422
    assert patched.json()["errors"][0]["field"] == "url"


async def test_herald_sets_the_connection_up_itself(
    rt: Runtime, client: httpx.AsyncClient, auth: dict[str, str], tenant_db: TenantDb
) -> None:
    """Allowed parameters reach the driver; what Herald pins, the URL cannot change."""
    allowed = {
        "postgresql": "?application_name=crm-reader&sslmode=prefer&connect_timeout=3",
        "mysql": "?charset=utf8mb4&ssl_mode=disabled&connect_timeout=3",
        "sqlite": "",
    }[tenant_db.backend]
    source = (await register(client, auth, tenant_db.url + allowed))["id"]
    settings_sql = {
        "postgresql": "SELECT current_setting('application_name') AS a, "
        "current_setting('default_transaction_read_only') AS b, current_setting('standard_conforming_strings') AS c",
        "mysql": "SELECT @@SESSION.sql_mode AS a, @@SESSION.character_set_client AS b",
        "sqlite": "SELECT 1 AS a",
    }[tenant_db.backend]
    found = await datasources.run_query(rt, await tenant_id(rt), source, settings_sql)
    assert (
        found.rows[0]
        == {
            "postgresql": {"a": "crm-reader", "b": "on", "c": "on"},
            "mysql": {
                "a": "STRICT_TRANS_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION",
                "b": "utf8mb4",
            },
            "sqlite": {"a": 1},
        }[tenant_db.backend]
    )


async def test_a_required_tls_mode_is_never_downgraded(
    rt: Runtime, client: httpx.AsyncClient, auth: dict[str, str], tenant_db: TenantDb
) -> None:
    """With TLS required the source either talks TLS or is not saved; never plain text behind the user's back."""
    if tenant_db.backend == "sqlite":
        pytest.skip("a SQLite source is a file")
    required, tls_sql = {
        "postgresql": ("?sslmode=require", "SELECT ssl AS on FROM pg_stat_ssl WHERE pid = pg_backend_pid()"),
        "mysql": (
            "?ssl_mode=required",
            "SELECT VARIABLE_VALUE <> '' AS on FROM information_schema.SESSION_STATUS "
            "WHERE VARIABLE_NAME = 'SSL_CIPHER'",
        ),
    }[tenant_db.backend]
    response = await client.post(
        "/api/v1/data-sources", json={"name": "tls", "url": tenant_db.url + required}, headers=auth
    )
    if response.status_code == 422:  # this server offers no TLS
        error = response.json()["errors"][0]
        assert error["field"] == "url"
        assert re.search(r"(?i)ssl|tls", error["message"]), error["message"]
        return
    assert response.status_code == 201, response.text
    result = await datasources.run_query(rt, await tenant_id(rt), response.json()["id"], tls_sql)
    assert result.rows == [{"on": True}] or result.rows == [{"on": 1}]


async def test_the_server_runs_one_statement_per_call(tenant_db: TenantDb) -> None:
    """Below the query check: the driver and the server refuse a second statement (MySQL's multi-statements
    are off), so a ';' that got past the check would still not run a second statement."""
    target = datasources.parse_url(tenant_db.url)
    with pytest.raises(Exception, match=r"(?i)syntax|multiple commands|one statement"):
        await datasources.execute_read_only(target, "SELECT 1; SELECT 2", timeout=5.0)


DANGEROUS = {
    "postgresql": ["SELECT pg_read_file('/etc/passwd')", 'SELECT "pg_sleep"(5)', "SELECT lo_import('/etc/passwd')",
                   "SELECT set_config('statement_timeout', '0', false)", "SELECT 1 # pg_sleep(5)::int"],
    "mysql": ["SELECT LOAD_FILE('/etc/passwd')", "SELECT `sleep`(5)", "SELECT BENCHMARK(100000000, MD5('x'))",
              "SELECT id FROM customers INTO OUTFILE '/tmp/x'", "SELECT GET_LOCK('x', 5)"],
    "sqlite": ["SELECT load_extension('/tmp/x.so')", "SELECT [readfile]('/etc/passwd')",
               "SELECT writefile('/tmp/x', 'y')"],
}  # fmt: skip


async def test_dangerous_functions_and_row_locks_are_refused_naming_the_callers_field(
    rt: Runtime, client: httpx.AsyncClient, auth: dict[str, str], tenant_db: TenantDb
) -> None:
    source = (await register(client, auth, tenant_db.url))["id"]
    tenant = await tenant_id(rt)
    locks = ["SELECT id FROM customers FOR SHARE", "SELECT id FROM customers FOR UPDATE"]
    if tenant_db.backend == "mysql":
        locks.append("SELECT id FROM customers LOCK IN SHARE MODE")
    for sql in DANGEROUS[tenant_db.backend] + locks:
        with pytest.raises(ValidationFailed) as exc:
            await datasources.run_query(rt, tenant, source, sql, field="audience_query")
        assert exc.value.field == "audience_query", sql
    with pytest.raises(ValidationFailed) as exc:  # positional callers keep the default field
        await datasources.run_query(rt, tenant, source, DANGEROUS[tenant_db.backend][0], None)
    assert exc.value.field == "sql"


@pytest.mark.parametrize("settings_overrides", [{"outbound_guard": True, "outbound_allow": "127.0.0.1/32"}])
async def test_the_connection_goes_to_the_address_the_guard_checked(
    rt: Runtime, client: httpx.AsyncClient, auth: dict[str, str], tenant_db: TenantDb
) -> None:
    """``tenant-db.test`` resolves (through the guard's resolver) to the allowed 127.0.0.1 and nowhere else: the
    source works only if the driver connects to that address rather than looking the name up again."""
    if tenant_db.backend == "sqlite":
        pytest.skip("a SQLite source is a file, not a host")
    lookups: list[str] = []

    async def resolve(host: str, port: int) -> list[str]:
        lookups.append(host)
        if host == "tenant-db.test":
            return ["127.0.0.1"]
        return [info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]

    rt.outbound = OutboundGuard(rt.settings, resolver=resolve)
    named = tenant_db.url.replace("@127.0.0.1:", "@tenant-db.test:")
    assert named != tenant_db.url
    source = (await register(client, auth, named))["id"]
    result = await datasources.run_query(
        rt, await tenant_id(rt), source, "SELECT count(*) AS n FROM customers"
    )
    assert result.rows == [{"n": 5}]
    assert "tenant-db.test" in lookups

    # A name resolving to a blocked address (localhost: loopback, here only 127.0.0.1/32 is allowed, not ::1
    # nor the name) is refused when saved.
    rt.outbound = OutboundGuard(rt.settings.model_copy(update={"outbound_allow": []}))
    local = tenant_db.url.replace("@127.0.0.1:", "@localhost:")
    refused = await client.post("/api/v1/data-sources", json={"name": "x", "url": local}, headers=auth)
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"][0]["field"] == "url"
    assert "loopback" in refused.json()["errors"][0]["message"]


def test_an_unreachable_server_fails_in_ci_and_is_skipped_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    unreachable = ConnectionRefusedError("connection refused")
    for name in ("CI", "HERALD_CI"):
        monkeypatch.delenv("CI", raising=False)
        monkeypatch.delenv("HERALD_CI", raising=False)
        monkeypatch.setenv(name, "true")
        with pytest.raises(pytest.fail.Exception, match="required in CI"):
            required_server("MariaDB at 127.0.0.1:3306", unreachable)
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("HERALD_CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="unreachable"):
        required_server("MariaDB at 127.0.0.1:3306", unreachable)


# --------------------------------------------------------------------------- monitors


async def test_a_monitor_reads_through_a_data_source(
    rt: Runtime, client: httpx.AsyncClient, auth: dict[str, str], tenant_db: TenantDb
) -> None:
    source = (await register(client, auth, tenant_db.url))["id"]
    body = {
        "name": "customers",
        "condition_type": "database_query",
        "threshold_config": {"metric": "customers", "operator": ">", "value": 3},
        "data_source_id": source,
        "query": "SELECT count(*) FROM customers",
    }
    created = await client.post("/api/v1/monitoring/condition/create", json=body, headers=auth)
    assert created.status_code == 201, created.text
    tested = await client.post(f"/api/v1/monitoring/condition/{created.json()['id']}/test", headers=auth)
    assert tested.status_code == 200, tested.text
    assert tested.json()["current_value"] == 5
    assert tested.json()["triggered"] is True

    dangerous = {**body, "query": DANGEROUS[tenant_db.backend][0]}
    refused = await client.post("/api/v1/monitoring/condition/create", json=dangerous, headers=auth)
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"][0]["field"] == "condition.query"

    other = await new_tenant(rt, "globex")
    foreign = await client.post("/api/v1/monitoring/condition/create", json=body, headers=other)
    assert foreign.status_code == 422
    assert foreign.json()["errors"][0]["field"] == "condition.data_source_id"


async def test_a_monitor_on_a_legacy_url_shows_it_masked(
    client: httpx.AsyncClient, auth: dict[str, str], tenant_db: TenantDb
) -> None:
    if not tenant_db.has_password:
        pytest.skip("no password in a SQLite URL")
    leaf = {
        "condition_type": "database_query",
        "threshold_config": {"metric": "customers", "operator": ">", "value": 3},
        "data_source_url": tenant_db.url,
        "query": "SELECT count(*) FROM customers",
    }
    body = {
        "name": "legacy",
        "condition_type": "composite",
        "composite_logic": "AND",
        "composite_conditions": [leaf],
    }
    created = await client.post("/api/v1/monitoring/condition/create", json=body, headers=auth)
    assert created.status_code == 201, created.text
    assert PASSWORD not in created.text
    assert created.json()["composite_conditions"][0]["data_source_url"] == datasources.mask_url(tenant_db.url)
    tested = await client.post(f"/api/v1/monitoring/condition/{created.json()['id']}/test", headers=auth)
    assert tested.json()["current_value"] == 5
