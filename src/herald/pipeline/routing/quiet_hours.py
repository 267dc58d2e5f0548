"""Quiet hours: a local-time window (possibly across midnight) during which non-critical messages wait."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator


class QuietHours(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start: str = Field(description="local time HH:MM when quiet begins, such as 21:00")
    end: str = Field(description="local time HH:MM when it ends, such as 07:00 (the next morning)")

    @field_validator("start", "end")
    @classmethod
    def _hhmm(cls, value: str) -> str:
        try:
            time.fromisoformat(value)
        except ValueError as exc:
            raise ValueError("must be a local time HH:MM such as 21:00") from exc
        return value

    def window_end(self, at: datetime, timezone: str) -> datetime | None:
        """If ``at`` falls inside the window in ``timezone``, when the window ends (as an aware datetime)."""
        zone = ZoneInfo(timezone)
        local = at.astimezone(zone)
        start, end = time.fromisoformat(self.start), time.fromisoformat(self.end)
        now = local.time().replace(tzinfo=None)
        if start == end:
            return None
        if start < end:
            inside = start <= now < end
            end_day = local.date()
        else:  # across midnight: inside after start today, or before end today
            inside = now >= start or now < end
            end_day = local.date() + timedelta(days=1) if now >= start else local.date()
        if not inside:
            return None
        # fold=0 and a round trip through UTC put a nonexistent wall time (spring forward) after the gap.
        naive_end = datetime.combine(end_day, end)
        return datetime.fromtimestamp(naive_end.replace(tzinfo=zone).timestamp(), tz=zone)


def delay_for_quiet_hours(at: datetime, quiet: QuietHours | None, timezone: str | None) -> datetime:
    """The earliest time not inside quiet hours, at or after ``at``."""
    if quiet is None:
        return at
    end = quiet.window_end(at, timezone or "UTC")
    return at if end is None else end.astimezone(at.tzinfo)
