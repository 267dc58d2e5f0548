"""The pure parts of a campaign: what a run binds, which rows dedupe together, which channels a row can take,
and how an external queue table is read. No database and no runtime here, so each rule is unit-tested alone."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from herald.core.errors import ValidationFailed
from herald.core.timezones import zone_problem

Period = Literal["ever", "year", "month", "week", "day"]
PERIODS: tuple[Period, ...] = ("ever", "year", "month", "week", "day")
ACTIVE, PAUSED = "active", "paused"
# Run states. ``queued`` waits for the runner; the others are the contract's.
QUEUED, RUNNING, PENDING_APPROVAL = "queued", "running", "pending_approval"
COMPLETED, FAILED, REJECTED, SKIPPED = "completed", "failed", "rejected", "skipped"
UNFINISHED = (QUEUED, RUNNING, PENDING_APPROVAL)
MAX_FAILURES_KEPT = 20  # reasons kept on a run: a sample, not a log
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_KEY_SEPARATOR = "\x1f"  # between the values of a composite dedupe key: no column value holds it in practice


@dataclass(frozen=True, slots=True)
class ChannelStep:
    """One entry of the channel policy: a platform and the row column holding the person's address on it."""

    platform: str
    address_column: str


@dataclass(frozen=True, slots=True)
class Queue:
    """An external queue: rows of ``table`` taken in ``cursor`` order, each once, after ``start_after``."""

    table: str
    cursor: str
    start_after: int | str | None = None


@dataclass
class CampaignSpec:
    """A campaign as asked for (the contract's create body); :mod:`herald.producers.campaigns.service`
    validates it against the tenant's agents, data sources and templates."""

    name: str
    agent_id: str
    data_source_id: str
    schedule: str
    event_type: str
    channels: list[ChannelStep]
    audience_query: str | None = None
    query_params: dict[str, Any] = field(default_factory=dict)
    queue: Queue | None = None
    timezone: str = "UTC"
    locale: str = "en"
    timezone_column: str | None = None
    variables: dict[str, Any] = field(default_factory=dict)
    dedupe_key: list[str] = field(default_factory=list)
    dedupe_period: Period = "ever"
    priority: int = 2
    compose: dict[str, Any] | None = None
    enabled: bool = True


def period_key(period: str, day: date) -> str:
    """The dedupe period a run on ``day`` (in the campaign's zone) falls in: a person gets the campaign once per
    key within it. ISO weeks, so a week that spans New Year is one week."""
    if period == "ever":
        return "ever"
    if period == "year":
        return f"{day.year:04d}"
    if period == "month":
        return f"{day.year:04d}-{day.month:02d}"
    if period == "week":
        iso = day.isocalendar()
        return f"{iso.year:04d}-W{iso.week:02d}"
    if period == "day":
        return day.isoformat()
    raise ValueError(f"unknown dedupe period {period!r}")


def run_day(moment: datetime, timezone: str) -> date:
    """The run's date in the campaign's zone: the ``:today`` bind and the dedupe period's day."""
    return moment.astimezone(ZoneInfo(timezone)).date()


def dedupe_value(row: dict[str, Any], columns: list[str]) -> str:
    """The row's dedupe key: its ``columns`` values as text, joined (null as empty)."""
    return _KEY_SEPARATOR.join("" if row.get(c) is None else str(row.get(c)) for c in columns)[:500]


def queue_value(table: str, value: Any) -> str:
    """A queue row's dedupe key: the table and its cursor value, so a row is one message even if the cursor
    were ever lost."""
    return f"{table}:{value}"[:500]


def binds(sql: str, *, today: date, now: datetime, params: dict[str, Any]) -> dict[str, Any]:
    """The named values a run gives its query: ``query_params``, then ``:today`` and ``:now`` where the query
    names them (a driver may refuse values nobody asked for)."""
    values = dict(params)
    if re.search(r"(?<![:\w]):today\b", sql):
        values["today"] = today
    if re.search(r"(?<![:\w]):now\b", sql):
        values["now"] = now
    return values


def text_of(value: Any) -> str:
    """A row value as a template sees it: text, with null as empty."""
    if value is None:
        return ""
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def row_variables(row: dict[str, Any], constants: dict[str, Any]) -> dict[str, str]:
    """The template variables of one row: the campaign's constants, overridden by the row's own fields."""
    merged = {key: text_of(value) for key, value in constants.items()}
    merged.update({key: text_of(value) for key, value in row.items()})
    return merged


def row_zone(row: dict[str, Any], column: str | None, default: str) -> str:
    """The person's IANA zone from ``column`` when it holds a valid one, else the campaign's."""
    if column is None:
        return default
    value = row.get(column)
    if isinstance(value, str) and value.strip() and zone_problem(value.strip()) is None:
        return value.strip()
    return default


def addresses(row: dict[str, Any], channels: list[ChannelStep]) -> list[tuple[str, str]]:
    """(platform, address) for every channel of the policy whose column is non-empty, in policy order: the
    first is where the message goes, the rest are its fallback steps."""
    found: list[tuple[str, str]] = []
    for step in channels:
        value = row.get(step.address_column)
        address = "" if value is None else str(value).strip()
        if address:
            found.append((step.platform, address))
    return found


def check_identifier(name: str, *, field: str) -> str:
    """A table or column name for the queue query: letters, digits and underscores, as a 422 naming ``field``."""
    if not isinstance(name, str) or not _IDENTIFIER.match(name):
        raise ValidationFailed(
            "must be a plain identifier (letters, digits and _; not starting with a digit)", field=field
        )
    return name


def quote_identifier(name: str, backend: str) -> str:
    """``name`` quoted for ``backend`` (checked first, so no quote character can be inside it)."""
    check_identifier(name, field="queue")
    return f"`{name}`" if backend == "mysql" else f'"{name}"'


def queue_sql(queue: Queue, backend: str, *, after: bool) -> str:
    """The query a run reads an external queue with: rows past the cursor, in cursor order."""
    table, cursor = quote_identifier(queue.table, backend), quote_identifier(queue.cursor, backend)
    where = f" WHERE {cursor} > :after" if after else ""
    return f"SELECT * FROM {table}{where} ORDER BY {cursor}"  # noqa: S608 - identifiers checked and quoted
