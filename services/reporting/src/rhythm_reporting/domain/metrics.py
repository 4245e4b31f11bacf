"""Metric arithmetic and the small-group rule. Pure."""

from __future__ import annotations

from collections.abc import Iterable, Mapping


def pct(part: int | float, whole: int | float) -> float | None:
    """A percentage with one decimal; None when there is nothing to divide by."""
    if not whole:
        return None
    return round(100.0 * part / whole, 1)


def ratio(part: int | float, whole: int | float, digits: int = 2) -> float | None:
    if not whole:
        return None
    return round(part / whole, digits)


def change(current: float | None, previous: float | None) -> float | None:
    """Change in percentage points (or units) against the previous period."""
    if current is None or previous is None:
        return None
    return round(current - previous, 1)


def total(rows: Iterable[Mapping[str, int]], columns: Iterable[str]) -> dict[str, int]:
    cols = list(columns)
    out = dict.fromkeys(cols, 0)
    for row in rows:
        for c in cols:
            out[c] += int(row.get(c) or 0)
    return out


def adherence(counts: Mapping[str, int]) -> dict[str, float | None]:
    """Shares of resolved obligations (on time + late + missed); open ones are not yet counted."""
    resolved = counts["on_time"] + counts["late"] + counts["missed"]
    return {
        "on_time_pct": pct(counts["on_time"], resolved),
        "late_pct": pct(counts["late"], resolved),
        "missed_pct": pct(counts["missed"], resolved),
    }


def suppressed(people: int | None, minimum: int) -> bool:
    """A group of fewer than ``minimum`` people is not shown (privacy)."""
    return (people or 0) < minimum
