"""Date and number expressions spelled per dialect, so one preset reads the same on SQLite, PostgreSQL and
MySQL/MariaDB.

Every expression takes SQL text and returns SQL text. Parameters stay named binds (``:today``, ``:days``):
the date arithmetic is done by the database on the run's ``:today``, never on the database's own clock, so a
test can pin the date and a campaign in Chicago counts days in Chicago. PostgreSQL infers a bind's type from
its context (asyncpg sends typed parameters), hence the explicit casts there.
"""

from __future__ import annotations

from dataclasses import dataclass

DIALECTS = ("sqlite", "postgresql", "mysql")


@dataclass(frozen=True, slots=True)
class Dialect:
    """One database's spelling of the expressions the presets need. ``name`` is a data source's ``backend``."""

    name: str

    def __post_init__(self) -> None:
        if self.name not in DIALECTS:
            raise ValueError(f"unknown dialect {self.name!r}: one of {', '.join(DIALECTS)}")

    # ------------------------------------------------------------------ values

    def today(self) -> str:
        """The run's date (the ``:today`` bind) as a DATE."""
        return "date(:today)" if self.name == "sqlite" else "CAST(:today AS DATE)"

    def integer(self, expr: str) -> str:
        """``expr`` as an integer: a bind typed for PostgreSQL, a count or difference without decimals."""
        if self.name == "mysql":
            return f"CAST({expr} AS SIGNED)"
        return f"CAST({expr} AS INTEGER)"

    def date_of(self, timestamp: str) -> str:
        """The calendar date of a timestamp column."""
        return {"sqlite": f"date({timestamp})", "postgresql": f"CAST({timestamp} AS DATE)",
                "mysql": f"DATE({timestamp})"}[self.name]  # fmt: skip

    # ------------------------------------------------------------------ arithmetic

    def plus_days(self, date: str, days: str, *, minus: bool = False) -> str:
        """``date`` plus (or minus) ``days`` days; ``days`` is an integer expression or bind."""
        sign = "-" if minus else ""
        if self.name == "sqlite":
            return f"date({date}, ({sign}{days}) || ' days')"
        if self.name == "postgresql":
            return f"({date} {'-' if minus else '+'} CAST({days} AS INTEGER))"
        return f"DATE_ADD({date}, INTERVAL ({sign}{days}) DAY)"

    def plus_months(self, date: str, months: str, *, minus: bool = False) -> str:
        """``date`` plus (or minus) whole months, the day clamped to the month's last (31 Mar - 1 month =
        28/29 Feb) as PostgreSQL and MySQL do; SQLite's own rule would overflow into March, so it is clamped."""
        sign = "-" if minus else ""
        if self.name == "sqlite":
            return self._sqlite_clamped(date, f"({sign}{months}) || ' months'")
        if self.name == "postgresql":
            return f"CAST({date} + make_interval(months => {sign}CAST({months} AS INTEGER)) AS DATE)"
        return f"DATE_ADD({date}, INTERVAL ({sign}{months}) MONTH)"

    def plus_years(self, date: str, years: str, *, minus: bool = False) -> str:
        """``date`` plus (or minus) whole years; 29 February becomes 28 February in a common year, everywhere."""
        sign = "-" if minus else ""
        if self.name == "sqlite":
            return self._sqlite_clamped(date, f"({sign}{years}) || ' years'")
        if self.name == "postgresql":
            return f"CAST({date} + make_interval(years => {sign}CAST({years} AS INTEGER)) AS DATE)"
        return f"DATE_ADD({date}, INTERVAL ({sign}{years}) YEAR)"

    @staticmethod
    def _sqlite_clamped(date: str, modifier: str) -> str:
        """SQLite normalises 2025-02-31 to 2025-03-03; step back to the end of the intended month instead.

        When the day of the result differs from the day asked for, the month overflowed by that many days:
        subtracting the result's day of month lands on the last day of the month before."""
        moved = f"date({date}, {modifier})"
        return (
            f"(CASE WHEN strftime('%d', {moved}) = strftime('%d', {date}) THEN {moved} "
            f"ELSE date({moved}, '-' || CAST(strftime('%d', {moved}) AS INTEGER) || ' days') END)"
        )

    def year(self, date: str) -> str:
        return {"sqlite": f"CAST(strftime('%Y', {date}) AS INTEGER)",
                "postgresql": f"CAST(EXTRACT(YEAR FROM {date}) AS INTEGER)",
                "mysql": f"YEAR({date})"}[self.name]  # fmt: skip

    def whole_years(self, start: str, end: str) -> str:
        """Complete years from ``start`` to ``end`` (an age: 2018-06-01 to 2026-05-31 is 7)."""
        if self.name == "mysql":
            return f"TIMESTAMPDIFF(YEAR, {start}, {end})"
        if self.name == "postgresql":
            return f"CAST(EXTRACT(YEAR FROM {self._pg_age(start, end)}) AS INTEGER)"
        return (
            f"(CAST(strftime('%Y', {end}) AS INTEGER) - CAST(strftime('%Y', {start}) AS INTEGER) "
            f"- (strftime('%m-%d', {end}) < strftime('%m-%d', {start})))"
        )

    def whole_months(self, start: str, end: str) -> str:
        """Complete months from ``start`` to ``end`` (2025-01-31 to 2025-02-28 is 0, as in MySQL and PostgreSQL)."""
        if self.name == "mysql":
            return f"TIMESTAMPDIFF(MONTH, {start}, {end})"
        if self.name == "postgresql":
            age = self._pg_age(start, end)
            return f"CAST(EXTRACT(YEAR FROM {age}) * 12 + EXTRACT(MONTH FROM {age}) AS INTEGER)"
        return (
            f"((CAST(strftime('%Y', {end}) AS INTEGER) - CAST(strftime('%Y', {start}) AS INTEGER)) * 12 "
            f"+ CAST(strftime('%m', {end}) AS INTEGER) - CAST(strftime('%m', {start}) AS INTEGER) "
            f"- (strftime('%d', {end}) < strftime('%d', {start})))"
        )

    @staticmethod
    def _pg_age(start: str, end: str) -> str:
        # As timestamps without a zone: age() on dates would pick the zoned variant, where a DST change in
        # between shifts the difference by an hour.
        return f"age(CAST({end} AS TIMESTAMP), CAST({start} AS TIMESTAMP))"

    def int_div(self, numerator: str, denominator: str) -> str:
        """Integer division (the floor, for the non-negative numbers the presets divide)."""
        if self.name == "mysql":
            return f"({numerator} DIV {denominator})"
        return f"({numerator} / {self.integer(denominator)})"
