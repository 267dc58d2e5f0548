"""Metric sources without a database: source validation, SELECT-only query checks, JSON paths, HTTP reads
through a mock transport, and the timeout around every read."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from herald.core.errors import ValidationFailed
from herald.producers.monitors import sources
from herald.producers.monitors.conditions import Leaf, Threshold
from herald.producers.monitors.sources import SourceContext, SourceError
from herald.runtime import Runtime
from herald.storage import datasources
from tests.conftest import make_settings

CTX = SourceContext(tenant_id="ten_1", agent_id="agent_1", timeout=2.0)


def leaf(condition_type: str, metric: str = "value", **source: Any) -> Leaf:
    return Leaf(
        condition_type=condition_type,
        threshold=Threshold(metric=metric, operator=">", value=1.0),
        source=source,
    )


@pytest.fixture
async def rt(tmp_path: Path) -> AsyncIterator[Runtime]:
    """A Runtime that never touches its database here (the engine connects lazily)."""
    runtime = Runtime(make_settings(f"sqlite:///{tmp_path / 'unused.db'}", tmp_path))
    yield runtime
    await runtime.close()


def serve(rt: Runtime, handler: Callable[[httpx.Request], Any]) -> list[httpx.Request]:
    seen: list[httpx.Request] = []

    async def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        result = handler(request)
        if asyncio.iscoroutine(result):
            result = await result
        assert isinstance(result, httpx.Response)
        return result

    rt.http = httpx.AsyncClient(transport=httpx.MockTransport(record))
    return seen


def field_of(exc: pytest.ExceptionInfo[ValidationFailed]) -> str | None:
    return exc.value.field


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize("kind", ["inbox_volume", "task_backlog", "metric"])
def test_pushed_sources_need_nothing_but_accept_labels(kind: str) -> None:
    sources.validate_source(leaf(kind), field="condition")
    sources.validate_source(leaf(kind, labels={"queue": "billing", "shard": 3}), field="condition")


def test_pushed_labels_must_be_an_object_of_scalars() -> None:
    with pytest.raises(ValidationFailed) as exc:
        sources.validate_source(leaf("metric", labels=["queue"]), field="condition")
    assert field_of(exc) == "condition.labels"
    with pytest.raises(ValidationFailed) as exc:
        sources.validate_source(leaf("metric", labels={"queue": {"nested": 1}}), field="c")
    assert field_of(exc) == "c.labels"


@pytest.mark.parametrize("url", ["ftp://example.com/x", "file:///etc/passwd", "example.com/metrics", 42])
def test_api_url_must_be_http(url: Any) -> None:
    with pytest.raises(ValidationFailed) as exc:
        sources.validate_source(leaf("api_metrics", url=url, json_path="a"), field="condition")
    assert field_of(exc) == "condition.url"


def test_api_url_needs_json_path() -> None:
    with pytest.raises(ValidationFailed) as exc:
        sources.validate_source(leaf("api_metrics", url="https://api.example/m"), field="condition")
    assert field_of(exc) == "condition.json_path"
    with pytest.raises(ValidationFailed) as exc:
        sources.validate_source(
            leaf("api_metrics", url="https://api.example/m", json_path="data..x"), field="condition"
        )
    assert field_of(exc) == "condition.json_path"
    sources.validate_source(
        leaf("api_metrics", url="http://api.example/m", json_path="$.data.error_rate"), field="condition"
    )


def test_api_headers_must_be_text() -> None:
    with pytest.raises(ValidationFailed) as exc:
        sources.validate_source(
            leaf("api_metrics", url="https://a.example", json_path="x", headers={"X-Key": 1}), field="c"
        )
    assert field_of(exc) == "c.headers"


@pytest.mark.parametrize("metric", ["error_rate", "p95_latency_ms", "queue_depth", "Error Rate"])
def test_herald_metrics_are_known(metric: str) -> None:
    sources.validate_source(leaf("api_metrics", metric), field="condition")


def test_unknown_herald_metric_names_threshold_field() -> None:
    with pytest.raises(ValidationFailed) as exc:
        sources.validate_source(leaf("api_metrics", "cpu"), field="composite_conditions.1")
    assert field_of(exc) == "composite_conditions.1.threshold_config.metric"
    assert "error_rate" in exc.value.detail


@pytest.mark.parametrize("window", [0, -5, "900", True, 10**9])
def test_herald_window_is_checked(window: Any) -> None:
    with pytest.raises(ValidationFailed) as exc:
        sources.validate_source(leaf("api_metrics", "error_rate", window_seconds=window), field="condition")
    assert field_of(exc) == "condition.window_seconds"


def test_herald_channel_id_is_text() -> None:
    with pytest.raises(ValidationFailed) as exc:
        sources.validate_source(leaf("api_metrics", "queue_depth", channel_id=7), field="condition")
    assert field_of(exc) == "condition.channel_id"


def test_database_source_needs_url_and_query() -> None:
    with pytest.raises(ValidationFailed) as exc:
        sources.validate_source(leaf("database_query", query="SELECT 1"), field="condition")
    assert field_of(exc) == "condition.data_source_url"
    with pytest.raises(ValidationFailed) as exc:
        sources.validate_source(leaf("database_query", data_source_url="sqlite:///x.db"), field="condition")
    assert field_of(exc) == "condition.query"


@pytest.mark.parametrize(
    "url", ["oracle://db/x", "sqlite://", "sqlite:///:memory:", "not a url", "postgresql:///nohost"]
)
def test_database_url_is_checked(url: str) -> None:
    with pytest.raises(ValidationFailed) as exc:
        sources.validate_source(leaf("database_query", data_source_url=url, query="SELECT 1"), field="c")
    assert field_of(exc) == "c.data_source_url"


def test_mysql_needs_a_driver() -> None:
    import importlib.util

    if importlib.util.find_spec("aiomysql") is not None:
        pytest.skip("aiomysql is installed here")
    with pytest.raises(ValidationFailed) as exc:
        sources.validate_source(
            leaf("database_query", data_source_url="mysql://u@db/app", query="SELECT 1"), field="condition"
        )
    assert field_of(exc) == "condition.data_source_url"
    assert "aiomysql" in exc.value.detail


def test_database_urls_accepted() -> None:
    for url in ("postgresql://u:p@db:5432/app", "postgres://db/app", "sqlite:///var/data.db"):
        sources.validate_source(leaf("database_query", data_source_url=url, query="SELECT 1"), field="c")


def test_composite_has_no_source() -> None:
    with pytest.raises(ValidationFailed) as exc:
        sources.validate_source(leaf("composite"), field="condition")
    assert field_of(exc) == "condition.condition_type"


# --------------------------------------------------------------------------- SELECT only


@pytest.mark.parametrize(
    "query",
    [
        "SELECT 1",
        "select count(*) from orders;",
        "  SELECT count(*) FROM orders  ;  ",
        "WITH recent AS (SELECT * FROM orders WHERE created_at > now() - interval '1 hour') "
        "SELECT count(*) FROM recent",
        "(SELECT 1) UNION (SELECT 2)",
        "SELECT 'DROP TABLE users; --' AS text",
        'SELECT "update", "delete" FROM audit_words',
        "-- how many?\nSELECT count(*) /* DELETE */ FROM orders -- trailing ; comment",
        "SELECT 'it''s; fine'",
        "SELECT created_at, updated_at FROM t",
        "SELECT x::int FROM t",
        "SELECT current_setting('application_name')",
    ],
)
def test_reads_are_accepted(query: str) -> None:
    sources.validate_query(query)


@pytest.mark.parametrize("query", ["SELECT $$ INSERT INTO x $$", "SELECT $tag$ delete ; $tag$"])
def test_dollar_quotes_are_postgresql_ones(query: str) -> None:
    """A string on PostgreSQL; on MySQL or SQLite ``$tag$`` is a name and what follows it is code."""
    sources.validate_query(query, "postgresql")
    with pytest.raises(ValueError, match="INSERT|one statement"):
        sources.validate_query(query)


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("", "empty"),
        ("-- nothing\n", "empty"),
        ("UPDATE orders SET paid = true", "start with SELECT"),
        ("DELETE FROM orders", "start with SELECT"),
        ("EXPLAIN ANALYZE SELECT 1", "start with SELECT"),
        ("SELECT 1; SELECT 2", "one statement"),
        ("SELECT 1; UPDATE orders SET paid = true", "one statement"),
        ("SELECT 1;;", "one statement"),
        ("WITH gone AS (DELETE FROM orders RETURNING *) SELECT count(*) FROM gone", "DELETE"),
        ("SELECT * INTO backup FROM orders", "INTO"),
        ("SELECT 1 FROM t WHERE id IN (SELECT id FROM t) /* ok */ ; DROP TABLE t", "one statement"),
        ("SELECT pg_sleep(1) FROM t WHERE 1 = 1 AND exists (select 1) -- ;\n; vacuum", "one statement"),
        ("WITH x AS (SELECT 1) UPDATE t SET a = 1", "UPDATE"),
        ("SELECT 'unterminated", "unterminated"),
        ("SELECT 1 /* open", "unterminated"),
        ("select 1 where 1 = 1 and (do_nothing) is null or copy", "COPY"),
        ("SELECT set_config('a', 'b', true)", "set_config"),
        ("SELECT id FROM orders FOR UPDATE", "row locks"),
    ],
)
def test_everything_else_is_refused(query: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        sources.validate_query(query)


def test_refused_query_names_the_query_field() -> None:
    with pytest.raises(ValidationFailed) as exc:
        sources.validate_source(
            leaf("database_query", data_source_url="sqlite:///x.db", query="UPDATE t SET a = 1"),
            field="composite_conditions.0",
        )
    assert field_of(exc) == "composite_conditions.0.query"


# --------------------------------------------------------------------------- JSON paths


BODY = {
    "data": {"error_rate": 2.5, "text": "12.5", "name": "api", "flag": True, "none": None},
    "items": [{"value": 7}, {"value": "8"}],
    "nested": {"a.b": 1},
}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("data.error_rate", 2.5),
        ("$.data.error_rate", 2.5),
        ("$.data.text", 12.5),
        ("items.0.value", 7.0),
        ("items.1.value", 8.0),
        ("items[1].value", 8.0),
        ("$.items[-1].value", 8.0),
    ],
)
def test_json_paths(path: str, expected: float) -> None:
    assert sources.extract_number(BODY, path) == expected


def test_root_number() -> None:
    assert sources.extract_number(42, "$") == 42.0
    assert sources.json_path_segments("$") == []


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("data.missing", "has no key 'missing'"),
        ("items.5.value", "has no item 5"),
        ("items.first", "not an index"),
        ("data.error_rate.deeper", "is a number, not an object"),
        ("data.name", "is a string, not a number"),
        ("data.flag", "is a boolean, not a number"),
        ("data.none", "is null, not a number"),
        ("data", "is an object, not a number"),
    ],
)
def test_json_path_errors(path: str, reason: str) -> None:
    with pytest.raises(SourceError, match=reason):
        sources.extract_number(BODY, path)


def test_percentile_nearest_rank() -> None:
    assert sources.percentile([], 95) is None
    assert sources.percentile([5.0], 95) == 5.0
    assert sources.percentile([float(v) for v in range(1, 101)], 95) == 95.0
    assert sources.percentile([float(v) for v in range(1, 21)], 95) == 19.0


# --------------------------------------------------------------------------- HTTP reads


async def test_http_json_value(rt: Runtime) -> None:
    seen = serve(rt, lambda request: httpx.Response(200, json={"data": {"error_rate": "3.5"}}))
    source = leaf(
        "api_metrics", "error_rate", url="https://api.example/m", json_path="$.data.error_rate",
        headers={"Authorization": "Bearer abc"},
    )  # fmt: skip
    assert await sources.read(rt, CTX, source) == (3.5, None)
    assert str(seen[0].url) == "https://api.example/m"
    assert seen[0].method == "GET"
    assert seen[0].headers["authorization"] == "Bearer abc"


@pytest.mark.parametrize(
    ("response", "reason"),
    [
        (httpx.Response(500, text="boom"), "HTTP 500"),
        (httpx.Response(404, json={}), "HTTP 404"),
        (httpx.Response(200, text="<html>"), "not JSON"),
        (httpx.Response(200, json={"data": {}}), "has no key 'error_rate'"),
        (httpx.Response(200, json={"data": {"error_rate": "high"}}), "not a number"),
    ],
)
async def test_http_failures_become_reasons(rt: Runtime, response: httpx.Response, reason: str) -> None:
    serve(rt, lambda request: response)
    value, error = await sources.read(
        rt, CTX, leaf("api_metrics", url="https://api.example/m", json_path="data.error_rate")
    )
    assert value is None
    assert error is not None
    assert reason in error


async def test_connection_error_becomes_reason(rt: Runtime) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    serve(rt, refuse)
    value, error = await sources.read(rt, CTX, leaf("api_metrics", url="https://down.example", json_path="x"))
    assert value is None
    assert error is not None
    assert "request failed" in error
    assert "connection refused" in error


async def test_hung_endpoint_times_out(rt: Runtime) -> None:
    async def hang(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(5)
        return httpx.Response(200, json={"x": 1})

    serve(rt, hang)
    ctx = SourceContext(tenant_id="ten_1", agent_id=None, timeout=0.2)
    loop = asyncio.get_running_loop()
    started = loop.time()
    value, error = await sources.read(rt, ctx, leaf("api_metrics", url="https://slow.example", json_path="x"))
    assert loop.time() - started < 2
    assert value is None
    assert error is not None
    assert error.startswith("timed out")


async def test_unknown_type_is_a_reason_not_a_crash(rt: Runtime) -> None:
    value, error = await sources.read(rt, CTX, leaf("composite"))
    assert value is None
    assert error is not None


# --------------------------------------------------------------------------- SQLite files (no Herald DB)


@pytest.fixture
def sqlite_file(tmp_path: Path) -> Path:
    path = tmp_path / "shop.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, total TEXT, state TEXT)")
        conn.executemany(
            "INSERT INTO orders (total, state) VALUES (?, ?)", [("10.5", "paid"), ("4", "open"), (None, "x")]
        )
    conn.close()
    return path


async def test_sqlite_query(rt: Runtime, sqlite_file: Path) -> None:
    url = f"sqlite:///{sqlite_file}"

    async def value_of(query: str) -> tuple[Any, Any]:
        return await sources.read(rt, CTX, leaf("database_query", data_source_url=url, query=query))

    assert await value_of("SELECT count(*) FROM orders") == (3.0, None)
    assert await value_of("SELECT total FROM orders WHERE state = 'paid';") == (10.5, None)
    assert await value_of("SELECT state FROM orders WHERE id = 2") == ("open", None)
    assert await value_of("SELECT total FROM orders WHERE state = 'x'") == (None, None)
    assert await value_of("SELECT total FROM orders WHERE state = 'none'") == (None, None)
    value, error = await value_of("SELECT nope FROM orders")
    assert value is None
    assert error is not None
    assert "no such column" in error
    value, error = await value_of("DELETE FROM orders")
    assert value is None
    assert error is not None
    assert "refused" in error


async def test_sqlite_file_is_opened_read_only(sqlite_file: Path) -> None:
    target = datasources.parse_url(f"sqlite:///{sqlite_file}")
    with pytest.raises(Exception, match="readonly|read-only|query_only"):
        await datasources.execute_read_only(target, "DELETE FROM orders", timeout=2.0)
    with sqlite3.connect(sqlite_file) as conn:
        assert conn.execute("SELECT count(*) FROM orders").fetchone() == (3,)
    conn.close()


async def test_missing_sqlite_file_is_a_reason_and_fails_the_probe(rt: Runtime, tmp_path: Path) -> None:
    source = leaf("database_query", data_source_url=f"sqlite:///{tmp_path / 'absent.db'}", query="SELECT 1")
    value, error = await sources.read(rt, CTX, source)
    assert value is None
    assert error is not None
    assert "unable to open" in error
    assert not (tmp_path / "absent.db").exists()
    with pytest.raises(ValidationFailed) as exc:
        await sources.probe(rt, source, field="condition")
    assert field_of(exc) == "condition.data_source_url"


async def test_probe_accepts_a_reachable_source(rt: Runtime, sqlite_file: Path) -> None:
    await sources.probe(
        rt, leaf("database_query", data_source_url=f"sqlite:///{sqlite_file}", query="SELECT 1"), field="c"
    )
