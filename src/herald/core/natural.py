"""Natural-language schedules: "every monday at 2:30pm" becomes cron, "tomorrow at 3pm" becomes a datetime.

The parser is hand-written (no NLP library): the text is lower-cased, trailing punctuation dropped, ``9 am``
joined to ``9am`` and commas split off, and a small recursive-descent parser walks the words. When it stops
it knows how far it got, so :class:`ScheduleParseError` says which words were understood and which were not.

Recurring schedules become standard 5-field cron (minute hour day-of-month month day-of-week, Sunday = 0);
one-time schedules become a timezone-aware ``run_at`` in the schedule's zone.

Choices worth knowing:

* **Default time.** A day-level schedule with no time runs at 09:00 ("daily" is ``0 9 * * *``, "weekly" is
  Monday 09:00, "monthly" the 1st at 09:00, "yearly" 1 January at 09:00), and so does a one-time date
  without a time ("tomorrow", "next tuesday", "on 2027-01-05").
* **Times** are 12-hour with ``am``/``pm`` (with or without a space), or 24-hour: ``at 14:00``, ``at 17``.
  A bare ``at 5`` is 05:00. ``noon``/``midday`` and ``midnight`` are understood.
* **"Last <weekday> of the month"** cannot be written in standard cron: a weekday can only be paired with a
  day-of-month range such as ``0 16 25-31 * 5``, and when both of those fields are restricted cron ORs them
  (every 25th-31st *and* every Friday). cronsim, which Herald uses to compute runs, supports the common
  ``<dow>L`` extension, so "every last friday of the month at 4pm" returns ``0 16 * * 5L`` (and "the
  second tuesday of the month" returns ``0 9 * * 2#2``). These expressions are documented extensions, not
  POSIX cron: they work everywhere Herald computes runs (:func:`next_runs`) but would not in a system
  crontab. "Every second tuesday" without "of the month" is refused as ambiguous (fortnightly?).
* **Intervals cron cannot keep.** ``*/45`` in the minute field fires at :00 and :45, not every 45 minutes,
  so "every N minutes" needs N to divide 60, "every N hours" N to divide 24, and "every N months" N to
  divide 12. "Every N days/weeks" (and "every other day") cannot be expressed at all (``*/2`` in the
  day-of-month field restarts each month). These raise :class:`ScheduleParseError` saying why.
* **Several times a day** ("at 9am and 5pm") become one expression only when the hours share the minutes
  (``0 9,17 * * *``); "at 9:15 and 5:45" would also fire at 9:45 and 5:15, so it is refused.
* **One-time, relative.** "in N minutes/hours" is elapsed time (``now + N``); "in N days/weeks" keeps the
  wall-clock time N calendar days later. "next tuesday" is the Tuesday strictly after today; "tuesday",
  "this tuesday" and "on tuesday" are the coming one (today if the time is still ahead). "at 5pm" alone is
  today if 17:00 is still ahead, else tomorrow. A one-time moment that is not in the future is refused.
* **DST.** A local time that does not exist (spring forward) moves to the first valid moment after it,
  e.g. 02:30 on 2026-03-08 in New York becomes 03:00 EDT - the same rule cronsim applies to recurring
  runs. An ambiguous local time (fall back) means its first occurrence (``fold=0``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from cron_descriptor import (  # type: ignore[import-untyped]
    FormatError,
    MissingFieldError,
    Options,
    WrongArgumentError,
    get_description,
)
from cronsim import CronSim, CronSimError

from herald.core.errors import HeraldError
from herald.core.timezones import zone_problem

__all__ = [
    "ParsedSchedule",
    "ScheduleParseError",
    "describe_cron",
    "next_runs",
    "parse_schedule",
    "validate_cron",
]

ScheduleKind = Literal["recurring", "one_time"]

_EXAMPLES = (
    '"every day at 9am", "every monday at 2:30pm", "every 15 minutes", "tomorrow at 3pm", "in 2 hours"'
)


@dataclass(frozen=True)
class ParsedSchedule:
    """What a schedule text means: cron for a recurring one, ``run_at`` for a one-time one."""

    kind: ScheduleKind
    cron_expression: str | None  # recurring
    run_at: datetime | None  # one-time, timezone-aware in the schedule's zone
    description: str


class ScheduleParseError(HeraldError, ValueError):
    """A schedule text Herald could not turn into a schedule.

    ``understood`` is the leading part that made sense (e.g. ``"every monday"``), ``not_understood`` the rest
    (e.g. ``"at quarter past the hour of doom"``); ``reason`` is set when the words were understood but
    cannot be scheduled (e.g. "every 45 minutes" in cron). ``str(exc)`` says all of it.
    """

    def __init__(self, understood: str, not_understood: str, reason: str | None = None) -> None:
        self.understood = understood
        self.not_understood = not_understood
        self.reason = reason
        super().__init__(_error_message(understood, not_understood, reason))

    def __reduce__(self) -> tuple[type[ScheduleParseError], tuple[str, str, str | None]]:
        return (type(self), (self.understood, self.not_understood, self.reason))


def _error_message(understood: str, not_understood: str, reason: str | None) -> str:
    if not understood and not not_understood:
        return f"{reason or 'The schedule is empty'}: there is nothing to understand. Try {_EXAMPLES}."
    said = f'understood "{understood}"' if understood else "understood nothing"
    left = f'not understood "{not_understood}"' if not_understood else "nothing left over"
    if reason:
        return f"{reason} ({said}; {left})."
    if not understood:
        return f'Could not understand the schedule "{not_understood}": no part of it was understood. Try {_EXAMPLES}.'
    return (
        f'Could not understand the schedule "{understood} {not_understood}": understood "{understood}", '
        f'but not "{not_understood}". Try {_EXAMPLES}.'
    )


# -- vocabulary ------------------------------------------------------------------------------------------

_DOW_NAMES: dict[str, int] = {
    "sunday": 0, "sun": 0,
    "monday": 1, "mon": 1,
    "tuesday": 2, "tue": 2, "tues": 2,
    "wednesday": 3, "wed": 3,
    "thursday": 4, "thu": 4, "thur": 4, "thurs": 4,
    "friday": 5, "fri": 5,
    "saturday": 6, "sat": 6,
}  # fmt: skip
_DOW_TITLES = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]
_WEEKDAYS = frozenset({1, 2, 3, 4, 5})
_WEEKEND = frozenset({0, 6})

_MONTH_NAMES: dict[str, int] = {
    "january": 1, "jan": 1, "february": 2, "feb": 2, "march": 3, "mar": 3, "april": 4, "apr": 4,
    "may": 5, "june": 6, "jun": 6, "july": 7, "jul": 7, "august": 8, "aug": 8,
    "september": 9, "sep": 9, "sept": 9, "october": 10, "oct": 10, "november": 11, "nov": 11,
    "december": 12, "dec": 12,
}  # fmt: skip
_MONTH_TITLES = ["", "January", "February", "March", "April", "May", "June", "July", "August",
                 "September", "October", "November", "December"]  # fmt: skip

_NUMBER_WORDS: dict[str, int] = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20, "thirty": 30,
}  # fmt: skip
_ORDINAL_WORDS: dict[str, int] = {"first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5}
_NTH_TITLES = ["", "first", "second", "third", "fourth", "fifth"]

_SECOND_UNITS = frozenset({"second", "seconds", "sec", "secs"})
_MINUTE_UNITS = frozenset({"minute", "minutes", "min", "mins"})
_HOUR_UNITS = frozenset({"hour", "hours", "hr", "hrs"})
_DAY_UNITS = frozenset({"day", "days"})
_WEEK_UNITS = frozenset({"week", "weeks"})
_MONTH_UNITS = frozenset({"month", "months"})
_YEAR_UNITS = frozenset({"year", "years"})

_ADVERBS: dict[str, str] = {
    "hourly": "hour", "daily": "day", "weekly": "week", "monthly": "month", "yearly": "year", "annually": "year",
}  # fmt: skip

_TIME_RE = re.compile(r"(\d{1,2})(?::(\d{2}))?(am|pm)?")
_MINUTE_MARK_RE = re.compile(r":(\d{2})")
_ORDINAL_RE = re.compile(r"(\d{1,2})(?:st|nd|rd|th)?")
_ISO_DATE_RE = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})")
_YEAR_RE = re.compile(r"\d{4}")

_MINUTE_STEPS = (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30)
_HOUR_STEPS = (1, 2, 3, 4, 6, 8, 12)
_MONTH_STEPS = (1, 2, 3, 4, 6)
_DEFAULT_TIME = (9, 0)
_CYCLE = {60: "hour", 24: "day", 12: "year"}
_MAX_AHEAD_DAYS = 366_000  # "in N days" further than this would leave datetime's range
_MAX_COUNT = 10**9  # keeps timedelta(seconds=N * 3600) in range until the check above
_TOO_FAR = "That is too far ahead: one-time schedules go at most 1000 years out"
_RELATIVE_UNITS = (  # (words, elapsed seconds, calendar days) per unit of "in N <unit>"
    (_SECOND_UNITS, 1, 0),
    (_MINUTE_UNITS, 60, 0),
    (_HOUR_UNITS, 3600, 0),
    (_DAY_UNITS, 0, 1),
    (_WEEK_UNITS, 0, 7),
)


def _tokenize(text: str) -> list[str]:
    s = text.lower().strip()
    s = re.sub(r"[\s.,;:!?]+$", "", s)
    s = re.sub(r"\b([ap])\.m\b\.?", r"\1m", s)  # a.m. -> am
    s = re.sub(r"(\d)\s+(am|pm)\b", r"\1\2", s)  # 9 am -> 9am
    s = re.sub(r"(?<=[a-z])-(?=[a-z])", " - ", s)  # mon-fri -> mon - fri
    s = s.replace("&", " and ").replace(",", " , ")
    return s.split()


def _join(tokens: list[str]) -> str:
    return " ".join(tokens).replace(" , ", ", ").strip(" ,")


def _and_list(words: list[str]) -> str:
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _clock(hour: int, minute: int) -> str:
    return f"{hour % 12 or 12}:{minute:02d} {'AM' if hour < 12 else 'PM'}"


def _dow_field(days: set[int]) -> str:
    """Sorted cron list; runs of three or more days become a range (1-5)."""
    ordered = sorted(days)
    parts: list[str] = []
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        if j - i >= 2:
            parts.append(f"{ordered[i]}-{ordered[j]}")
        else:
            parts.extend(str(d) for d in ordered[i : j + 1])
        i = j + 1
    return ",".join(parts)


# -- time zones ------------------------------------------------------------------------------------------


def _zone(name: str) -> ZoneInfo:
    problem = zone_problem(name)
    if problem:
        raise ValueError(problem)
    return ZoneInfo(name)


def _exists(aware: datetime) -> bool:
    """Whether the wall time survives a round trip through UTC (it does not inside a DST gap)."""
    back = datetime.fromtimestamp(aware.timestamp(), tz=aware.tzinfo)
    return back.replace(tzinfo=None) == aware.replace(tzinfo=None)


def _localize(naive: datetime, zone: ZoneInfo) -> datetime:
    """``naive`` wall time in ``zone``: ambiguous means the first occurrence, nonexistent the first valid moment after."""
    candidate = naive.replace(tzinfo=zone, fold=0)
    if _exists(candidate):
        return candidate
    step = naive.replace(second=0, microsecond=0)
    for _ in range(3 * 24 * 60):  # the longest gaps on record are a day (Samoa, 2011)
        step += timedelta(minutes=1)
        candidate = step.replace(tzinfo=zone, fold=0)
        if _exists(candidate):
            return candidate
    return datetime.fromtimestamp(naive.replace(tzinfo=zone).timestamp(), tz=zone)  # pragma: no cover


def _in_zone(moment: datetime, zone: ZoneInfo) -> datetime:
    """An aware datetime converted to ``zone``; a naive one is read as wall time in ``zone``."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        return _localize(moment, zone)
    return moment.astimezone(zone)


