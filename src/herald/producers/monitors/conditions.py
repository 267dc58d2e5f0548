"""Monitor conditions: thresholds, composite AND/OR rules, free-text parsing and evaluation.

A condition is either a :class:`Leaf` (one metric read from one source and compared with a
:class:`Threshold`) or a :class:`Composite` of conditions joined by ``AND``/``OR``. The JSON shape
is the one of the condition-monitoring API::

    {"condition_type": "inbox_volume",
     "threshold_config": {"metric": "unread_count", "operator": ">", "value": 100}}

    {"condition_type": "composite", "composite_logic": "AND",
     "composite_conditions": [{...}, {...}]}

Free text such as ``"CPU usage > 80%"`` parses into a :class:`Threshold` with
:func:`parse_condition_text`.

Evaluation uses three-valued logic: a leaf is ``True`` (triggered), ``False`` (ok) or ``None``
(no data, or the value could not be compared). ``AND`` is ``False`` as soon as one child is
``False``; ``OR`` is ``True`` as soon as one child is ``True``; otherwise an undecided child makes
the whole undecided, reported as ``"error"`` when an error is among the reasons and ``"no_data"``
otherwise.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

from herald.core.errors import ValidationFailed

OPERATORS: frozenset[str] = frozenset({">", ">=", "<", "<=", "==", "!="})
ORDERING_OPERATORS: frozenset[str] = frozenset({">", ">=", "<", "<="})
CONDITION_TYPES: frozenset[str] = frozenset(
    {"inbox_volume", "task_backlog", "api_metrics", "database_query", "metric", "composite"}
)
LOGICS: frozenset[str] = frozenset({"AND", "OR"})
THRESHOLD_KEYS = ("metric", "operator", "value", "unit", "clear_value")
MAX_DEPTH = 5

_LEAF_KEYS = ("condition_type", "threshold_config")
_CURRENCIES = frozenset({"$", "€", "£", "¥"})


@dataclass(frozen=True)
class Threshold:
    metric: str
    operator: str
    value: float | str
    unit: str | None = None
    # Hysteresis: once firing, the condition resolves only when the value crosses back past this.
    clear_value: float | None = None


@dataclass(frozen=True)
class Leaf:
    condition_type: str
    threshold: Threshold
    # Extra source settings as given (url, json_path, query, labels...), passed through untouched.
    source: dict[str, Any]


@dataclass(frozen=True)
class Composite:
    logic: str
    children: tuple[Condition, ...]


Condition = Leaf | Composite


@dataclass(frozen=True)
class LeafResult:
    leaf: Leaf
    value: float | str | None
    triggered: bool | None  # None = no data or error
    error: str | None = None


@dataclass(frozen=True)
class Evaluation:
    triggered: bool | None
    value: float | str | None
    state: str  # "ok" | "triggered" | "no_data" | "error"
    leaves: tuple[LeafResult, ...]
    error: str | None = None


# --------------------------------------------------------------------------- helpers


def _join(field: str, name: str) -> str:
    return f"{field}.{name}" if field else name


def _number(value: Any) -> float | None:
    """``value`` as a finite-or-infinite float, or None when it is not numeric (NaN is not numeric)."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        text = value.strip().replace(",", "").replace("_", "")
        if not text:
            return None
        try:
            number = float(text)
        except ValueError:
            return None
    else:
        return None
    return None if math.isnan(number) else number


def _fmt_number(value: float) -> str:
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def _json_number(value: float) -> float | int:
    return int(value) if value.is_integer() and abs(value) < 1e15 else value


