"""The rules of goals, free of databases and brokers: progress, status, alignment, validity.

Everything here is a pure function of its arguments (time comes in as an argument), so the rules
are tested without I/O and every entrypoint applies the same ones.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from rhythm_shared.contracts.v1 import (
    ArchiveReason,
    Direction,
    GoalKind,
    GoalStatus,
    OwnerType,
    Visibility,
)

#: Days without a progress record before a goal counts as stale, unless the goal says otherwise.
DEFAULT_UPDATE_INTERVAL_DAYS = 14

#: Any measured value, start or target beyond this magnitude is a typo, not a measurement.
MAX_MAGNITUDE = 1e12
#: A value further from start than this many times the start-to-target span is a typo too
#: (e.g. 50000 recorded on a 0 -> 100 % key result).
MAX_SPAN_MULTIPLE = 1000.0
#: The longest period a goal may cover (two years and a day for leap years).
MAX_PERIOD_DAYS = 731
#: How deep an alignment tree may grow (company -> unit -> ... -> person); guards against cycles.
MAX_ALIGNMENT_DEPTH = 32

# Status suggestion thresholds. "gap" is how far progress lags the elapsed share of the period:
# gap = elapsed_fraction - progress. A goal halfway through its quarter at 45 % is on track,
# at 35 % at risk, at 20 % off track.
ON_TRACK_MAX_GAP = 0.10
AT_RISK_MAX_GAP = 0.25
#: A confidence below this turns an otherwise on-track suggestion into at-risk: the owner knows
#: something the numbers don't show yet.
LOW_CONFIDENCE = 0.4

#: Statuses a person sets to close a goal; Rhythm never suggests its way out of them.
CLOSED_STATUSES = frozenset({GoalStatus.ACHIEVED, GoalStatus.ABANDONED})


@dataclass(frozen=True)
class Problem:
    """A broken rule, located at the input field that breaks it, e.g. key_results.0.target."""

    loc: tuple[str | int, ...]
    msg: str


# --- what the service keeps -------------------------------------------------------------------


@dataclass(frozen=True)
class Goal:
    """A goal as stored: owner, period, alignment, status, progress and its staleness clock."""

    goal_id: str
    tenant_id: str
    owner_type: OwnerType
    owner_id: str
    parent_goal_id: str | None
    kind: GoalKind
    title: str
    description: str | None
    visibility: Visibility
    period_start: date
    period_end: date
    update_interval_days: int
    status: GoalStatus
    status_overridden: bool
    progress: float
    confidence: float | None
    revision: int
    created_at: datetime
    created_by: str
    updated_at: datetime
    last_progress_at: datetime | None
    #: When the staleness job looks at the goal next; None while it cannot go stale.
    next_stale_check_at: datetime | None
    stale_since: datetime | None
    archived_at: datetime | None = None
    archive_reason: ArchiveReason | None = None


@dataclass(frozen=True)
class KeyResult:
    """A measurable key result of a goal, from start towards target."""

    goal_id: str
    key_result_id: str
    tenant_id: str
    position: int
    title: str | None
    unit: str
    start: float
    target: float
    current: float
    direction: Direction
    weight: float
    confidence: float | None
    updated_at: datetime

    def definition(self) -> dict[str, Any]:
        """What a person defined (not what was measured): compared and kept in revisions."""
        return {
            "key_result_id": self.key_result_id,
            "title": self.title,
            "unit": self.unit,
            "start": self.start,
            "target": self.target,
            "direction": self.direction.value,
            "weight": self.weight,
        }


@dataclass(frozen=True)
class ProgressRecord:
    """One value recorded for a key result, with its confidence and comment."""

    tenant_id: str
    goal_id: str
    key_result_id: str
    value: float
    confidence: float
    comment: str | None
    goal_progress: float
    recorded_by: str
    recorded_at: datetime


@dataclass(frozen=True)
class Revision:
    """One change of a goal: who changed what, and when (``changed_by`` None: Rhythm did)."""

    tenant_id: str
    goal_id: str
    revision: int
    action: str
    changes: dict[str, Any]
    changed_by: str | None
    changed_at: datetime


@dataclass(frozen=True)
class DueGoal:
    """What the staleness job needs of a goal whose stale check is due."""

    goal_id: str
    tenant_id: str
    owner_id: str
    created_at: datetime
    last_progress_at: datetime | None
    update_interval_days: int
    period_end: date


@dataclass(frozen=True)
class Leaver:
    """A deactivation dated ahead: when the person's open goals are to be archived."""

    tenant_id: str
    employee_id: str
    archive_goals_at: datetime


