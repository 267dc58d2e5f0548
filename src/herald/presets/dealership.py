"""Seed 004's dealership lifecycle rules as campaign presets: who to write to, when, and how often.

Each of the ten scheduled rules of the communication agent (seasonal reminders split into spring and
winterization, so eleven presets) becomes one campaign: an audience query on the dealership's own database
(the schema of :mod:`herald.presets.dealership_data`), a default schedule and time zone, the template library's
event type, a dedupe key and period, and the seed's SMS-then-email channel policy. The seed's settings
(``GHOST_CUSTOMER_MONTHS``, ``WARRANTY_WARNING_DAYS``, ``TRADE_IN_MIN_AGE_YEARS``, ...) are the presets'
parameters: named binds in ``query_params`` that a tenant overrides per campaign.

Every query reads the run's date from ``:today`` (the campaign's own date in its time zone), never the
database's clock, so a test pins the date and a rule counts days where the dealership is. One row is one
message; its columns are the template's variables, with the constants (dealership name, booking link) in the
campaign's ``variables``. Rows without a mobile number or an email, and customers marked do-not-contact, are
left out by the query itself.

:func:`campaign_body` turns a preset into the body of ``POST /api/v1/campaigns`` (docs: the campaign contract).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from herald.presets._sql import DIALECTS, Dialect

Scalar = str | int | float | bool
DEFAULT_TIMEZONE = "America/Chicago"
DEFAULT_AGENT_ID = "dealer-agent"
CHANNELS: tuple[dict[str, str], ...] = (
    {"platform": "sms", "address_column": "phone"},  # the seed's policy: a text first...
    {"platform": "email", "address_column": "email"},  # ...and email when there is no mobile or the SMS fails
)
TIMEZONE_COLUMN = "timezone"
DEALERSHIP_VARIABLES: dict[str, str] = {
    "dealership_name": "Riverside Power Equipment",
    "dealership_phone": "(555) 010-2300",
}
BOOKING_URL = "https://example.com/book"
DEDUPE_PERIODS = ("ever", "year", "month", "week", "day")


@dataclass(frozen=True, slots=True)
class Preset:
    """One campaign, ready to create: everything but the tenant's agent and data source.

    ``columns`` are the audience's columns, in order; ``variables`` the constants merged under them;
    ``params`` the named binds with their defaults (the seed's settings)."""

    key: str  # also the template library's event type
    name: str
    description: str
    schedule: str  # cron, in ``timezone``
    dedupe_key: tuple[str, ...]
    dedupe_period: str
    params: dict[str, int]
    columns: tuple[str, ...]
    variables: dict[str, str]
    priority: str
    build_sql: Callable[[Dialect], str] = field(repr=False)
    timezone: str = DEFAULT_TIMEZONE

    @property
    def event_type(self) -> str:
        return self.key

    def sql(self, dialect: str) -> str:
        """The audience query for a data source's ``backend`` (sqlite, postgresql or mysql)."""
        return self.build_sql(Dialect(dialect))


# --------------------------------------------------------------------------- shared SQL

# Who is written to, and where: the customer, their mobile (a landline cannot take an SMS) and their email,
# the primary one of each first. Scalar subqueries keep it to one row per customer however many they have.
_CUSTOMER = (
    "c.id AS customer_id, c.first_name AS first_name, c.timezone AS timezone, "
    "(SELECT p.number FROM phones p WHERE p.customer_id = c.id AND p.kind = 'mobile' "
    "ORDER BY p.is_primary DESC, p.id LIMIT 1) AS phone, "
    "(SELECT m.address FROM emails m WHERE m.customer_id = c.id ORDER BY m.is_primary DESC, m.id LIMIT 1) AS email"
)
_CONTACT_COLUMNS = ("customer_id", "first_name", "timezone", "phone", "email")


def _audience(inner: str, order: str = "customer_id") -> str:
    """The reachable rows of ``inner``, in a stable order: a customer with neither a mobile nor an email is no
    message (the campaign would only record a failure)."""
    return (
        f"SELECT * FROM ({inner}) audience "
        f"WHERE audience.phone IS NOT NULL OR audience.email IS NOT NULL ORDER BY {order}"
    )


def _latest_hours(d: Dialect) -> str:
    """Each machine's current hour-meter reading: readings only grow, so the largest up to the run date."""
    return (
        "(SELECT r.equipment_id, MAX(r.hours) AS hours FROM hour_readings r "
        f"WHERE r.read_on <= {d.today()} GROUP BY r.equipment_id)"
    )


def _anniversary_on(d: Dialect, target: str) -> tuple[str, str]:
    """(condition, years): the equipment's purchase anniversary falls on ``target``, ``years`` after purchase
    (at least one). A machine bought on 29 February has its anniversary on 28 February in common years."""
    years = f"({d.year(target)} - {d.year('e.purchase_date')})"
    return f"{years} >= 1 AND {d.plus_years('e.purchase_date', years)} = {target}", years


# --------------------------------------------------------------------------- the rules


def _seven_day_checkin(d: Dialect) -> str:
    bought = d.plus_days(d.today(), ":days_after_purchase", minus=True)
    return _audience(
        f"SELECT {_CUSTOMER}, e.id AS equipment_id, e.model AS equipment_model, e.purchase_date AS purchase_date "
        "FROM equipment e JOIN customers c ON c.id = e.customer_id "
        f"WHERE NOT c.do_not_contact AND e.purchase_date = {bought}",
        "customer_id, equipment_id",
    )


def _post_service_survey(d: Dialect) -> str:
    picked_up = d.date_of("w.picked_up_at")
    return _audience(
        f"SELECT {_CUSTOMER}, e.id AS equipment_id, e.model AS equipment_model, w.id AS work_order_id, "
        "w.number AS work_order_number "
        "FROM work_orders w JOIN customers c ON c.id = w.customer_id JOIN equipment e ON e.id = w.equipment_id "
        "WHERE NOT c.do_not_contact AND w.kind IN ('service', 'repair') AND w.picked_up_at IS NOT NULL "
        f"AND {picked_up} = {d.plus_days(d.today(), ':days_after_pickup', minus=True)}",
        "customer_id, work_order_id",
    )


def _annual_tuneup(d: Dialect) -> str:
    target = d.plus_days(d.today(), ":days_before")
    condition, _ = _anniversary_on(d, target)
    return _audience(
        f"SELECT {_CUSTOMER}, e.id AS equipment_id, e.model AS equipment_model, "
        f"{target} AS anniversary_date "
        "FROM equipment e JOIN customers c ON c.id = e.customer_id "
        f"WHERE NOT c.do_not_contact AND {condition}",
        "customer_id, equipment_id",
    )


def _anniversary_offer(d: Dialect) -> str:
    condition, years = _anniversary_on(d, d.today())
    return _audience(
        f"SELECT {_CUSTOMER}, e.id AS equipment_id, e.model AS equipment_model, {years} AS years_owned "
        "FROM equipment e JOIN customers c ON c.id = e.customer_id "
        f"WHERE NOT c.do_not_contact AND {condition}",
        "customer_id, equipment_id",
    )


def _seasonal(categories: tuple[str, ...]) -> Callable[[Dialect], str]:
    """One row per customer owning equipment of ``categories``, naming their most recently bought one."""
    listed = ", ".join(f"'{category}'" for category in categories)

    def build(d: Dialect) -> str:
        return _audience(
            f"SELECT {_CUSTOMER}, e.id AS equipment_id, e.model AS equipment_model "
            "FROM (SELECT x.id, x.customer_id, x.model, ROW_NUMBER() OVER "
            "(PARTITION BY x.customer_id ORDER BY x.purchase_date DESC, x.id DESC) AS newest "
            f"FROM equipment x WHERE x.category IN ({listed}) AND x.purchase_date <= {d.today()}) e "
            "JOIN customers c ON c.id = e.customer_id "
            "WHERE e.newest = 1 AND NOT c.do_not_contact"
        )

    return build


def _ghost_customer_winback(d: Dialect) -> str:
    # The last time the customer was seen: a purchase or a work order opened, up to the run date.
    last_seen = (
        "(SELECT a.customer_id, MAX(a.happened_on) AS last_on FROM ("
        "SELECT customer_id, purchase_date AS happened_on FROM equipment "
        "UNION ALL SELECT customer_id, opened_on AS happened_on FROM work_orders"
        f") a WHERE a.happened_on <= {d.today()} GROUP BY a.customer_id)"
    )
    return _audience(
        f"SELECT {_CUSTOMER}, l.last_on AS last_visit_date, "
        f"{d.whole_months('l.last_on', d.today())} AS months_inactive "
        f"FROM customers c JOIN {last_seen} l ON l.customer_id = c.id "
        f"WHERE NOT c.do_not_contact AND l.last_on <= {d.plus_months(d.today(), ':inactive_months', minus=True)}"
    )


def _warranty_expiration(d: Dialect) -> str:
    return _audience(
        f"SELECT {_CUSTOMER}, e.id AS equipment_id, e.model AS equipment_model, "
        "e.warranty_end_date AS warranty_end_date "
        "FROM equipment e JOIN customers c ON c.id = e.customer_id "
        f"WHERE NOT c.do_not_contact AND e.warranty_end_date >= {d.today()} "
        f"AND e.warranty_end_date <= {d.plus_days(d.today(), ':warning_days')}",
        "customer_id, equipment_id",
    )


def _trade_in_alert(d: Dialect) -> str:
    repairs = (
        "(SELECT w.equipment_id, COUNT(*) AS repair_count FROM work_orders w "
        f"WHERE w.kind = 'repair' AND w.opened_on <= {d.today()} GROUP BY w.equipment_id)"
    )
    return _audience(
        f"SELECT {_CUSTOMER}, e.id AS equipment_id, e.model AS equipment_model, "
        f"{d.whole_years('e.purchase_date', d.today())} AS equipment_age_years, "
        f"{d.integer('r.repair_count')} AS repair_count "
        f"FROM equipment e JOIN customers c ON c.id = e.customer_id JOIN {repairs} r ON r.equipment_id = e.id "
        f"WHERE NOT c.do_not_contact AND e.purchase_date <= {d.plus_years(d.today(), ':min_age_years', minus=True)} "
        f"AND r.repair_count >= {d.integer(':min_repair_count')}",
        "customer_id, equipment_id",
    )


def _first_service_alert(d: Dialect) -> str:
    # Below the first usage interval: past it, usage_service_alert speaks for a machine never serviced.
    return _audience(
        f"SELECT {_CUSTOMER}, e.id AS equipment_id, e.model AS equipment_model, h.hours AS machine_hours "
        f"FROM equipment e JOIN customers c ON c.id = e.customer_id JOIN {_latest_hours(d)} h "
        "ON h.equipment_id = e.id "
        f"WHERE NOT c.do_not_contact AND h.hours >= {d.integer(':threshold_hours')} "
        f"AND h.hours < {d.integer(':interval_hours')} "
        "AND NOT EXISTS (SELECT 1 FROM work_orders w WHERE w.equipment_id = e.id AND w.kind = 'service')",
        "customer_id, equipment_id",
    )


def _usage_service_alert(d: Dialect) -> str:
    bucket = d.int_div("h.hours", ":interval_hours")
    interval = d.integer(":interval_hours")
    # Due once per interval crossed (the bucket), unless a service was recorded at or past that mark.
    return _audience(
        f"SELECT {_CUSTOMER}, e.id AS equipment_id, e.model AS equipment_model, h.hours AS machine_hours, "
        f"{interval} AS service_interval_hours, {bucket} AS service_bucket "
        f"FROM equipment e JOIN customers c ON c.id = e.customer_id JOIN {_latest_hours(d)} h "
        "ON h.equipment_id = e.id "
        f"WHERE NOT c.do_not_contact AND h.hours >= {interval} "
        "AND NOT EXISTS (SELECT 1 FROM work_orders w WHERE w.equipment_id = e.id AND w.kind = 'service' "
        f"AND w.machine_hours >= {bucket} * {interval})",
        "customer_id, equipment_id",
    )


# --------------------------------------------------------------------------- the presets

_EQUIPMENT = (*_CONTACT_COLUMNS, "equipment_id", "equipment_model")
_BOOKING = {"booking_url": BOOKING_URL}
SPRING_CATEGORIES = ("mower", "tractor", "trimmer")
# Everything with an engine that sits out the winter; snow blowers are the ones that do not.
WINTERIZATION_CATEGORIES = ("mower", "tractor", "trimmer", "chainsaw", "blower")

PRESETS: tuple[Preset, ...] = (
    Preset(
        "seven_day_checkin", "Seven-day check-in",
        "A check-in seven days after a machine is bought.",
        "0 10 * * *", ("customer_id", "equipment_id"), "ever", {"days_after_purchase": 7},
        (*_EQUIPMENT, "purchase_date"), {}, "MEDIUM", _seven_day_checkin,
    ),
    Preset(
        "post_service_survey", "Post-service survey",
        "A survey two calendar days after serviced equipment is picked up (48 to 72 hours at day resolution).",
        "0 16 * * *", ("work_order_id",), "ever", {"days_after_pickup": 2},
        (*_EQUIPMENT, "work_order_id", "work_order_number"),
        {"survey_url": "https://example.com/survey"}, "MEDIUM", _post_service_survey,
    ),
    Preset(
        "annual_tuneup", "Annual tune-up",
        "A tune-up reminder 14 days before each purchase anniversary.",
        "0 9 * * *", ("customer_id", "equipment_id"), "year", {"days_before": 14},
        (*_EQUIPMENT, "anniversary_date"), _BOOKING, "MEDIUM", _annual_tuneup,
    ),
    Preset(
        "spring_reminder", "Spring reminder",
        "Get mowers, tractors and trimmers ready for the season: on 1 March, once per customer per year.",
        "0 9 1 3 *", ("customer_id",), "year", {},
        _EQUIPMENT, _BOOKING, "LOW", _seasonal(SPRING_CATEGORIES),
    ),
    Preset(
        "winterization_reminder", "Winterization reminder",
        "Prepare engines for winter storage: on 1 October, once per customer per year.",
        "0 9 1 10 *", ("customer_id",), "year", {},
        _EQUIPMENT, _BOOKING, "LOW", _seasonal(WINTERIZATION_CATEGORIES),
    ),
    Preset(
        "ghost_customer_winback", "Ghost customer win-back",
        "We miss you: customers with no purchase or work order for GHOST_CUSTOMER_MONTHS (12) months.",
        "0 9 * * 1", ("customer_id",), "year", {"inactive_months": 12},
        (*_CONTACT_COLUMNS, "last_visit_date", "months_inactive"), {"offer_code": "WELCOME10"}, "LOW",
        _ghost_customer_winback,
    ),
    Preset(
        "anniversary_offer", "Anniversary offer",
        "A thank-you offer on each purchase anniversary.",
        "0 9 * * *", ("customer_id", "equipment_id"), "year", {},
        (*_EQUIPMENT, "years_owned"), {"offer_code": "THANKS15"}, "LOW", _anniversary_offer,
    ),
    Preset(
        "warranty_expiration", "Warranty expiration",
        "A warning when a warranty ends within WARRANTY_WARNING_DAYS (30) days; once per machine.",
        "0 9 * * *", ("customer_id", "equipment_id"), "ever", {"warning_days": 30},
        (*_EQUIPMENT, "warranty_end_date"), _BOOKING, "MEDIUM", _warranty_expiration,
    ),
    Preset(
        "trade_in_alert", "Trade-in alert",
        "A trade-in suggestion for machines TRADE_IN_MIN_AGE_YEARS (8) or more years old with "
        "TRADE_IN_MIN_REPAIR_COUNT (3) or more repairs; at most once a year per machine.",
        "0 9 1 * *", ("customer_id", "equipment_id"), "year", {"min_age_years": 8, "min_repair_count": 3},
        (*_EQUIPMENT, "equipment_age_years", "repair_count"), {}, "LOW", _trade_in_alert,
    ),
    Preset(
        "first_service_alert", "First service alert",
        "The first-service reminder once a machine never serviced reaches FIRST_SERVICE_HOURS_THRESHOLD (20) "
        "hours; once per machine, ever.",
        "0 9 * * 1", ("customer_id", "equipment_id"), "ever", {"threshold_hours": 20, "interval_hours": 100},
        (*_EQUIPMENT, "machine_hours"), _BOOKING, "MEDIUM", _first_service_alert,
    ),
    Preset(
        "usage_service_alert", "Usage service alert",
        "A service reminder every USAGE_SERVICE_HOURS_INTERVAL (100) hours, once per machine per interval "
        "crossed, unless a service was recorded at or past it.",
        "0 9 * * 1", ("customer_id", "equipment_id", "service_bucket"), "ever", {"interval_hours": 100},
        (*_EQUIPMENT, "machine_hours", "service_interval_hours", "service_bucket"), _BOOKING, "MEDIUM",
        _usage_service_alert,
    ),
)  # fmt: skip
BY_KEY: dict[str, Preset] = {preset.key: preset for preset in PRESETS}


def get(key: str) -> Preset:
    """The preset named ``key``; KeyError listing the known ones otherwise."""
    try:
        return BY_KEY[key]
    except KeyError:
        raise KeyError(f"no dealership preset {key!r}: one of {', '.join(BY_KEY)}") from None


# --------------------------------------------------------------------------- the campaign body


def campaign_body(
    preset: Preset,
    *,
    agent_id: str,
    data_source_id: str,
    dialect: str,
    params: Mapping[str, Scalar] | None = None,
    variables: Mapping[str, str] | None = None,
    timezone: str | None = None,
    schedule: str | None = None,
    name: str | None = None,
    locale: str = "en",
    enabled: bool = True,
) -> dict[str, Any]:
    """The ``POST /api/v1/campaigns`` body for ``preset`` on a data source of ``dialect`` (its ``backend``).

    ``params`` override the preset's defaults (the seed's settings) and must name one of them: a typo would
    otherwise be a bind the query never reads. ``variables`` are merged over the dealership constants."""
    if dialect not in DIALECTS:
        raise ValueError(f"dialect: one of {', '.join(DIALECTS)}, not {dialect!r}")
    unknown = sorted(set(params or {}) - set(preset.params))
    if unknown:
        known = ", ".join(preset.params) or "none"
        raise ValueError(f"params: {preset.key} has no parameter {', '.join(unknown)} (it takes: {known})")
    return {
        "name": name or preset.name,
        "agent_id": agent_id,
        "data_source_id": data_source_id,
        "audience_query": preset.sql(dialect),
        "query_params": {**preset.params, **(params or {})},
        "schedule": schedule or preset.schedule,
        "timezone": timezone or preset.timezone,
        "event_type": preset.event_type,
        "locale": locale,
        "channels": [dict(channel) for channel in CHANNELS],
        "timezone_column": TIMEZONE_COLUMN,
        "variables": {**DEALERSHIP_VARIABLES, **preset.variables, **(variables or {})},
        "dedupe_key": list(preset.dedupe_key),
        "dedupe_period": preset.dedupe_period,
        "priority": preset.priority,
        "enabled": enabled,
    }
