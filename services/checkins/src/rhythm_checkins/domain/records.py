"""What the service keeps, as plain records: one dataclass per table row the use cases read.

The repositories (:mod:`rhythm_checkins.adapters.repository`) read and write them; the fields
are the columns, so a row becomes a record with ``Record(**row._mapping)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime


@dataclass(frozen=True)
class Checkin:
    id: str
    tenant_id: str
    kind: str
    employee_id: str
    manager_id: str
    scheduled_for: datetime
    time_zone: str
    initiated_by: str
    initiated_by_id: str
    state: str
    goals_discussed: list[str] = field(default_factory=list)
    created_at: datetime | None = None
    updated_at: datetime | None = None
    invite_sequence: int = 0
    held_at: datetime | None = None
    obligation_id: str | None = None
    obligation_due_at: datetime | None = None
    reflection_wins: str | None = None
    reflection_challenges: str | None = None
    reflection_help_needed: str | None = None
    pulse: int | None = None
    reflected_at: datetime | None = None
    grow_goal: str | None = None
    grow_reality: str | None = None
    grow_options: str | None = None
    grow_will: str | None = None
    notes: str | None = None


#: The check-in fields that hold what was written, never who, when or how much.
CHECKIN_TEXTS = (
    "reflection_wins",
    "reflection_challenges",
    "reflection_help_needed",
    "grow_goal",
    "grow_reality",
    "grow_options",
    "grow_will",
    "notes",
)


@dataclass(frozen=True)
class ActionItem:
    id: str
    tenant_id: str
    employee_id: str
    checkin_id: str
    owner_id: str
    text: str | None
    created_at: datetime
    due_on: date | None = None
    done_at: datetime | None = None


@dataclass(frozen=True)
class TenantSettings:
    reviews_visible_to_manager_chain: bool = False
    share_individual_pulse: bool = False


@dataclass(frozen=True)
class Feedback:
    id: str
    tenant_id: str
    giver_id: str
    receiver_id: str
    kind: str
    text: str | None
    requested: bool
    created_at: datetime
    request_id: str | None = None


@dataclass(frozen=True)
class FeedbackRequest:
    id: str
    tenant_id: str
    requester_id: str
    from_id: str
    created_at: datetime
    prompt: str | None = None
    feedback_id: str | None = None


@dataclass(frozen=True)
class Goal:
    tenant_id: str
    goal_id: str
    owner_type: str
    owner_id: str
    title: str | None
    visibility: str
    progress: float = 0.0
    archived: bool = False
    updated_at: datetime | None = None


@dataclass(frozen=True)
class Obligation:
    id: str
    tenant_id: str
    employee_id: str
    manager_id: str
    kind: str
    frequency: str
    policy_id: str
    period_start: date
    period_end: date
    due_at: datetime
    remind_at: datetime
    miss_at: datetime
    state: str
    created_at: datetime
    updated_at: datetime
    next_action_at: datetime | None = None
    consecutive_misses: int = 0
    checkin_id: str | None = None


@dataclass(frozen=True)
class NewFact:
    """The natural key of a due/missed/escalated fact, with the id of the event that tells it."""

    obligation_id: str
    fact: str
    tenant_id: str
    event_id: str
    occurred_at: datetime


@dataclass(frozen=True)
class Decision:
    """Where the sweep moves an obligation."""

    obligation_id: str
    state: str
    next_action_at: datetime | None
    consecutive_misses: int


@dataclass(frozen=True)
class Departure:
    tenant_id: str
    employee_id: str
    left_at: datetime | None = None
    texts_removed_at: datetime | None = None
    feedback_removed_at: datetime | None = None
