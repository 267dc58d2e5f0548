"""Metric sources: where a monitor's leaf condition reads its current value.

One entry point, :func:`read`, dispatches on ``leaf.condition_type``:

``inbox_volume`` / ``task_backlog`` / ``metric``
    The latest pushed :class:`~herald.storage.models.MetricValue` of the tenant and the (normalised)
    threshold metric, optionally narrowed by ``labels`` (every given pair must match).
``api_metrics``
    With ``url``: an HTTP GET whose JSON body is followed along ``json_path`` (``data.error_rate``,
    ``items.0.value``; a leading ``$.`` is optional) to a number. Without: Herald's own delivery figures
    for the tenant (``error_rate``, ``p95_latency_ms``, ``queue_depth``), optionally for one ``channel_id``
    over ``window_seconds`` (default 900).
``database_query``
    One ``SELECT`` (or ``WITH ... SELECT``) run read-only on a registered data source (``data_source_id``,
    see :mod:`herald.storage.datasources`) or, as before data sources existed, on ``data_source_url``
    (PostgreSQL, MySQL/MariaDB or a SQLite file); the first column of the first row is the value.

:func:`read` never raises for a failing source: it answers ``(value, None)``, ``(None, None)`` for no data,
or ``(None, reason)``. :func:`validate_source` checks a leaf's settings when a monitor is created, and
:func:`probe` tries a database source's connection.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from herald.core.errors import HeraldError, NotFound, ValidationFailed
from herald.core.netguard import BlockedDestination
from herald.core.status import Status
from herald.producers.monitors.conditions import Leaf, normalise_metric
from herald.storage import datasources as tenantdb
from herald.storage.models import Attempt, Message, MetricValue
from herald.storage.types import utcnow

if TYPE_CHECKING:
    from herald.runtime import Runtime

PUSHED_TYPES: frozenset[str] = frozenset({"inbox_volume", "task_backlog", "metric"})
HERALD_METRICS: frozenset[str] = frozenset({"error_rate", "p95_latency_ms", "queue_depth"})
DEFAULT_WINDOW_SECONDS = 900
MAX_WINDOW_SECONDS = 30 * 86400
MAX_LATENCY_ROWS = 50_000
MAX_RESPONSE_BYTES = 5 * 1024 * 1024
PROBE_TIMEOUT = 5.0
# Pushed rows scanned for a label match before giving up (newest first).
_LABEL_SCAN_ROWS = 1000
_SUCCESS = (Status.SENT, Status.DELIVERED, Status.READ)


@dataclass(frozen=True)
class SourceContext:
    tenant_id: str
    agent_id: str | None
    timeout: float = 10.0
    stale_after: float | None = None  # pushed values older than this (seconds) count as no data


class SourceError(HeraldError):
    """A source could not produce a value; the message is the reason shown on the monitor."""


Reading = tuple[float | str | None, str | None]


def _join(field: str, name: str) -> str:
    return f"{field}.{name}" if field else name


def _fmt_seconds(value: float) -> str:
    return f"{value:g} s"


# --------------------------------------------------------------------------- reading


async def read(rt: Runtime, ctx: SourceContext, leaf: Leaf) -> Reading:
    """The leaf's current value: ``(value, None)``, ``(None, None)`` for no data, ``(None, reason)``."""
    try:
        async with asyncio.timeout(ctx.timeout):
            return await _dispatch(rt, ctx, leaf)
    except TimeoutError:
        return None, f"timed out after {_fmt_seconds(ctx.timeout)}"
    except SourceError as exc:
        return None, str(exc)
    except Exception as exc:  # a failing source is a reason on the monitor, never a crash of the checker
        return None, _describe_error(exc)


async def _dispatch(rt: Runtime, ctx: SourceContext, leaf: Leaf) -> Reading:
    kind = leaf.condition_type
    if kind in PUSHED_TYPES:
        return await _read_pushed(rt, ctx, leaf), None
    if kind == "api_metrics":
        if leaf.source.get("url"):
            return await _read_http(rt, ctx, leaf), None
        return await _read_herald(rt, ctx, leaf), None
    if kind == "database_query":
        return await _read_database(rt, ctx, leaf), None
    return None, f"condition type {kind!r} has no metric source"


def _describe_error(exc: BaseException) -> str:
    """A short reason for an exception: the driver's own message rather than SQLAlchemy's wrapping."""
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        exc = exc.orig
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    name = type(exc).__name__
    return f"{name}: {text}" if text else name


# --------------------------------------------------------------------------- pushed values


