"""The dealership's own database, as seed 004 describes it (customers, equipment, work orders, emails, phones,
and the machines' hour-meter readings), and a writer that creates it on SQLite, PostgreSQL or MySQL/MariaDB.

The schema is SQLAlchemy Core, so each backend gets its own DDL (:func:`ddl`) from one definition; rows are
plain dicts keyed by column, inserted in batches. This is the tenant's database, not Herald's: Herald only
ever reads it, through a registered data source.

:func:`generate` makes a deterministic demo dealership (seeded random, dates relative to a given day) on which
every preset of :mod:`herald.presets.dealership` finds someone to write to; :func:`build` writes it.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Mapping, Sequence
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
)
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.schema import CreateIndex, CreateTable

metadata = MetaData()

customers = Table(
    "customers", metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("first_name", String(60), nullable=False),
    Column("last_name", String(60), nullable=False),
    Column("timezone", String(64)),  # IANA zone; empty means the campaign's own
    Column("do_not_contact", Boolean, nullable=False, default=False),
    Column("created_on", Date, nullable=False),
)  # fmt: skip
phones = Table(
    "phones", metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("customer_id", Integer, ForeignKey("customers.id"), nullable=False, index=True),
    Column("number", String(32), nullable=False),  # E.164
    Column("kind", String(16), nullable=False),  # mobile | landline: only a mobile takes an SMS
    Column("is_primary", Boolean, nullable=False, default=False),
)  # fmt: skip
emails = Table(
    "emails", metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("customer_id", Integer, ForeignKey("customers.id"), nullable=False, index=True),
    Column("address", String(254), nullable=False),
    Column("is_primary", Boolean, nullable=False, default=False),
)  # fmt: skip
equipment = Table(
    "equipment", metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("customer_id", Integer, ForeignKey("customers.id"), nullable=False, index=True),
    Column("make", String(60), nullable=False),
    Column("model", String(120), nullable=False),  # as customers know it: "Husqvarna YTH18542"
    Column("category", String(30), nullable=False),  # mower | tractor | trimmer | chainsaw | blower | snow_blower
    Column("serial_number", String(60), nullable=False),
    Column("purchase_date", Date, nullable=False, index=True),
    Column("warranty_end_date", Date, index=True),
)  # fmt: skip
hour_readings = Table(
    "hour_readings", metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("equipment_id", Integer, ForeignKey("equipment.id"), nullable=False, index=True),
    Column("read_on", Date, nullable=False),
    Column("hours", Integer, nullable=False),  # the hour meter, in whole hours; it only grows
)  # fmt: skip
work_orders = Table(
    "work_orders", metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("number", String(20), nullable=False, unique=True),
    Column("customer_id", Integer, ForeignKey("customers.id"), nullable=False, index=True),
    Column("equipment_id", Integer, ForeignKey("equipment.id"), index=True),
    Column("kind", String(16), nullable=False),  # service | repair | warranty | inspection
    Column("status", String(16), nullable=False),  # open | completed | picked_up
    Column("opened_on", Date, nullable=False),
    Column("completed_on", Date),
    Column("picked_up_at", DateTime),  # local time at the dealership
    Column("machine_hours", Integer),  # the hour meter at intake, when the machine has one
)  # fmt: skip

TABLES: tuple[Table, ...] = tuple(metadata.sorted_tables)  # parents first: the insertion order
_DIALECTS = {  # SQLAlchemy's dialect classes are not annotated
    "sqlite": sqlite.dialect(),
    "postgresql": postgresql.dialect(),  # type: ignore[no-untyped-call]
    "mysql": mysql.dialect(),
}


def ddl(dialect: str) -> list[str]:
    """The CREATE TABLE and CREATE INDEX statements for ``dialect`` (sqlite, postgresql or mysql)."""
    compiled = _DIALECTS[dialect]
    statements: list[str] = []
    for table in TABLES:
        statements.append(str(CreateTable(table).compile(dialect=compiled)).strip())
        statements += [str(CreateIndex(index).compile(dialect=compiled)).strip() for index in table.indexes]
    return statements


def async_url(url: str) -> URL:
    """A plain database URL (sqlite:///file, postgresql://, mysql:// or mariadb://) with the async driver
    Herald ships (aiosqlite, asyncpg, aiomysql); ValueError for anything else."""
    parsed = make_url(url.strip())
    backend = parsed.get_backend_name()
    drivers = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg", "postgres": "postgresql+asyncpg",
               "mysql": "mysql+aiomysql", "mariadb": "mysql+aiomysql"}  # fmt: skip
    if backend not in drivers:
        raise ValueError(
            f"unsupported database URL {parsed.drivername}://: use sqlite:///, postgresql:// or mysql://"
        )
    if backend == "sqlite" and (not parsed.database or parsed.database == ":memory:"):
        raise ValueError("a SQLite database needs a file: sqlite:///path/to/file.db")
    return parsed.set(drivername=drivers[backend])


def dialect_of(url: str) -> str:
    """The data source ``backend`` a URL names: sqlite, postgresql or mysql (MariaDB included)."""
    return async_url(url).get_backend_name()


async def write(url: str, rows: Mapping[str, Sequence[Mapping[str, Any]]], *, batch_size: int = 1000) -> None:
    """Create the schema at ``url`` (dropping the tables first: the database is the demo's own) and insert
    ``rows`` (table name to rows), ``batch_size`` rows per statement, one transaction per batch."""
    target = async_url(url)
    if target.get_backend_name() == "sqlite":
        assert target.database is not None
        Path(target.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(target)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(metadata.drop_all)
            await conn.run_sync(metadata.create_all)
        for table in TABLES:
            batch = list(rows.get(table.name, ()))
            for start in range(0, len(batch), batch_size):
                async with engine.begin() as conn:
                    await conn.execute(table.insert(), [dict(r) for r in batch[start : start + batch_size]])
    finally:
        await engine.dispose()


# --------------------------------------------------------------------------- the demo's data

FIRST_NAMES = (
    "Dana", "Alex", "Sam", "Jordan", "Casey", "Morgan", "Riley", "Taylor", "Jamie", "Avery", "Quinn", "Drew",
    "Pat", "Robin", "Lee", "Chris", "Maria", "José", "Aisha", "Wei", "Priya", "Olga", "Tomás", "Noor",
)  # fmt: skip
LAST_NAMES = (
    "Miller", "Nguyen", "Garcia", "Smith", "Johnson", "Brown", "Davis", "Lopez", "Wilson", "Anderson",
    "Thomas", "Moore", "Martin", "Lee", "Clark", "Lewis", "Walker", "Hall", "Young", "King", "Wright",
)  # fmt: skip
TIMEZONES = (
    "America/Chicago",
    "America/New_York",
    "America/Denver",
    "America/Los_Angeles",
    "America/Phoenix",
)
# category -> (models, warranty years); mowers and tractors carry an hour meter.
CATALOG: dict[str, tuple[tuple[str, ...], int]] = {
    "mower": (
        ("Husqvarna YTH18542", "Toro TimeCutter 42", "Honda HRX217", "John Deere S120", "Cub Cadet XT1"),
        3,
    ),
    "tractor": (("Kubota BX2380", "John Deere 1025R", "Kubota L2501", "Mahindra 1626"), 5),
    "trimmer": (("Stihl FS 91 R", "Echo SRM-225", "Husqvarna 525L"), 2),
    "chainsaw": (("Stihl MS 250", "Husqvarna 450 Rancher", "Echo CS-590"), 2),
    "blower": (("Stihl BR 600", "Echo PB-580T"), 2),
    "snow_blower": (("Toro Power Max 826", "Ariens Deluxe 28"), 3),
}
HOUR_METER = frozenset({"mower", "tractor"})
PLANTED_PER_RULE = 2  # customers built to match each rule on the given day, over the random ones


def _add_years(day: date, years: int) -> date:
    """``day`` moved by whole years; 29 February becomes 28 February in a common year (as the presets count)."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


class _Dealership:
    """The rows being generated, with one random stream and one id sequence per table, so a seed and a date
    always give the same database."""

    def __init__(self, today: date, seed: int) -> None:
        self.today = today
        self.rng = random.Random(seed)  # noqa: S311 - demo data, reproducible on purpose
        self.rows: dict[str, list[dict[str, Any]]] = {table.name: [] for table in TABLES}
        self._ids = {table.name: itertools.count(1) for table in TABLES}

    def _id(self, table: str) -> int:
        return next(self._ids[table])

    def customer(self, *, reachable: bool = False, since_days: int = 15 * 365) -> int:
        rng = self.rng
        cid = self._id("customers")
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        self.rows["customers"].append({
            "id": cid, "first_name": first, "last_name": last,
            "timezone": None if rng.random() < 0.1 else rng.choice(TIMEZONES),
            "do_not_contact": not reachable and rng.random() < 0.03,
            "created_on": self.today - timedelta(days=rng.randint(30, since_days)),
        })  # fmt: skip
        has_mobile = reachable or rng.random() < 0.8
        if has_mobile:
            self._phone(cid, "mobile", primary=True)
        if rng.random() < 0.25:
            self._phone(cid, "landline", primary=not has_mobile)
        if (reachable and not has_mobile) or rng.random() < 0.75:
            self.rows["emails"].append({
                "id": self._id("emails"), "customer_id": cid, "is_primary": True,
                "address": f"{first}.{last}.{cid}@example.com".lower().replace("é", "e").replace("á", "a"),
            })  # fmt: skip
        return cid

    def _phone(self, cid: int, kind: str, *, primary: bool) -> None:
        number = f"+1{self.rng.randint(201, 989)}555{self.rng.randint(0, 9999):04d}"
        self.rows["phones"].append(
            {
                "id": self._id("phones"),
                "customer_id": cid,
                "number": number,
                "kind": kind,
                "is_primary": primary,
            }
        )

    def machine(self, cid: int, bought: date, category: str | None = None) -> int:
        rng = self.rng
        category = category or rng.choice(tuple(CATALOG))
        models, warranty_years = CATALOG[category]
        model = rng.choice(models)
        eid = self._id("equipment")
        self.rows["equipment"].append({
            "id": eid, "customer_id": cid, "make": model.split(maxsplit=1)[0], "model": model,
            "category": category, "serial_number": f"{model[:2].upper()}{rng.randint(10**7, 10**8 - 1)}",
            "purchase_date": bought,
            "warranty_end_date": None if rng.random() < 0.1 else _add_years(bought, warranty_years),
        })  # fmt: skip
        return eid

    def reading(self, eid: int, on: date, hours: int) -> None:
        self.rows["hour_readings"].append(
            {"id": self._id("hour_readings"), "equipment_id": eid, "read_on": on, "hours": hours}
        )

    def work_order(self, cid: int, eid: int, kind: str, opened: date, hours: int | None = None) -> int:
        """A work order opened on ``opened``: done a few days later and picked up when that is before today."""
        rng = self.rng
        wid = self._id("work_orders")
        completed = opened + timedelta(days=rng.randint(1, 6))
        picked_up = datetime.combine(completed + timedelta(days=rng.randint(0, 3)), time(rng.randint(8, 17)))
        done = completed <= self.today
        collected = picked_up.date() <= self.today
        self.rows["work_orders"].append({
            "id": wid, "number": f"WO-{10000 + wid}", "customer_id": cid, "equipment_id": eid, "kind": kind,
            "status": "picked_up" if collected else "completed" if done else "open", "opened_on": opened,
            "completed_on": completed if done else None, "picked_up_at": picked_up if collected else None,
            "machine_hours": hours,
        })  # fmt: skip
        return wid

    def history(self, cid: int, eid: int, bought: date, category: str) -> None:
        """Readings, yearly services and the odd repair for a machine bought on ``bought``."""
        rng = self.rng
        rate = rng.uniform(0.03, 0.35) if category in HOUR_METER else 0.0  # hours a day
        day = bought + timedelta(days=rng.randint(20, 90))
        while rate and day <= self.today:
            self.reading(eid, day, int(rate * (day - bought).days))
            day += timedelta(days=rng.randint(45, 150))
        age_days = (self.today - bought).days
        for year in range(1, age_days // 365 + 1):
            opened = bought + timedelta(days=365 * year + rng.randint(-30, 30))
            if opened > self.today:
                continue
            hours = int(rate * (opened - bought).days) if rate else None
            if rng.random() < 0.5:
                self.work_order(cid, eid, "service", opened, hours)
            if rng.random() < 0.04 * year:
                self.work_order(cid, eid, "repair", opened + timedelta(days=rng.randint(30, 200)), hours)

    # ------------------------------------------------------------------ every rule matches someone today

    def plant(self) -> None:
        """For each rule, customers who match it on ``today`` whatever the date: the random population makes
        most rules match most days, these make every rule match every day."""
        t = self.today
        for _ in range(PLANTED_PER_RULE):
            self.machine(self.customer(reachable=True), t - timedelta(days=7))  # seven_day_checkin
            cid = self.customer(reachable=True)  # post_service_survey
            eid = self.machine(cid, _add_years(t, -2), "chainsaw")
            self.work_order(cid, eid, "service", t - timedelta(days=5))
            self.rows["work_orders"][-1].update(  # picked up two days ago, whatever the random delays said
                completed_on=t - timedelta(days=3), status="picked_up",
                picked_up_at=datetime.combine(t - timedelta(days=2), time(self.rng.randint(8, 17))),
            )  # fmt: skip
            # annual_tuneup and anniversary_offer: multiples of four years keep 29 February a leap day
            self.machine(self.customer(reachable=True), _add_years(t + timedelta(days=14), -4), "mower")
            self.machine(self.customer(reachable=True), _add_years(t, -8), "trimmer")
            # spring_reminder and winterization_reminder
            self.machine(self.customer(reachable=True), t - timedelta(days=400), "mower")
            self.machine(
                self.customer(reachable=True, since_days=2000), t - timedelta(days=430), "blower"
            )  # ghost
            cid = self.customer(reachable=True)  # warranty_expiration
            eid = self.machine(cid, t - timedelta(days=700), "chainsaw")
            self.rows["equipment"][-1]["warranty_end_date"] = t + timedelta(days=10)
            cid = self.customer(reachable=True)  # trade_in_alert
            bought = _add_years(t, -9)
            eid = self.machine(cid, bought, "tractor")
            for k in range(4):
                self.work_order(cid, eid, "repair", bought + timedelta(days=400 * (k + 1)))
            cid = self.customer(reachable=True)  # first_service_alert
            eid = self.machine(cid, t - timedelta(days=60), "tractor")
            self.reading(eid, t - timedelta(days=30), 9)
            self.reading(eid, t - timedelta(days=3), 25)
            cid = self.customer(reachable=True)  # usage_service_alert
            eid = self.machine(cid, _add_years(t, -3), "mower")
            self.work_order(cid, eid, "service", t - timedelta(days=500), 110)
            self.reading(eid, t - timedelta(days=5), 230)


def generate(today: date, *, seed: int = 0, customers: int = 3000) -> dict[str, list[dict[str, Any]]]:
    """A dealership of ``customers`` random customers (plus a few per rule built to match on ``today``), with
    their machines, readings, work orders, phones and emails; the same for the same date, seed and count.

    Dates are relative to ``today``: the demo database is as lively on any day it is built."""
    if customers < 0:
        raise ValueError("customers must not be negative")
    dealer = _Dealership(today, seed)
    for _ in range(customers):
        cid = dealer.customer()
        created: date = dealer.rows["customers"][-1]["created_on"]
        for _ in range(dealer.rng.choice((1, 1, 1, 2, 2, 3))):
            bought = created + timedelta(days=dealer.rng.randint(0, (today - created).days))
            category = dealer.rng.choice(tuple(CATALOG))
            eid = dealer.machine(cid, bought, category)
            dealer.history(cid, eid, bought, category)
    dealer.plant()
    return dealer.rows


async def build(url: str, today: date, *, seed: int = 0, customers: int = 3000) -> dict[str, int]:
    """Generate the demo dealership and write it to ``url``; the number of rows per table."""
    rows = generate(today, seed=seed, customers=customers)
    await write(url, rows)
    return {name: len(table_rows) for name, table_rows in rows.items()}