# --- progress ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Measure:
    """What progress maths needs of a key result."""

    start: float
    target: float
    current: float
    weight: float = 1.0


def key_result_progress(start: float, target: float, current: float) -> float:
    """Share of the way from start to target, clamped to 0..1.

    The direction is implied by the sign of ``target - start`` (validated to agree with the
    declared direction), so one formula serves "increase revenue" and "decrease churn".
    Overshooting counts as done (1.0); moving away from the target counts as nothing (0.0).
    """
    span = target - start
    if span == 0:
        return 0.0
    return min(1.0, max(0.0, (current - start) / span))


def goal_progress(measures: Iterable[Measure]) -> float:
    """Weighted mean of the key results' progress; 0.0 for a goal without key results."""
    total_weight = 0.0
    weighted = 0.0
    for m in measures:
        total_weight += m.weight
        weighted += m.weight * key_result_progress(m.start, m.target, m.current)
    if total_weight <= 0:
        return 0.0
    return min(1.0, max(0.0, weighted / total_weight))


# --- time and status --------------------------------------------------------------------------


def period_bounds(period_start: date, period_end: date) -> tuple[datetime, datetime]:
    """The period as instants: from the first day's midnight to the end of its last day (UTC)."""
    begin = datetime.combine(period_start, time(0), tzinfo=UTC)
    end = datetime.combine(period_end + timedelta(days=1), time(0), tzinfo=UTC)
    return begin, end


def elapsed_fraction(period_start: date, period_end: date, now: datetime) -> float:
    """How much of the period has passed at ``now``, 0..1."""
    begin, end = period_bounds(period_start, period_end)
    length = (end - begin).total_seconds()
    if length <= 0:
        return 1.0
    return min(1.0, max(0.0, (now - begin).total_seconds() / length))


def suggest_status(progress: float, elapsed: float, confidence: float | None = None) -> GoalStatus:
    """Rhythm's suggestion from progress against the elapsed share of the period.

    * progress >= 1: achieved;
    * progress lagging time by at most 10 points: on track (at risk when confidence < 0.4);
    * lagging by at most 25 points: at risk;
    * lagging by more: off track.
    """
    if progress >= 1.0:
        return GoalStatus.ACHIEVED
    gap = elapsed - progress
    if gap > AT_RISK_MAX_GAP:
        return GoalStatus.OFF_TRACK
    if gap > ON_TRACK_MAX_GAP:
        return GoalStatus.AT_RISK
    if confidence is not None and confidence < LOW_CONFIDENCE:
        return GoalStatus.AT_RISK
    return GoalStatus.ON_TRACK


def next_suggested_status(
    current: GoalStatus,
    overridden: bool,
    progress: float,
    elapsed: float,
    confidence: float | None,
) -> GoalStatus | None:
    """The status Rhythm moves a goal to after new progress, or None to leave it.

    A status a person set (``overridden``) stands until that person hands it back; a closed
    goal (achieved/abandoned by a person) stays closed.
    """
    if overridden:
        return None
    suggestion = suggest_status(progress, elapsed, confidence)
    return None if suggestion == current else suggestion


