"""Natural-language schedules: text -> cron or run_at, cron in words, next runs across DST, cron validation."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from cronsim import CronSim

from herald.core.natural import (
    ParsedSchedule,
    ScheduleParseError,
    describe_cron,
    next_runs,
    parse_schedule,
    validate_cron,
)

LONDON = ZoneInfo("Europe/London")
NEW_YORK = ZoneInfo("America/New_York")
# Tuesday 24 November 2026, 10:00 local (London is on GMT, New York on EST).
NOW_LONDON = datetime(2026, 11, 24, 10, 0, tzinfo=LONDON)
NOW_NEW_YORK = datetime(2026, 11, 24, 10, 0, tzinfo=NEW_YORK)


def cron_of(text: str) -> str | None:
    return parse_schedule(text, timezone="Europe/London", now=NOW_LONDON).cron_expression


# -- recurring: the seed table ----------------------------------------------------------------------------

SEED = [
    ("every day at 9am", "0 9 * * *", "Daily at 9:00 AM"),
    ("every monday at 2:30pm", "30 14 * * 1", "Weekly on Monday at 2:30 PM"),
    ("hourly", "0 * * * *", "Every hour"),
    ("daily", "0 9 * * *", "Daily at 9:00 AM"),
    ("weekly", "0 9 * * 1", "Weekly on Monday at 9:00 AM"),
    ("monthly", "0 9 1 * *", "Monthly on 1st at 9:00 AM"),
    ("every 6 hours", "0 */6 * * *", "Every 6 hours"),
    ("every friday at 5pm", "0 17 * * 5", "Fridays at 5:00 PM"),
]


@pytest.mark.parametrize(("text", "cron", "description"), SEED)
def test_seed_table(text: str, cron: str, description: str) -> None:
    parsed = parse_schedule(text, timezone="Europe/London", now=NOW_LONDON)
    assert parsed == ParsedSchedule("recurring", cron, None, description)


@pytest.mark.parametrize(("text", "cron", "description"), SEED)
def test_seed_descriptions_come_from_describe_cron(text: str, cron: str, description: str) -> None:
    assert describe_cron(cron) == description


# -- recurring: more mappings -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "cron"),
    [
        ("every weekday at 8:30am", "30 8 * * 1-5"),
        ("every 15 minutes", "*/15 * * * *"),
        ("every 2 hours", "0 */2 * * *"),
        ("every monday and thursday at 10", "0 10 * * 1,4"),
        ("on the 1st and 15th at noon", "0 12 1,15 * *"),
        ("every weekend at 10am", "0 10 * * 0,6"),
        ("every day at midnight", "0 0 * * *"),
        ("every minute", "* * * * *"),
        ("every hour at :15", "15 * * * *"),
        ("every hour at 15 past", "15 * * * *"),
        ("every hour at 15 minutes past the hour", "15 * * * *"),
        ("every hour at quarter past", "15 * * * *"),
        ("every month on the 5th at 9:15", "15 9 5 * *"),
        ("every year on january 1 at 9am", "0 9 1 1 *"),
        ("every year on the 4th of july at noon", "0 12 4 7 *"),
        ("every 30 minutes", "*/30 * * * *"),
        ("every half hour", "*/30 * * * *"),
        ("every other hour", "0 */2 * * *"),
        ("every 2 hours at :30", "30 */2 * * *"),
        ("every hour on weekdays", "0 * * * 1-5"),
        ("every 3 months", "0 9 1 */3 *"),
        ("every week on friday at 4pm", "0 16 * * 5"),
        ("weekly on friday", "0 9 * * 5"),
        ("monthly on the 15th", "0 9 15 * *"),
        ("daily at 8am", "0 8 * * *"),
        ("hourly at :45", "45 * * * *"),
        # 24-hour clock, noon/midnight, am/pm with and without a space
        ("every day at 14:00", "0 14 * * *"),
        ("every day at 17", "0 17 * * *"),
        ("every day at 0:05", "5 0 * * *"),
        ("every day at noon", "0 12 * * *"),
        ("every day at 12am", "0 0 * * *"),
        ("every day at 12pm", "0 12 * * *"),
        ("every day at 9 am", "0 9 * * *"),
        ("every day at 9 a.m.", "0 9 * * *"),
        ("every day at 5 PM", "0 17 * * *"),
        ("every day at 7 o'clock", "0 7 * * *"),
        ("every day 9am", "0 9 * * *"),
        # case, spacing, trailing punctuation
        ("Every Monday At 2:30PM", "30 14 * * 1"),
        ("  every   monday    at  2:30pm  ", "30 14 * * 1"),
        ("every monday at 2:30pm.", "30 14 * * 1"),
        ("Every day at noon!", "0 12 * * *"),
        ("daily?", "0 9 * * *"),
        # lists and ranges of days
        ("every monday, wednesday, and friday at 6pm", "0 18 * * 1,3,5"),
        ("every mon-fri at 7:45", "45 7 * * 1-5"),
        ("every monday through friday at 7:45", "45 7 * * 1-5"),
        ("every friday to monday at 8", "0 8 * * 0,1,5,6"),
        ("every mon & wed at 9", "0 9 * * 1,3"),
        ("every sunday at 10", "0 10 * * 0"),
        ("every thurs at 9", "0 9 * * 4"),
        ("mondays at 9am", "0 9 * * 1"),
        ("on weekdays at 8", "0 8 * * 1-5"),
        ("weekends at 11am", "0 11 * * 0,6"),
        # time first, several times
        ("at 9am every weekday", "0 9 * * 1-5"),
        ("at 6pm on fridays", "0 18 * * 5"),
        ("every day at 9am and 5pm", "0 9,17 * * *"),
        ("every day at 9:00 and 9:30", "0,30 9 * * *"),
        # days of the month
        ("every month on the last day at 6pm", "0 18 L * *"),
        ("on the last day of the month at 6pm", "0 18 L * *"),
        ("every 1st of the month at 8am", "0 8 1 * *"),
        ("every second tuesday of the month", "0 9 * * 2#2"),
        ("on the first monday of the month at 10am", "0 10 * * 1#1"),
    ],
)
def test_recurring_mappings(text: str, cron: str) -> None:
    parsed = parse_schedule(text, timezone="Europe/London", now=NOW_LONDON)
    assert parsed.kind == "recurring"
    assert parsed.cron_expression == cron
    assert parsed.run_at is None
    assert parsed.description == describe_cron(cron)
    validate_cron(cron)


# -- the last <weekday> of the month ----------------------------------------------------------------------


def test_last_friday_of_the_month_uses_the_cronsim_l_extension() -> None:
    parsed = parse_schedule("every last friday of the month at 4pm", timezone="Europe/London", now=NOW_LONDON)
    assert parsed.cron_expression == "0 16 * * 5L"
    assert parsed.description == "Monthly on the last Friday at 4:00 PM"
    runs = next_runs("0 16 * * 5L", timezone="Europe/London", after=datetime(2026, 1, 1, tzinfo=UTC), count=6)
    assert [r.date().isoformat() for r in runs] == [
        "2026-01-30", "2026-02-27", "2026-03-27", "2026-04-24", "2026-05-29", "2026-06-26",
    ]  # fmt: skip
    assert all(r.hour == 16 and r.weekday() == 4 and (r + timedelta(days=7)).month != r.month for r in runs)


@pytest.mark.parametrize(
    "text",
    [
        "every last friday of the month at 4pm",
        "every last friday at 4pm",
        "on the last friday of the month at 4pm",
        "every month on the last friday at 16:00",
        "the last friday of every month at 4pm",
    ],
)
def test_last_friday_phrasings(text: str) -> None:
    assert cron_of(text) == "0 16 * * 5L"


def test_standard_cron_range_trick_would_be_wrong() -> None:
    """Why 5L: "0 16 25-31 * 5" ORs day-of-month and day-of-week, so it also fires on every Friday."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    runs = CronSim("0 16 25-31 * 5", start)
    first = [next(runs) for _ in range(4)]
    assert first[0].date().isoformat() == "2026-01-02"  # a Friday that is not the last one