# -- cron ------------------------------------------------------------------------------------------------


def validate_cron(expr: str) -> None:
    """Raise ``ValueError`` saying what is wrong unless ``expr`` is a usable 5-field cron expression.

    Accepted: standard cron plus the extensions cronsim implements (``L``, ``LW``, ``<dow>L``, ``<dow>#<n>``,
    month and weekday names). Six-field (seconds) expressions are refused: Herald schedules are per minute.
    An expression that can never fire (``0 0 30 2 *``) is refused too.
    """
    fields = expr.split() if isinstance(expr, str) else []
    if len(fields) != 5:
        raise ValueError(
            f"invalid cron expression {expr!r}: expected 5 fields (minute hour day-of-month month "
            f"day-of-week), got {len(fields)}"
        )
    start = datetime(2000, 1, 1, tzinfo=UTC)
    try:
        runs = CronSim(expr, start)
    except CronSimError as exc:
        raise ValueError(
            f"invalid cron expression {expr!r}: {str(exc).lower()} field "
            "(fields are minute 0-59, hour 0-23, day-of-month 1-31, month 1-12, day-of-week 0-7 with 0 = Sunday)"
        ) from exc
    try:
        next(runs)
    except StopIteration:
        raise ValueError(f"invalid cron expression {expr!r}: it never fires") from None


