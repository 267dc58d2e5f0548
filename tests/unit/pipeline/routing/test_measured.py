"""Measured channel choice: the score, the table as the prior, exploring with a seeded random source."""

from __future__ import annotations

import random

import pytest
from pydantic import ValidationError

from herald.pipeline.routing.measured import ChannelStats, rank, reason, score
from herald.pipeline.routing.policy import DeliveryPolicy, MeasuredTuning

STILL = MeasuredTuning(explore_rate=0.0)


def test_with_no_data_the_order_is_the_tables() -> None:
    ranking = rank([None, None, None, None], STILL, random.Random(1))
    assert ranking.order == [0, 1, 2, 3]
    assert ranking.scores == sorted(ranking.scores, reverse=True)
    assert not ranking.explored


def test_a_few_failures_do_not_overturn_the_table_but_many_do() -> None:
    few = rank([ChannelStats(failures=1), ChannelStats(successes=1)], STILL, random.Random(1))
    assert few.order == [0, 1]
    many = rank([ChannelStats(successes=2, failures=8), ChannelStats(successes=10)], STILL, random.Random(1))
    assert many.order == [1, 0]


def test_recovery_wins_the_place_back() -> None:
    """Successes after the failures raise the first channel's score above the second's again."""
    down = [ChannelStats(successes=0, failures=5), ChannelStats(successes=5)]
    assert rank(down, STILL, random.Random(1)).order == [1, 0]
    recovered = [ChannelStats(successes=40, failures=5), ChannelStats(successes=5)]
    assert rank(recovered, STILL, random.Random(1)).order == [0, 1]


def test_slow_and_costly_channels_lose_score() -> None:
    base = score(0, ChannelStats(successes=10), STILL)
    assert score(0, ChannelStats(successes=10, latency_s=120.0), STILL) < base
    assert score(0, ChannelStats(successes=10, cost=0.05), STILL) < base
    free = MeasuredTuning(latency_weight=0.0, cost_weight=0.0)
    assert score(0, ChannelStats(successes=10, latency_s=120.0, cost=0.05), free) == score(
        0, ChannelStats(successes=10), free
    )
    # Equally reliable, the cheaper and faster second channel overtakes an expensive, slow first one.
    heavy = MeasuredTuning(explore_rate=0.0, latency_weight=0.3, cost_weight=0.3)
    pair = [ChannelStats(successes=20, latency_s=300.0, cost=0.08), ChannelStats(successes=20, latency_s=1.0)]
    assert rank(pair, heavy, random.Random(1)).order == [1, 0]


def test_exploring_follows_the_seeded_source() -> None:
    tuning = MeasuredTuning(explore_rate=0.5)
    stats: list[ChannelStats | None] = [None, None, None]
    first = [rank(stats, tuning, random.Random(7)) for _ in range(1)] + [
        rank(stats, tuning, rng) for rng in [random.Random(7)] for _ in range(40)
    ]
    again = [rank(stats, tuning, random.Random(7))] + [
        rank(stats, tuning, rng) for rng in [random.Random(7)] for _ in range(40)
    ]
    assert [r.order for r in first] == [r.order for r in again]
    explored = [r for r in first[1:] if r.explored]
    assert 5 < len(explored) < 35  # about half of 40
    assert all(r.order[0] != 0 and sorted(r.order) == [0, 1, 2] for r in explored)
    assert {r.order[0] for r in explored} == {1, 2}  # any other channel may be tried first
    assert all(r.order == [0, 1, 2] for r in first[1:] if not r.explored)


def test_one_channel_never_explores() -> None:
    assert not rank([None], MeasuredTuning(explore_rate=0.5), random.Random(3)).explored


def test_the_reason_names_order_prior_and_figures() -> None:
    stats: list[ChannelStats | None] = [ChannelStats(failures=9), ChannelStats(successes=3, latency_s=0.25)]
    ranking = rank(stats, STILL, random.Random(1))
    why = reason(["sms", "email"], stats, ranking, STILL)
    assert why["mode"] == "measured"
    assert why["order"] == ["email", "sms"]
    assert why["prior"] == ["sms", "email"]
    assert why["explored"] is False
    assert why["scores"]["sms"]["failures"] == 9
    assert why["scores"]["email"]["latency_s"] == 0.25
    assert why["scores"]["email"]["score"] > why["scores"]["sms"]["score"]


def test_the_policy_defaults_to_the_fixed_table_and_checks_tuning() -> None:
    assert DeliveryPolicy().channel_choice == "fixed"
    policy = DeliveryPolicy.model_validate({"channel_choice": "measured", "measured": {"explore_rate": 0.1}})
    assert policy.measured.explore_rate == 0.1
    with pytest.raises(ValidationError):
        DeliveryPolicy.model_validate({"channel_choice": "fastest"})
    with pytest.raises(ValidationError):
        DeliveryPolicy.model_validate({"measured": {"explore_rate": 0.9}})
