"""Each dealership preset, run through ``run_query`` on a registered data source on SQLite, PostgreSQL and
MariaDB, against a small hand-built database where the right customers (and only they) match on a pinned date:
the near misses sit one day, one hour, one repair or one hour-meter reading on the other side of each rule.

Herald's own database is SQLite only here: what varies is the tenant's database, which is where the SQL runs
(fixtures in this folder's conftest).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import httpx
import pytest

from herald.presets import dealership
from herald.presets.dealership_data import TABLES, write
from herald.runtime import Runtime
from tests.integration.presets.conftest import audience, register

TODAY = date(2026, 3, 18)


# --------------------------------------------------------------------------- a small dealership


@dataclass
class World:
    """A hand-built dealership database, and the contact columns each customer's row should carry."""

    rows: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: {t.name: [] for t in TABLES})
    contacts: dict[int, dict[str, str | None]] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def customer(
        self,
        cid: int,
        *,
        mobile: bool = True,
        landline: bool = False,
        email: bool = True,
        tz: str | None = "America/Chicago",
        dnc: bool = False,
    ) -> int:
        name = f"Name{cid}"
        self.rows["customers"].append(
            {"id": cid, "first_name": name, "last_name": "Doe", "timezone": tz, "do_not_contact": dnc,
             "created_on": date(2010, 1, 1)}
        )  # fmt: skip
        phone = None
        if landline:  # listed first and primary: the query must still pick the mobile
            self.rows["phones"].append(
                {"id": next(self._ids), "customer_id": cid, "number": f"+1555100{cid:04d}", "kind": "landline",
                 "is_primary": True}
            )  # fmt: skip
        if mobile:
            phone = f"+1555200{cid:04d}"
            self.rows["phones"].append(
                {
                    "id": next(self._ids),
                    "customer_id": cid,
                    "number": phone,
                    "kind": "mobile",
                    "is_primary": False,
                }
            )
        address = None
        if email:
            address = f"name{cid}@example.com"
            self.rows["emails"].append(
                {
                    "id": next(self._ids),
                    "customer_id": cid,
                    "address": f"old{cid}@example.com",
                    "is_primary": False,
                }
            )
            self.rows["emails"].append(
                {"id": next(self._ids), "customer_id": cid, "address": address, "is_primary": True}
            )
        self.contacts[cid] = {"customer_id": str(cid), "first_name": name, "timezone": tz, "phone": phone,
                              "email": address}  # fmt: skip
        return cid

    def machine(
        self,
        eid: int,
        cid: int,
        bought: date,
        *,
        model: str = "Toro TimeCutter 42",
        category: str = "mower",
        warranty_end: date | None = None,
    ) -> int:
        self.rows["equipment"].append(
            {"id": eid, "customer_id": cid, "make": model.split(maxsplit=1)[0], "model": model, "category": category,
             "serial_number": f"SN{eid}", "purchase_date": bought, "warranty_end_date": warranty_end}
        )  # fmt: skip
        return eid

    def reading(self, eid: int, on: date, hours: int) -> None:
        self.rows["hour_readings"].append(
            {"id": next(self._ids), "equipment_id": eid, "read_on": on, "hours": hours}
        )

    def work_order(
        self,
        wid: int,
        cid: int,
        eid: int | None,
        kind: str,
        opened: date,
        *,
        picked_up_at: datetime | None = None,
        machine_hours: int | None = None,
    ) -> int:
        self.rows["work_orders"].append(
            {"id": wid, "number": f"WO-{wid}", "customer_id": cid, "equipment_id": eid, "kind": kind,
             "status": "picked_up" if picked_up_at else "completed", "opened_on": opened, "completed_on": opened,
             "picked_up_at": picked_up_at, "machine_hours": machine_hours}
        )  # fmt: skip
        return wid

    def row(
        self, cid: int, eid: int | None = None, model: str = "Toro TimeCutter 42", **extra: Any
    ) -> dict[str, Any]:
        """The row expected for customer ``cid``: their contact columns, the machine, and ``extra``."""
        expected: dict[str, Any] = dict(self.contacts[cid])
        if eid is not None:
            expected |= {"equipment_id": str(eid), "equipment_model": model}
        return expected | {key: str(value) for key, value in extra.items()}


