"""Metric sources against real databases (SQLite and PostgreSQL): pushed values, Herald's own delivery
figures, and read-only SELECT queries against a data source."""

from __future__ import annotations

import itertools
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from herald.core.errors import ValidationFailed
from herald.core.ids import new_id
from herald.producers.monitors import sources
from herald.producers.monitors.conditions import Leaf, Threshold
from herald.producers.monitors.sources import SourceContext
from herald.runtime import Runtime
from herald.storage import datasources
from herald.storage.models import Attempt, Message, MetricValue, Tenant
from herald.storage.types import utcnow

TENANT = "ten_sources"
OTHER = "ten_other"
_copies = itertools.count()


def leaf(condition_type: str, metric: str = "value", **source: Any) -> Leaf:
    return Leaf(
        condition_type=condition_type,
        threshold=Threshold(metric=metric, operator=">", value=1.0),
        source=source,
    )


def ctx(**overrides: Any) -> SourceContext:
    values: dict[str, Any] = {"tenant_id": TENANT, "agent_id": "agent_1", "timeout": 5.0}
    values.update(overrides)
    return SourceContext(**values)


@pytest.fixture
async def tenants(rt: Runtime) -> None:
    async with rt.sessions.begin() as session:
        session.add_all([Tenant(id=TENANT, name="sources"), Tenant(id=OTHER, name="other")])


async def push(
    rt: Runtime, name: str, value: float, age: float = 0.0, tenant: str = TENANT, **labels: Any
) -> None:
    async with rt.sessions.begin() as session:
        session.add(
            MetricValue(
                id=new_id("mv"), tenant_id=tenant, name=name, value=value, labels=labels,
                observed_at=utcnow() - timedelta(seconds=age),
            )
        )  # fmt: skip


def message(status: str, *, updated: datetime, channel: str | None = None, tenant: str = TENANT) -> Message:
    now = utcnow()
    return Message(
        id=new_id("msg"), tenant_id=tenant, platform="slack", recipient_id="C1", channel_id=channel,
        content="hi", status=status, run_at=now, max_attempts=3, created_at=updated, updated_at=updated,
    )  # fmt: skip


# --------------------------------------------------------------------------- pushed values


@pytest.mark.usefixtures("tenants")
async def test_latest_pushed_value(rt: Runtime) -> None:
    source = leaf("metric", "CPU Usage")
    assert await sources.read(rt, ctx(), source) == (None, None)
    await push(rt, "cpu_usage", 40.0, age=60)
    await push(rt, "cpu_usage", 85.0, age=10)
    await push(rt, "cpu_usage", 99.0, age=5, tenant=OTHER)
    await push(rt, "memory", 12.0)
    assert await sources.read(rt, ctx(), source) == (85.0, None)
    for kind in ("inbox_volume", "task_backlog"):
        assert await sources.read(rt, ctx(), leaf(kind, "cpu usage")) == (85.0, None)


@pytest.mark.usefixtures("tenants")
async def test_stale_pushed_values_are_no_data(rt: Runtime) -> None:
    await push(rt, "pending_tasks", 7.0, age=600)
    source = leaf("task_backlog", "pending_tasks")
    assert await sources.read(rt, ctx(), source) == (7.0, None)
    assert await sources.read(rt, ctx(stale_after=300), source) == (None, None)
    await push(rt, "pending_tasks", 9.0, age=30)
    assert await sources.read(rt, ctx(stale_after=300), source) == (9.0, None)


@pytest.mark.usefixtures("tenants")
async def test_pushed_values_filtered_by_labels(rt: Runtime) -> None:
    await push(rt, "unread_count", 5.0, age=30, queue="billing", region="eu")
    await push(rt, "unread_count", 50.0, age=20, queue="support", region="eu")
    await push(rt, "unread_count", 3.0, age=10, queue="billing", region="us")
    await push(rt, "unread_count", 4.0, age=5, queue="billing", shard=2)

    async def value(**labels: Any) -> Any:
        return (await sources.read(rt, ctx(), leaf("inbox_volume", "unread_count", labels=labels)))[0]

    assert await value() == 4.0
    assert await value(queue="billing") == 4.0
    assert await value(queue="billing", region="eu") == 5.0
    assert await value(queue="support") == 50.0
    assert await value(shard=2) == 4.0
    assert await value(queue="sales") is None