def next_runs(expr: str, *, timezone: str, after: datetime, count: int = 5) -> list[datetime]:
    """The next ``count`` times ``expr`` fires strictly after ``after``, as aware datetimes in ``timezone``.

    Cron fields are read as wall-clock time in ``timezone`` (a naive ``after`` is also read as wall time
    there). DST follows cronsim (Debian cron's rules): a fixed-time job whose local time does not exist runs
    at the first valid moment after it (02:30 on a spring-forward night runs at 03:00), one whose local time
    happens twice runs once (the first time); interval jobs (``*/15 * * * *``) follow elapsed time.
    """
    validate_cron(expr)
    if count < 0:
        raise ValueError("count must not be negative")
    zone = _zone(timezone)
    runs = CronSim(expr, _in_zone(after, zone))
    result: list[datetime] = []
    for _ in range(count):
        try:
            result.append(next(runs).astimezone(zone))
        except StopIteration:
            break
    return result


_SEED_DESCRIPTIONS: dict[str, str] = {
    # Herald's seed phrasing for this one differs from the generic "Weekly on Friday at 5:00 PM".
    "0 17 * * 5": "Fridays at 5:00 PM",
}


def describe_cron(expr: str) -> str:
    """``expr`` in words: Herald's phrasing for common shapes, cron_descriptor's for the rest.

    "Daily at 9:00 AM", "Weekly on Monday at 2:30 PM", "Weekdays at 8:30 AM", "Monthly on 1st at 9:00 AM",
    "Monthly on the last Friday at 4:00 PM", "Every 6 hours", "Every hour", "Every 15 minutes"; otherwise
    e.g. "At 09:00 AM, only in January" (12-hour clock, not verbose). Raises ``ValueError`` if invalid.
    """
    validate_cron(expr)
    key = " ".join(expr.split())
    phrase = _SEED_DESCRIPTIONS.get(key) or _herald_phrase(key.split())
    if phrase is not None:
        return phrase
    options = Options()
    options.use_24hour_time_format = False
    options.verbose = False
    try:
        return str(get_description(key, options))
    except (FormatError, MissingFieldError, WrongArgumentError, ValueError):  # pragma: no cover
        return f"Cron schedule {key}"


def _int_list(field: str, low: int, high: int) -> list[int] | None:
    """The values of a plain comma list of numbers (``9,17``), else None."""
    values: list[int] = []
    for part in field.split(","):
        if not part.isdigit() or not low <= int(part) <= high:
            return None
        values.append(int(part))
    return sorted(set(values))


def _dow_set(field: str) -> set[int] | None:
    """The weekdays of a numeric day-of-week list/range (``1-5``, ``0,6``), else None."""
    days: set[int] = set()
    for part in field.split(","):
        low, _, high = part.partition("-")
        if not low.isdigit() or (high and not high.isdigit()):
            return None
        first, last = int(low), int(high or low)
        if not 0 <= first <= last <= 7:
            return None
        days.update(d % 7 for d in range(first, last + 1))
    return days