@dataclass
class Case:
    preset: str
    world: World
    expected: list[dict[str, Any]]
    today: date = TODAY


def seven_day_checkin() -> Case:
    w = World()
    w.machine(11, w.customer(1), date(2026, 3, 11))
    w.machine(21, w.customer(2), date(2026, 3, 10))  # eight days ago
    w.machine(22, 2, date(2026, 3, 12))  # six days ago
    w.machine(31, w.customer(3, dnc=True), date(2026, 3, 11))
    w.machine(41, w.customer(4, mobile=False, landline=True), date(2026, 3, 11), model="Stihl MS 250")
    w.machine(51, w.customer(5, mobile=False, landline=True, email=False), date(2026, 3, 11))  # unreachable
    return Case("seven_day_checkin", w, [
        w.row(1, 11, purchase_date="2026-03-11"),
        w.row(4, 41, "Stihl MS 250", purchase_date="2026-03-11"),
    ])  # fmt: skip


def post_service_survey() -> Case:
    w = World()
    w.customer(1)
    w.machine(11, 1, date(2020, 5, 1))
    w.machine(12, 1, date(2021, 5, 1), model="Stihl MS 250")
    w.work_order(101, 1, 11, "service", date(2026, 3, 12), picked_up_at=datetime(2026, 3, 16, 8, 30))
    w.work_order(102, 1, 12, "repair", date(2026, 3, 12), picked_up_at=datetime(2026, 3, 16, 17, 45))
    w.machine(21, w.customer(2, tz=None), date(2020, 5, 1))
    w.work_order(201, 2, 21, "service", date(2026, 3, 10), picked_up_at=datetime(2026, 3, 15, 23, 59))
    w.work_order(202, 2, 21, "service", date(2026, 3, 10), picked_up_at=datetime(2026, 3, 17, 0, 10))
    w.machine(31, w.customer(3), date(2020, 5, 1))
    w.work_order(301, 3, 31, "service", date(2026, 3, 14))  # finished, never picked up
    w.machine(41, w.customer(4), date(2020, 5, 1))
    w.work_order(401, 4, 41, "inspection", date(2026, 3, 14), picked_up_at=datetime(2026, 3, 16, 9, 0))
    return Case("post_service_survey", w, [
        w.row(1, 11, work_order_id=101, work_order_number="WO-101"),
        w.row(1, 12, "Stihl MS 250", work_order_id=102, work_order_number="WO-102"),
    ])  # fmt: skip


def annual_tuneup() -> Case:
    w = World()
    w.machine(11, w.customer(1), date(2024, 4, 1))
    w.machine(21, w.customer(2, email=False), date(2025, 4, 1), model="Kubota BX2380", category="tractor")
    w.machine(31, w.customer(3), date(2026, 3, 1))  # not a year old
    w.machine(41, w.customer(4), date(2024, 4, 2))
    w.machine(42, 4, date(2024, 3, 31))
    return Case("annual_tuneup", w, [
        w.row(1, 11, anniversary_date="2026-04-01"),
        w.row(2, 21, "Kubota BX2380", anniversary_date="2026-04-01"),
    ])  # fmt: skip


def spring_reminder() -> Case:
    w = World()
    w.machine(11, w.customer(1), date(2020, 5, 1))
    w.machine(12, 1, date(2023, 6, 1), model="Kubota BX2380", category="tractor")  # the newest: named
    w.machine(21, w.customer(2), date(2023, 6, 1), model="Stihl MS 250", category="chainsaw")
    w.machine(31, w.customer(3), date(2026, 3, 20), model="Stihl FS 91 R", category="trimmer")  # after today
    w.machine(41, w.customer(4), date(2019, 4, 1))
    w.machine(42, 4, date(2025, 11, 1), model="Toro Power Max 826", category="snow_blower")
    w.machine(51, w.customer(5, dnc=True), date(2019, 4, 1))
    return Case("spring_reminder", w, [w.row(1, 12, "Kubota BX2380"), w.row(4, 41)])