def test_every_second_tuesday_without_of_the_month_is_ambiguous() -> None:
    with pytest.raises(ScheduleParseError) as info:
        cron_of("every second tuesday")
    assert "ambiguous" in str(info.value)
    assert "of the month" in str(info.value)


# -- recurring: what cron cannot express ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("every 45 minutes", "divide 60"),
        ("every 7 minutes", "divide 60"),
        ("every 5 hours", "divide 24"),
        ("every 2 days", "Cron cannot repeat every 2 days"),
        ("every other day", "Cron cannot repeat every 2 days"),
        ("every 2 weeks", "Cron cannot repeat every 2 weeks"),
        ("every 5 months", "divide 12"),
        ("every 2 years", "no year field"),
        ("every 10 seconds", "seconds cannot be scheduled"),
        ("every 0 minutes", "at least 1"),
        ("every day at 9:15am and 5:45pm", "one schedule per time"),
        ("at 9am every 15 minutes", "cannot be combined"),
    ],
)
def test_what_cron_cannot_express_is_refused_with_a_reason(text: str, says: str) -> None:
    with pytest.raises(ScheduleParseError) as info:
        cron_of(text)
    assert info.value.reason is not None
    assert says in info.value.reason
    assert says in str(info.value)


# -- unparseable text -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "understood", "not_understood"),
    [
        ("every monday at quarter past the hour of doom", "every monday", "at quarter past the hour of doom"),
        ("every blue moon", "every", "blue moon"),
        ("sometimes at 3", "", "sometimes at 3"),
        ("", "", ""),
        ("   ", "", ""),
        ("every 15 blue moons", "every 15", "blue moons"),
        ("every hour at 9am", "every hour", "at 9am"),
        ("every weekday at 25:00", "every weekday", "at 25:00"),
        ("every day at 13pm", "every day", "at 13pm"),
        ("tomorrow at teatime", "tomorrow", "at teatime"),
        ("next fortnight", "", "next fortnight"),
        ("in a while", "", "in a while"),
        ("every day at 9am please", "every day at 9am", "please"),
    ],
)
def test_unparseable_text_says_what_was_and_was_not_understood(
    text: str, understood: str, not_understood: str
) -> None:
    with pytest.raises(ScheduleParseError) as info:
        parse_schedule(text, timezone="Europe/London", now=NOW_LONDON)
    exc = info.value
    assert isinstance(exc, ValueError)
    assert (exc.understood, exc.not_understood) == (understood, not_understood)
    message = str(exc)
    if understood:
        assert f'understood "{understood}"' in message
    if not_understood:
        assert f'"{not_understood}"' in message
    if not text.strip():
        assert "empty" in message


