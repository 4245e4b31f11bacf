"""``rhythm.checkins.v1``: check-ins, reflections, feedback and reviews, keyed by employee.

Only ids, kinds, times, counts and scores: the GROW agenda, notes, reflections and feedback text
stay in the check-ins service behind its API and permissions.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, ClassVar

from pydantic import ConfigDict, Field, model_validator

from rhythm_shared.contracts import topics
from rhythm_shared.contracts.base import Event, Identifier, Instant
from rhythm_shared.contracts.v1.values import CheckinKind, FeedbackKind, Initiator, check_period

#: Workload pulse: 1 (far too little) .. 3 (about right) .. 5 (far too much).
Pulse = Annotated[int, Field(ge=1, le=5)]

_PULSE = "Workload pulse 1-5 (1 far too little, 3 about right, 5 far too much), if given."


class _EmployeeEvent(Event):
    """Common ClassVars: ordered per employee (no ``type``: not an event by itself)."""

    topic: ClassVar[str] = topics.CHECKINS
    entity: ClassVar[str] = "employee"
    entity_field: ClassVar[str] = "employee_id"


class CheckinScheduled(_EmployeeEvent):
    """A check-in between an employee and their manager was put in the calendar."""

    type: ClassVar[str] = "rhythm.checkin.scheduled.v1"

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "tenant_id": "acme",
                    "occurred_at": "2026-02-20T10:02:00Z",
                    "checkin_id": "c-5521",
                    "kind": "monthly",
                    "employee_id": "e-1042",
                    "manager_id": "e-0007",
                    "scheduled_for": "2026-02-26T14:00:00+01:00",
                    "initiated_by": "employee",
                }
            ]
        }
    )

    checkin_id: Identifier = Field(description="Identifier of the check-in.")
    kind: CheckinKind = Field(
        description="Which conversation: monthly check-in or quarterly review."
    )
    employee_id: Identifier = Field(description="The employee the check-in is about.")
    manager_id: Identifier = Field(description="The manager holding the check-in.")
    scheduled_for: Instant = Field(description="When the conversation is planned to start.")
    initiated_by: Initiator = Field(description="Whether the employee or the manager asked for it.")


class CheckinRescheduled(_EmployeeEvent):
    """A scheduled check-in was moved to another time; calendars get an updated invitation."""

    type: ClassVar[str] = "rhythm.checkin.rescheduled.v1"

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "tenant_id": "acme",
                    "occurred_at": "2026-02-23T09:30:00Z",
                    "checkin_id": "c-5521",
                    "kind": "monthly",
                    "employee_id": "e-1042",
                    "manager_id": "e-0007",
                    "scheduled_for": "2026-02-27T10:00:00+01:00",
                    "previous_scheduled_for": "2026-02-26T14:00:00+01:00",
                    "initiated_by": "employee",
                    "changed_by": "manager",
                    "sequence": 1,
                }
            ]
        }
    )

    checkin_id: Identifier = Field(description="Identifier of the check-in.")
    kind: CheckinKind = Field(
        description="Which conversation: monthly check-in or quarterly review."
    )
    employee_id: Identifier = Field(description="The employee the check-in is about.")
    manager_id: Identifier = Field(description="The manager holding the check-in.")
    scheduled_for: Instant = Field(description="The new time the conversation is planned to start.")
    previous_scheduled_for: Instant = Field(description="The time it was planned for until now.")
    initiated_by: Initiator = Field(
        description="Whether the employee or the manager asked for it (the invitation's organizer)."
    )
    changed_by: Initiator = Field(description="Whether the employee or the manager moved it.")
    sequence: int = Field(
        ge=1,
        description="The invitation's revision: 0 when scheduled, one more on each change "
        "(iCalendar SEQUENCE).",
    )


class CheckinCancelled(_EmployeeEvent):
    """A scheduled check-in was called off; it fulfils nothing and calendars drop it."""

    type: ClassVar[str] = "rhythm.checkin.cancelled.v1"

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "tenant_id": "acme",
                    "occurred_at": "2026-02-24T08:00:00Z",
                    "checkin_id": "c-5521",
                    "kind": "monthly",
                    "employee_id": "e-1042",
                    "manager_id": "e-0007",
                    "scheduled_for": "2026-02-27T10:00:00+01:00",
                    "initiated_by": "employee",
                    "changed_by": "employee",
                    "sequence": 2,
                }
            ]
        }
    )

    checkin_id: Identifier = Field(description="Identifier of the check-in.")
    kind: CheckinKind = Field(
        description="Which conversation: monthly check-in or quarterly review."
    )
    employee_id: Identifier = Field(description="The employee the check-in is about.")
    manager_id: Identifier = Field(description="The manager who was to hold the check-in.")
    scheduled_for: Instant = Field(description="The time it was planned for when it was cancelled.")
    initiated_by: Initiator = Field(
        description="Whether the employee or the manager asked for it (the invitation's organizer)."
    )
    changed_by: Initiator = Field(description="Whether the employee or the manager cancelled it.")
    sequence: int = Field(
        ge=1,
        description="The invitation's revision: 0 when scheduled, one more on each change "
        "(iCalendar SEQUENCE).",
    )


class CheckinCompleted(_EmployeeEvent):
    """A check-in took place; enough for reporting to count on-time, late and employee-led ones."""

    type: ClassVar[str] = "rhythm.checkin.completed.v1"

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "tenant_id": "acme",
                    "occurred_at": "2026-02-26T14:40:00+01:00",
                    "checkin_id": "c-5521",
                    "kind": "monthly",
                    "employee_id": "e-1042",
                    "manager_id": "e-0007",
                    "held_at": "2026-02-26T14:00:00+01:00",
                    "initiated_by": "employee",
                    "obligation_id": "ob-e-1042-monthly-2026-02",
                    "due_at": "2026-02-28T17:00:00+01:00",
                    "goals_discussed": ["g-7f3a", "g-team-12"],
                    "open_action_items": 2,
                    "pulse": 4,
                }
            ]
        }
    )

    checkin_id: Identifier = Field(description="Identifier of the check-in.")
    kind: CheckinKind = Field(
        description="Which conversation: monthly check-in or quarterly review."
    )
    employee_id: Identifier = Field(description="The employee the check-in is about.")
    manager_id: Identifier = Field(description="The manager who held the check-in.")
    held_at: Instant = Field(description="When the conversation took place.")
    initiated_by: Initiator = Field(description="Whether the employee or the manager asked for it.")
    obligation_id: Identifier | None = Field(
        default=None, description="The cadence obligation this check-in fulfils, if any."
    )
    due_at: Instant | None = Field(
        default=None, description="That obligation's due time, so on-time vs late needs no lookup."
    )
    goals_discussed: list[Identifier] = Field(
        default_factory=list, max_length=100, description="Ids of the goals that were discussed."
    )
    open_action_items: int = Field(
        default=0, ge=0, description="How many action items are open after the check-in (a count)."
    )
    pulse: Pulse | None = Field(default=None, description=_PULSE)

    @model_validator(mode="after")
    def _due_needs_obligation(self) -> CheckinCompleted:
        if self.due_at is not None and self.obligation_id is None:
            raise ValueError("due_at is the due time of an obligation: give obligation_id")
        return self


class ReflectionSubmitted(_EmployeeEvent):
    """An employee submitted a self-reflection (their preparation); its text stays private."""

    type: ClassVar[str] = "rhythm.reflection.submitted.v1"

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "tenant_id": "acme",
                    "occurred_at": "2026-02-25T19:12:00+01:00",
                    "employee_id": "e-1042",
                    "checkin_id": "c-5521",
                    "pulse": 4,
                }
            ]
        }
    )

    employee_id: Identifier = Field(description="The employee who reflected.")
    checkin_id: Identifier | None = Field(
        default=None, description="The check-in it prepares, if it was written for one."
    )
    pulse: Pulse | None = Field(default=None, description=_PULSE)


class FeedbackGiven(_EmployeeEvent):
    """Someone gave informal feedback to an employee; ordered with the receiver's other events."""

    type: ClassVar[str] = "rhythm.feedback.given.v1"
    entity_field: ClassVar[str] = "receiver_id"

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "tenant_id": "acme",
                    "occurred_at": "2026-02-18T11:20:00Z",
                    "feedback_id": "f-9001",
                    "giver_id": "e-0311",
                    "receiver_id": "e-1042",
                    "kind": "praise",
                    "requested": False,
                }
            ]
        }
    )

    feedback_id: Identifier = Field(description="Identifier of the feedback.")
    giver_id: Identifier = Field(description="Employee id of who gave it.")
    receiver_id: Identifier = Field(description="Employee id of who received it.")
    kind: FeedbackKind = Field(description="Praise or constructive.")
    requested: bool = Field(description="True when the receiver had asked for feedback.")

    @model_validator(mode="after")
    def _to_someone_else(self) -> FeedbackGiven:
        if self.giver_id == self.receiver_id:
            raise ValueError("feedback goes to someone else: giver_id equals receiver_id")
        return self


class ReviewCompleted(_EmployeeEvent):
    """A quarterly review was concluded for a period, with the goals it covered."""

    type: ClassVar[str] = "rhythm.review.completed.v1"

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "tenant_id": "acme",
                    "occurred_at": "2026-04-03T15:30:00+02:00",
                    "checkin_id": "c-6010",
                    "employee_id": "e-1042",
                    "manager_id": "e-0007",
                    "period_start": "2026-01-01",
                    "period_end": "2026-03-31",
                    "goals_reviewed": ["g-7f3a"],
                }
            ]
        }
    )

    checkin_id: Identifier = Field(description="The quarterly-review check-in.")
    employee_id: Identifier = Field(description="The employee who was reviewed.")
    manager_id: Identifier = Field(description="The manager who held the review.")
    period_start: date = Field(description="First day of the reviewed period.")
    period_end: date = Field(description="Last day of the reviewed period.")
    goals_reviewed: list[Identifier] = Field(
        default_factory=list, max_length=100, description="Ids of the goals that were reviewed."
    )

    @model_validator(mode="after")
    def _period(self) -> ReviewCompleted:
        check_period(self.period_start, self.period_end)
        return self
