"""Rules of the conversations themselves: check-ins, reflections, feedback and reviews."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from rhythm_checkins.domain.periods import Period, local_date, period_containing
from rhythm_shared.contracts.v1.values import Frequency, Initiator
from rhythm_shared.kit.errors import FieldError

PULSE_MIN, PULSE_MAX = 1, 5


class CheckinState(StrEnum):
    SCHEDULED = "scheduled"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


def pulse_error(pulse: int | None, *loc: str | int) -> FieldError | None:
    if pulse is not None and not PULSE_MIN <= pulse <= PULSE_MAX:
        return FieldError(
            ("body", *loc), f"the workload pulse is {PULSE_MIN} to {PULSE_MAX}, got {pulse}"
        )
    return None


def completion_error(
    scheduled_for: datetime, held_at: datetime, time_zone: str
) -> FieldError | None:
    """A check-in cannot be held on a day before the day it was scheduled for (local)."""
    if local_date(held_at, time_zone) < local_date(scheduled_for, time_zone):
        return FieldError(
            ("body", "held_at"), "a check-in cannot be completed before its scheduled day"
        )
    return None


def initiator(subject: str, employee_id: str) -> Initiator:
    return Initiator.EMPLOYEE if subject == employee_id else Initiator.MANAGER


def participants(employee_id: str, manager_id: str) -> frozenset[str]:
    return frozenset({employee_id, manager_id})


def review_period(held_on: date) -> Period:
    """A quarterly review looks back on the quarter it is held in."""
    return period_containing(Frequency.QUARTERLY, held_on)


def feedback_error(giver_id: str, receiver_id: str) -> FieldError | None:
    if giver_id == receiver_id:
        return FieldError(("body", "receiver_id"), "feedback goes to someone else")
    return None
