"""The demo dealership's generator: the same database for the same date and seed, a realistic mix (missing
phones and emails, landlines, customers without a time zone), and DDL for each backend."""

from __future__ import annotations

from collections import Counter
from datetime import date

import pytest

from herald.presets import dealership_data as data

TODAY = date(2026, 3, 18)


def test_same_date_and_seed_give_the_same_rows() -> None:
    first = data.generate(TODAY, seed=7, customers=200)
    assert first == data.generate(TODAY, seed=7, customers=200)
    assert first != data.generate(TODAY, seed=8, customers=200)
    assert first != data.generate(date(2026, 3, 19), seed=7, customers=200)


def test_the_population_has_gaps_a_campaign_must_handle() -> None:
    rows = data.generate(TODAY, seed=1, customers=2000)
    customers = rows["customers"]
    assert len(customers) > 2000  # and the ones planted to match each rule
    with_mobile = {p["customer_id"] for p in rows["phones"] if p["kind"] == "mobile"}
    with_email = {e["customer_id"] for e in rows["emails"]}
    ids = {c["id"] for c in customers}
    assert 0 < len(ids - with_mobile) < len(ids) / 2
    assert 0 < len(ids - with_email) < len(ids) / 2
    assert ids - with_mobile - with_email  # some can be reached by neither
    assert any(p["kind"] == "landline" for p in rows["phones"])
    zones = Counter(c["timezone"] for c in customers)
    assert zones[None] > 0
    assert len(zones) > 3
    assert any(c["do_not_contact"] for c in customers)
    assert all(e["purchase_date"] <= TODAY for e in rows["equipment"])
    assert all(r["read_on"] <= TODAY for r in rows["hour_readings"])
    assert all(w["picked_up_at"] is None or w["picked_up_at"].date() <= TODAY for w in rows["work_orders"])


def test_ddl_for_each_backend() -> None:
    for dialect in ("sqlite", "postgresql", "mysql"):
        statements = data.ddl(dialect)
        created = [s.split()[2] for s in statements if s.startswith("CREATE TABLE")]
        assert created == ["customers", "emails", "equipment", "phones", "hour_readings", "work_orders"]
    assert "BOOLEAN" in " ".join(data.ddl("postgresql"))


@pytest.mark.parametrize(
    ("url", "dialect"),
    [("sqlite:///var/d.db", "sqlite"), ("postgresql://u@h/db", "postgresql"), ("mariadb://u@h/db", "mysql"),
     ("mysql://u@h:3306/db", "mysql")],
)  # fmt: skip
def test_urls_name_their_backend(url: str, dialect: str) -> None:
    assert data.dialect_of(url) == dialect


def test_an_unsupported_or_memory_url_is_refused() -> None:
    with pytest.raises(ValueError, match="unsupported"):
        data.async_url("oracle://u@h/db")
    with pytest.raises(ValueError, match="needs a file"):
        data.async_url("sqlite://")
