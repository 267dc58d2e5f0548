"""IANA time zone names from outside, checked once the same way wherever they appear (requests, schedules,
contacts, quiet hours, monitors' mute windows)."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# Stored in String(64) columns; the longest IANA name is about 30 characters.
MAX_LENGTH = 64
# Files in the zone database that are not zones: the host's own setting, and the POSIX fallback rules.
_NOT_ZONES = frozenset({"localtime", "posixrules", "Factory"})


def zone_problem(name: Any) -> str | None:
    """Why ``name`` is not an IANA time zone name (``Europe/London``), or None."""
    if not isinstance(name, str):
        return "must be an IANA time zone name such as Europe/London"
    if not name or len(name) > MAX_LENGTH or name in _NOT_ZONES or "\x00" in name:
        return f"unknown IANA time zone {name[:MAX_LENGTH]!r} (for example Europe/London)"
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a directory, or a name the OS refuses
        return f"unknown IANA time zone {name!r} (for example Europe/London)"
    return None


def check_timezone(value: str) -> str:
    """``value`` when it names an IANA time zone; ValueError saying why not (for pydantic validators)."""
    problem = zone_problem(value)
    if problem:
        raise ValueError(problem)
    return value
