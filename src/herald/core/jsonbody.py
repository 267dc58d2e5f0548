"""JSON from outside: one place for what any accepted value must be, and for the 422 a webhook body gets.

A value is refused when it nests deeper than a limit (nothing that reads it later recurses unboundedly),
carries a number that is not finite (``NaN``, ``Infinity``: JSON has no such numbers, PostgreSQL's ``jsonb``
refuses them) or a NUL character (PostgreSQL text cannot hold it, and no channel wants one). The walk is
iterative, so no depth of input reaches Python's recursion limit here.
"""

from __future__ import annotations

import json
import math
from typing import Any

from herald.core.errors import ValidationFailed

# A request field (template variables, credentials, a trigger's config...) nests at most this deep.
MAX_FIELD_DEPTH = 32
# A webhook body, as a whole (providers' and senders' payloads are deeper than our own fields).
MAX_BODY_DEPTH = 64

NUL = "must not contain NUL characters"
NOT_FINITE = "numbers must be finite (NaN and Infinity are not JSON numbers)"


def too_deep(limit: int) -> str:
    return f"must not nest deeper than {limit} levels"


def problem(value: Any, *, max_depth: int = MAX_FIELD_DEPTH) -> str | None:
    """What is wrong with ``value`` (a NUL, a non-finite number, nesting past ``max_depth``), or None.

    ``value`` itself is level 1 when it is an object or a list."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return NUL
        elif isinstance(item, float):
            if not math.isfinite(item):
                return NOT_FINITE
        elif isinstance(item, dict | list | tuple):
            if depth >= max_depth:
                return too_deep(max_depth)
            if isinstance(item, dict):
                for key, child in item.items():
                    stack.append((key, depth + 1))
                    stack.append((child, depth + 1))
            else:
                stack.extend((child, depth + 1) for child in item)
    return None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def parse(body: bytes, *, field: str = "body") -> Any:
    """A webhook body as JSON; 422 naming ``field`` when it is not JSON, nests past :data:`MAX_BODY_DEPTH`
    or carries ``NaN``/``Infinity`` (NUL characters are the caller's business: they are valid JSON)."""
    try:
        value = json.loads(body, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:  # RecursionError: nesting deeper than the parser's stack
        raise ValidationFailed("the body is not JSON", field=field) from exc
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth >= MAX_BODY_DEPTH:
                raise ValidationFailed(f"the body {too_deep(MAX_BODY_DEPTH)}", field=field)
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return value
