"""Data source URLs and queries, without a database: the URL query allow-list per backend, the masked password
kept only for the same destination, the TLS server name, and the query check as each backend lexes SQL
(dangerous functions by name whatever the case or quoting, row locks, and quoting tricks that would hide them)."""

from __future__ import annotations

import ssl

import pytest

from herald.storage import datasources
from herald.storage.datasources import check_query, keep_password, parse_url, tls_context

# --------------------------------------------------------------------------- URL query parameters

PG = "postgresql://crm:pw@db.example.com:5432/crm"
MY = "mysql://crm:pw@db.example.com:3306/crm"
LITE = "sqlite:////srv/data/crm.db"


@pytest.mark.parametrize(
    ("base", "parameter"),
    [
        (PG, "host=/var/run/postgresql"),
        (PG, "hostaddr=10.0.0.5"),
        (PG, "port=6432"),
        (PG, "user=postgres"),
        (PG, "passfile=/root/.pgpass"),
        (PG, "service=prod"),
        (PG, "options=-c%20default_transaction_read_only%3Doff"),
        (PG, "sslrootcert=/etc/ssl/private/ca.pem"),
        (PG, "sslcert=/etc/ssl/private/client.pem"),
        (PG, "sslkey=/etc/ssl/private/client.key"),
        (PG, "sslpassword=x"),
        (PG, "sslcrl=/etc/ssl/crl.pem"),
        (PG, "krbsrvname=postgres"),
        (PG, "server_settings=x"),
        (PG, "direct_tls=true"),
        (PG, "target_session_attrs=any"),
        (MY, "host=10.0.0.5"),
        (MY, "unix_socket=/run/mysqld/mysqld.sock"),
        (MY, "read_default_file=/etc/mysql/debian.cnf"),
        (MY, "read_default_group=client"),
        (MY, "local_infile=1"),
        (MY, "init_command=SET%20GLOBAL%20general_log%3D1"),
        (MY, "sql_mode=ANSI_QUOTES"),
        (MY, "client_flag=65536"),
        (MY, "autocommit=true"),
        (MY, "ssl_ca=/etc/ssl/private/ca.pem"),
        (MY, "ssl_cert=/etc/ssl/private/client.pem"),
        (MY, "ssl_key=/etc/ssl/private/client.key"),
        (MY, "ssl_capath=/etc/ssl/private"),
        (MY, "auth_plugin=mysql_clear_password"),
        (MY, "server_public_key=x"),
        (LITE, "mode=rw"),
        (LITE, "immutable=1"),
        (LITE, "vfs=unix-none"),
        (LITE, "cache=shared"),
    ],
)
def test_a_parameter_off_the_allow_list_is_refused(base: str, parameter: str) -> None:
    name = parameter.split("=", 1)[0]
    expected = "takes no query parameters" if base == LITE else f"parameter '{name}' is not accepted"
    with pytest.raises(ValueError, match=expected):
        parse_url(f"{base}?{parameter}")


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        (f"{PG}?sslmode=sometimes", "sslmode"),
        (f"{PG}?sslmode=require&sslmode=disable", "more than once"),
        (f"{PG}?sslmode=require&ssl=false", "repeats"),
        (f"{PG}?connect_timeout=0", "connect_timeout"),
        (f"{PG}?connect_timeout=600", "connect_timeout"),
        (f"{PG}?connect_timeout=soon", "connect_timeout"),
        (f"{PG}?application_name=a%0Ab", "application_name"),
        (f"{MY}?charset=utf8mb4;DROP", "charset"),
        (f"{MY}?charset=klingon", "charset"),
        (f"{MY}?ssl_mode=verify-full", "ssl_mode"),
        ("postgresql://crm@%2Fvar%2Frun%2Fpostgresql/crm", "host name or an IP address"),
        ("postgresql://crm@db1,db2/crm", "host name or an IP address"),
    ],
)
def test_an_allowed_parameter_with_a_bad_value_is_refused(url: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_url(url)


def test_allowed_parameters_are_checked_and_kept_off_the_driver_url() -> None:
    pg = parse_url(f"{PG}?sslmode=verify-full&application_name=crm%20reader&connect_timeout=3")
    assert pg.options == {"tls": "verify-full", "application_name": "crm reader", "connect_timeout": "3"}
    assert dict(pg.url.query) == {}
    assert parse_url(f"{PG}?ssl=true").options == {"tls": "verify-full"}
    my = parse_url(f"{MY}?charset=utf8mb4&ssl_mode=VERIFY_IDENTITY")
    assert my.options == {"charset": "utf8mb4", "tls": "verify-full"}
    assert parse_url(f"{MY}?ssl=false").options == {"tls": "disable"}
    assert parse_url(LITE).options == {}
    assert parse_url("postgresql://crm@[2001:db8::5]:5432/crm").host == "2001:db8::5"


# --------------------------------------------------------------------------- the masked password


def test_the_masked_password_stays_with_its_destination() -> None:
    stored = f"{PG}?sslmode=require"
    masked = datasources.mask_url(stored)
    assert "pw" not in masked
    assert keep_password(masked, stored) == stored
    renamed = keep_password("postgresql://crm:***@DB.example.com/crm?application_name=x", stored)
    assert renamed == f"{PG.replace(':5432', '')}?application_name=x".replace("db.example", "DB.example")
    for elsewhere in (
        "postgresql://crm:***@evil.example.net:5432/crm",
        "postgresql://crm:***@db.example.com:6543/crm",
        "postgresql://admin:***@db.example.com:5432/crm",
        "postgresql://crm:***@db.example.com:5432/other",
        "mysql://crm:***@db.example.com:5432/crm",
    ):
        with pytest.raises(ValueError, match="unchanged"):
            keep_password(elsewhere, stored)
    assert keep_password("postgresql://crm:new@evil.example.net/crm", stored).endswith(
        "@evil.example.net/crm"
    )


# --------------------------------------------------------------------------- TLS


def test_tls_names_the_server_by_its_host_name_whatever_address_was_reached() -> None:
    context = tls_context("verify-full", "db.example.com")
    assert context is not None
    assert context.check_hostname is True
    assert context.verify_mode == ssl.CERT_REQUIRED
    reached = context.wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO(), server_hostname="93.184.215.14")
    assert reached.server_hostname == "db.example.com"
    loose = tls_context("require", "10.0.0.5")
    assert loose is not None
    assert loose.verify_mode == ssl.CERT_NONE
    assert loose.server_name is None
    assert tls_context("disable", "db.example.com") is None


