"""Metric arithmetic and the small-group rule. Pure.

Shares are kept unrounded through the arithmetic (a change in points is the difference of the
unrounded shares) and rounded only where they are shown.

Small groups: the rule, and why no hidden figure can be computed from shown ones
=================================================================================

A *cell* is one figure of one metric family for one group and one period: a unit's subtree
(or the whole tenant, ``*``) in a calendar month, quarter or year. Its *contributors* are the
distinct people whose facts make it (for cadence: the people with obligations due in the
period, counted where they were at the due time), never today's headcount.

1. **Primary.** A cell with at least one but fewer than ``minimum`` contributors is hidden. A
   cell with no contributors holds nobody's figures; it shows its zeros.
2. **Months, top down the org tree.** The tenant's month cell is shown unless rule 1 hides it.
   Under a shown cell N, each child unit is shown unless rule 1 hides it, and then, while the
   *residual* of N (the facts of N's subtree outside its shown children: N's own people and
   every hidden child) has at least one but fewer than ``minimum`` contributors, a shown child
   with contributors is hidden as well — Lattice's and Peakon's "strong protection", with the
   residual measured in people rather than in hidden cells. Which one: the fewest
   contributors counted up to ``COMPLEMENT_CAP * minimum``, then the id (so the smallest
   child when one is under the cap, else the first by id; no exact size is needed, since any
   shown child brings ``minimum`` people or more into the residual). A hidden cell hides
   everything below it in that month.
3. **Longer periods.** A unit's quarter or year is shown only when each of its months is shown
   or has no contributors; managers' rows likewise (rule 1 per month, on their reports).
4. The same cell is shown or hidden in every endpoint, export and request: visibility is a
   function of the data only. Hidden cells carry no counts at all (values and people null).

Why this holds (for the unit-by-month families: cadence, ownership, pulse, feedback). By rule 3
every shown quarter or year equals the sum of shown or empty months of the same unit, so every
figure one can compute from any number of answers is a combination of shown month cells, and
months do not share facts: it is enough to look at one month. There the shown cells are
subtrees, which nest or are disjoint (a laminar family); any integer combination of them is a
combination of their residuals, which are disjoint. By rule 2 each residual is empty or holds
``minimum`` people or more. A hidden cell with 1..minimum-1 contributors is not a union of such
residuals (one of them would hold at least ``minimum`` of its people), so no sum or difference
of shown figures — within a table, a unit against its children, a period against its months,
JSON against CSV — equals it. Hiding a further cell only joins its residual to its shown
parent's, so cells hidden for one family (feedback given and received) keep the other safe.
Shares and averages are rounded figures of the same counts and add nothing exact.

Goals count goals whose period *overlaps* the selection, so periods do not add up; a goals cell
also applies rule 1 and rule 2 for its period, and is hidden when the goals it shares with a
nested period (its months and quarters, or the quarter and year around it) leave 1..minimum-1
owners on either side; combinations across units and periods at once are not covered by the
argument above for goals. Manager rows apply rules 1 and 3 to the direct reports, a tenant-wide
rule 2 over managers (the reports of hidden managers, with those of nobody, are 0 or at least
``minimum`` people), and are hidden when the manager's own unit less their team is a small
group (a unit's head is often the rest of it). Teams and units are different groupings:
combinations of several manager rows with unit cells are outside the argument above.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

#: Rule 2 compares the sizes of the shown parts it may hide up to this many times ``minimum``.
COMPLEMENT_CAP = 2

#: MIN_GROUP_SIZE below this is refused at start: a group of two people shows each of them the
#: other's figures.
MIN_GROUP_FLOOR = 3


def share(part: int | float, whole: int | float) -> float | None:
    """A percentage, unrounded; None when there is nothing to divide by."""
    if not whole:
        return None
    return 100.0 * part / whole


def shown(value: float | None, digits: int = 1) -> float | None:
    """Round for display only."""
    return None if value is None else round(value, digits)


def pct(part: int | float, whole: int | float) -> float | None:
    """A percentage with one decimal; None when there is nothing to divide by."""
    return shown(share(part, whole))


def ratio(part: int | float, whole: int | float, digits: int = 2) -> float | None:
    if not whole:
        return None
    return round(part / whole, digits)


def change(current: float | None, previous: float | None, digits: int = 1) -> float | None:
    """Change in percentage points (or units) against the previous period. Give it unrounded
    values: 41.666… - 54.545… is -12.9 points, where 41.7 - 54.5 would say -12.8."""
    if current is None or previous is None:
        return None
    return round(current - previous, digits)


def total(rows: Iterable[Mapping[str, int]], columns: Iterable[str]) -> dict[str, int]:
    cols = list(columns)
    out = dict.fromkeys(cols, 0)
    for row in rows:
        for c in cols:
            out[c] += int(row.get(c) or 0)
    return out


def adherence_shares(counts: Mapping[str, int]) -> dict[str, float | None]:
    """Unrounded shares of resolved obligations (on time + late + missed); open ones are not
    yet counted."""
    resolved = counts["on_time"] + counts["late"] + counts["missed"]
    return {
        "on_time_pct": share(counts["on_time"], resolved),
        "late_pct": share(counts["late"], resolved),
        "missed_pct": share(counts["missed"], resolved),
    }


def adherence(counts: Mapping[str, int]) -> dict[str, float | None]:
    """The shares of :func:`adherence_shares`, rounded for display."""
    return {k: shown(v) for k, v in adherence_shares(counts).items()}


def too_small(contributors: int, minimum: int) -> bool:
    """Rule 1: some people, but fewer than ``minimum``. No one is not a small group."""
    return 0 < contributors < minimum


def suppressed(people: int | None, minimum: int) -> bool:
    """A headcount shown only from ``minimum`` people up (the unit picker's counts)."""
    return (people or 0) < minimum


def next_to_hide(candidates: Mapping[str, int], residual: int, minimum: int) -> str | None:
    """Rule 2: while the residual (people outside the shown parts) is a small group, the
    smallest shown part with people in it goes too. ``candidates``: part -> contributors."""
    if not too_small(residual, minimum):
        return None
    filled = [(people, part) for part, people in candidates.items() if people > 0]
    return min(filled)[1] if filled else None


def period_shown(months: Iterable[tuple[bool, bool]]) -> bool:
    """Rule 3: a longer period from (shown, empty) of each of its months."""
    return all(ok or empty for ok, empty in months)
