"""The dealership presets as data: each one feeds its template every variable, reads the date only from
``:today``, binds exactly its parameters, dedupes on columns it returns, and becomes a campaign body that holds
to the shared contract (docs: the campaign create body)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from herald.core.natural import next_runs, validate_cron
from herald.pipeline.library import BY_NAME, template_variables
from herald.presets import dealership
from herald.presets._sql import DIALECTS
from herald.storage.datasources import check_query

PRESETS = dealership.PRESETS
# The campaign create body, field by field, as the contract between the campaigns and presets work states it.
CONTRACT_FIELDS = {
    "name", "agent_id", "data_source_id", "audience_query", "query_params", "queue", "schedule", "timezone",
    "event_type", "locale", "channels", "timezone_column", "variables", "dedupe_key", "dedupe_period",
    "priority", "compose", "enabled",
}  # fmt: skip
RUN_BINDS = {"today"}  # what a campaign run provides; presets use :today only (never :now), so tests pin it
CLOCK_READS = re.compile(
    r"current_date|current_timestamp|\bnow\s*\(|localtimestamp|sysdate|'now'|curdate", re.I
)
BIND = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


def by_key(preset: dealership.Preset) -> str:
    return preset.key


def test_ten_rules_make_eleven_presets_one_per_event_type() -> None:
    assert len(PRESETS) == 11
    assert set(dealership.BY_KEY) == {
        "seven_day_checkin", "post_service_survey", "annual_tuneup", "spring_reminder", "winterization_reminder",
        "ghost_customer_winback", "anniversary_offer", "warranty_expiration", "trade_in_alert",
        "first_service_alert", "usage_service_alert",
    }  # fmt: skip
    assert all(preset.event_type in BY_NAME for preset in PRESETS)


@pytest.mark.parametrize("preset", PRESETS, ids=by_key)
def test_rows_and_constants_supply_every_variable_the_templates_read(preset: dealership.Preset) -> None:
    supplied = set(preset.columns) | set(dealership.DEALERSHIP_VARIABLES) | set(preset.variables)
    event = BY_NAME[preset.event_type]
    assert set(event.variables) <= supplied, set(event.variables) - supplied
    for (channel, locale), text in event.texts.items():
        missing = set(template_variables(text.subject, text.body)) - supplied
        assert not missing, f"{channel}/{locale} reads {missing}"


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("preset", PRESETS, ids=by_key)
def test_sql_is_one_select_on_today_binding_exactly_its_parameters(
    preset: dealership.Preset, dialect: str
) -> None:
    sql = preset.sql(dialect)
    check_query(sql)  # what run_query accepts: one SELECT, no writes
    assert ":today" in sql
    assert not CLOCK_READS.search(sql), CLOCK_READS.search(sql)
    assert set(BIND.findall(sql)) == set(preset.params) | RUN_BINDS


@pytest.mark.parametrize("preset", PRESETS, ids=by_key)
def test_schedule_dedupe_and_channels_name_real_things(preset: dealership.Preset) -> None:
    validate_cron(preset.schedule)
    assert next_runs(preset.schedule, timezone=preset.timezone, after=datetime(2026, 1, 1, tzinfo=UTC))
    assert set(preset.dedupe_key) <= set(preset.columns)
    assert preset.dedupe_period in dealership.DEDUPE_PERIODS
    assert {c["address_column"] for c in dealership.CHANNELS} | {dealership.TIMEZONE_COLUMN} <= set(
        preset.columns
    )
    assert "customer_id" in preset.dedupe_key or "work_order_id" in preset.dedupe_key


def test_dedupe_matches_each_rule_s_promise() -> None:
    get = dealership.get
    assert (get("first_service_alert").dedupe_key, get("first_service_alert").dedupe_period) == (
        ("customer_id", "equipment_id"),
        "ever",
    )
    assert (get("spring_reminder").dedupe_key, get("spring_reminder").dedupe_period) == (
        ("customer_id",),
        "year",
    )
    usage = get("usage_service_alert")
    assert "service_bucket" in usage.dedupe_key
    assert usage.dedupe_period == "ever"
    assert get("spring_reminder").schedule.split()[3] == "3"
    assert get("winterization_reminder").schedule.split()[3] == "10"


def test_the_seed_s_settings_are_the_defaults() -> None:
    get = dealership.get
    assert get("ghost_customer_winback").params == {"inactive_months": 12}
    assert get("warranty_expiration").params == {"warning_days": 30}
    assert get("trade_in_alert").params == {"min_age_years": 8, "min_repair_count": 3}
    assert get("first_service_alert").params["threshold_hours"] == 20
    assert get("usage_service_alert").params == {"interval_hours": 100}
    assert get("annual_tuneup").params == {"days_before": 14}


# --------------------------------------------------------------------------- the campaign body


def test_body_holds_to_the_contract() -> None:
    preset = dealership.get("ghost_customer_winback")
    body = dealership.campaign_body(
        preset, agent_id="dealer-agent", data_source_id="dsr_1", dialect="postgresql",
        params={"inactive_months": 18}, variables={"dealership_name": "Acme Mowers"}, timezone="Europe/London",
    )  # fmt: skip
    assert set(body) <= CONTRACT_FIELDS
    assert body["name"] == "Ghost customer win-back"
    assert body["agent_id"] == "dealer-agent"
    assert body["data_source_id"] == "dsr_1"
    assert body["audience_query"] == preset.sql("postgresql")
    assert body["query_params"] == {"inactive_months": 18}
    assert body["schedule"] == "0 9 * * 1"
    assert body["timezone"] == "Europe/London"
    assert body["event_type"] == "ghost_customer_winback"
    assert body["locale"] == "en"
    assert body["channels"] == [
        {"platform": "sms", "address_column": "phone"},
        {"platform": "email", "address_column": "email"},
    ]
    assert body["timezone_column"] == "timezone"
    assert body["variables"] == {
        "dealership_name": "Acme Mowers", "dealership_phone": "(555) 010-2300", "offer_code": "WELCOME10",
    }  # fmt: skip
    assert body["dedupe_key"] == ["customer_id"]
    assert body["dedupe_period"] == "year"
    assert body["priority"] in {"CRITICAL", "HIGH", "MEDIUM", "LOW"}
    assert body["enabled"] is True
    assert "queue" not in body  # audience_query XOR queue: the presets read tables, not a queue
    assert all(isinstance(v, str | int | float | bool) for v in body["query_params"].values())


@pytest.mark.parametrize("preset", PRESETS, ids=by_key)
def test_every_preset_builds_a_body_on_every_dialect(preset: dealership.Preset) -> None:
    for dialect in DIALECTS:
        body = dealership.campaign_body(preset, agent_id="a", data_source_id="dsr_x", dialect=dialect)
        assert 1 <= len(body["name"]) <= 200
        assert body["query_params"] == preset.params
        assert body["schedule"] == preset.schedule
        assert body["timezone"] == dealership.DEFAULT_TIMEZONE


def test_body_refuses_an_unknown_parameter_or_dialect() -> None:
    preset = dealership.get("warranty_expiration")
    with pytest.raises(ValueError, match="params: warranty_expiration has no parameter warning_dayz"):
        dealership.campaign_body(
            preset, agent_id="a", data_source_id="d", dialect="sqlite", params={"warning_dayz": 5}
        )
    with pytest.raises(ValueError, match="dialect"):
        dealership.campaign_body(preset, agent_id="a", data_source_id="d", dialect="oracle")
    with pytest.raises(KeyError, match="seven_day_checkin"):
        dealership.get("nope")
