"""Webhook bodies as JSON: one place for the 422 a body that is not JSON gets (too deep a nesting included)."""

from __future__ import annotations

import json
from typing import Any

from herald.core.errors import ValidationFailed


def parse(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:  # RecursionError: nesting deeper than any payload needs
        raise ValidationFailed("the body is not JSON", field="body") from exc