def test_parse_error_message_names_both_parts() -> None:
    with pytest.raises(ScheduleParseError) as info:
        parse_schedule("every monday at quarter past the hour of doom")
    assert str(info.value).startswith(
        'Could not understand the schedule "every monday at quarter past the hour of doom": '
        'understood "every monday", but not "at quarter past the hour of doom".'
    )


def test_parse_error_survives_pickling() -> None:
    with pytest.raises(ScheduleParseError) as info:
        parse_schedule("every blue moon")
    copy = pickle.loads(pickle.dumps(info.value))  # noqa: S301 - our own object
    assert (copy.understood, copy.not_understood, str(copy)) == ("every", "blue moon", str(info.value))


def test_unknown_time_zone_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="unknown IANA time zone"):
        parse_schedule("every day at 9am", timezone="Mars/Olympus_Mons")


# -- one-time ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "timezone", "now", "expected"),
    [
        ("tomorrow at 3pm", "Europe/London", NOW_LONDON, "2026-11-25T15:00:00+00:00"),
        ("tomorrow at 3pm", "America/New_York", NOW_NEW_YORK, "2026-11-25T15:00:00-05:00"),
        ("tomorrow", "Europe/London", NOW_LONDON, "2026-11-25T09:00:00+00:00"),
        ("in 2 hours", "Europe/London", NOW_LONDON, "2026-11-24T12:00:00+00:00"),
        ("in 2 hours", "America/New_York", NOW_NEW_YORK, "2026-11-24T12:00:00-05:00"),
        ("in 30 minutes", "Europe/London", NOW_LONDON, "2026-11-24T10:30:00+00:00"),
        ("in 30 minutes", "America/New_York", NOW_NEW_YORK, "2026-11-24T10:30:00-05:00"),
        ("in 3 days", "Europe/London", NOW_LONDON, "2026-11-27T10:00:00+00:00"),
        ("in 3 days", "America/New_York", NOW_NEW_YORK, "2026-11-27T10:00:00-05:00"),
        ("in 3 days at 9am", "Europe/London", NOW_LONDON, "2026-11-27T09:00:00+00:00"),
        ("in 1 week", "Europe/London", NOW_LONDON, "2026-12-01T10:00:00+00:00"),
        ("in an hour", "Europe/London", NOW_LONDON, "2026-11-24T11:00:00+00:00"),
        ("in half an hour", "Europe/London", NOW_LONDON, "2026-11-24T10:30:00+00:00"),
        ("in an hour and a half", "Europe/London", NOW_LONDON, "2026-11-24T11:30:00+00:00"),
        ("in 1 hour and 15 minutes", "Europe/London", NOW_LONDON, "2026-11-24T11:15:00+00:00"),
        ("in two hours", "Europe/London", NOW_LONDON, "2026-11-24T12:00:00+00:00"),
        # 24 November 2026 is a Tuesday: "next tuesday" is the one after today.
        ("next tuesday at 9am", "Europe/London", NOW_LONDON, "2026-12-01T09:00:00+00:00"),
        ("next tuesday at 9am", "America/New_York", NOW_NEW_YORK, "2026-12-01T09:00:00-05:00"),
        ("next wednesday at 9am", "Europe/London", NOW_LONDON, "2026-11-25T09:00:00+00:00"),
        ("next monday", "Europe/London", NOW_LONDON, "2026-11-30T09:00:00+00:00"),
        ("tuesday at 11am", "Europe/London", NOW_LONDON, "2026-11-24T11:00:00+00:00"),
        ("tuesday at 9am", "Europe/London", NOW_LONDON, "2026-12-01T09:00:00+00:00"),
        ("this friday at 5pm", "Europe/London", NOW_LONDON, "2026-11-27T17:00:00+00:00"),
        ("on friday at 5pm", "Europe/London", NOW_LONDON, "2026-11-27T17:00:00+00:00"),
        ("on 2027-01-05 at 14:00", "Europe/London", NOW_LONDON, "2027-01-05T14:00:00+00:00"),
        ("on 2027-01-05 at 14:00", "America/New_York", NOW_NEW_YORK, "2027-01-05T14:00:00-05:00"),
        ("on 2027-07-05 at 14:00", "Europe/London", NOW_LONDON, "2027-07-05T14:00:00+01:00"),
        ("2027-01-05 at 2pm", "Europe/London", NOW_LONDON, "2027-01-05T14:00:00+00:00"),
        ("on january 5 at 8", "Europe/London", NOW_LONDON, "2027-01-05T08:00:00+00:00"),
        ("on 5th march 2027 at 10pm", "Europe/London", NOW_LONDON, "2027-03-05T22:00:00+00:00"),
        ("on december 25 at noon", "Europe/London", NOW_LONDON, "2026-12-25T12:00:00+00:00"),
        ("at 5pm", "Europe/London", NOW_LONDON, "2026-11-24T17:00:00+00:00"),
        ("at 5pm", "America/New_York", NOW_NEW_YORK, "2026-11-24T17:00:00-05:00"),
        ("at 9am", "Europe/London", NOW_LONDON, "2026-11-25T09:00:00+00:00"),
        ("at 10am", "Europe/London", NOW_LONDON, "2026-11-25T10:00:00+00:00"),  # not strictly ahead
        ("at 3pm tomorrow", "Europe/London", NOW_LONDON, "2026-11-25T15:00:00+00:00"),
        ("today at 6pm", "Europe/London", NOW_LONDON, "2026-11-24T18:00:00+00:00"),
        ("today at 6pm", "America/New_York", NOW_NEW_YORK, "2026-11-24T18:00:00-05:00"),
        ("Tomorrow at 3 PM.", "Europe/London", NOW_LONDON, "2026-11-25T15:00:00+00:00"),
    ],
)
def test_one_time(text: str, timezone: str, now: datetime, expected: str) -> None:
    parsed = parse_schedule(text, timezone=timezone, now=now)
    assert parsed.kind == "one_time"
    assert parsed.cron_expression is None
    assert parsed.run_at is not None
    assert parsed.run_at.isoformat() == expected
    assert parsed.run_at.tzinfo == ZoneInfo(timezone)
    assert parsed.run_at > now


