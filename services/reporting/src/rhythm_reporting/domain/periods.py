"""Reporting periods: a month (``2026-03``), a quarter (``2026-Q1``) or a year (``2026``), UTC."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime

_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
_QUARTER = re.compile(r"^(\d{4})-Q([1-4])$")
_YEAR = re.compile(r"^(\d{4})$")


def _add_months(year: int, month: int, delta: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + delta
    return index // 12, index % 12 + 1


@dataclass(frozen=True)
class Period:
    label: str
    first: tuple[int, int]  # (year, month)
    length: int  # months

    @classmethod
    def parse(cls, label: str) -> Period:
        if m := _MONTH.match(label):
            return cls(label, (int(m[1]), int(m[2])), 1)
        if m := _QUARTER.match(label):
            return cls(label, (int(m[1]), (int(m[2]) - 1) * 3 + 1), 3)
        if m := _YEAR.match(label):
            return cls(label, (int(m[1]), 1), 12)
        raise ValueError("a period is a month (2026-03), a quarter (2026-Q1) or a year (2026)")

    @classmethod
    def quarter_of(cls, at: datetime) -> Period:
        return cls.parse(f"{at.year:04d}-Q{(at.month - 1) // 3 + 1}")

    @property
    def months(self) -> list[str]:
        return [_label(*_add_months(*self.first, i)) for i in range(self.length)]

    @property
    def start(self) -> date:
        return date(*self.first, 1)

    @property
    def end(self) -> date:
        year, month = _add_months(*self.first, self.length)
        return date.fromordinal(date(year, month, 1).toordinal() - 1)

    @property
    def bounds(self) -> tuple[datetime, datetime]:
        """[first instant, first instant after) in UTC."""
        year, month = _add_months(*self.first, self.length)
        return datetime(*self.first, 1, tzinfo=UTC), datetime(year, month, 1, tzinfo=UTC)

    def nested(self) -> list[Period]:
        """The periods one can ask for that contain this one or lie within it (same year)."""
        year = self.first[0]
        months = [Period.parse(_label(year, m)) for m in range(1, 13)]
        quarters = [Period.parse(f"{year:04d}-Q{q}") for q in range(1, 5)]
        whole = Period.parse(f"{year:04d}")
        inside = [p for p in (*quarters, *months) if set(p.months) < set(self.months)]
        around = [p for p in (*quarters, whole) if set(self.months) < set(p.months)]
        return inside + around

    def previous(self) -> Period:
        year, month = _add_months(*self.first, -self.length)
        if self.length == 1:
            return Period.parse(_label(year, month))
        if self.length == 3:
            return Period.parse(f"{year:04d}-Q{(month - 1) // 3 + 1}")
        return Period.parse(f"{year:04d}")

    def trend_months(self, count: int = 12) -> list[str]:
        """``count`` months ending with the period's last month."""
        last = _add_months(*self.first, self.length - 1)
        return [_label(*_add_months(*last, -i)) for i in range(count - 1, -1, -1)]


def _label(year: int, month: int) -> str:
    return f"{year:04d}-{month:02d}"


def recent_periods(now: datetime) -> list[str]:
    """What the period picker offers: this and the last 11 months, 7 quarters, 2 years."""
    current = Period.parse(_label(now.year, now.month))
    quarter = Period.quarter_of(now)
    year = Period.parse(f"{now.year:04d}")
    out = []
    for start, count in ((quarter, 8), (current, 12), (year, 3)):
        p = start
        for _ in range(count):
            out.append(p.label)
            p = p.previous()
    return out
