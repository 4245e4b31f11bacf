"""Period maths: which period a day falls in, its last working day and when it is due.

Periods are calendar-based and the same everywhere (ISO weeks start on Monday, months and
quarters start on their first day); only the due *instant* depends on the employee's IANA time
zone. Working days are Monday to Friday (no holiday calendar yet).
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from rhythm_shared.contracts.v1.values import Frequency

#: A check-in is due at the end of the last working day, local time.
END_OF_WORKING_DAY = time(17, 0)
#: Biweekly periods are pairs of ISO weeks counted from this Monday, so they agree everywhere.
BIWEEKLY_ANCHOR = date(2024, 1, 1)


class UnknownTimeZone(ValueError):
    pass


@dataclass(frozen=True, order=True)
class Period:
    start: date
    end: date

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError("a period ends on or after its start")

    def contains(self, day: date) -> bool:
        return self.start <= day <= self.end

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1


def zone(name: str) -> ZoneInfo:
    """The IANA zone ``name``; :class:`UnknownTimeZone` when there is none."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise UnknownTimeZone(f"{name!r} is not an IANA time zone") from exc


def period_containing(frequency: Frequency, day: date) -> Period:
    if frequency == Frequency.WEEKLY:
        start = day - timedelta(days=day.weekday())
        return Period(start, start + timedelta(days=6))
    if frequency == Frequency.BIWEEKLY:
        offset = (day - BIWEEKLY_ANCHOR).days % 14
        start = day - timedelta(days=offset)
        return Period(start, start + timedelta(days=13))
    if frequency == Frequency.MONTHLY:
        last = calendar.monthrange(day.year, day.month)[1]
        return Period(day.replace(day=1), day.replace(day=last))
    if frequency == Frequency.QUARTERLY:
        first_month = 3 * ((day.month - 1) // 3) + 1
        last_month = first_month + 2
        last = calendar.monthrange(day.year, last_month)[1]
        return Period(date(day.year, first_month, 1), date(day.year, last_month, last))
    raise ValueError(f"unknown frequency {frequency!r}")


def next_period(frequency: Frequency, period: Period) -> Period:
    return period_containing(frequency, period.end + timedelta(days=1))


def previous_period(frequency: Frequency, period: Period) -> Period:
    return period_containing(frequency, period.start - timedelta(days=1))


def is_working_day(day: date) -> bool:
    return day.weekday() < 5


def last_working_day(period: Period) -> date:
    """The period's last Monday-to-Friday day (its last day when it has none, which a
    calendar period never lacks)."""
    day = period.end
    while not is_working_day(day) and day > period.start:
        day -= timedelta(days=1)
    return day


def local_instant(day: date, wall: time, tz: ZoneInfo) -> datetime:
    """The UTC instant of wall-clock ``wall`` on ``day`` in ``tz``, DST-safe.

    An ambiguous time (clocks go back) means its first occurrence; a time that does not exist
    (clocks go forward) means the moment the clocks jumped to, the same wall time shifted by
    the gap, as a person would read it.
    """
    # PEP 495: fold=0 picks the first occurrence of an ambiguous time and, for a time in a
    # gap, the offset from before the jump, which lands on the wall time shifted by the gap.
    return datetime.combine(day, wall).replace(tzinfo=tz, fold=0).astimezone(UTC)


def due_at(period: Period, time_zone: str) -> datetime:
    """End of the period's last working day in the employee's time zone, as UTC."""
    return local_instant(last_working_day(period), END_OF_WORKING_DAY, zone(time_zone))


def local_date(instant: datetime, time_zone: str) -> date:
    return instant.astimezone(zone(time_zone)).date()


def start_of_day(day: date, time_zone: str) -> datetime:
    return local_instant(day, time(0, 0), zone(time_zone))