def test_one_time_description() -> None:
    parsed = parse_schedule("on 2027-01-05 at 14:00", timezone="Europe/London", now=NOW_LONDON)
    assert parsed.description == "Once on 2027-01-05 at 2:00 PM (Europe/London)"
    parsed = parse_schedule("tomorrow at 9am", timezone="America/New_York", now=NOW_NEW_YORK)
    assert parsed.description == "Once on 2026-11-25 at 9:00 AM (America/New_York)"


def test_now_in_another_zone_is_converted() -> None:
    """15:00 UTC is 10:00 in New York: "at 11am" is still today there."""
    parsed = parse_schedule(
        "at 11am", timezone="America/New_York", now=datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
    )
    assert parsed.run_at is not None
    assert parsed.run_at.isoformat() == "2026-11-24T11:00:00-05:00"


def test_naive_now_is_wall_time_in_the_zone() -> None:
    parsed = parse_schedule("in 2 hours", timezone="America/New_York", now=datetime(2026, 11, 24, 10, 0))
    assert parsed.run_at is not None
    assert parsed.run_at.isoformat() == "2026-11-24T12:00:00-05:00"


def test_now_defaults_to_the_current_time() -> None:
    before = datetime.now(UTC)
    parsed = parse_schedule("in 2 hours", timezone="Asia/Tokyo")
    assert parsed.run_at is not None
    assert parsed.run_at.utcoffset() == timedelta(hours=9)
    assert before + timedelta(hours=2) <= parsed.run_at <= datetime.now(UTC) + timedelta(hours=2)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("today at 9am", "already past"),
        ("on 2020-01-01 at 9am", "already past"),
        ("on 2027-02-30", "not a valid date"),
        ("on february 30", "does not exist"),
        ("tomorrow at 9am and 5pm", "single time"),
        ("in 0 minutes", "at least 1"),
        ("in 999999999999 days", "too far ahead"),
    ],
)
def test_one_time_refusals(text: str, says: str) -> None:
    with pytest.raises(ScheduleParseError) as info:
        parse_schedule(text, timezone="Europe/London", now=NOW_LONDON)
    assert says in str(info.value)