# --------------------------------------------------------------------------- Herald's delivery figures


@pytest.mark.usefixtures("tenants")
async def test_error_rate(rt: Runtime) -> None:
    source = leaf("api_metrics", "error_rate")
    assert await sources.read(rt, ctx(), source) == (None, None)
    now = utcnow()
    long_ago = now - timedelta(hours=2)
    async with rt.sessions.begin() as session:
        session.add_all(
            [
                message("sent", updated=now, channel="ch_a"),
                message("delivered", updated=now, channel="ch_a"),
                message("read", updated=now, channel="ch_b"),
                message("failed", updated=now, channel="ch_b"),
                message("queued", updated=now),  # not finished: not counted
                message("failed", updated=long_ago),  # outside the window
                message("failed", updated=now, tenant=OTHER),
            ]
        )
    assert await sources.read(rt, ctx(), source) == (25.0, None)
    assert await sources.read(rt, ctx(), leaf("api_metrics", "error_rate", channel_id="ch_b")) == (50.0, None)
    assert await sources.read(rt, ctx(), leaf("api_metrics", "error_rate", channel_id="ch_a")) == (0.0, None)
    wide = leaf("api_metrics", "error_rate", window_seconds=3 * 3600)
    assert await sources.read(rt, ctx(), wide) == (40.0, None)


@pytest.mark.usefixtures("tenants")
async def test_queue_depth(rt: Runtime) -> None:
    now = utcnow()
    async with rt.sessions.begin() as session:
        session.add_all(
            [
                message("queued", updated=now - timedelta(days=2), channel="ch_a"),
                message("sending", updated=now, channel="ch_a"),
                message("queued", updated=now, channel="ch_b"),
                message("sent", updated=now, channel="ch_a"),
                message("pending_approval", updated=now),
                message("queued", updated=now, tenant=OTHER),
            ]
        )
    assert await sources.read(rt, ctx(), leaf("api_metrics", "Queue Depth")) == (3.0, None)
    assert await sources.read(rt, ctx(), leaf("api_metrics", "queue_depth", channel_id="ch_a")) == (2.0, None)


@pytest.mark.usefixtures("tenants")
async def test_p95_latency(rt: Runtime) -> None:
    source = leaf("api_metrics", "p95_latency_ms")
    assert await sources.read(rt, ctx(), source) == (None, None)
    now = utcnow()
    async with rt.sessions.begin() as session:
        owner = message("sent", updated=now)
        other = message("sent", updated=now, tenant=OTHER)
        session.add_all([owner, other])
        await session.flush()

        def attempt(ms: float, *, age: float = 0, channel: str = "ch_a", msg: Message = owner) -> Attempt:
            return Attempt(
                id=new_id("att"), tenant_id=msg.tenant_id, message_id=msg.id, channel_id=channel,
                provider="webhook", number=1, started_at=now - timedelta(seconds=age), duration_ms=ms,
                outcome="sent",
            )  # fmt: skip

        session.add_all([attempt(float(ms)) for ms in range(1, 20)])  # 1..19 ms on ch_a
        session.add(attempt(1000.0, channel="ch_b"))
        session.add(attempt(99999.0, age=7200))  # outside the window
        session.add(attempt(55555.0, msg=other))
    assert await sources.read(rt, ctx(), source) == (19.0, None)  # 20 values: the 19th smallest
    assert await sources.read(rt, ctx(), leaf("api_metrics", "p95_latency_ms", channel_id="ch_b")) == (
        1000.0,
        None,
    )
    wide = leaf("api_metrics", "p95_latency_ms", window_seconds=4 * 3600)
    assert await sources.read(rt, ctx(), wide) == (1000.0, None)


# --------------------------------------------------------------------------- database queries


def data_source(database_url: str) -> str:
    """The test database as a data source URL (the same plain form a user would give). Herald's own SQLite file
    is refused as a data source, so on SQLite it is a copy of it, taken now."""
    if not database_url.startswith("sqlite:///"):
        return database_url
    own = Path(database_url.removeprefix("sqlite:///"))
    copy = own.with_name(f"copy-{next(_copies)}.db")
    source, target = sqlite3.connect(own), sqlite3.connect(copy)
    source.backup(target)  # through the write-ahead log, unlike a file copy
    source.close()
    target.close()
    return f"sqlite:///{copy}"