def winterization_reminder() -> Case:
    w = World()
    w.machine(11, w.customer(1), date(2022, 5, 1), model="Stihl MS 250", category="chainsaw")
    w.machine(12, 1, date(2025, 11, 1), model="Toro Power Max 826", category="snow_blower")
    w.machine(21, w.customer(2), date(2025, 11, 1), model="Toro Power Max 826", category="snow_blower")
    w.machine(31, w.customer(3), date(2018, 5, 1))
    w.machine(32, 3, date(2024, 9, 1), model="Stihl BR 600", category="blower")
    return Case("winterization_reminder", w, [w.row(1, 11, "Stihl MS 250"), w.row(3, 32, "Stihl BR 600")])


def ghost_customer_winback() -> Case:
    w = World()
    w.machine(11, w.customer(1), date(2024, 11, 2))
    w.machine(21, w.customer(2), date(2020, 1, 10))
    w.work_order(201, 2, 21, "service", date(2025, 6, 1))  # seen since
    w.machine(31, w.customer(3), date(2025, 3, 18))  # exactly twelve months
    w.machine(41, w.customer(4), date(2025, 3, 19))  # a day short
    w.customer(5)  # never seen: not a lapsed customer
    w.machine(61, w.customer(6), date(2023, 1, 1))
    w.work_order(601, 6, 61, "service", date(2026, 4, 1))  # after the run date: not yet seen
    return Case("ghost_customer_winback", w, [
        w.row(1, last_visit_date="2024-11-02", months_inactive=16),
        w.row(3, last_visit_date="2025-03-18", months_inactive=12),
        w.row(6, last_visit_date="2023-01-01", months_inactive=38),
    ])  # fmt: skip


def anniversary_offer() -> Case:
    w = World()
    w.machine(11, w.customer(1), date(2023, 3, 18))
    w.machine(21, w.customer(2), date(2026, 3, 18))  # bought today: no anniversary yet
    w.machine(31, w.customer(3), date(2023, 3, 17))
    return Case("anniversary_offer", w, [w.row(1, 11, years_owned=3)])


def anniversary_offer_leap_day() -> Case:
    w = World()
    w.machine(11, w.customer(1), date(2024, 2, 29))  # celebrated on 28 February in a common year
    w.machine(21, w.customer(2), date(2024, 3, 1))
    w.machine(31, w.customer(3), date(2025, 2, 28))
    return Case("anniversary_offer", w, [w.row(1, 11, years_owned=2), w.row(3, 31, years_owned=1)],
                today=date(2026, 2, 28))  # fmt: skip


def warranty_expiration() -> Case:
    w = World()
    w.customer(1)
    w.machine(11, 1, date(2023, 3, 18), warranty_end=date(2026, 3, 18))
    w.machine(12, 1, date(2023, 4, 17), model="Stihl MS 250", warranty_end=date(2026, 4, 17))
    w.machine(13, 1, date(2023, 4, 18), warranty_end=date(2026, 4, 18))  # 31 days ahead
    w.machine(21, w.customer(2), date(2023, 3, 17), warranty_end=date(2026, 3, 17))  # already over
    w.machine(31, w.customer(3), date(2023, 3, 18))  # no warranty on record
    return Case("warranty_expiration", w, [
        w.row(1, 11, warranty_end_date="2026-03-18"),
        w.row(1, 12, "Stihl MS 250", warranty_end_date="2026-04-17"),
    ])  # fmt: skip


def trade_in_alert() -> Case:
    w = World()
    ids = itertools.count(1000)

    def repairs(cid: int, eid: int, *opened: date, kind: str = "repair") -> None:
        for day in opened:
            w.work_order(next(ids), cid, eid, kind, day)

    w.machine(11, w.customer(1), date(2018, 3, 18))
    repairs(1, 11, date(2020, 1, 1), date(2022, 1, 1), date(2024, 1, 1))
    w.machine(21, w.customer(2), date(2018, 3, 19))  # a day short of eight years
    repairs(2, 21, *(date(2019 + i, 1, 1) for i in range(5)))
    w.machine(31, w.customer(3), date(2010, 6, 1))
    repairs(3, 31, date(2015, 1, 1), date(2016, 1, 1))
    repairs(3, 31, date(2017, 1, 1), date(2018, 1, 1), kind="service")  # services are not repairs
    w.machine(41, w.customer(4), date(2012, 1, 1), model="Kubota BX2380", category="tractor")
    repairs(4, 41, date(2014, 1, 1), date(2016, 1, 1), date(2020, 1, 1), date(2026, 4, 1))
    return Case("trade_in_alert", w, [
        w.row(1, 11, equipment_age_years=8, repair_count=3),
        w.row(4, 41, "Kubota BX2380", equipment_age_years=14, repair_count=3),
    ])  # fmt: skip