def normalise_metric(name: str) -> str:
    """Lower-case, runs of non-alphanumerics collapsed to ``_``, no leading or trailing ``_``."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


# --------------------------------------------------------------------------- parsing JSON


def parse_threshold(config: dict[str, Any], *, field: str) -> Threshold:
    """Validate a ``threshold_config`` object; raises ValidationFailed naming the bad field."""
    if not isinstance(config, dict):
        raise ValidationFailed("must be an object with metric, operator and value", field=field or None)
    for key in config:
        if key not in THRESHOLD_KEYS:
            raise ValidationFailed(
                f"unknown key; a threshold has {', '.join(THRESHOLD_KEYS)}", field=_join(field, str(key))
            )
    metric = config.get("metric")
    if not isinstance(metric, str) or not metric.strip():
        raise ValidationFailed("needs a metric name", field=_join(field, "metric"))
    operator = config.get("operator")
    if not isinstance(operator, str) or operator not in OPERATORS:
        raise ValidationFailed(
            f"operator {operator!r} is not one of {', '.join(sorted(OPERATORS))}",
            field=_join(field, "operator"),
        )
    value_field = _join(field, "value")
    value = _parse_value(config.get("value"), operator, value_field)
    unit = config.get("unit")
    if unit is not None and not isinstance(unit, str):
        raise ValidationFailed("must be a string", field=_join(field, "unit"))
    clear_value = _parse_clear_value(config.get("clear_value"), operator, value, _join(field, "clear_value"))
    return Threshold(
        metric=metric.strip(), operator=operator, value=value, unit=unit or None, clear_value=clear_value
    )


def _parse_value(raw: Any, operator: str, value_field: str) -> float | str:
    if raw is None or isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise ValidationFailed("needs a number (or a string with == / !=)", field=value_field)
    if isinstance(raw, float) and not math.isfinite(raw):
        raise ValidationFailed("must be a finite number", field=value_field)
    if isinstance(raw, str) and operator not in ORDERING_OPERATORS:
        return raw
    number = _number(raw)
    if number is None or not math.isfinite(number):
        if operator in ORDERING_OPERATORS:
            raise ValidationFailed(
                f"{raw!r} is not a finite number; {operator} compares numbers", field=value_field
            )
        raise ValidationFailed("must be a finite number", field=value_field)
    return number


def _parse_clear_value(raw: Any, operator: str, value: float | str, field: str) -> float | None:
    if raw is None:
        return None
    if operator not in ORDERING_OPERATORS:
        raise ValidationFailed(f"a clear value needs an ordering operator, not {operator}", field=field)
    number = None if isinstance(raw, bool) else _number(raw)
    if number is None or not math.isfinite(number):
        raise ValidationFailed(f"{raw!r} is not a finite number", field=field)
    assert isinstance(value, float)
    if operator in {">", ">="} and number > value:
        raise ValidationFailed(
            f"with {operator} the clear value must not be above the threshold {_fmt_number(value)}",
            field=field,
        )
    if operator in {"<", "<="} and number < value:
        raise ValidationFailed(
            f"with {operator} the clear value must not be below the threshold {_fmt_number(value)}",
            field=field,
        )
    return number


def parse_condition(payload: dict[str, Any], *, field: str = "") -> Condition:
    """Validate a condition in the API's JSON shape; raises ValidationFailed naming the bad field."""
    return _parse(payload, field=field, depth=0, root=field)


def _parse(payload: Any, *, field: str, depth: int, root: str) -> Condition:
    if not isinstance(payload, dict):
        raise ValidationFailed("must be an object with a condition_type", field=field or "condition")
    condition_type = payload.get("condition_type")
    if condition_type not in CONDITION_TYPES:
        raise ValidationFailed(
            f"condition_type {condition_type!r} is not one of {', '.join(sorted(CONDITION_TYPES))}",
            field=_join(field, "condition_type"),
        )
    assert isinstance(condition_type, str)
    if condition_type == "composite":
        return _parse_composite(payload, field=field, depth=depth + 1, root=root)
    config = payload.get("threshold_config")
    if not isinstance(config, dict):
        raise ValidationFailed(
            "needs an object with metric, operator and value", field=_join(field, "threshold_config")
        )
    threshold = parse_threshold(config, field=_join(field, "threshold_config"))
    source = {key: item for key, item in payload.items() if key not in _LEAF_KEYS}
    return Leaf(condition_type=condition_type, threshold=threshold, source=source)