async def _read_pushed(rt: Runtime, ctx: SourceContext, leaf: Leaf) -> float | None:
    name = normalise_metric(leaf.threshold.metric)
    labels = leaf.source.get("labels") or {}
    query = select(MetricValue.value, MetricValue.labels).where(
        MetricValue.tenant_id == ctx.tenant_id, MetricValue.name == name
    )
    if ctx.stale_after is not None:
        query = query.where(MetricValue.observed_at >= utcnow() - timedelta(seconds=ctx.stale_after))
    query = query.order_by(MetricValue.observed_at.desc(), MetricValue.id.desc())
    query = query.limit(_LABEL_SCAN_ROWS if labels else 1)
    async with rt.sessions() as session:
        rows = (await session.execute(query)).all()
    for value, row_labels in rows:
        if _labels_match(row_labels or {}, labels):
            return float(value)
    return None


def _labels_match(row: dict[str, Any], wanted: dict[str, Any]) -> bool:
    return all(key in row and str(row[key]) == str(value) for key, value in wanted.items())


# --------------------------------------------------------------------------- HTTP JSON


async def _read_http(rt: Runtime, ctx: SourceContext, leaf: Leaf) -> float:
    url = str(leaf.source["url"])
    headers = leaf.source.get("headers") or {}
    try:
        response = await rt.http.get(url, headers=headers, timeout=ctx.timeout, follow_redirects=False)
    except BlockedDestination as exc:
        raise SourceError(str(exc)) from exc
    except Exception as exc:
        raise SourceError(f"request failed: {_describe_error(exc)}") from exc
    if response.status_code >= 400:
        raise SourceError(f"HTTP {response.status_code} from the metrics endpoint")
    if len(response.content) > MAX_RESPONSE_BYTES:
        raise SourceError(f"response larger than {MAX_RESPONSE_BYTES} bytes")
    try:
        body = json.loads(response.content)
    except (ValueError, RecursionError) as exc:
        raise SourceError("response is not JSON") from exc
    return extract_number(body, str(leaf.source.get("json_path", "$")))


def json_path_segments(path: str) -> list[str]:
    """``"$.items[0].value"`` -> ``["items", "0", "value"]``; ``"$"`` or ``""`` -> ``[]`` (the root)."""
    text = path.strip()
    if text.startswith("$"):
        text = text[1:]
    text = re.sub(r"\[\s*(-?\d+)\s*\]", r".\1", text).lstrip(".")
    return text.split(".") if text else []


def follow_json_path(body: Any, path: str) -> Any:
    """Follow a dot path through dicts and lists; raises SourceError naming the first missing step."""
    current = body
    walked = "$"
    for segment in json_path_segments(path):
        if isinstance(current, dict):
            if segment not in current:
                raise SourceError(f"json_path: {walked} has no key {segment!r}")
            current = current[segment]
        elif isinstance(current, list):
            try:
                index = int(segment)
            except ValueError:
                raise SourceError(f"json_path: {walked} is a list; {segment!r} is not an index") from None
            if not -len(current) <= index < len(current):
                raise SourceError(f"json_path: {walked} has no item {index} (length {len(current)})")
            current = current[index]
        else:
            raise SourceError(f"json_path: {walked} is {_json_kind(current)}, not an object or a list")
        walked = f"{walked}.{segment}"
    return current


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an object" if isinstance(value, dict) else "a list"


def extract_number(body: Any, path: str) -> float:
    """The number at ``path`` in a parsed JSON body (numeric strings count); raises SourceError otherwise."""
    value = follow_json_path(body, path)
    number = to_number(value)
    if number is None:
        raise SourceError(
            f"json_path: the value at {path.strip() or '$'} is {_json_kind(value)}, not a number"
        )
    return number


