"""When a person may be written to: quiet hours and working days in their own time zone.

Messages that fall in quiet hours or on a day off wait for the next open moment; they are never
dropped. Digests go out at the person's digest hour on a working day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

DEFAULT_QUIET_START = time(20, 0)
DEFAULT_QUIET_END = time(8, 0)
DEFAULT_WORKING_DAYS = frozenset({1, 2, 3, 4, 5})
DEFAULT_DIGEST_HOUR = 9


class DeliveryMode(StrEnum):
    """Single messages, or one daily or weekly digest instead."""

    IMMEDIATE = "immediate"
    DAILY = "daily"
    WEEKLY = "weekly"


@dataclass(frozen=True)
class Schedule:
    zone: ZoneInfo
    quiet_start: time | None = DEFAULT_QUIET_START
    quiet_end: time | None = DEFAULT_QUIET_END
    working_days: frozenset[int] = DEFAULT_WORKING_DAYS  # ISO weekdays, Monday = 1
    digest_hour: int = DEFAULT_DIGEST_HOUR

    def local(self, instant: datetime) -> datetime:
        return instant.astimezone(self.zone)

    def local_day(self, instant: datetime) -> date:
        return self.local(instant).date()

    def _quiet(self, t: time) -> bool:
        start, end = self.quiet_start, self.quiet_end
        if start is None or end is None or start == end:
            return False
        if start < end:
            return start <= t < end
        return t >= start or t < end  # the window wraps midnight

    def is_open(self, instant: datetime) -> bool:
        here = self.local(instant)
        return here.isoweekday() in self.working_days and not self._quiet(here.time())

    def _at(self, day: date, t: time) -> datetime:
        # fold=0 picks the first of two repeated wall times; a skipped one maps past the gap.
        return datetime.combine(day, t, tzinfo=self.zone).astimezone(UTC)

    def next_open(self, instant: datetime) -> datetime:
        """``instant`` if a message may go out then, else the next moment one may."""
        if self.is_open(instant):
            return instant
        today = self.local_day(instant)
        candidates: list[datetime] = []
        for offset in range(0, 9):
            day = today + timedelta(days=offset)
            candidates.append(self._at(day, time(0, 0)))
            if self.quiet_end is not None:
                candidates.append(self._at(day, self.quiet_end))
        for candidate in sorted(candidates):
            if candidate > instant and self.is_open(candidate):
                return candidate
        return instant  # no open moment in a week (cannot happen with a working day): send now

    def next_digest(self, instant: datetime, mode: DeliveryMode) -> datetime:
        """When the digest that collects something arriving at ``instant`` goes out."""
        today = self.local_day(instant)
        first_working_day = min(self.working_days)
        for offset in range(0, 15):
            day = today + timedelta(days=offset)
            if mode is DeliveryMode.WEEKLY and day.isoweekday() != first_working_day:
                continue
            if day.isoweekday() not in self.working_days:
                continue
            candidate = self.next_open(self._at(day, time(self.digest_hour, 0)))
            if candidate > instant:
                return candidate
        return self.next_open(instant + timedelta(days=1))


def parse_hhmm(value: str | None) -> time | None:
    if not value:
        return None
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def format_hhmm(value: time | None) -> str | None:
    return None if value is None else value.strftime("%H:%M")