def _herald_phrase(fields: list[str]) -> str | None:
    minute, hour, dom, month, dow = fields
    if (dom, month, dow) != ("*", "*", "*") or not (hour == "*" or hour.startswith("*/")):
        return _day_phrase(fields)
    step = re.fullmatch(r"\*/(\d+)", minute)
    if hour == "*" and minute == "*":
        return "Every minute"
    if hour == "*" and step:  # only steps that divide the hour really are "every N minutes"
        return f"Every {int(step[1])} minutes" if int(step[1]) in _MINUTE_STEPS[1:] else None
    if not minute.isdigit():
        return None
    at = f" at :{int(minute):02d}" if int(minute) else ""
    if hour == "*":
        return f"Every hour{at}"
    hours = int(hour[2:]) if hour[2:].isdigit() else 0
    return f"Every {hours} hours{at}" if hours in _HOUR_STEPS[1:] else None


def _day_phrase(fields: list[str]) -> str | None:  # noqa: PLR0911 - one answer per shape
    minute, hour, dom, month, dow = fields
    minutes, hours = _int_list(minute, 0, 59), _int_list(hour, 0, 23)
    if minutes is None or hours is None:
        return None
    times = _and_list([_clock(h, m) for h in hours for m in minutes])
    if month != "*":
        months, doms = _int_list(month, 1, 12), _int_list(dom, 1, 31)
        if dow != "*" or months is None or doms is None or len(months) != 1 or len(doms) != 1:
            return None
        return f"Yearly on {_MONTH_TITLES[months[0]]} {_ordinal(doms[0])} at {times}"
    if dom != "*":
        if dow != "*":
            return None
        if dom == "L":
            return f"Monthly on the last day at {times}"
        doms = _int_list(dom, 1, 31)
        return f"Monthly on {_and_list([_ordinal(d) for d in doms])} at {times}" if doms else None
    nth = re.fullmatch(r"([0-7])(?:(L)|#([1-5]))", dow)
    if nth:
        which = "last" if nth[2] else _NTH_TITLES[int(nth[3])]
        return f"Monthly on the {which} {_DOW_TITLES[int(nth[1]) % 7]} at {times}"
    days = set(range(7)) if dow == "*" else _dow_set(dow)
    if days is None:
        return None
    if len(days) == 7:
        return f"Daily at {times}"
    if days == _WEEKDAYS:
        return f"Weekdays at {times}"
    if days == _WEEKEND:
        return f"Weekends at {times}"
    names = [_DOW_TITLES[d] for d in sorted(days, key=lambda d: (d - 1) % 7)]  # Monday first
    return f"Weekly on {_and_list(names)} at {times}"


# -- the parser ------------------------------------------------------------------------------------------

_Slot = Literal["none", "week", "month", "year", "filter"]


@dataclass
class _Recurring:
    """A recurring schedule being assembled; ``slot`` says which "on ..." clause may still follow."""

    level: Literal["minute", "hour", "day"]
    minute: str = "0"
    hour: str = "*"
    dom: str = "*"
    month: str = "*"
    dow: str = "*"
    slot: _Slot = "none"
    times: list[tuple[int, int]] | None = None


@dataclass(frozen=True)
class _Day:
    """A one-time day: a date, the coming weekday (``dow``, cron numbering), or a month and day without year."""

    kind: Literal["date", "upcoming", "yearless"]
    on: date | None = None
    dow: int = 0
    month: int = 0
    dom: int = 0