def to_number(value: Any) -> float | None:
    """``value`` as a float when it is a number or a numeric string (not NaN, not a boolean)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float | Decimal):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip().replace("_", ""))
        except ValueError:
            return None
    else:
        return None
    return None if math.isnan(number) else number


# --------------------------------------------------------------------------- Herald's delivery figures


async def _read_herald(rt: Runtime, ctx: SourceContext, leaf: Leaf) -> float | None:
    metric = normalise_metric(leaf.threshold.metric)
    channel_id = leaf.source.get("channel_id")
    window = float(leaf.source.get("window_seconds", DEFAULT_WINDOW_SECONDS))
    since = utcnow() - timedelta(seconds=window)
    async with rt.sessions() as session:
        if metric == "queue_depth":
            return await _queue_depth(session, ctx.tenant_id, channel_id)
        if metric == "error_rate":
            return await _error_rate(session, ctx.tenant_id, channel_id, since)
        if metric == "p95_latency_ms":
            return await _p95_latency(session, ctx.tenant_id, channel_id, since)
    raise SourceError(f"unknown Herald metric {metric!r}: use one of {', '.join(sorted(HERALD_METRICS))}")


async def _queue_depth(session: AsyncSession, tenant_id: str, channel_id: str | None) -> float:
    query = (
        select(func.count())
        .select_from(Message)
        .where(Message.tenant_id == tenant_id, Message.status.in_((Status.QUEUED, Status.SENDING)))
    )
    if channel_id:
        query = query.where(Message.channel_id == channel_id)
    return float((await session.execute(query)).scalar_one())


async def _error_rate(
    session: AsyncSession, tenant_id: str, channel_id: str | None, since: datetime
) -> float | None:
    """Failed messages as a percentage of finished ones (sent, delivered, read or failed) updated since."""
    query = (
        select(Message.status, func.count())
        .where(
            Message.tenant_id == tenant_id,
            Message.updated_at >= since,
            Message.status.in_((*_SUCCESS, "failed")),
        )
        .group_by(Message.status)
    )
    if channel_id:
        query = query.where(Message.channel_id == channel_id)
    counts = {status: int(count) for status, count in (await session.execute(query)).all()}
    total = sum(counts.values())
    if total == 0:
        return None  # no finished messages in the window: the rate is undefined
    return 100.0 * counts.get("failed", 0) / total


async def _p95_latency(
    session: AsyncSession, tenant_id: str, channel_id: str | None, since: datetime
) -> float | None:
    query = (
        select(Attempt.duration_ms)
        .where(Attempt.tenant_id == tenant_id, Attempt.started_at >= since)
        .order_by(Attempt.started_at.desc())
        .limit(MAX_LATENCY_ROWS)
    )
    if channel_id:
        query = query.where(Attempt.channel_id == channel_id)
    durations = [float(value) for value in (await session.execute(query)).scalars()]
    return percentile(durations, 95.0)


def percentile(values: list[float], pct: float) -> float | None:
    """Nearest-rank percentile (None for no values): the smallest value with ``pct``% at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100.0 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


# --------------------------------------------------------------------------- external databases

# Kept here for callers that checked queries through this module; the check is herald.storage.datasources'.
validate_query = tenantdb.check_query


async def _read_database(rt: Runtime, ctx: SourceContext, leaf: Leaf) -> float | str | None:
    """The first column of the first row of ``query`` on the leaf's data source: a registered one
    (``data_source_id``) or, as before data sources existed, a URL (``data_source_url``)."""
    source_id = leaf.source.get("data_source_id")
    url = leaf.source.get("data_source_url")
    query = leaf.source.get("query")
    if not isinstance(query, str) or not (isinstance(source_id, str) or isinstance(url, str)):
        raise SourceError("database_query needs data_source_id (or data_source_url) and query")
    try:
        if isinstance(source_id, str):
            result = await tenantdb.run_query(
                rt, ctx.tenant_id, source_id, query, row_cap=1, timeout=ctx.timeout, field="query"
            )
        else:
            assert isinstance(url, str)
            result = await tenantdb.run_on_url(rt, url, query, row_cap=1, timeout=ctx.timeout, field="query")
    except NotFound:
        raise SourceError(f"no data source {source_id!r}") from None
    except ValidationFailed as exc:
        raise SourceError(f"query refused: {exc.detail}") from None
    except tenantdb.DataSourceError as exc:
        raise SourceError(f"query failed: {exc}") from None
    return _first_value(result)


def _first_value(result: tenantdb.QueryResult) -> float | str | None:
    if not result.rows or not result.columns:
        return None
    value = result.rows[0][result.columns[0]]
    if value is None:
        return None
    number = to_number(value)
    if number is not None:
        return number
    if isinstance(value, bool):
        return float(value)
    return value if isinstance(value, str) else str(value)


async def probe(rt: Runtime, leaf: Leaf, *, field: str) -> None:
    """When a monitor naming a URL is saved: the URL must pass the outbound guard and answer ``SELECT 1``
    within a few seconds; ValidationFailed naming ``<field>.data_source_url`` otherwise. (A registered source,
    ``data_source_id``, was probed when it was saved; the monitor service checks that it is the tenant's.)"""
    url = leaf.source.get("data_source_url")
    where = _join(field, "data_source_url")
    if not isinstance(url, str):
        raise ValidationFailed("needs a database URL", field=where)
    await tenantdb.probe(rt, url, field=where)


