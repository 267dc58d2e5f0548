"""The pure helpers pattern detection leans on."""

from __future__ import annotations

from datetime import UTC, datetime

from herald.learning import model
from herald.learning.patterns import (
    cron_for,
    densest,
    id_floor,
    lanes_for,
    local_hour,
    next_level,
    strip_digits,
)
from herald.storage.fingerprint import content_fingerprint


def test_strip_digits_ignores_numbers_and_dates() -> None:
    assert strip_digits("Report: 12 open on 2026-03-14") == strip_digits("Report: 7 open on 2026-03-15")
    assert strip_digits("Report: 12 open") != strip_digits("Digest: 12 open")


def test_densest_finds_the_largest_close_set() -> None:
    assert sorted(densest([540, 544, 538, 900, 542], 30)) == [0, 1, 2, 4]
    assert len(densest([0, 100, 200], 30)) == 1
    assert densest([], 30) == []


def test_cron_for_names_days_the_cron_way() -> None:
    assert cron_for(0, 9, [1, 2, 3, 4, 5, 6, 7]) == "0 9 * * *"
    assert cron_for(30, 8, [5, 1, 2, 3, 4]) == "30 8 * * 1-5"
    assert cron_for(0, 9, [1, 7]) == "0 9 * * 0,1"


def test_local_hour_uses_the_zones_offset_then() -> None:
    summer = datetime(2026, 7, 1, tzinfo=UTC)
    winter = datetime(2026, 1, 1, tzinfo=UTC)
    assert local_hour(8, "Europe/Berlin", summer) == 10
    assert local_hour(8, "Europe/Berlin", winter) == 9
    assert local_hour(2, "America/New_York", winter) == 21


def test_id_floor_sorts_before_ids_made_then() -> None:
    at = datetime(2026, 3, 1, tzinfo=UTC)
    floor = id_floor("msg", at)
    assert floor < f"msg_{int(at.timestamp() * 1000):012x}0000000000000000"
    assert floor > f"msg_{int(at.timestamp() * 1000) - 1:012x}ffffffffffffffff"


def test_next_level_climbs_one_step() -> None:
    assert next_level("INTERN") == "SUPERVISED"
    assert next_level("AUTONOMOUS") is None


def test_content_fingerprint_is_the_text_modulo_digits() -> None:
    a = content_fingerprint("Report: 12 open on 2026-03-14")
    assert a == content_fingerprint("Report: 7 open on 2026-03-15")
    assert a != content_fingerprint("Digest: 12 open on 2026-03-14")
    assert content_fingerprint(None) is None
    assert -(2**63) <= (a or 0) < 2**63  # fits a BIGINT
    assert content_fingerprint("héllo 3 wörld") == -8301250122118495089  # what PostgreSQL's PG_SQL gives too


def test_lanes_balance_the_detectors_and_keep_every_kind_once() -> None:
    kinds = list(model.KINDS)
    assert lanes_for(kinds, 1) == [kinds]
    two = lanes_for(kinds, 2)
    assert len(two) == 2
    assert sorted(k for lane in two for k in lane) == sorted(kinds)
    # the two costliest apart, each lane about half of the cost: best hours with the light kinds
    assert [model.REPEATED_SEND, model.FAILING_CHANNEL] in two
    assert two[0][0] == model.BEST_HOUR
    assert lanes_for([model.NOISY_MONITOR], 2) == [[model.NOISY_MONITOR]]
    assert lanes_for([], 2) == []
    assert len(lanes_for(kinds, 10)) == len(kinds)