# --------------------------------------------------------------------------- the query check, per backend


@pytest.mark.parametrize(
    ("backend", "query", "reason"),
    [
        ("postgresql", "SELECT pg_read_file('/etc/passwd')", "pg_read_file"),
        ("postgresql", "SELECT PG_READ_BINARY_FILE('/etc/passwd')", "pg_read_binary_file"),
        ("postgresql", "SELECT \"pg_read_file\"('/etc/passwd')", "pg_read_file"),
        ("postgresql", "SELECT pg_catalog . pg_ls_dir('.')", "pg_ls_dir"),
        ("postgresql", "SELECT * FROM pg_stat_file('postgresql.conf')", "pg_stat_file"),
        ("postgresql", "SELECT lo_import('/etc/passwd')", "lo_import"),
        ("postgresql", "SELECT lo_export(1, '/tmp/x')", "lo_export"),
        ("postgresql", "SELECT * FROM dblink('host=10.0.0.5', 'SELECT 1') AS t(a int)", "dblink"),
        ("postgresql", "SELECT dblink_exec('x', 'DELETE FROM t')", "dblink_exec"),
        ("postgresql", "SELECT pg_sleep(10)", "pg_sleep"),
        ("postgresql", "SELECT pg_sleep_for('1 minute')", "pg_sleep_for"),
        ("postgresql", "SELECT set_config('statement_timeout', '0', false)", "set_config"),
        ("postgresql", "SELECT pg_advisory_lock(1)", "pg_advisory_lock"),
        ("postgresql", "SELECT query_to_xml('SELECT pg_read_file(''x'')', true, true, '')", "query_to_xml"),
        ("postgresql", "SELECT pg_terminate_backend(42)", "pg_terminate_backend"),
        ("postgresql", "COPY (SELECT 1) TO '/tmp/x'", "start with SELECT"),
        # '#' is an operator on PostgreSQL, not a comment: what follows it runs
        ("postgresql", "SELECT 1 # pg_read_file('/etc/passwd')::int", "pg_read_file"),
        # '\' does not escape in a standard string: the literal ends there
        ("postgresql", "SELECT '\\', pg_read_file('/etc/passwd') --'", "pg_read_file"),
        # comments nest on PostgreSQL
        ("postgresql", "SELECT 1 /* /* */ ' */, pg_read_file('x') --'", "pg_read_file"),
        ("postgresql", "SELECT U&\"pg\\005fread_file\"('x')", "Unicode-escaped"),
        ("postgresql", "SELECT id FROM t FOR SHARE", "row locks"),
        ("postgresql", "SELECT id FROM t FOR NO KEY UPDATE", "row locks"),
        ("postgresql", "SELECT id FROM t FOR KEY /* x */ SHARE SKIP LOCKED", "row locks"),
        ("mysql", "SELECT LOAD_FILE('/etc/passwd')", "load_file"),
        ("mysql", "SELECT `load_file`('/etc/passwd')", "load_file"),
        ("mysql", "SELECT 1 INTO OUTFILE '/tmp/x'", "outfile|INTO"),
        ("mysql", "SELECT * FROM t INTO DUMPFILE '/tmp/x'", "dumpfile|INTO"),
        ("mysql", "SELECT SLEEP(10)", "sleep"),
        ("mysql", "SELECT Sleep (10)", "sleep"),
        ("mysql", "SELECT BENCHMARK(1000000000, MD5('x'))", "benchmark"),
        ("mysql", "SELECT GET_LOCK('a', 10)", "get_lock"),
        # '--' starts a comment only before a space: 1--SLEEP(5) is 1 - -SLEEP(5)
        ("mysql", "SELECT 1 --SLEEP(5)", "sleep"),
        # "..." is a string with backslash escapes
        ("mysql", 'SELECT "\\"", SLEEP(5) -- "', "sleep"),
        # no dollar quoting: $a$ is a name
        ("mysql", "SELECT 1 AS $a$, SLEEP(5) AS $a$", "sleep"),
        ("mysql", "SELECT /*!50000 SLEEP(5) */ 1", "executable comments"),
        ("mysql", "SELECT /*M!100000 SLEEP(5) */ 1", "executable comments"),
        ("mysql", "SELECT id FROM t LOCK IN SHARE MODE", "row locks"),
        ("mysql", "SELECT id FROM t FOR UPDATE", "row locks"),
        ("sqlite", "SELECT load_extension('/tmp/evil.so')", "load_extension"),
        ("sqlite", "SELECT [load_extension]('/tmp/evil.so')", "load_extension"),
        ("sqlite", "SELECT readfile('/etc/passwd')", "readfile"),
        ("sqlite", "SELECT writefile('/tmp/x', 'y')", "writefile"),
        # [...] quotes an identifier: a ' inside it opens nothing
        ("sqlite", "SELECT [a'], load_extension('x'), [']", "load_extension"),
        ("sqlite", "ATTACH DATABASE '/tmp/x' AS y", "start with SELECT"),
        ("sqlite", "SELECT 1; PRAGMA writable_schema = 1", "one statement"),
        ("sqlite", "SELECT * FROM t WHERE x IN (SELECT 1) AND 'pragma' = (PRAGMA)", "pragma"),
    ],
)
def test_dangerous_functions_and_hiding_places_are_refused(backend: str, query: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        check_query(query, backend)
    with pytest.raises(
        ValueError, match="."
    ):  # an unknown backend: the query must pass every backend's rules
        check_query(query)


@pytest.mark.parametrize(
    ("backend", "query"),
    [
        ("postgresql", "SELECT current_setting('application_name')"),
        ("postgresql", "SELECT E'it\\'s' AS s"),
        ("postgresql", "SELECT '\\' AS backslash"),
        ("postgresql", "SELECT 5 # 3 AS xor"),
        ("postgresql", "SELECT $$ ; DELETE $$ AS text"),
        ("postgresql", 'SELECT "sleep" FROM naps'),
        ("postgresql", "SELECT 1 /* outer /* inner */ still a comment ; */"),
        ("postgresql", "SELECT id, updated_at, lock_timeout_ms FROM accounts WHERE shared"),
        ("mysql", "SELECT 'it\\'s; fine' AS s"),
        ("mysql", "SELECT 1 # a comment ; DROP TABLE t"),
        ("mysql", "SELECT 1--1"),
        ("mysql", "SELECT `order`, `group` FROM t"),
        ("mysql", "SELECT * FROM t WHERE id IN (SELECT id FROM u)"),
        ("sqlite", "SELECT [update], [delete] FROM t"),
        ("sqlite", "SELECT * FROM pragma_table_info('t')"),
        ("sqlite", "SELECT name FROM customers WHERE email LIKE '%@example.com'"),
    ],
)
def test_reads_pass_as_their_backend_reads_them(backend: str, query: str) -> None:
    check_query(query, backend)