class _Parser:
    def __init__(self, tokens: list[str], zone: ZoneInfo, zone_name: str, now: datetime) -> None:
        self.tokens = tokens
        self.pos = 0
        self.zone = zone
        self.zone_name = zone_name
        self.now = now
        self.today = now.date()

    # -- plumbing

    def peek(self, ahead: int = 0) -> str | None:
        i = self.pos + ahead
        return self.tokens[i] if i < len(self.tokens) else None

    def accept(self, *words: str) -> str | None:
        word = self.peek()
        if word is not None and word in words:
            self.pos += 1
            return word
        return None

    def accept_seq(self, *words: str) -> bool:
        if self.tokens[self.pos : self.pos + len(words)] == list(words):
            self.pos += len(words)
            return True
        return False

    def at_end(self) -> bool:
        return self.pos >= len(self.tokens)

    def error(self, reason: str | None = None, *, at: int | None = None) -> ScheduleParseError:
        """The error to raise: the words before ``at`` (default: where parsing stands) were understood."""
        cut = self.pos if at is None else at
        return ScheduleParseError(_join(self.tokens[:cut]), _join(self.tokens[cut:]), reason)

    # -- top level

    def parse(self) -> ParsedSchedule:
        if not self.tokens:
            raise ScheduleParseError("", "", "The schedule is empty")
        word = self.peek()
        if word in ("every", "each"):
            self.pos += 1
            result = self.finish_recurring(self.every())
        elif word is not None and word in _ADVERBS:
            self.pos += 1
            result = self.finish_recurring(self.unit(_ADVERBS[word], None, self.pos - 1))
        elif word == "at":
            result = self.time_first()
        else:
            rec = self.recurring_without_every()
            result = self.finish_recurring(rec) if rec is not None else self.one_time(None)
        if not self.at_end():
            raise self.error()
        return result

    def time_first(self) -> ParsedSchedule:
        """``at 5pm`` alone, ``at 5pm tomorrow``, ``at 9am every weekday``."""
        start = self.pos
        times = self.at_times()
        if times is None:
            raise self.error()
        word = self.peek()
        rec: _Recurring | None = None
        if word in ("every", "each"):
            self.pos += 1
            rec = self.every()
        elif word is not None and word in _ADVERBS:
            self.pos += 1
            rec = self.unit(_ADVERBS[word], None, self.pos - 1)
        elif word is not None:
            rec = self.recurring_without_every()
        if rec is None:
            return self.one_time(self.single(times, start))
        if rec.level != "day":
            raise self.error("A time of day cannot be combined with a minute or hour interval", at=start)
        rec.times = times
        return self.finish_recurring(rec)

    # -- recurring

    def every(self) -> _Recurring:
        """What follows "every": a unit with an optional count, weekdays, "last friday", "1st and 15th"."""
        start = self.pos
        nth = self.nth_weekday()
        if nth is not None:
            dow, which, of_month = nth
            if which != "L" and not of_month:
                raise self.error(
                    f'"every {_NTH_TITLES[int(which)]} {_DOW_TITLES[dow].lower()}" is ambiguous: say '
                    f'"every {_NTH_TITLES[int(which)]} {_DOW_TITLES[dow].lower()} of the month"; '
                    "every-other-week schedules cannot be expressed in cron",
                    at=start,
                )
            return _Recurring("day", dow=f"{dow}{which}" if which == "L" else f"{dow}#{which}")
        days = self.dow_spec(plural_only=False)
        if days is not None:
            return _Recurring("day", dow=_dow_field(days))
        count = self.count()
        word = self.peek()
        for unit, words in (
            ("second", _SECOND_UNITS), ("minute", _MINUTE_UNITS), ("hour", _HOUR_UNITS), ("day", _DAY_UNITS),
            ("week", _WEEK_UNITS), ("month", _MONTH_UNITS), ("year", _YEAR_UNITS),
        ):  # fmt: skip
            if word is not None and word in words:
                self.pos += 1
                return self.unit(unit, count, start)
        if count is not None:
            raise self.error()  # "every 15 blue moons": the count was understood, the unit not
        if self.accept("half", "quarter"):
            fraction = self.tokens[self.pos - 1]
            if self.accept("hour", "hr"):
                return _Recurring("minute", minute="*/30" if fraction == "half" else "*/15", slot="filter")
        self.pos = start
        doms = self.dom_list()
        if doms is not None:
            return _Recurring("day", dom=",".join(doms))
        raise self.error(at=start)

    def unit(self, unit: str, count: int | None, start: int) -> _Recurring:
        """``every [count] <unit>`` (or hourly/daily/...), ``start`` being where the count began."""
        if unit == "second":
            raise self.error(
                "Herald schedules run at most once a minute; seconds cannot be scheduled", at=start
            )
        if unit == "minute":
            step = self.step(count, _MINUTE_STEPS, "minutes", 60, start)
            return _Recurring("minute", minute=step, slot="filter")
        if unit == "hour":
            step = self.step(count, _HOUR_STEPS, "hours", 24, start)
            minute = self.past_minute()
            return _Recurring("hour", minute=str(minute or 0), hour=step, slot="filter")
        if unit in ("day", "week") and count not in (None, 1):
            raise self.error(
                f"Cron cannot repeat every {count} {unit}s: its day fields restart every month and week "
                f"(*/{count} in day-of-month runs on the 31st and again on the 1st); use specific weekdays or "
                'dates instead, e.g. "every monday and thursday"',
                at=start,
            )
        if unit == "day":
            return _Recurring("day")
        if unit == "week":
            return _Recurring("day", dow="1", slot="week")
        if unit == "month":
            step = self.step(count, _MONTH_STEPS, "months", 12, start)
            return _Recurring("day", dom="1", month=step, slot="month")
        if count not in (None, 1):
            raise self.error(f"Cron cannot repeat every {count} years (it has no year field)", at=start)
        return _Recurring("day", dom="1", month="1", slot="year")

    def step(self, count: int | None, allowed: tuple[int, ...], units: str, whole: int, start: int) -> str:
        if count is None or count == 1:
            return "*"
        if count not in allowed:
            raise self.error(
                f"Cron cannot repeat every {count} {units}: a step must divide {whole} evenly "
                f"(*/{count} restarts at the start of every {_CYCLE[whole]}); "
                f"use one of {', '.join(str(n) for n in allowed)}",
                at=start,
            )
        return f"*/{count}"

    def finish_recurring(self, rec: _Recurring) -> ParsedSchedule:
        start = self.pos
        while not self.at_end():
            if rec.level == "day" and rec.times is None:
                times = self.at_times()
                if times is not None:
                    rec.times = times
                    continue
            if rec.slot != "none" and self.on_clause(rec):
                rec.slot = "none"
                continue
            break
        expr = self.cron(rec, start)
        try:
            validate_cron(expr)
        except ValueError as exc:  # pragma: no cover - the parser only builds valid fields
            raise self.error(str(exc), at=0) from exc
        return ParsedSchedule("recurring", expr, None, describe_cron(expr))

    def cron(self, rec: _Recurring, start: int) -> str:
        if rec.level == "minute":
            return f"{rec.minute} * * * {rec.dow}"
        if rec.level == "hour":
            return f"{rec.minute} {rec.hour} * * {rec.dow}"
        times = rec.times or [_DEFAULT_TIME]
        hours = sorted({h for h, _ in times})
        minutes = sorted({m for _, m in times})
        if len(set(times)) != len(hours) * len(minutes):
            wanted = _and_list([_clock(h, m) for h, m in sorted(set(times))])
            raise self.error(
                f"One cron expression cannot run at {wanted}: hours and minutes are separate fields, so it "
                "would also run at every other combination of them; create one schedule per time",
                at=start,
            )
        return f"{','.join(map(str, minutes))} {','.join(map(str, hours))} {rec.dom} {rec.month} {rec.dow}"

    def on_clause(self, rec: _Recurring) -> bool:
        """An "on ..." clause filling ``rec.slot``: weekdays, days of the month, or a date in the year."""
        start = self.pos
        self.accept("on")
        if rec.slot in ("week", "filter"):
            days = self.dow_spec(plural_only=False)
            if days is not None:
                rec.dow = _dow_field(days)
                return True
        elif rec.slot == "month":
            nth = self.nth_weekday()
            if nth is not None:
                dow, which, _ = nth
                rec.dom, rec.dow = "*", f"{dow}{which}" if which == "L" else f"{dow}#{which}"
                return True
            doms = self.dom_list()
            if doms is not None:
                rec.dom = ",".join(doms)
                return True
        elif rec.slot == "year":
            day = self.month_day()
            if day is not None:
                rec.month, rec.dom = str(day[0]), str(day[1])
                return True
        self.pos = start
        return False

    def recurring_without_every(self) -> _Recurring | None:
        """``on the 1st and 15th``, ``[on] the last friday of the month``, ``mondays``, ``on weekdays``."""
        start = self.pos
        has_on = self.accept("on") is not None
        if self.date() is not None:  # "on the 5th of march" is a one-time date
            self.pos = start
            return None
        nth = self.nth_weekday()
        if nth is not None:
            dow, which, of_month = nth
            if has_on or of_month:
                return _Recurring("day", dow=f"{dow}{which}" if which == "L" else f"{dow}#{which}")
            self.pos = start  # a bare "last friday" is the one just gone, not a schedule
            return None
        doms = self.dom_list() if has_on else None
        if doms is not None:
            return _Recurring("day", dom=",".join(doms))
        days = self.dow_spec(plural_only=True)
        if days is not None:
            return _Recurring("day", dow=_dow_field(days))
        self.pos = start
        return None

    # -- words and phrases

    def count(self, *, allow_other: bool = True) -> int | None:
        word = self.peek()
        if word is None:
            return None
        if word.isdigit():
            value = int(word)
        elif word in _NUMBER_WORDS:
            value = _NUMBER_WORDS[word]
        elif word == "other" and allow_other:
            value = 2
        else:
            return None
        if value < 1:
            raise self.error("A count must be at least 1")
        self.pos += 1
        return value

    def weekday(self, *, plural_only: bool) -> int | None:
        word = self.peek()
        if word is None:
            return None
        if word in _DOW_NAMES:
            if plural_only:
                return None
            self.pos += 1
            return _DOW_NAMES[word]
        if word.endswith("s") and word[:-1] in _DOW_NAMES:  # mondays, fris
            self.pos += 1
            return _DOW_NAMES[word[:-1]]
        return None

    def dow_spec(self, *, plural_only: bool) -> set[int] | None:
        """``weekdays``, ``weekends``, or a list/range of weekday names."""
        if self.accept("weekdays") or (not plural_only and self.accept("weekday")):
            return set(_WEEKDAYS)
        if self.accept("weekends") or (not plural_only and self.accept("weekend")):
            return set(_WEEKEND)
        first = self.weekday(plural_only=plural_only)
        if first is None:
            return None
        days, last = {first}, first
        while True:
            save = self.pos
            if self.accept("through", "thru", "to", "until", "-"):
                end = self.weekday(plural_only=False)
                if end is None:
                    self.pos = save
                    break
                span = (end - last) % 7
                days.update((last + i) % 7 for i in range(span + 1))
                last = end
            elif self.accept("and", ",", "or"):
                self.accept("and")
                nxt = self.weekday(plural_only=False)
                if nxt is None:
                    self.pos = save
                    break
                days.add(nxt)
                last = nxt
            else:
                break
        return days

    def nth_weekday(self) -> tuple[int, str, bool] | None:
        """``[the] last friday [of the month]`` -> (5, "L", True); ``second tuesday`` -> (2, "2", False)."""
        start = self.pos
        self.accept("the")
        word = self.peek()
        which: str | None = None
        if word == "last":
            which = "L"
        elif word in _ORDINAL_WORDS:
            which = str(_ORDINAL_WORDS[word])
        elif word is not None and re.fullmatch(r"[1-5](st|nd|rd|th)", word):
            which = word[0]
        if which is not None:
            self.pos += 1
            dow = self.weekday(plural_only=False)
            if dow is not None:
                return dow, which, self.of_month()
        self.pos = start
        return None

    def of_month(self) -> bool:
        return any(
            self.accept_seq(*seq)
            for seq in (
                ("of", "the", "month"), ("of", "every", "month"), ("of", "each", "month"), ("of", "a", "month"),
                ("of", "month"), ("in", "the", "month"), ("every", "month"), ("each", "month"),
            )
        )  # fmt: skip

    def dom_number(self) -> int | None:
        word = self.peek()
        if word is None:
            return None
        match = _ORDINAL_RE.fullmatch(word)
        value = int(match[1]) if match else _ORDINAL_WORDS.get(word)
        if value is None or not 1 <= value <= 31:
            return None
        self.pos += 1
        return value

    def dom_list(self) -> list[str] | None:
        """``[the] 1st and 15th [of the month]``, ``the last day [of the month]``."""
        start = self.pos
        days: list[str] = []
        while True:
            save = self.pos
            if days and not self.accept("and", ","):
                break
            self.accept("and")
            self.accept("the")
            if self.accept_seq("last", "day"):
                days.append("L")
                continue
            value = self.dom_number()
            if value is None:
                self.pos = save
                break
            days.append(str(value))
        if not days:
            self.pos = start
            return None
        self.of_month()
        numbers = sorted({int(d) for d in days if d != "L"})
        return [str(d) for d in numbers] + (["L"] if "L" in days else [])

    def month_day(self) -> tuple[int, int] | None:
        """``january 1``, ``jan 1st``, ``1 january``, ``the 1st of january`` -> (month, day)."""
        start = self.pos
        self.accept("the")
        word = self.peek()
        if word is not None and word in _MONTH_NAMES:
            self.pos += 1
            day = self.dom_number()
            if day is not None:
                return self.checked_month_day(_MONTH_NAMES[word], day, start)
        else:
            day = self.dom_number()
            if day is not None:
                self.accept("of")
                word = self.peek()
                if word is not None and word in _MONTH_NAMES:
                    self.pos += 1
                    return self.checked_month_day(_MONTH_NAMES[word], day, start)
        self.pos = start
        return None

    def checked_month_day(self, month: int, day: int, start: int) -> tuple[int, int]:
        try:
            date(2000, month, day)  # a leap year: 29 February exists
        except ValueError:
            raise self.error(f"{_MONTH_TITLES[month]} {day} does not exist", at=start) from None
        return month, day

    def date(self) -> _Day | None:
        """``2027-01-05``, ``january 5[, 2027]``, ``5 january [2027]``, ``the 5th of january``."""
        start = self.pos
        word = self.peek()
        iso = _ISO_DATE_RE.fullmatch(word) if word else None
        if iso:
            self.pos += 1
            return self.dated(int(iso[1]), int(iso[2]), int(iso[3]), start)
        month_day = self.month_day()
        if month_day is None:
            return None
        save = self.pos
        self.accept(",")
        year = self.peek()
        if year is not None and _YEAR_RE.fullmatch(year):
            self.pos += 1
            return self.dated(int(year), *month_day, start)
        self.pos = save
        return _Day("yearless", month=month_day[0], dom=month_day[1])

    def dated(self, year: int, month: int, day: int, start: int) -> _Day:
        try:
            on = date(year, month, day)
        except ValueError:
            raise self.error(f"{year:04d}-{month:02d}-{day:02d} is not a valid date", at=start) from None
        if on > self.today + timedelta(days=_MAX_AHEAD_DAYS):
            raise self.error(_TOO_FAR, at=self.pos)
        return _Day("date", on=on)

    def time(self, *, strict: bool) -> tuple[int, int] | None:
        """A time of day; ``strict`` (no "at" before it) takes only unmistakable ones (9am, 14:00, noon)."""
        word = self.peek()
        if word is None:
            return None
        if word in ("noon", "midday", "midnight"):
            self.pos += 1
            return (0, 0) if word == "midnight" else (12, 0)
        match = _TIME_RE.fullmatch(word)
        if not match or (strict and not (match[2] or match[3])):
            return None
        hour, minute = int(match[1]), int(match[2] or 0)
        if match[3]:
            if not 1 <= hour <= 12:
                return None
            hour = hour % 12 + (12 if match[3] == "pm" else 0)
        if hour > 23 or minute > 59:
            return None
        self.pos += 1
        self.accept("o'clock", "oclock")
        return hour, minute

    def at_times(self) -> list[tuple[int, int]] | None:
        """``at 9am``, ``at 9am and 5pm``, or a bare unmistakable time."""
        start = self.pos
        has_at = self.accept("at") is not None
        first = self.time(strict=not has_at)
        if first is None:
            self.pos = start
            return None
        times = [first]
        while True:
            save = self.pos
            if not self.accept("and", ","):
                break
            self.accept("and")
            again = self.accept("at") is not None
            nxt = self.time(strict=not (has_at or again))
            if nxt is None:
                self.pos = save
                break
            times.append(nxt)
        return times

    def past_minute(self) -> int | None:
        """For hourly schedules: ``at :15``, ``at 15 past [the hour]``, ``at 15 minutes past``, ``on the hour``."""
        start = self.pos
        if self.accept_seq("on", "the", "hour"):
            return 0
        self.accept("at")
        word = self.peek() or ""
        mark = _MINUTE_MARK_RE.fullmatch(word)
        if mark and int(mark[1]) < 60:
            self.pos += 1
            return int(mark[1])
        value = {"quarter": 15, "half": 30}.get(word)
        minutes_named = value is None and word.isdigit() and int(word) < 60
        if minutes_named:
            value = int(word)
        if value is not None:
            self.pos += 1
            unit = minutes_named and self.accept(*_MINUTE_UNITS) is not None
            if self.accept("past", "after") or unit:
                self.accept_seq("the", "hour")
                return value
        self.pos = start
        return None

    # -- one-time

    def single(self, times: list[tuple[int, int]], start: int) -> tuple[int, int]:
        if len(times) != 1:
            raise self.error(
                "A one-time schedule runs once: give a single time (or say every day at ...)", at=start
            )
        return times[0]

    def one_time(self, preset: tuple[int, int] | None) -> ParsedSchedule:
        start = self.pos
        if preset is None and self.peek() == "in":
            return self.relative()
        day = self.day() if preset is None or not self.at_end() else None
        if day is None and preset is None:
            raise self.error(at=start)
        clock = preset
        if clock is None:
            times = self.at_times()
            clock = self.single(times, start) if times is not None else None
        return self.moment(day, clock or _DEFAULT_TIME, start)

    def day(self) -> _Day | None:
        """``today``, ``tomorrow``, ``next tuesday``, ``[this|on] tuesday``, ``[on] <date>``."""
        start = self.pos
        if self.accept("today", "tonight"):
            return _Day("date", on=self.today)
        if self.accept("tomorrow"):
            return _Day("date", on=self.today + timedelta(days=1))
        if self.accept("next"):
            dow = self.weekday(plural_only=False)
            if dow is not None:
                ahead = ((dow - 1) % 7 - self.today.weekday() - 1) % 7 + 1
                return _Day("date", on=self.today + timedelta(days=ahead))
            self.pos = start
            return None
        self.accept("this", "on")
        dow = self.weekday(plural_only=False)
        if dow is not None:
            return _Day("upcoming", dow=dow)
        found = self.date()
        if found is None:
            self.pos = start
        return found

    def moment(self, day: _Day | None, clock: tuple[int, int], start: int) -> ParsedSchedule:
        hour, minute = clock
        if day is None:  # "at 5pm": today if still ahead, else tomorrow
            candidates = [self.today, self.today + timedelta(days=1)]
        elif day.kind == "date":
            assert day.on is not None
            candidates = [day.on]
        elif day.kind == "upcoming":  # today (if the time is still ahead) or within the week
            week = [self.today + timedelta(days=i) for i in range(8)]
            candidates = [d for d in week if (d.weekday() + 1) % 7 == day.dow]
        else:
            candidates = []
            for year in range(self.today.year, self.today.year + 9):
                try:
                    candidates.append(date(year, day.month, day.dom))
                except ValueError:
                    continue
        run_at: datetime | None = None
        for candidate in candidates:
            run_at = _localize(
                datetime(candidate.year, candidate.month, candidate.day, hour, minute), self.zone
            )
            if run_at > self.now:
                return self.once(run_at)
        assert run_at is not None
        raise self.error(
            f"{run_at.date().isoformat()} at {_clock(run_at.hour, run_at.minute)} ({self.zone_name}) is "
            f"already past (it is now {self.today.isoformat()} {_clock(self.now.hour, self.now.minute)})",
            at=self.pos,
        )

    def relative(self) -> ParsedSchedule:
        """``in 30 minutes``, ``in 2 hours``, ``in an hour and a half``, ``in 3 days [at 9am]``."""
        start = self.pos
        self.pos += 1  # "in"
        first = self.quantity(first=True)
        if first is None:
            raise self.error(at=start)
        elapsed, days = first
        while True:
            save = self.pos
            if not self.accept("and", ","):
                break
            self.accept("and")
            more = self.quantity(first=False)
            if more is None:
                self.pos = save
                break
            elapsed, days = elapsed + more[0], days + more[1]
        if days + elapsed.days > _MAX_AHEAD_DAYS:
            raise self.error(_TOO_FAR, at=self.pos)
        times = self.at_times() if days and not elapsed else None
        wall = self.now.replace(tzinfo=None) + timedelta(days=days)
        if times is not None:
            hour, minute = self.single(times, start)
            wall = wall.replace(hour=hour, minute=minute, second=0, microsecond=0)
        base = _localize(wall, self.zone) if days else self.now
        run_at = (base.astimezone(UTC) + elapsed).astimezone(self.zone)
        if run_at <= self.now:
            raise self.error("A one-time schedule must be in the future", at=self.pos)
        return self.once(run_at)

    def quantity(self, *, first: bool) -> tuple[timedelta, int] | None:
        """One ``<count> <unit>`` of a relative time: (elapsed time, calendar days)."""
        start = self.pos
        if self.accept_seq("half", "an", "hour") or self.accept_seq("half", "a", "hour"):
            return timedelta(minutes=30), 0
        if not first and self.accept_seq("a", "half"):  # "an hour and a half"
            return timedelta(minutes=30), 0
        count = 1 if self.accept("a", "an") else self.count(allow_other=False)
        word = self.peek()
        if count is not None and count > _MAX_COUNT:
            raise self.error(_TOO_FAR, at=start)
        if count is None or word is None:
            self.pos = start
            return None
        for units, seconds, days in _RELATIVE_UNITS:
            if word in units:
                self.pos += 1
                return timedelta(seconds=count * seconds), count * days
        self.pos = start
        return None

    def once(self, run_at: datetime) -> ParsedSchedule:
        when = f"{run_at.date().isoformat()} at {_clock(run_at.hour, run_at.minute)}"
        return ParsedSchedule("one_time", None, run_at, f"Once on {when} ({self.zone_name})")


def parse_schedule(text: str, *, timezone: str = "UTC", now: datetime | None = None) -> ParsedSchedule:
    """Turn schedule text into cron (recurring) or an aware ``run_at`` in ``timezone`` (one-time).

    ``now`` (default: the current time) anchors one-time phrases; an aware ``now`` is converted to
    ``timezone``, a naive one is read as wall time there. Raises :class:`ScheduleParseError` (a
    ``ValueError``) saying what was understood and what was not, and ``ValueError`` for an unknown zone.

    >>> parse_schedule("every monday at 2:30pm").cron_expression
    '30 14 * * 1'
    >>> parse_schedule("every last friday of the month at 4pm").cron_expression
    '0 16 * * 5L'
    """
    zone = _zone(timezone)
    current = datetime.now(zone) if now is None else _in_zone(now, zone)
    return _Parser(_tokenize(text), zone, timezone, current).parse()
