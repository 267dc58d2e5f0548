"""Monitor conditions: thresholds, composites, free text, comparison, hysteresis and evaluation."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import pytest

from herald.core.errors import ValidationFailed
from herald.producers.monitors.conditions import (
    CONDITION_TYPES,
    OPERATORS,
    Composite,
    Condition,
    Evaluation,
    Leaf,
    LeafResult,
    Threshold,
    as_dict,
    compare,
    describe,
    evaluate,
    is_clear,
    leaves_of,
    normalise_metric,
    parse_condition,
    parse_condition_text,
    parse_threshold,
)


def leaf(metric: str, operator: str = ">", value: Any = 100, **source: Any) -> dict[str, Any]:
    return {
        "condition_type": source.pop("condition_type", "metric"),
        "threshold_config": {"metric": metric, "operator": operator, "value": value},
        **source,
    }


def composite(logic: str, *children: Any) -> dict[str, Any]:
    return {"condition_type": "composite", "composite_logic": logic, "composite_conditions": list(children)}


def nested(depth: int) -> dict[str, Any]:
    payload = leaf("a")
    for _ in range(depth):
        payload = composite("AND", payload)
    return payload


def reader(values: dict[str, Any]) -> Any:
    """A read() that answers from a dict keyed by metric: a value, ("error", text), or an exception."""

    async def read(item: Leaf) -> tuple[float | str | None, str | None]:
        answer = values.get(item.threshold.metric)
        if isinstance(answer, Exception):
            raise answer
        if isinstance(answer, tuple):
            return None, answer[1]
        return answer, None

    return read


# --------------------------------------------------------------------------- constants


def test_constants() -> None:
    assert frozenset({">", ">=", "<", "<=", "==", "!="}) == OPERATORS
    assert (
        frozenset({"inbox_volume", "task_backlog", "api_metrics", "database_query", "metric", "composite"})
        == CONDITION_TYPES
    )


# --------------------------------------------------------------------------- parse_threshold


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"metric": "unread_count", "operator": ">", "value": 100}, Threshold("unread_count", ">", 100.0)),
        ({"metric": "tasks", "operator": ">=", "value": 50.5}, Threshold("tasks", ">=", 50.5)),
        ({"metric": "errors", "operator": "<", "value": "5"}, Threshold("errors", "<", 5.0)),
        ({"metric": "rt", "operator": "<=", "value": " 1,000 "}, Threshold("rt", "<=", 1000.0)),
        ({"metric": "status", "operator": "==", "value": "error"}, Threshold("status", "==", "error")),
        ({"metric": "status", "operator": "!=", "value": "success"}, Threshold("status", "!=", "success")),
        ({"metric": "count", "operator": "==", "value": 0}, Threshold("count", "==", 0.0)),
        ({"metric": "code", "operator": "!=", "value": "200"}, Threshold("code", "!=", "200")),
        ({"metric": " cpu ", "operator": ">", "value": 80, "unit": "%"}, Threshold("cpu", ">", 80.0, "%")),
        ({"metric": "cpu", "operator": ">", "value": 80, "unit": ""}, Threshold("cpu", ">", 80.0)),
        (
            {"metric": "cpu", "operator": ">", "value": 80, "clear_value": 70},
            Threshold("cpu", ">", 80.0, clear_value=70.0),
        ),
        (
            {"metric": "cpu", "operator": ">=", "value": 80, "clear_value": "80"},
            Threshold("cpu", ">=", 80.0, clear_value=80.0),
        ),
        (
            {"metric": "disk_free", "operator": "<", "value": 10, "clear_value": 15.5},
            Threshold("disk_free", "<", 10.0, clear_value=15.5),
        ),
        (
            {"metric": "disk_free", "operator": "<=", "value": 10, "clear_value": None},
            Threshold("disk_free", "<=", 10.0),
        ),
    ],
)
def test_parse_threshold_accepts(config: dict[str, Any], expected: Threshold) -> None:
    parsed = parse_threshold(config, field="threshold_config")
    assert parsed == expected
    assert type(parsed.value) is type(expected.value)


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"operator": ">", "value": 1}, "t.metric"),
        ({"metric": "", "operator": ">", "value": 1}, "t.metric"),
        ({"metric": "   ", "operator": ">", "value": 1}, "t.metric"),
        ({"metric": 5, "operator": ">", "value": 1}, "t.metric"),
        ({"metric": "m", "value": 1}, "t.operator"),
        ({"metric": "m", "operator": "=>", "value": 1}, "t.operator"),
        ({"metric": "m", "operator": "gt", "value": 1}, "t.operator"),
        ({"metric": "m", "operator": ">"}, "t.value"),
        ({"metric": "m", "operator": ">", "value": None}, "t.value"),
        ({"metric": "m", "operator": ">", "value": "lots"}, "t.value"),
        ({"metric": "m", "operator": ">=", "value": ""}, "t.value"),
        ({"metric": "m", "operator": "<", "value": "nan"}, "t.value"),
        ({"metric": "m", "operator": "<=", "value": [1]}, "t.value"),
        ({"metric": "m", "operator": ">", "value": True}, "t.value"),
        ({"metric": "m", "operator": "==", "value": None}, "t.value"),
        ({"metric": "m", "operator": "==", "value": {"a": 1}}, "t.value"),
        ({"metric": "m", "operator": "!=", "value": float("nan")}, "t.value"),
        ({"metric": "m", "operator": ">", "value": 1, "unit": 5}, "t.unit"),
        ({"metric": "m", "operator": ">", "value": 10, "clear_value": "x"}, "t.clear_value"),
        ({"metric": "m", "operator": ">", "value": 10, "clear_value": True}, "t.clear_value"),
        ({"metric": "m", "operator": ">", "value": 10, "clear_value": 11}, "t.clear_value"),
        ({"metric": "m", "operator": ">=", "value": 10, "clear_value": 10.5}, "t.clear_value"),
        ({"metric": "m", "operator": "<", "value": 10, "clear_value": 9}, "t.clear_value"),
        ({"metric": "m", "operator": "<=", "value": 10, "clear_value": 9.9}, "t.clear_value"),
        ({"metric": "m", "operator": "==", "value": 10, "clear_value": 5}, "t.clear_value"),
        ({"metric": "m", "operator": "!=", "value": "ok", "clear_value": 5}, "t.clear_value"),
    ],
)
def test_parse_threshold_rejects(config: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_threshold(config, field="t")
    assert caught.value.field == field
    assert caught.value.status == 422
    assert caught.value.detail


def test_parse_threshold_field_prefix_is_omitted_when_empty() -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_threshold({"metric": "m", "operator": "~", "value": 1}, field="")
    assert caught.value.field == "operator"


def test_parse_threshold_rejects_non_object() -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_threshold("cpu > 5", field="threshold_config")  # type: ignore[arg-type]
    assert caught.value.field == "threshold_config"


# --------------------------------------------------------------------------- parse_condition


def test_parse_leaf_keeps_source_settings_untouched() -> None:
    labels = {"env": "prod"}
    payload = leaf(
        "p95_ms",
        ">",
        500,
        condition_type="api_metrics",
        url="https://x/metrics",
        json_path="$.p95",
        labels=labels,
    )
    parsed = parse_condition(payload)
    assert parsed == Leaf(
        condition_type="api_metrics",
        threshold=Threshold("p95_ms", ">", 500.0),
        source={"url": "https://x/metrics", "json_path": "$.p95", "labels": {"env": "prod"}},
    )
    assert isinstance(parsed, Leaf)
    assert parsed.source["labels"] is labels


@pytest.mark.parametrize("condition_type", sorted(CONDITION_TYPES - {"composite"}))
def test_parse_every_leaf_type(condition_type: str) -> None:
    parsed = parse_condition(leaf("m", condition_type=condition_type))
    assert isinstance(parsed, Leaf)
    assert parsed.condition_type == condition_type
    assert parsed.source == {}


def test_parse_seed_composite() -> None:
    payload = composite(
        "AND",
        leaf("unread_count", ">", 100, condition_type="inbox_volume"),
        leaf("pending_tasks", ">", 50, condition_type="task_backlog"),
    )
    parsed = parse_condition(payload)
    assert parsed == Composite(
        logic="AND",
        children=(
            Leaf("inbox_volume", Threshold("unread_count", ">", 100.0), {}),
            Leaf("task_backlog", Threshold("pending_tasks", ">", 50.0), {}),
        ),
    )


@pytest.mark.parametrize(("given", "logic"), [("AND", "AND"), ("or", "OR"), (" And ", "AND"), ("OR", "OR")])
def test_parse_composite_logic_is_normalised(given: str, logic: str) -> None:
    parsed = parse_condition(composite(given, leaf("a")))
    assert isinstance(parsed, Composite)
    assert parsed.logic == logic


def test_parse_allows_five_levels_of_nesting() -> None:
    parsed = parse_condition(nested(5))
    depth = 0
    while isinstance(parsed, Composite):
        depth += 1
        parsed = parsed.children[0]
    assert depth == 5


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "condition_type"),
        ({"condition_type": "weather"}, "condition_type"),
        ({"condition_type": None}, "condition_type"),
        ({"condition_type": "metric"}, "threshold_config"),
        ({"condition_type": "metric", "threshold_config": [1]}, "threshold_config"),
        (leaf("m", "~"), "threshold_config.operator"),
        (leaf("", ">"), "threshold_config.metric"),
        (leaf("m", ">", "lots"), "threshold_config.value"),
        ({"condition_type": "composite", "composite_logic": "AND"}, "composite_conditions"),
        (composite("AND"), "composite_conditions"),
        (
            {"condition_type": "composite", "composite_logic": "AND", "composite_conditions": {}},
            "composite_conditions",
        ),
        (composite("XOR", leaf("a")), "composite_logic"),
        ({"condition_type": "composite", "composite_conditions": [leaf("a")]}, "composite_logic"),
        (composite("AND", leaf("a"), {"condition_type": "nope"}), "composite_conditions.1.condition_type"),
        (composite("AND", leaf("a"), "cpu > 5"), "composite_conditions.1"),
        (composite("OR", leaf("a", ">", "x")), "composite_conditions.0.threshold_config.value"),
        (composite("OR", leaf("a"), leaf("b", "=")), "composite_conditions.1.threshold_config.operator"),
        (
            composite("AND", leaf("a"), composite("OR", leaf("b"), leaf("c", ">", None))),
            "composite_conditions.1.composite_conditions.1.threshold_config.value",
        ),
        (composite("AND", composite("maybe", leaf("a"))), "composite_conditions.0.composite_logic"),
        (composite("AND", composite("OR")), "composite_conditions.0.composite_conditions"),
        (nested(6), "composite_conditions"),
        (composite("OR", leaf("a"), nested(5)), "composite_conditions"),
    ],
)
def test_parse_condition_rejects(payload: Any, field: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_condition(payload)
    assert caught.value.field == field
    assert caught.value.status == 422


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"condition_type": "weather"}, "condition.condition_type"),
        (leaf("m", "~"), "condition.threshold_config.operator"),
        (composite("AND"), "condition.composite_conditions"),
        (composite("AND", leaf("a", ">", "x")), "condition.composite_conditions.0.threshold_config.value"),
        (nested(6), "condition.composite_conditions"),
    ],
)
def test_parse_condition_prefixes_fields(payload: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_condition(payload, field="condition")
    assert caught.value.field == field


def test_parse_rejects_non_object_at_top() -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_condition("cpu > 5")  # type: ignore[arg-type]
    assert caught.value.field == "condition"


# --------------------------------------------------------------------------- as_dict / describe / leaves_of

ROUND_TRIPS = [
    leaf("unread_count", ">", 100, condition_type="inbox_volume"),
    leaf("status", "==", "error"),
    leaf("p95", ">", 0.5, condition_type="api_metrics", url="https://x", json_path="$.p95"),
    {
        "condition_type": "metric",
        "threshold_config": {"metric": "cpu", "operator": ">", "value": 80, "unit": "%", "clear_value": 70},
    },
    composite("AND", leaf("a"), composite("OR", leaf("b", "<", 3), leaf("c", "!=", "ok"))),
    nested(5),
]


@pytest.mark.parametrize("payload", ROUND_TRIPS)
def test_as_dict_round_trips(payload: dict[str, Any]) -> None:
    original = copy.deepcopy(payload)
    parsed = parse_condition(payload)
    again = as_dict(parsed)
    assert again == original
    assert parse_condition(again) == parsed
    assert payload == original  # parsing does not mutate its input


def test_as_dict_writes_whole_numbers_as_ints() -> None:
    data = as_dict(parse_condition(leaf("m", ">", "100")))
    assert data["threshold_config"]["value"] == 100
    assert isinstance(data["threshold_config"]["value"], int)
    data = as_dict(parse_condition(leaf("m", ">", 0.25)))
    assert data["threshold_config"]["value"] == 0.25


def test_as_dict_leaf_includes_source_and_omits_empty_optionals() -> None:
    data = as_dict(Leaf("database_query", Threshold("rows", ">=", 1.0), {"query": "select 1"}))
    assert data == {
        "condition_type": "database_query",
        "query": "select 1",
        "threshold_config": {"metric": "rows", "operator": ">=", "value": 1},
    }


@pytest.mark.parametrize(
    ("payload", "text"),
    [
        (leaf("unread_count", ">", 100), "unread_count > 100"),
        (leaf("ratio", "<=", 0.25), "ratio <= 0.25"),
        (leaf("status", "==", "error"), "status == 'error'"),
        (leaf("status", "!=", "success"), "status != 'success'"),
        (
            composite("AND", leaf("unread_count", ">", 100), leaf("pending_tasks", ">", 50)),
            "(unread_count > 100 AND pending_tasks > 50)",
        ),
        (
            composite("OR", leaf("a", ">=", 1), composite("AND", leaf("b", "<", 2), leaf("c", "==", 3))),
            "(a >= 1 OR (b < 2 AND c == 3))",
        ),
    ],
)
def test_describe(payload: dict[str, Any], text: str) -> None:
    assert describe(parse_condition(payload)) == text


@pytest.mark.parametrize(
    ("threshold", "text"),
    [
        (Threshold("cpu_usage", ">", 80.0, "%"), "cpu_usage > 80%"),
        (Threshold("api_response_time", ">", 500.0, "ms"), "api_response_time > 500ms"),
        (Threshold("aapl_stock_price", ">", 150.0, "$"), "aapl_stock_price > $150"),
        (Threshold("x", "<", -1.5), "x < -1.5"),
    ],
)
def test_describe_units(threshold: Threshold, text: str) -> None:
    assert describe(Leaf("metric", threshold, {})) == text


def test_leaves_of_is_depth_first_left_to_right() -> None:
    parsed = parse_condition(composite("AND", leaf("a"), composite("OR", leaf("b"), leaf("c")), leaf("d")))
    assert [item.threshold.metric for item in leaves_of(parsed)] == ["a", "b", "c", "d"]
    single = parse_condition(leaf("z"))
    assert leaves_of(single) == [single]


# --------------------------------------------------------------------------- normalise_metric / free text


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("AAPL stock price", "aapl_stock_price"),
        ("CPU usage", "cpu_usage"),
        ("  API -- response/time!! ", "api_response_time"),
        ("p95_latency", "p95_latency"),
        ("__x__", "x"),
        ("", ""),
        ("!!!", ""),
    ],
)
def test_normalise_metric(name: str, key: str) -> None:
    assert normalise_metric(name) == key


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("AAPL stock price > 150", Threshold("aapl_stock_price", ">", 150.0)),
        ("CPU usage > 80%", Threshold("cpu_usage", ">", 80.0, "%")),
        ("API response time > 500ms", Threshold("api_response_time", ">", 500.0, "ms")),
        ("API response time > 500 ms", Threshold("api_response_time", ">", 500.0, "ms")),
        ("queue depth >= 1,000", Threshold("queue_depth", ">=", 1000.0)),
        ("queue depth>=1000000", Threshold("queue_depth", ">=", 1000000.0)),
        ("error rate == 0", Threshold("error_rate", "==", 0.0)),
        ("error rate = 0", Threshold("error_rate", "==", 0.0)),
        ("status != 'ok'", Threshold("status", "!=", "ok")),
        ('status == "degraded mode"', Threshold("status", "==", "degraded mode")),
        ("status == ok", Threshold("status", "==", "ok")),
        ("temperature < -5.5", Threshold("temperature", "<", -5.5)),
        ("free disk <= .5 GB", Threshold("free_disk", "<=", 0.5, "GB")),
        ("throughput < 20 req/s", Threshold("throughput", "<", 20.0, "req/s")),
        ("AAPL stock price > $150", Threshold("aapl_stock_price", ">", 150.0, "$")),
        ("AAPL stock price above 150", Threshold("aapl_stock_price", ">", 150.0)),
        ("AAPL stock price is above 150", Threshold("aapl_stock_price", ">", 150.0)),
        ("CPU usage greater than 80%", Threshold("cpu_usage", ">", 80.0, "%")),
        ("CPU usage is more than 80 percent", Threshold("cpu_usage", ">", 80.0, "%")),
        ("disk usage is over 90%", Threshold("disk_usage", ">", 90.0, "%")),
        ("battery below 20%", Threshold("battery", "<", 20.0, "%")),
        ("battery is less than 20%", Threshold("battery", "<", 20.0, "%")),
        ("orders at least 10", Threshold("orders", ">=", 10.0)),
        ("orders are at most 10", Threshold("orders", "<=", 10.0)),
        ("latency less than or equal to 200 ms", Threshold("latency", "<=", 200.0, "ms")),
        ("latency greater than or equal to 200ms", Threshold("latency", ">=", 200.0, "ms")),
        ("error count equals 0", Threshold("error_count", "==", 0.0)),
        ("status is 'down'", Threshold("status", "==", "down")),
        ("status is down", Threshold("status", "==", "down")),
        ("status is not 'ok'", Threshold("status", "!=", "ok")),
        ("Error Rate IS ABOVE 5%", Threshold("error_rate", ">", 5.0, "%")),
        ("  cpu   usage   >   80%  ", Threshold("cpu_usage", ">", 80.0, "%")),
    ],
)
def test_parse_condition_text(text: str, expected: Threshold) -> None:
    assert parse_condition_text(text) == expected


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", ["empty"]),
        ("   ", ["empty"]),
        ("AAPL is above expensive", ["understood the metric 'aapl'", "not a number"]),
        ("stock price goes up a lot", ["no comparison"]),
        ("hello world", ["no comparison", "hello world"]),
        ("> 150", ["no metric"]),
        ("--- > 150", ["no metric"]),
        ("cpu usage >", ["'cpu_usage'", "no value"]),
        ("cpu usage > lots", ["'cpu_usage'", "'lots' is not a number"]),
        ("cpu usage > 'high'", ["'cpu_usage'", "not a number", "== and !="]),
        ("cpu usage at least high", ["'cpu_usage'", "not a number"]),
        ("cpu usage > 80%%", ["'cpu_usage'", "not the value '80%%'"]),
        ("cpu usage > 1 > 2", ["'cpu_usage'", "not the value"]),
        ("status == 'unterminated", ["'status'", "not the value"]),
    ],
)
def test_parse_condition_text_failures(text: str, words: list[str]) -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_condition_text(text)
    assert caught.value.field == "condition"
    assert caught.value.status == 422
    for word in words:
        assert word in caught.value.detail


# --------------------------------------------------------------------------- compare


@pytest.mark.parametrize(
    ("operator", "threshold", "value", "expected"),
    [
        (">", 100, 101, True),
        (">", 100, 100, False),
        (">", 100, 99.5, False),
        (">", 100, "150", True),
        (">", 100, " 1,000 ", True),
        (">=", 100, 100, True),
        (">=", 100, 100.0001, True),
        (">=", 100, 99.99, False),
        ("<", 5, 4, True),
        ("<", 5, 5, False),
        ("<", 5, "6", False),
        ("<=", 5, 5, True),
        ("<=", 5, 4.9, True),
        ("<=", 5, 5.1, False),
        ("<=", -1, -2, True),
        (">", 0, True, True),
        ("==", 0, 0, True),
        ("==", 0, 0.0, True),
        ("==", 0, "0", True),
        ("==", 0.3, 0.1 + 0.2, True),
        ("==", 1, 2, False),
        ("!=", 1, 2, True),
        ("!=", 1, 1.0, False),
        ("!=", 1, "1.0", False),
        ("==", "error", "error", True),
        ("==", "error", "Error", False),
        ("==", "error", "errors", False),
        ("!=", "success", "success", False),
        ("!=", "success", "failure", True),
        ("!=", "success", "SUCCESS", True),
        ("==", "200", 200, True),
        ("==", "200", "200", True),
        ("==", "ok", 5, False),
        ("!=", "ok", 5, True),
        ("==", "5", "five", False),
    ],
)
def test_compare(operator: str, threshold: float | str, value: Any, expected: bool) -> None:
    value_ = float(threshold) if isinstance(threshold, int) else threshold
    assert compare(value, Threshold("m", operator, value_)) is expected


@pytest.mark.parametrize("operator", sorted(OPERATORS))
def test_compare_none_is_no_data(operator: str) -> None:
    assert compare(None, Threshold("m", operator, 1.0)) is None


@pytest.mark.parametrize(
    ("operator", "value", "threshold"),
    [
        (">", "high", 1.0),
        (">=", "", 1.0),
        ("<", "nan", 1.0),
        ("<=", float("nan"), 1.0),
        (">", 5, "lots"),
    ],
)
def test_compare_ordering_on_non_numbers_raises(operator: str, value: Any, threshold: float | str) -> None:
    with pytest.raises(ValueError, match="not a number"):
        compare(value, Threshold("m", operator, threshold))


def test_compare_unknown_operator_raises() -> None:
    with pytest.raises(ValueError, match="operator"):
        compare(1, Threshold("m", "~", 1.0))


# --------------------------------------------------------------------------- is_clear (hysteresis)


@pytest.mark.parametrize(
    ("operator", "threshold", "clear_value", "value", "expected"),
    [
        # firing above 80, clears only below 70
        (">", 80, 70, 90, False),
        (">", 80, 70, 80, False),
        (">", 80, 70, 75, False),
        (">", 80, 70, 70, False),
        (">", 80, 70, 69.9, True),
        (">=", 80, 70, 70, False),
        (">=", 80, 70, 60, True),
        # firing below 10, clears only above 15
        ("<", 10, 15, 5, False),
        ("<", 10, 15, 12, False),
        ("<", 10, 15, 15, False),
        ("<", 10, 15, 15.1, True),
        ("<=", 10, 15, 20, True),
        ("<=", 10, 15, 10, False),
        # no clear value: clears as soon as the condition is false
        (">", 80, None, 80, True),
        (">", 80, None, 81, False),
        (">=", 80, None, 80, False),
        (">=", 80, None, 79, True),
        ("<", 10, None, 10, True),
        ("<", 10, None, 9, False),
        ("<=", 10, None, 10, False),
        ("<=", 10, None, 11, True),
        ("==", 0, None, 0, False),
        ("==", 0, None, 1, True),
        ("!=", 0, None, 0, True),
        ("!=", 0, None, 3, False),
    ],
)
def test_is_clear(
    operator: str, threshold: float, clear_value: float | None, value: float, expected: bool
) -> None:
    rule = Threshold(
        "m", operator, float(threshold), clear_value=None if clear_value is None else float(clear_value)
    )
    assert is_clear(float(value), rule) is expected


def test_is_clear_with_parsed_threshold() -> None:
    rule = parse_threshold({"metric": "cpu", "operator": ">", "value": 80, "clear_value": 70}, field="t")
    assert compare(85, rule) is True
    assert compare(75, rule) is False  # no longer over the threshold ...
    assert is_clear(75, rule) is False  # ... but not yet clear
    assert is_clear(65, rule) is True


# --------------------------------------------------------------------------- evaluate


async def test_evaluate_single_leaf_states() -> None:
    condition = parse_condition(leaf("unread_count", ">", 100))
    cases: list[tuple[Any, bool | None, str, str | None]] = [
        (125, True, "triggered", None),
        (100, False, "ok", None),
        ("150", True, "triggered", None),
        (None, None, "no_data", None),
        (("error", "boom"), None, "error", "unread_count: boom"),
        ("many", None, "error", "unread_count: 'many' is not a number; cannot compare it with >"),
        (RuntimeError("connection refused"), None, "error", "unread_count: connection refused"),
        (TimeoutError(), None, "error", "unread_count: TimeoutError"),
    ]
    for answer, triggered, state, error in cases:
        result = await evaluate(condition, reader({"unread_count": answer}))
        assert (result.triggered, result.state, result.error) == (triggered, state, error), answer
        assert len(result.leaves) == 1
        assert result.leaves[0].leaf == condition


async def test_evaluate_leaf_result_details() -> None:
    condition = parse_condition(leaf("cpu", ">", 80))
    result = await evaluate(condition, reader({"cpu": 95.5}))
    assert result == Evaluation(
        triggered=True,
        value=95.5,
        state="triggered",
        leaves=(LeafResult(leaf=leaves_of(condition)[0], value=95.5, triggered=True),),
    )
    bad = await evaluate(condition, reader({"cpu": "hot"}))
    assert bad.value == "hot"
    assert bad.leaves[0].triggered is None
    assert bad.leaves[0].error == "'hot' is not a number; cannot compare it with >"
    failed = await evaluate(condition, reader({"cpu": ("error", "HTTP 500")}))
    assert failed.leaves[0] == LeafResult(
        leaf=leaves_of(condition)[0], value=None, triggered=None, error="HTTP 500"
    )


E = ("error", "down")  # a read that reports an error
X = RuntimeError("exploded")  # a read that raises
N = None  # no data


@pytest.mark.parametrize(
    ("logic", "a", "b", "triggered", "state"),
    [
        ("AND", 150, 150, True, "triggered"),
        ("AND", 150, 50, False, "ok"),
        ("AND", 50, 150, False, "ok"),
        ("AND", 50, 50, False, "ok"),
        ("AND", 150, N, None, "no_data"),
        ("AND", N, N, None, "no_data"),
        ("AND", 50, N, False, "ok"),
        ("AND", N, 50, False, "ok"),
        ("AND", 150, E, None, "error"),
        ("AND", 150, X, None, "error"),
        ("AND", 150, "bad", None, "error"),
        ("AND", 50, E, False, "ok"),
        ("AND", E, 50, False, "ok"),
        ("AND", N, E, None, "error"),
        ("OR", 150, 150, True, "triggered"),
        ("OR", 150, 50, True, "triggered"),
        ("OR", 50, 150, True, "triggered"),
        ("OR", 50, 50, False, "ok"),
        ("OR", 150, N, True, "triggered"),
        ("OR", N, 150, True, "triggered"),
        ("OR", 50, N, None, "no_data"),
        ("OR", N, N, None, "no_data"),
        ("OR", 150, E, True, "triggered"),
        ("OR", X, 150, True, "triggered"),
        ("OR", 50, E, None, "error"),
        ("OR", 50, X, None, "error"),
        ("OR", N, E, None, "error"),
        ("OR", "bad", 50, None, "error"),
    ],
)
async def test_evaluate_composite_truth_table(
    logic: str, a: Any, b: Any, triggered: bool | None, state: str
) -> None:
    condition = parse_condition(composite(logic, leaf("a", ">", 100), leaf("b", ">", 100)))
    result = await evaluate(condition, reader({"a": a, "b": b}))
    assert result.triggered is triggered
    assert result.state == state
    assert (result.error is not None) == (state == "error")
    assert [item.leaf.threshold.metric for item in result.leaves] == ["a", "b"]
    expected_value = None if isinstance(a, tuple | Exception) else a
    assert result.value == expected_value


@pytest.mark.parametrize(
    ("values", "triggered", "state", "error"),
    [
        # a AND (b OR c) AND d
        ({"a": 1, "b": 1, "c": 0, "d": 1}, True, "triggered", None),
        ({"a": 1, "b": 0, "c": 0, "d": 1}, False, "ok", None),
        ({"a": 1, "b": E, "c": 1, "d": 1}, True, "triggered", None),  # the OR is decided without b
        ({"a": 1, "b": E, "c": 0, "d": 1}, None, "error", "b: down"),
        ({"a": 1, "b": E, "c": 0, "d": N}, None, "error", "b: down"),
        ({"a": 1, "b": N, "c": 0, "d": 1}, None, "no_data", None),
        ({"a": E, "b": N, "c": 0, "d": 0}, False, "ok", None),  # d decides it
        ({"a": N, "b": E, "c": 1, "d": 1}, None, "no_data", None),  # b's error does not matter
        ({"a": X, "b": E, "c": 0, "d": 1}, None, "error", "a: exploded; b: down"),
    ],
)
async def test_evaluate_nested(
    values: dict[str, Any], triggered: bool | None, state: str, error: str | None
) -> None:
    condition = parse_condition(
        composite(
            "AND", leaf("a", ">", 0), composite("OR", leaf("b", ">", 0), leaf("c", ">", 0)), leaf("d", ">", 0)
        )
    )
    result = await evaluate(condition, reader(values))
    assert (result.triggered, result.state, result.error) == (triggered, state, error)
    assert len(result.leaves) == 4


async def test_evaluate_mixes_strings_and_numbers() -> None:
    condition = parse_condition(composite("AND", leaf("status", "!=", "ok"), leaf("errors", ">=", 5)))
    assert (await evaluate(condition, reader({"status": "degraded", "errors": 7}))).state == "triggered"
    assert (await evaluate(condition, reader({"status": "ok", "errors": 7}))).state == "ok"


async def test_evaluate_reads_leaves_concurrently() -> None:
    condition = parse_condition(composite("AND", leaf("a", ">", 0), leaf("b", ">", 0), leaf("c", ">", 0)))
    running = 0
    peak = 0

    async def read(item: Leaf) -> tuple[float | str | None, str | None]:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.01)
        running -= 1
        return 1.0, None

    result = await evaluate(condition, read)
    assert peak == 3
    assert result.state == "triggered"


async def test_evaluate_duplicate_leaves_are_each_read() -> None:
    same = Leaf("metric", Threshold("a", ">", 0.0), {})
    condition: Condition = Composite("OR", (same, same))
    calls: list[Leaf] = []

    async def read(item: Leaf) -> tuple[float | str | None, str | None]:
        calls.append(item)
        return (0.0 if len(calls) == 1 else 1.0), None

    result = await evaluate(condition, read)
    assert len(calls) == 2
    assert result.triggered is True