def _parse_composite(payload: dict[str, Any], *, field: str, depth: int, root: str) -> Composite:
    if depth > MAX_DEPTH:
        raise ValidationFailed(
            f"composite conditions nest at most {MAX_DEPTH} deep (too deep at {field or 'the top'})",
            field=_join(root, "composite_conditions"),
        )
    logic = payload.get("composite_logic")
    if not isinstance(logic, str) or logic.strip().upper() not in LOGICS:
        raise ValidationFailed(
            f"composite_logic {logic!r} must be AND or OR", field=_join(field, "composite_logic")
        )
    children = payload.get("composite_conditions")
    if not isinstance(children, list) or not children:
        raise ValidationFailed(
            "a composite needs a non-empty list of conditions", field=_join(field, "composite_conditions")
        )
    return Composite(
        logic=logic.strip().upper(),
        children=tuple(
            _parse(child, field=_join(field, f"composite_conditions.{index}"), depth=depth, root=root)
            for index, child in enumerate(children)
        ),
    )


# --------------------------------------------------------------------------- free text

_WORD_OPERATORS: tuple[tuple[str, str], ...] = (
    ("greater than or equal to", ">="),
    ("more than or equal to", ">="),
    ("less than or equal to", "<="),
    ("fewer than or equal to", "<="),
    ("not equal to", "!="),
    ("is not", "!="),
    ("greater than", ">"),
    ("more than", ">"),
    ("higher than", ">"),
    ("less than", "<"),
    ("fewer than", "<"),
    ("lower than", "<"),
    ("at least", ">="),
    ("at most", "<="),
    ("no more than", "<="),
    ("no less than", ">="),
    ("above", ">"),
    ("exceeds", ">"),
    ("over", ">"),
    ("below", "<"),
    ("under", "<"),
    ("equal to", "=="),
    ("equals", "=="),
    ("is", "=="),
)
_WORDS = dict(_WORD_OPERATORS)
_SYMBOLS = {
    ">=": ">=",
    "=>": ">=",
    "<=": "<=",
    "=<": "<=",
    "==": "==",
    "!=": "!=",
    "<>": "!=",
    ">": ">",
    "<": "<",
    "=": "==",
}

_SYMBOL_RE = re.compile(
    r"^(?P<metric>[^<>=!]*?)\s*(?P<op>>=|=>|<=|=<|==|!=|<>|>|<|=)\s*(?P<value>.*?)\s*$", re.S
)
_WORD_RE = re.compile(
    r"^(?P<metric>.+?)\s+(?:(?:is|are|goes|gets|rises|falls|drops)\s+)?(?P<op>"
    + "|".join(re.escape(phrase).replace(r"\ ", r"\s+") for phrase, _ in _WORD_OPERATORS)
    + r")\s+(?P<value>.+?)\s*$",
    re.I | re.S,
)
_NUMBER_RE = re.compile(
    r"^(?P<currency>[$€£¥])?\s*(?P<number>[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|[-+]?\.\d+)"
    r"\s*(?P<unit>%|[A-Za-zµ]+(?:/[A-Za-z]+)?)?$"
)
_QUOTED_RE = re.compile(r"""^(?P<q>['"])(?P<text>.*)(?P=q)$""", re.S)
_BARE_RE = re.compile(r"^[\w][\w .:/-]*$")
_UNIT_ALIASES = {"percent": "%", "pct": "%", "per cent": "%"}
_EXAMPLE = "write '<metric> <operator> <value>', e.g. 'CPU usage > 80%' or 'status != \"ok\"'"