@pytest.mark.usefixtures("tenants")
async def test_database_query_reads_first_column(rt: Runtime, database_url: str) -> None:
    now = utcnow()
    async with rt.sessions.begin() as session:
        session.add_all([message("queued", updated=now), message("failed", updated=now)])

    async def value_of(query: str) -> tuple[Any, Any]:
        source = leaf("database_query", data_source_url=data_source(database_url), query=query)
        sources.validate_source(source, field="condition")
        return await sources.read(rt, ctx(), source)

    assert await value_of("SELECT count(*) FROM messages") == (2.0, None)
    assert await value_of(
        f"SELECT count(*) FROM messages WHERE tenant_id = '{TENANT}' AND status = 'failed';"
    ) == (
        1.0,
        None,
    )
    assert await value_of("SELECT name FROM tenants WHERE id = 'ten_other'") == ("other", None)
    assert await value_of("SELECT '42.5'") == (42.5, None)
    assert await value_of("SELECT NULL") == (None, None)
    assert await value_of("SELECT id FROM tenants WHERE id = 'nobody'") == (None, None)
    assert await value_of(
        "WITH f AS (SELECT status FROM messages WHERE status = 'queued') SELECT count(*) FROM f"
    ) == (1.0, None)
    value, error = await value_of("SELECT no_such_column FROM messages")
    assert value is None
    assert error is not None
    assert "query failed" in error


@pytest.mark.usefixtures("tenants")
async def test_writes_are_refused_at_validation_and_by_the_transaction(
    rt: Runtime, database_url: str
) -> None:
    url = data_source(database_url)
    for query in (
        "UPDATE tenants SET name = 'pwned'",
        "SELECT 1; UPDATE tenants SET name = 'pwned'",
        "WITH x AS (UPDATE tenants SET name = 'pwned' RETURNING id) SELECT count(*) FROM x",
    ):
        with pytest.raises(ValidationFailed) as exc:
            sources.validate_source(
                leaf("database_query", data_source_url=url, query=query), field="condition"
            )
        assert exc.value.field == "condition.query"
    # The read-only transaction is the second guard, below the query check.
    target = datasources.parse_url(url)
    with pytest.raises(Exception, match="read-only|readonly|query_only"):
        await datasources.execute_read_only(target, "UPDATE tenants SET name = 'pwned'", timeout=5.0)
    with pytest.raises(Exception, match="read-only|readonly|query_only"):
        await datasources.execute_read_only(target, "CREATE TABLE sneaky (a int)", timeout=5.0)
    async with rt.sessions() as session:
        names = {tenant.name for tenant in (await session.execute(Tenant.__table__.select())).all()}
    assert names == {"sources", "other"}


@pytest.mark.postgres_only
async def test_postgres_transaction_is_read_only_with_statement_timeout(
    rt: Runtime, database_url: str
) -> None:
    url = data_source(database_url)
    target = datasources.parse_url(url)

    async def first(sql: str, seconds: float) -> Any:
        result = await datasources.execute_read_only(target, sql, timeout=seconds)
        return result.rows[0][result.columns[0]]

    assert await first("SELECT current_setting('transaction_read_only')", 5.0) == "on"
    assert await first("SELECT current_setting('statement_timeout')", 2.5) == "2500ms"
    endless = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"
    value, error = await sources.read(
        rt, ctx(timeout=0.5), leaf("database_query", data_source_url=url, query=endless)
    )
    assert value is None
    assert error is not None
    assert "timed out" in error or "statement timeout" in error
    # A sleep is not a way to hold the connection either: refused before it runs.
    _, refused = await sources.read(
        rt, ctx(timeout=0.5), leaf("database_query", data_source_url=url, query="SELECT pg_sleep(3)")
    )
    assert refused is not None
    assert "pg_sleep is not allowed" in refused


async def test_probe(rt: Runtime, database_url: str) -> None:
    await sources.probe(
        rt, leaf("database_query", data_source_url=data_source(database_url), query="SELECT 1"), field="c"
    )
    with pytest.raises(ValidationFailed) as exc:
        await sources.probe(
            rt,
            leaf("database_query", data_source_url="postgresql://nobody@127.0.0.1:1/none", query="SELECT 1"),
            field="composite_conditions.2",
        )
    assert exc.value.field == "composite_conditions.2.data_source_url"