def first_service_alert() -> Case:
    w = World()
    w.machine(11, w.customer(1), date(2025, 9, 1), model="Kubota BX2380", category="tractor")
    w.reading(11, date(2026, 1, 1), 5)
    w.reading(11, date(2026, 3, 10), 22)
    w.machine(21, w.customer(2), date(2025, 9, 1))
    w.reading(21, date(2026, 3, 10), 19)
    w.machine(31, w.customer(3), date(2025, 9, 1))
    w.reading(31, date(2026, 3, 10), 30)
    w.work_order(301, 3, 31, "service", date(2026, 2, 1), machine_hours=21)
    w.machine(41, w.customer(4), date(2020, 9, 1))
    w.reading(41, date(2026, 3, 10), 150)  # past the first interval: the usage rule's
    w.machine(51, w.customer(5), date(2025, 9, 1))
    w.reading(51, date(2026, 3, 1), 10)
    w.reading(51, date(2026, 3, 20), 25)  # read after the run date
    return Case("first_service_alert", w, [w.row(1, 11, "Kubota BX2380", machine_hours=22)])


def usage_service_alert() -> Case:
    w = World()
    w.machine(11, w.customer(1), date(2022, 9, 1))
    w.reading(11, date(2026, 3, 10), 210)
    w.work_order(101, 1, 11, "service", date(2025, 5, 1), machine_hours=105)
    w.machine(21, w.customer(2), date(2022, 9, 1))
    w.reading(21, date(2026, 3, 10), 250)
    w.work_order(201, 2, 21, "service", date(2026, 1, 5), machine_hours=201)  # serviced at this interval
    w.machine(31, w.customer(3), date(2022, 9, 1))
    w.reading(31, date(2026, 3, 10), 99)
    w.machine(41, w.customer(4), date(2022, 9, 1))
    w.reading(41, date(2026, 3, 10), 100)
    w.machine(51, w.customer(5), date(2022, 9, 1))
    w.reading(51, date(2026, 3, 10), 310)
    w.work_order(501, 5, 51, "repair", date(2026, 3, 1), machine_hours=305)  # a repair is not the service
    return Case("usage_service_alert", w, [
        w.row(1, 11, machine_hours=210, service_interval_hours=100, service_bucket=2),
        w.row(4, 41, machine_hours=100, service_interval_hours=100, service_bucket=1),
        w.row(5, 51, machine_hours=310, service_interval_hours=100, service_bucket=3),
    ])  # fmt: skip


CASES = [seven_day_checkin, post_service_survey, annual_tuneup, spring_reminder, winterization_reminder,
         ghost_customer_winback, anniversary_offer, anniversary_offer_leap_day, warranty_expiration,
         trade_in_alert, first_service_alert, usage_service_alert]  # fmt: skip


def test_every_preset_has_a_case() -> None:
    assert {case().preset for case in CASES} == set(dealership.BY_KEY)


# --------------------------------------------------------------------------- tenant databases


# --------------------------------------------------------------------------- the rules


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.__name__)
async def test_preset_matches_exactly_the_customers_it_should(
    rt: Runtime, client: httpx.AsyncClient, auth: dict[str, str], tenant_url: str, case: Any
) -> None:
    built: Case = case()
    await write(tenant_url, built.world.rows)
    source, backend = await register(client, auth, tenant_url)
    preset = dealership.get(built.preset)

    rows = await audience(rt, source, backend, preset, built.today)

    assert rows == built.expected
