"""Every command the check-ins service accepts: what a caller asks for, validated at the edge.

HTTP request models (``entrypoints/http.py``) keep their examples and limits and translate into
these; the jobs make their own. Each names who asks (``principal``) where that matters.
"""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict

from rhythm_checkins.domain.policy import Rule
from rhythm_shared.contracts.v1 import CheckinKind, EscalationTarget, FeedbackKind, PolicyScope
from rhythm_shared.kit.auth import Principal


class Command(BaseModel):
    model_config = ConfigDict(frozen=True)


class ScheduleCheckin(Command):
    principal: Principal
    employee_id: str
    scheduled_for: datetime
    kind: CheckinKind = CheckinKind.MONTHLY
    manager_id: str | None = None
    #: Zone of a scheduled_for given without an offset (default: the employee's zone).
    time_zone: str | None = None


class RescheduleCheckin(Command):
    principal: Principal
    checkin_id: str
    scheduled_for: datetime
    #: Zone of a scheduled_for given without an offset, and the check-in's zone from now on
    #: (default: the zone it has).
    time_zone: str | None = None


class CancelCheckin(Command):
    principal: Principal
    checkin_id: str


class SubmitReflection(Command):
    principal: Principal
    checkin_id: str
    wins: str | None = None
    challenges: str | None = None
    help_needed: str | None = None
    pulse: int | None = None


class RecordNotes(Command):
    principal: Principal
    checkin_id: str
    goal: str | None = None
    reality: str | None = None
    options: str | None = None
    will: str | None = None
    notes: str | None = None
    goals_discussed: tuple[str, ...] | None = None


class AddActionItem(Command):
    principal: Principal
    checkin_id: str
    owner_id: str
    text: str
    due_on: date | None = None


class SetActionItemDone(Command):
    principal: Principal
    item_id: str
    done: bool = True


class CompleteCheckin(Command):
    principal: Principal
    checkin_id: str
    held_at: datetime | None = None
    pulse: int | None = None
    goals_discussed: tuple[str, ...] | None = None


class SetTenantSettings(Command):
    """Change the given settings; the others keep their value."""

    principal: Principal
    changes: dict[str, bool]


class GiveFeedback(Command):
    principal: Principal
    receiver_id: str
    kind: FeedbackKind
    text: str
    request_id: str | None = None


class RequestFeedback(Command):
    principal: Principal
    from_id: str
    prompt: str | None = None


class SetPolicy(Command):
    principal: Principal
    scope: PolicyScope
    scope_id: str
    rules: tuple[Rule, ...]
    escalate_after: int = 2
    escalate_to: EscalationTarget = EscalationTarget.SKIP_LEVEL
    ramp_up_days: int = 30
    hr_contact_id: str | None = None


class SweepCadence(Command):
    """One batch of the cadence job: plan who is due for planning, then sweep obligations."""

    batch_size: int = 500


class RemoveDueTexts(Command):
    """One batch of the retention job, of each kind."""

    texts_days: int
    feedback_days: int
    batch_size: int
