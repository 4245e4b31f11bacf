"""Period maths: month ends, quarters, leap years, working days, time zones and DST."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from rhythm_checkins.domain.periods import (
    Period,
    UnknownTimeZone,
    due_at,
    is_working_day,
    last_working_day,
    local_instant,
    next_period,
    period_containing,
    previous_period,
)
from rhythm_shared.contracts.v1.values import Frequency


@pytest.mark.parametrize(
    ("day", "start", "end"),
    [
        (date(2026, 1, 31), date(2026, 1, 1), date(2026, 1, 31)),
        (date(2026, 2, 14), date(2026, 2, 1), date(2026, 2, 28)),
        (date(2028, 2, 29), date(2028, 2, 1), date(2028, 2, 29)),
        (date(2026, 4, 1), date(2026, 4, 1), date(2026, 4, 30)),
        (date(2026, 12, 31), date(2026, 12, 1), date(2026, 12, 31)),
    ],
)
def test_a_month_runs_from_its_first_to_its_last_day(day: date, start: date, end: date) -> None:
    assert period_containing(Frequency.MONTHLY, day) == Period(start, end)


def test_february_has_29_days_in_a_leap_year_only() -> None:
    assert period_containing(Frequency.MONTHLY, date(2024, 2, 10)).end == date(2024, 2, 29)
    assert period_containing(Frequency.MONTHLY, date(2100, 2, 10)).end == date(2100, 2, 28)
    assert period_containing(Frequency.MONTHLY, date(2000, 2, 10)).end == date(2000, 2, 29)


@pytest.mark.parametrize(
    ("day", "start", "end"),
    [
        (date(2026, 1, 1), date(2026, 1, 1), date(2026, 3, 31)),
        (date(2026, 3, 31), date(2026, 1, 1), date(2026, 3, 31)),
        (date(2026, 4, 1), date(2026, 4, 1), date(2026, 6, 30)),
        (date(2026, 9, 30), date(2026, 7, 1), date(2026, 9, 30)),
        (date(2026, 11, 15), date(2026, 10, 1), date(2026, 12, 31)),
    ],
)
def test_quarters_are_calendar_quarters(day: date, start: date, end: date) -> None:
    assert period_containing(Frequency.QUARTERLY, day) == Period(start, end)


def test_a_week_runs_monday_to_sunday() -> None:
    assert period_containing(Frequency.WEEKLY, date(2026, 3, 4)) == Period(
        date(2026, 3, 2), date(2026, 3, 8)
    )
    assert period_containing(Frequency.WEEKLY, date(2026, 3, 8)).start == date(2026, 3, 2)


def test_biweekly_periods_are_fixed_pairs_of_weeks_across_a_year_end() -> None:
    first = period_containing(Frequency.BIWEEKLY, date(2024, 1, 1))
    assert first == Period(date(2024, 1, 1), date(2024, 1, 14))
    p = period_containing(Frequency.BIWEEKLY, date(2026, 12, 30))
    assert p == Period(date(2026, 12, 28), date(2027, 1, 10))
    assert next_period(Frequency.BIWEEKLY, p) == Period(date(2027, 1, 11), date(2027, 1, 24))


@pytest.mark.parametrize("frequency", list(Frequency))
def test_next_and_previous_periods_tile_time_without_gaps(frequency: Frequency) -> None:
    period = period_containing(frequency, date(2027, 12, 20))
    after = next_period(frequency, period)
    assert (after.start - period.end).days == 1
    assert previous_period(frequency, after) == period


def test_working_days_are_monday_to_friday() -> None:
    assert is_working_day(date(2026, 3, 6))  # Friday
    assert not is_working_day(date(2026, 3, 7))  # Saturday
    assert not is_working_day(date(2026, 3, 8))  # Sunday


def test_the_last_working_day_skips_a_weekend_month_end() -> None:
    # May 2026 ends on a Sunday; February 2026 on a Saturday; March 2026 on a Tuesday.
    assert last_working_day(period_containing(Frequency.MONTHLY, date(2026, 5, 1))) == date(
        2026, 5, 29
    )
    assert last_working_day(period_containing(Frequency.MONTHLY, date(2026, 2, 1))) == date(
        2026, 2, 27
    )
    assert last_working_day(period_containing(Frequency.MONTHLY, date(2026, 3, 1))) == date(
        2026, 3, 31
    )


def test_a_week_is_due_on_its_friday() -> None:
    week = period_containing(Frequency.WEEKLY, date(2026, 3, 4))
    assert last_working_day(week) == date(2026, 3, 6)


def test_due_is_the_end_of_the_last_working_day_in_the_employees_zone() -> None:
    march = period_containing(Frequency.MONTHLY, date(2026, 3, 1))
    # Amsterdam switched to summer time (UTC+2) on 29 March 2026.
    assert due_at(march, "Europe/Amsterdam") == datetime(2026, 3, 31, 15, 0, tzinfo=UTC)
    assert due_at(march, "America/New_York") == datetime(2026, 3, 31, 21, 0, tzinfo=UTC)
    assert due_at(march, "Asia/Kolkata") == datetime(2026, 3, 31, 11, 30, tzinfo=UTC)
    assert due_at(march, "Pacific/Auckland") == datetime(2026, 3, 31, 4, 0, tzinfo=UTC)


def test_due_follows_the_offset_of_the_due_day_not_of_the_period_start() -> None:
    # Q1 2026 in New York starts in winter time (UTC-5) and ends in summer time (UTC-4).
    q1 = period_containing(Frequency.QUARTERLY, date(2026, 2, 1))
    assert due_at(q1, "America/New_York") == datetime(2026, 3, 31, 21, 0, tzinfo=UTC)
    # October 2026 in Amsterdam ends after the switch back to winter time (UTC+1, 25 Oct).
    october = period_containing(Frequency.MONTHLY, date(2026, 10, 1))
    assert due_at(october, "Europe/Amsterdam") == datetime(2026, 10, 30, 16, 0, tzinfo=UTC)


def test_the_week_of_a_dst_change_is_due_at_local_five_pm() -> None:
    week = period_containing(Frequency.WEEKLY, date(2026, 3, 9))  # US spring forward on 8 March
    instant = due_at(week, "America/Los_Angeles")
    assert instant.astimezone(ZoneInfo("America/Los_Angeles")).time() == time(17, 0)
    assert instant == datetime(2026, 3, 14, 0, 0, tzinfo=UTC)


def test_a_wall_time_in_the_spring_gap_moves_forward_by_the_gap() -> None:
    tz = ZoneInfo("Europe/Amsterdam")
    instant = local_instant(date(2026, 3, 29), time(2, 30), tz)
    assert instant == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)  # 03:30 CEST
    assert instant.astimezone(tz).time() == time(3, 30)


def test_an_ambiguous_autumn_wall_time_means_its_first_occurrence() -> None:
    tz = ZoneInfo("Europe/Amsterdam")
    instant = local_instant(date(2026, 10, 25), time(2, 30), tz)
    assert instant == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # 02:30 CEST, not CET


def test_a_zone_that_skips_midnight_still_gets_a_due_time() -> None:
    # Chile moves clocks at midnight; 17:00 is unaffected and the instant is well defined.
    april = period_containing(Frequency.MONTHLY, date(2026, 4, 1))
    instant = due_at(april, "America/Santiago")
    assert instant.astimezone(ZoneInfo("America/Santiago")).time() == time(17, 0)


def test_an_unknown_time_zone_is_refused() -> None:
    with pytest.raises(UnknownTimeZone):
        due_at(period_containing(Frequency.MONTHLY, date(2026, 3, 1)), "Mars/Olympus_Mons")


def test_a_period_cannot_end_before_it_starts() -> None:
    with pytest.raises(ValueError, match="ends on or after"):
        Period(date(2026, 3, 2), date(2026, 3, 1))