def test_past_one_time_was_understood() -> None:
    with pytest.raises(ScheduleParseError) as info:
        parse_schedule("today at 9am", timezone="Europe/London", now=NOW_LONDON)
    assert (info.value.understood, info.value.not_understood) == ("today at 9am", "")


# -- one-time across DST ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "timezone", "now", "expected"),
    [
        # New York springs forward 02:00 -> 03:00 on 2026-03-08: 02:30 does not exist, the first valid moment is 03:00.
        ("tomorrow at 2:30am", "America/New_York", datetime(2026, 3, 7, 10, tzinfo=NEW_YORK), "2026-03-08T03:00:00-04:00"),
        # ... and falls back on 2026-11-01: 01:30 happens twice, the first one (EDT) is meant.
        ("tomorrow at 1:30am", "America/New_York", datetime(2026, 10, 31, 10, tzinfo=NEW_YORK), "2026-11-01T01:30:00-04:00"),
        # London springs forward 01:00 -> 02:00 on 2026-03-29 and falls back on 2026-10-25.
        ("tomorrow at 1:30am", "Europe/London", datetime(2026, 3, 28, 10, tzinfo=LONDON), "2026-03-29T02:00:00+01:00"),
        ("tomorrow at 1:30am", "Europe/London", datetime(2026, 10, 24, 10, tzinfo=LONDON), "2026-10-25T01:30:00+01:00"),
        # "in N hours" is elapsed time; "in N days" keeps the wall-clock time.
        ("in 5 hours", "America/New_York", datetime(2026, 3, 7, 23, tzinfo=NEW_YORK), "2026-03-08T05:00:00-04:00"),
        ("in 1 day", "America/New_York", datetime(2026, 3, 7, 10, tzinfo=NEW_YORK), "2026-03-08T10:00:00-04:00"),
        ("in 24 hours", "America/New_York", datetime(2026, 3, 7, 10, tzinfo=NEW_YORK), "2026-03-08T11:00:00-04:00"),
    ],
)  # fmt: skip
def test_one_time_across_dst(text: str, timezone: str, now: datetime, expected: str) -> None:
    parsed = parse_schedule(text, timezone=timezone, now=now)
    assert parsed.run_at is not None
    assert parsed.run_at.isoformat() == expected