def next_stale_check(
    last_progress_at: datetime, update_interval_days: int, status: GoalStatus
) -> datetime | None:
    """When the goal turns stale if nobody records progress; None when it cannot go stale."""
    if status in CLOSED_STATUSES:
        return None
    return last_progress_at + timedelta(days=update_interval_days)


def goes_stale(period_end: date, now: datetime) -> bool:
    """Whether a due goal is reported stale: not once its period is over (nothing to update)."""
    return now < period_bounds(period_end, period_end)[1]


# --- validation -------------------------------------------------------------------------------


def _finite_and_sane(value: float) -> str | None:
    if not math.isfinite(value):
        return "must be a finite number"
    if abs(value) > MAX_MAGNITUDE:
        return f"magnitude must not exceed {MAX_MAGNITUDE:g}"
    return None


def check_key_result(
    index: int, start: float, target: float, direction: Direction, weight: float
) -> list[Problem]:
    """A key result moves from start towards target in its direction, with a positive weight."""
    loc: tuple[str | int, ...] = ("key_results", index)
    problems = [
        Problem((*loc, name), msg)
        for name, value in (("start", start), ("target", target), ("weight", weight))
        if (msg := _finite_and_sane(value)) is not None
    ]
    if problems:
        return problems
    if target == start:
        problems.append(Problem((*loc, "target"), "target must differ from start"))
    elif direction == Direction.INCREASE and target < start:
        problems.append(
            Problem((*loc, "target"), "target must be above start for an increasing key result")
        )
    elif direction == Direction.DECREASE and target > start:
        problems.append(
            Problem((*loc, "target"), "target must be below start for a decreasing key result")
        )
    if weight <= 0:
        problems.append(Problem((*loc, "weight"), "weight must be positive"))
    return problems


def check_progress_value(value: float, start: float, target: float) -> list[Problem]:
    """A recorded value is a finite number of plausible magnitude for its key result."""
    if (msg := _finite_and_sane(value)) is not None:
        return [Problem(("value",), msg)]
    span = abs(target - start)
    if span and abs(value - start) > MAX_SPAN_MULTIPLE * span:
        return [
            Problem(
                ("value",),
                f"value {value:g} is implausibly far from start {start:g} "
                f"(more than {MAX_SPAN_MULTIPLE:g} times the distance to target {target:g})",
            )
        ]
    return []


def check_period(period_start: date, period_end: date) -> list[Problem]:
    if period_end < period_start:
        return [Problem(("period_end",), "period_end must not be before period_start")]
    if (period_end - period_start).days > MAX_PERIOD_DAYS:
        return [Problem(("period_end",), f"a goal's period spans at most {MAX_PERIOD_DAYS} days")]
    return []


def check_confidence(confidence: float) -> list[Problem]:
    if not math.isfinite(confidence) or not 0.0 <= confidence <= 1.0:
        return [Problem(("confidence",), "confidence must be between 0 and 1")]
    return []


# --- alignment --------------------------------------------------------------------------------


def creates_cycle(
    goal_id: str, new_parent_id: str | None, parent_of: Callable[[str], str | None]
) -> bool:
    """Whether hanging ``goal_id`` under ``new_parent_id`` closes a loop in the alignment tree.

    Walks up from the new parent; reaching the goal itself (or an absurd depth, which can only
    be a loop already in the data) means a cycle.
    """
    node = new_parent_id
    for _ in range(MAX_ALIGNMENT_DEPTH + 1):
        if node is None:
            return False
        if node == goal_id:
            return True
        node = parent_of(node)
    return True


# --- owners ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Owner:
    """Whose a goal is: a person, an org unit, or the company (who may do what: ``access``)."""

    owner_type: OwnerType
    owner_id: str


# --- templates --------------------------------------------------------------------------------


def render_title(template: str, name: str) -> str:
    """A bulk-created goal's title: ``{name}`` becomes the person's or team's name."""
    return template.replace("{name}", name)[:200]
