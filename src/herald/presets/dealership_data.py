"""The dealership's own database, as seed 004 describes it (customers, equipment, work orders, emails, phones,
and the machines' hour-meter readings), and a writer that creates it on SQLite, PostgreSQL or MySQL/MariaDB.

The schema is SQLAlchemy Core, so each backend gets its own DDL (:func:`ddl`) from one definition; rows are
plain dicts keyed by column, inserted in batches. This is the tenant's database, not Herald's: Herald only
ever reads it, through a registered data source.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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