# -- describe_cron ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cron", "description"),
    [
        ("0 9 * * *", "Daily at 9:00 AM"),
        ("30 14 * * 1", "Weekly on Monday at 2:30 PM"),
        ("0 * * * *", "Every hour"),
        ("0 9 * * 1", "Weekly on Monday at 9:00 AM"),
        ("0 9 1 * *", "Monthly on 1st at 9:00 AM"),
        ("0 */6 * * *", "Every 6 hours"),
        ("0 17 * * 5", "Fridays at 5:00 PM"),
        ("0 17 * * 4", "Weekly on Thursday at 5:00 PM"),
        ("30 8 * * 1-5", "Weekdays at 8:30 AM"),
        ("0 10 * * 0,6", "Weekends at 10:00 AM"),
        ("0 10 * * 1,4", "Weekly on Monday and Thursday at 10:00 AM"),
        ("0 9 * * 0-6", "Daily at 9:00 AM"),
        ("0 9 * * 7", "Weekly on Sunday at 9:00 AM"),
        ("0 12 1,15 * *", "Monthly on 1st and 15th at 12:00 PM"),
        ("15 9 22 * *", "Monthly on 22nd at 9:15 AM"),
        ("0 18 L * *", "Monthly on the last day at 6:00 PM"),
        ("0 16 * * 5L", "Monthly on the last Friday at 4:00 PM"),
        ("0 9 * * 2#2", "Monthly on the second Tuesday at 9:00 AM"),
        ("0 9 1 1 *", "Yearly on January 1st at 9:00 AM"),
        ("0 0 * * *", "Daily at 12:00 AM"),
        ("0 9,17 * * *", "Daily at 9:00 AM and 5:00 PM"),
        ("* * * * *", "Every minute"),
        ("*/15 * * * *", "Every 15 minutes"),
        ("15 * * * *", "Every hour at :15"),
        ("30 */2 * * *", "Every 2 hours at :30"),
        ("0  9  *  *  *", "Daily at 9:00 AM"),
        # anything else: cron_descriptor, 12-hour clock, not verbose
        ("*/10 9-17 * * 1-5", "Every 10 minutes, between 09:00 AM and 05:59 PM, Monday through Friday"),
        ("0 9 1 */3 *", "At 09:00 AM, on day 1 of the month, every 3 months"),
        ("0 9 * 1 *", "At 09:00 AM, only in January"),
        ("*/7 * * * *", "Every 7 minutes"),
    ],
)
def test_describe_cron(cron: str, description: str) -> None:
    assert describe_cron(cron) == description


def test_describe_cron_rejects_invalid() -> None:
    with pytest.raises(ValueError, match="invalid cron expression"):
        describe_cron("61 * * * *")


# -- next_runs and DST ------------------------------------------------------------------------------------


def iso(runs: list[datetime]) -> list[str]:
    return [r.isoformat() for r in runs]


def test_next_runs_basic() -> None:
    runs = next_runs("30 14 * * 1", timezone="Europe/London", after=NOW_LONDON, count=3)
    assert iso(runs) == [
        "2026-11-30T14:30:00+00:00",
        "2026-12-07T14:30:00+00:00",
        "2026-12-14T14:30:00+00:00",
    ]
    assert all(r.tzinfo == LONDON and r.utcoffset() is not None for r in runs)


def test_next_runs_is_strictly_after() -> None:
    at_nine = datetime(2026, 11, 24, 9, 0, tzinfo=LONDON)
    assert iso(next_runs("0 9 * * *", timezone="Europe/London", after=at_nine, count=1)) == [
        "2026-11-25T09:00:00+00:00"
    ]


def test_next_runs_converts_after_into_the_zone() -> None:
    after = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)  # 10:00 in New York
    runs = next_runs("0 11 * * *", timezone="America/New_York", after=after, count=2)
    assert iso(runs) == ["2026-11-24T11:00:00-05:00", "2026-11-25T11:00:00-05:00"]


def test_next_runs_default_count_and_zero() -> None:
    assert len(next_runs("* * * * *", timezone="UTC", after=NOW_LONDON)) == 5
    assert next_runs("* * * * *", timezone="UTC", after=NOW_LONDON, count=0) == []
    with pytest.raises(ValueError, match="negative"):
        next_runs("* * * * *", timezone="UTC", after=NOW_LONDON, count=-1)