def parse_condition_text(text: str) -> Threshold:
    """Parse ``"<metric name> <operator> <value>[unit]"`` into a Threshold.

    Raises ValidationFailed(field="condition") saying what was understood and what was not.
    """
    source = " ".join(str(text).split())
    if not source:
        raise ValidationFailed(f"the condition is empty: {_EXAMPLE}", field="condition")
    match = _SYMBOL_RE.match(source) if re.search(r"[<>=!]", source) else _WORD_RE.match(source)
    if match is None:
        raise ValidationFailed(
            f"found no comparison in {source!r}: {_EXAMPLE}; operators are >, >=, <, <=, ==, != "
            "or words such as above, below, at least, at most, equals",
            field="condition",
        )
    op_text = " ".join(match["op"].lower().split())
    operator = _SYMBOLS.get(op_text) or _WORDS[op_text]
    metric = normalise_metric(match["metric"])
    raw_value = match["value"].strip()
    if not metric:
        raise ValidationFailed(
            f"understood the operator {operator} and the value {raw_value!r} but no metric name before "
            f"them: {_EXAMPLE}",
            field="condition",
        )
    if not raw_value:
        raise ValidationFailed(
            f"understood the metric {metric!r} and the operator {operator} but no value after them: "
            f"{_EXAMPLE}",
            field="condition",
        )
    value, unit = _parse_text_value(raw_value, metric, operator)
    return Threshold(metric=metric, operator=operator, value=value, unit=unit)


def _parse_text_value(raw: str, metric: str, operator: str) -> tuple[float | str, str | None]:
    number = _NUMBER_RE.match(raw)
    if number is not None:
        unit = number["currency"] or number["unit"]
        if unit is not None:
            unit = _UNIT_ALIASES.get(unit.lower(), unit)
        return float(number["number"].replace(",", "")), unit
    quoted = _QUOTED_RE.match(raw)
    text = quoted["text"] if quoted else raw if _BARE_RE.match(raw) else None
    if text is not None and operator in {"==", "!="}:
        return text, None
    if text is not None:
        raise ValidationFailed(
            f"understood the metric {metric!r} and the operator {operator} but {raw!r} is not a number; "
            "text values work only with == and !=",
            field="condition",
        )
    raise ValidationFailed(
        f"understood the metric {metric!r} and the operator {operator} but not the value {raw!r}: "
        "expected a number such as 150, 1,000, 80% or 500ms, or a quoted string with == / !=",
        field="condition",
    )


# --------------------------------------------------------------------------- comparing


def compare(value: float | str | None, threshold: Threshold) -> bool | None:
    """Whether ``value`` meets the threshold; None when there is no value.

    Raises ValueError when an ordering operator meets a non-numeric value.
    """
    if value is None:
        return None
    operator = threshold.operator
    left, right = _number(value), _number(threshold.value)
    if operator in ORDERING_OPERATORS:
        if left is None:
            raise ValueError(f"{value!r} is not a number; cannot compare it with {operator}")
        if right is None:
            raise ValueError(f"threshold {threshold.value!r} is not a number; cannot compare with {operator}")
        if operator == ">":
            return left > right
        if operator == ">=":
            return left >= right
        if operator == "<":
            return left < right
        return left <= right
    if operator not in {"==", "!="}:
        raise ValueError(f"unknown operator {operator!r}")
    if left is not None and right is not None:
        equal = left == right or math.isclose(left, right, rel_tol=1e-9, abs_tol=0.0)
    else:
        equal = _as_text(value) == _as_text(threshold.value)
    return equal if operator == "==" else not equal


def _as_text(value: float | str) -> str:
    if isinstance(value, float):
        return _fmt_number(value)
    return str(value)


def is_clear(value: float, threshold: Threshold) -> bool:
    """Whether a firing condition may resolve at ``value`` (hysteresis through ``clear_value``)."""
    clear = threshold.clear_value
    if clear is not None and threshold.operator in {">", ">="}:
        return value < clear
    if clear is not None and threshold.operator in {"<", "<="}:
        return value > clear
    return not compare(value, threshold)


# --------------------------------------------------------------------------- evaluation


def leaves_of(condition: Condition) -> list[Leaf]:
    """The leaves of a condition, depth first, left to right."""
    if isinstance(condition, Leaf):
        return [condition]
    return [leaf for child in condition.children for leaf in leaves_of(child)]


