"""The pure rules of a campaign: periods, dedupe keys, binds, row variables and zones, the channel policy and
the external queue's query."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from herald.core.errors import ValidationFailed
from herald.producers.campaigns import model

CHANNELS = [model.ChannelStep("sms", "phone"), model.ChannelStep("email", "email")]


@pytest.mark.parametrize(
    ("period", "day", "key"),
    [
        ("ever", date(2026, 3, 14), "ever"),
        ("year", date(2026, 3, 14), "2026"),
        ("month", date(2026, 3, 14), "2026-03"),
        ("week", date(2027, 1, 1), "2026-W53"),  # ISO week: New Year's Day 2027 is in 2026's last week
        ("day", date(2026, 3, 14), "2026-03-14"),
    ],
)
def test_period_keys(period: str, day: date, key: str) -> None:
    assert model.period_key(period, day) == key


def test_unknown_period_is_refused() -> None:
    with pytest.raises(ValueError, match="fortnight"):
        model.period_key("fortnight", date(2026, 1, 1))


def test_run_day_is_in_the_campaigns_zone() -> None:
    moment = datetime(2026, 3, 14, 3, 0, tzinfo=UTC)
    assert model.run_day(moment, "America/Chicago") == date(2026, 3, 13)
    assert model.run_day(moment, "Asia/Tokyo") == date(2026, 3, 14)


def test_dedupe_value_joins_columns_and_tells_them_apart() -> None:
    assert model.dedupe_value({"c": 1, "e": 22}, ["c", "e"]) != model.dedupe_value(
        {"c": 12, "e": 2}, ["c", "e"]
    )
    assert model.dedupe_value({"c": None}, ["c"]) == ""


def test_binds_only_what_the_query_names() -> None:
    today, now = date(2026, 3, 14), datetime(2026, 3, 14, tzinfo=UTC)
    assert model.binds("SELECT 1 WHERE d = :today", today=today, now=now, params={"m": 12}) == {
        "m": 12, "today": today}  # fmt: skip
    assert model.binds("SELECT '::today', :nowhere", today=today, now=now, params={}) == {}
    assert model.binds("SELECT :now", today=today, now=now, params={})["now"] == now


def test_row_variables_are_text_with_row_fields_over_constants() -> None:
    merged = model.row_variables({"first_name": "Ada", "since": date(2020, 1, 2), "n": None},
                                 {"first_name": "Customer", "dealership_name": "Riverside"})  # fmt: skip
    assert merged == {"first_name": "Ada", "since": "2020-01-02", "n": "", "dealership_name": "Riverside"}


def test_row_zone_falls_back_to_the_campaigns() -> None:
    assert model.row_zone({"tz": "Asia/Tokyo"}, "tz", "UTC") == "Asia/Tokyo"
    assert model.row_zone({"tz": "Mars/Base"}, "tz", "UTC") == "UTC"
    assert model.row_zone({"tz": "Asia/Tokyo"}, None, "Europe/Paris") == "Europe/Paris"


def test_addresses_follow_the_policy_skipping_empty_columns() -> None:
    assert model.addresses({"phone": " +1555 ", "email": "a@example.com"}, CHANNELS) == [
        ("sms", "+1555"), ("email", "a@example.com")]  # fmt: skip
    assert model.addresses({"phone": "", "email": "a@example.com"}, CHANNELS) == [("email", "a@example.com")]
    assert model.addresses({"phone": None}, CHANNELS) == []


@pytest.mark.parametrize("name", ["x; DROP TABLE y", 'a"b', "1abc", "", "a.b", "a" * 64])
def test_identifiers_are_plain(name: str) -> None:
    with pytest.raises(ValidationFailed) as raised:
        model.check_identifier(name, field="queue.table")
    assert raised.value.field == "queue.table"


def test_queue_sql_quotes_per_backend() -> None:
    queue = model.Queue("communication_queue", "id", 0)
    assert model.queue_sql(queue, "postgresql", after=True) == (
        'SELECT * FROM "communication_queue" WHERE "id" > :after ORDER BY "id"')  # fmt: skip
    assert model.queue_sql(queue, "mysql", after=False) == "SELECT * FROM `communication_queue` ORDER BY `id`"