def test_new_york_spring_forward_runs_the_missing_time_at_three() -> None:
    runs = next_runs(
        "30 2 * * *", timezone="America/New_York", after=datetime(2026, 3, 6, 12, tzinfo=NEW_YORK), count=4
    )
    assert iso(runs) == [
        "2026-03-07T02:30:00-05:00",
        "2026-03-08T03:00:00-04:00",  # 02:30 does not exist that night
        "2026-03-09T02:30:00-04:00",
        "2026-03-10T02:30:00-04:00",
    ]


def test_new_york_fall_back_runs_the_repeated_time_once() -> None:
    runs = next_runs(
        "30 1 * * *", timezone="America/New_York", after=datetime(2026, 10, 31, 12, tzinfo=NEW_YORK), count=3
    )
    assert iso(runs) == [
        "2026-11-01T01:30:00-04:00",  # the first 01:30 (EDT); the second (EST) is skipped
        "2026-11-02T01:30:00-05:00",
        "2026-11-03T01:30:00-05:00",
    ]


def test_london_spring_forward_runs_the_missing_time_at_two() -> None:
    runs = next_runs(
        "30 1 * * *", timezone="Europe/London", after=datetime(2026, 3, 28, 12, tzinfo=LONDON), count=3
    )
    assert iso(runs) == [
        "2026-03-29T02:00:00+01:00",  # 01:00 -> 02:00: 01:30 does not exist
        "2026-03-30T01:30:00+01:00",
        "2026-03-31T01:30:00+01:00",
    ]


def test_london_fall_back_runs_the_repeated_time_once() -> None:
    runs = next_runs(
        "30 1 * * *", timezone="Europe/London", after=datetime(2026, 10, 24, 12, tzinfo=LONDON), count=3
    )
    assert iso(runs) == [
        "2026-10-25T01:30:00+01:00",  # the first 01:30 (BST); the second (GMT) is skipped
        "2026-10-26T01:30:00+00:00",
        "2026-10-27T01:30:00+00:00",
    ]


def test_interval_jobs_follow_elapsed_time_through_the_repeated_hour() -> None:
    runs = next_runs(
        "*/30 * * * *",
        timezone="America/New_York",
        after=datetime(2026, 11, 1, 0, 45, tzinfo=NEW_YORK),
        count=4,
    )
    assert iso(runs) == [
        "2026-11-01T01:00:00-04:00",
        "2026-11-01T01:30:00-04:00",
        "2026-11-01T01:00:00-05:00",
        "2026-11-01T01:30:00-05:00",
    ]


def test_next_runs_accepts_naive_after_as_wall_time() -> None:
    runs = next_runs("0 9 * * *", timezone="America/New_York", after=datetime(2026, 11, 24, 8, 0), count=1)
    assert iso(runs) == ["2026-11-24T09:00:00-05:00"]


def test_next_runs_unknown_zone() -> None:
    with pytest.raises(ValueError, match="unknown IANA time zone"):
        next_runs("0 9 * * *", timezone="Nowhere/Special", after=NOW_LONDON)


# -- validate_cron ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cron",
    [
        "0 9 * * *",
        "*/15 * * * *",
        "0 9-17 * * 1-5",
        "0 16 * * 5L",
        "0 9 L * *",
        "0 9 * * 2#2",
        "0 9 * * MON",
        "0 0 1 JAN *",
    ],
)
def test_validate_cron_accepts(cron: str) -> None:
    validate_cron(cron)


@pytest.mark.parametrize(
    ("cron", "says"),
    [
        ("", "expected 5 fields"),
        ("* * * *", "expected 5 fields"),
        ("0 0 9 * * *", "expected 5 fields"),
        ("60 * * * *", "bad minute"),
        ("0 24 * * *", "bad hour"),
        ("0 0 32 * *", "bad day-of-month"),
        ("0 0 30 2 *", "bad day-of-month"),
        ("0 0 * 13 *", "bad month"),
        ("0 0 * * 8", "bad day-of-week"),
        ("*/0 * * * *", "bad minute"),
        ("every day", "expected 5 fields"),
        ("a b c d e", "bad minute"),
    ],
)
def test_validate_cron_rejects_with_a_clear_message(cron: str, says: str) -> None:
    with pytest.raises(ValueError, match="invalid cron expression") as info:
        validate_cron(cron)
    assert says in str(info.value)


def test_next_runs_rejects_invalid_cron() -> None:
    with pytest.raises(ValueError, match="bad hour"):
        next_runs("0 25 * * *", timezone="UTC", after=NOW_LONDON)