async def evaluate(
    condition: Condition,
    read: Callable[[Leaf], Awaitable[tuple[float | str | None, str | None]]],
) -> Evaluation:
    """Read every leaf concurrently and combine the results with three-valued AND/OR logic."""
    leaves = leaves_of(condition)

    async def read_one(leaf: Leaf) -> tuple[float | str | None, str | None]:
        try:
            return await read(leaf)
        except Exception as exc:  # a failing source is an "error" state, never a crash
            return None, str(exc) or type(exc).__name__

    readings = await asyncio.gather(*(read_one(leaf) for leaf in leaves))
    results = tuple(_judge(leaf, value, error) for leaf, (value, error) in zip(leaves, readings, strict=True))
    triggered, errored, errors = _combine(condition, iter(results))
    if triggered is True:
        state = "triggered"
    elif triggered is False:
        state = "ok"
    else:
        state = "error" if errored else "no_data"
    return Evaluation(
        triggered=triggered,
        value=results[0].value if results else None,
        state=state,
        leaves=results,
        error="; ".join(errors) if state == "error" else None,
    )


def _judge(leaf: Leaf, value: float | str | None, error: str | None) -> LeafResult:
    if error is not None:
        return LeafResult(leaf=leaf, value=value, triggered=None, error=error)
    try:
        triggered = compare(value, leaf.threshold)
    except ValueError as exc:
        return LeafResult(leaf=leaf, value=value, triggered=None, error=str(exc))
    return LeafResult(leaf=leaf, value=value, triggered=triggered)


def _combine(condition: Condition, results: Iterator[LeafResult]) -> tuple[bool | None, bool, list[str]]:
    """(triggered, undecided because of an error, the errors that left it undecided)."""
    if isinstance(condition, Leaf):
        result = next(results)
        if result.triggered is None and result.error is not None:
            return None, True, [f"{result.leaf.threshold.metric}: {result.error}"]
        return result.triggered, False, []
    parts = [_combine(child, results) for child in condition.children]  # consume every leaf in order
    values = [part[0] for part in parts]
    decisive = condition.logic != "AND"
    if decisive in values:
        return decisive, False, []
    if all(value is not None for value in values):
        return not decisive, False, []
    undecided = [part for part in parts if part[0] is None]
    errors = [error for part in undecided for error in part[2]]
    return None, any(part[1] for part in undecided), errors


# --------------------------------------------------------------------------- rendering


def _describe_threshold(threshold: Threshold) -> str:
    value = threshold.value
    shown = repr(value) if isinstance(value, str) else _fmt_number(value)
    unit = threshold.unit or ""
    if unit in _CURRENCIES:
        shown = f"{unit}{shown}"
    elif unit:
        shown = f"{shown}{unit}"
    return f"{threshold.metric} {threshold.operator} {shown}"


def describe(condition: Condition) -> str:
    """Human-readable form: ``unread_count > 100`` or ``(unread_count > 100 AND pending_tasks > 50)``."""
    if isinstance(condition, Leaf):
        return _describe_threshold(condition.threshold)
    return "(" + f" {condition.logic} ".join(describe(child) for child in condition.children) + ")"


def _threshold_dict(threshold: Threshold) -> dict[str, Any]:
    config: dict[str, Any] = {
        "metric": threshold.metric,
        "operator": threshold.operator,
        "value": threshold.value if isinstance(threshold.value, str) else _json_number(threshold.value),
    }
    if threshold.unit is not None:
        config["unit"] = threshold.unit
    if threshold.clear_value is not None:
        config["clear_value"] = _json_number(threshold.clear_value)
    return config


def as_dict(condition: Condition) -> dict[str, Any]:
    """The condition in the API's JSON shape; ``parse_condition(as_dict(c)) == c``."""
    if isinstance(condition, Leaf):
        return {
            "condition_type": condition.condition_type,
            **condition.source,
            "threshold_config": _threshold_dict(condition.threshold),
        }
    return {
        "condition_type": "composite",
        "composite_logic": condition.logic,
        "composite_conditions": [as_dict(child) for child in condition.children],
    }