# --------------------------------------------------------------------------- validation


def validate_source(leaf: Leaf, *, field: str) -> None:
    """Check a leaf's source settings at monitor creation; raises ValidationFailed naming the field."""
    kind = leaf.condition_type
    source = leaf.source
    if kind in PUSHED_TYPES:
        _validate_labels(source.get("labels"), _join(field, "labels"))
    elif kind == "api_metrics":
        _validate_api(leaf, field)
    elif kind == "database_query":
        _validate_database(source, field)
    else:
        raise ValidationFailed(
            f"condition type {kind!r} has no metric source", field=_join(field, "condition_type")
        )


def _validate_labels(labels: Any, where: str) -> None:
    if labels is None:
        return
    if not isinstance(labels, dict) or not all(
        isinstance(key, str) and isinstance(value, str | int | float | bool) for key, value in labels.items()
    ):
        raise ValidationFailed("must be an object of label names to text or number values", field=where)


def _validate_api(leaf: Leaf, field: str) -> None:
    source = leaf.source
    url = source.get("url")
    if url is not None and url != "":
        if not isinstance(url, str) or urlsplit(url.strip()).scheme.lower() not in ("http", "https"):
            raise ValidationFailed("must be an http:// or https:// URL", field=_join(field, "url"))
        if not urlsplit(url.strip()).hostname:
            raise ValidationFailed("the URL needs a host", field=_join(field, "url"))
        path = source.get("json_path")
        if not isinstance(path, str) or not path.strip():
            raise ValidationFailed(
                "a URL source needs a json_path to the number, e.g. data.error_rate or items.0.value",
                field=_join(field, "json_path"),
            )
        if any(not segment.strip() for segment in json_path_segments(path)):
            raise ValidationFailed(f"{path!r} has an empty step", field=_join(field, "json_path"))
        headers = source.get("headers")
        if headers is not None and (
            not isinstance(headers, dict)
            or not all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items())
        ):
            raise ValidationFailed("must be an object of header names to text", field=_join(field, "headers"))
        return
    metric = normalise_metric(leaf.threshold.metric)
    if metric not in HERALD_METRICS:
        raise ValidationFailed(
            f"Herald's own figures are {', '.join(sorted(HERALD_METRICS))}, not {leaf.threshold.metric!r} "
            "(or give a url and json_path to read another API)",
            field=_join(field, "threshold_config.metric"),
        )
    window = source.get("window_seconds", DEFAULT_WINDOW_SECONDS)
    if (
        isinstance(window, bool)
        or not isinstance(window, int | float)
        or not 0 < window <= MAX_WINDOW_SECONDS
    ):
        raise ValidationFailed(
            f"must be a number of seconds between 1 and {MAX_WINDOW_SECONDS}",
            field=_join(field, "window_seconds"),
        )
    channel_id = source.get("channel_id")
    if channel_id is not None and (not isinstance(channel_id, str) or not channel_id):
        raise ValidationFailed("must be a channel id", field=_join(field, "channel_id"))


def _validate_database(source: dict[str, Any], field: str) -> None:
    source_id = source.get("data_source_id")
    url = source.get("data_source_url")
    if source_id is not None and url is not None:
        raise ValidationFailed(
            "give data_source_id or data_source_url, not both", field=_join(field, "data_source_url")
        )
    if source_id is not None:
        if not isinstance(source_id, str) or not source_id.strip():
            raise ValidationFailed("must be the id of a data source", field=_join(field, "data_source_id"))
    elif not isinstance(url, str) or not url.strip():
        raise ValidationFailed(
            "needs data_source_id (a registered data source, see /api/v1/data-sources) or a database URL "
            "in data_source_url: postgresql://user@host/db or sqlite:///path/to/file.db",
            field=_join(field, "data_source_url"),
        )
    backend: str | None = None  # a registered source's backend is not known here: every backend's rules apply
    if source_id is None:
        assert isinstance(url, str)
        try:
            backend = tenantdb.parse_url(url).backend
        except ValueError as exc:
            raise ValidationFailed(str(exc), field=_join(field, "data_source_url")) from None
    query = source.get("query")
    if not isinstance(query, str) or not query.strip():
        raise ValidationFailed("needs one SELECT statement", field=_join(field, "query"))
    try:
        tenantdb.check_query(query, backend)
    except ValueError as exc:
        raise ValidationFailed(f"{exc}", field=_join(field, "query")) from None
