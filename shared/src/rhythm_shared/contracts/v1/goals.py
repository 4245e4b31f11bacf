"""``rhythm.goals.v1``: goals, key results and progress, keyed by goal.

Progress comments and goal descriptions stay in the goals service; a goal's title rides along
only while the goal is visible to the whole tenant.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, ClassVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from rhythm_shared.contracts import topics
from rhythm_shared.contracts.base import Event, Identifier, Instant
from rhythm_shared.contracts.v1.values import (
    ArchiveReason,
    Direction,
    GoalKind,
    GoalStatus,
    MeasureUnit,
    OwnerType,
    Title,
    Visibility,
    check_period,
)

_GOAL_ID = "Identifier of the goal."
_INTERVAL = "Days without a progress update after which the goal counts as stale."

UpdateInterval = Annotated[int, Field(ge=1, le=366)]
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
FieldName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*$")]


class KeyResultSpec(BaseModel):
    """A measurable key result of a goal: from start towards target, measured in unit."""

    model_config = ConfigDict(frozen=True, extra="ignore", str_strip_whitespace=True)

    key_result_id: Identifier = Field(description="Identifier of the key result within the goal.")
    unit: MeasureUnit = Field(description="Unit of the measured value, e.g. %, EUR, count, NPS.")
    start: float = Field(description="Value at the start of the period.")
    target: float = Field(description="Value that means the key result is met.")
    direction: Direction = Field(description="Whether progress means the value goes up or down.")
    weight: float = Field(
        default=1.0, gt=0, le=100, description="Relative weight in the goal's overall progress."
    )

    @model_validator(mode="after")
    def _target_ahead(self) -> KeyResultSpec:
        # A target behind the start (for its direction) would make progress run backwards.
        if self.direction == Direction.INCREASE:
            ahead = self.target > self.start
        else:
            ahead = self.target < self.start
        if not ahead:
            raise ValueError(f"target must lie beyond start in direction {self.direction.value}")
        return self


class _GoalEvent(Event):
    """Common ClassVars of the goal events (no ``type``: not an event by itself)."""

    topic: ClassVar[str] = topics.GOALS
    entity: ClassVar[str] = "goal"
    entity_field: ClassVar[str] = "goal_id"


class GoalCreated(_GoalEvent):
    """A goal was set: who owns it, where it sits in the tree, its period and its key results."""

    type: ClassVar[str] = "rhythm.goal.created.v1"

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "tenant_id": "acme",
                    "occurred_at": "2026-01-05T09:30:00Z",
                    "goal_id": "g-7f3a",
                    "owner_type": "person",
                    "owner_id": "e-1042",
                    "parent_goal_id": "g-team-12",
                    "kind": "okr",
                    "title": "Cut checkout latency in half",
                    "visibility": "tenant",
                    "period_start": "2026-01-01",
                    "period_end": "2026-03-31",
                    "update_interval_days": 14,
                    "key_results": [
                        {
                            "key_result_id": "kr-1",
                            "unit": "ms",
                            "start": 840,
                            "target": 420,
                            "direction": "decrease",
                            "weight": 2,
                        },
                        {
                            "key_result_id": "kr-2",
                            "unit": "%",
                            "start": 0,
                            "target": 100,
                            "direction": "increase",
                            "weight": 1,
                        },
                    ],
                }
            ]
        }
    )

    goal_id: Identifier = Field(description=_GOAL_ID)
    owner_type: OwnerType = Field(
        description="Whether a person, an org unit or the company owns it."
    )
    owner_id: Identifier = Field(
        description="Employee id, org unit id or tenant id, according to owner_type."
    )
    parent_goal_id: Identifier | None = Field(
        default=None, description="The goal this one contributes to (alignment); None at the top."
    )
    kind: GoalKind = Field(description="OKR or KPI.")
    title: Title | None = Field(
        default=None,
        description="The goal's title; present when visibility is tenant, null when private.",
    )
    visibility: Visibility = Field(description="Who may see the goal.")
    period_start: date = Field(description="First day of the goal's period.")
    period_end: date = Field(description="Last day of the goal's period.")
    update_interval_days: UpdateInterval = Field(description=_INTERVAL)
    key_results: list[KeyResultSpec] = Field(
        default_factory=list, max_length=50, description="The goal's measurable key results."
    )

    @model_validator(mode="after")
    def _consistent(self) -> GoalCreated:
        check_period(self.period_start, self.period_end)
        # Privacy: a private goal's title must not spread to every consumer of the topic.
        if self.visibility == Visibility.PRIVATE and self.title is not None:
            raise ValueError("a private goal's title must be omitted")
        if self.visibility == Visibility.TENANT and self.title is None:
            raise ValueError("a goal visible to the tenant carries its title")
        ids = [kr.key_result_id for kr in self.key_results]
        if len(ids) != len(set(ids)):
            raise ValueError("key_result_id values must be unique within a goal")
        return self


class GoalUpdated(_GoalEvent):
    """A goal's definition was revised; names of the changed fields, not their (textual) values."""

    type: ClassVar[str] = "rhythm.goal.updated.v1"

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "tenant_id": "acme",
                    "occurred_at": "2026-02-10T14:00:00Z",
                    "goal_id": "g-7f3a",
                    "changed_fields": ["key_results", "period_end"],
                    "revision": 3,
                }
            ]
        }
    )

    goal_id: Identifier = Field(description=_GOAL_ID)
    changed_fields: list[FieldName] = Field(
        min_length=1, max_length=50, description="Names of the goal's fields that changed."
    )
    revision: int = Field(
        ge=1, description="The goal's revision after this change; grows by one per change."
    )


class GoalProgressRecorded(_GoalEvent):
    """A new value was recorded for a key result, with the owner's confidence."""

    type: ClassVar[str] = "rhythm.goal.progress_recorded.v1"

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "tenant_id": "acme",
                    "occurred_at": "2026-02-12T16:45:00+01:00",
                    "goal_id": "g-7f3a",
                    "key_result_id": "kr-1",
                    "value": 610,
                    "goal_progress": 0.42,
                    "confidence": 0.7,
                    "recorded_by": "e-1042",
                }
            ]
        }
    )

    goal_id: Identifier = Field(description=_GOAL_ID)
    key_result_id: Identifier = Field(description="The key result the value is for.")
    value: float = Field(description="The measured value, in the key result's unit.")
    goal_progress: Fraction = Field(
        description="The goal's overall weighted progress after this value, 0 to 1."
    )
    confidence: Fraction = Field(description="How likely the owner thinks the goal is met, 0 to 1.")
    recorded_by: Identifier = Field(description="Employee id of whoever recorded the value.")


class GoalStatusChanged(_GoalEvent):
    """A goal's status changed, set by a person or suggested by Rhythm from progress/confidence."""

    type: ClassVar[str] = "rhythm.goal.status_changed.v1"

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "tenant_id": "acme",
                    "occurred_at": "2026-02-12T16:45:01Z",
                    "goal_id": "g-7f3a",
                    "owner_id": "e-1042",
                    "from_status": "on_track",
                    "to_status": "at_risk",
                    "suggested": True,
                    "changed_by": None,
                }
            ]
        }
    )

    goal_id: Identifier = Field(description=_GOAL_ID)
    owner_id: Identifier = Field(description="The goal's owner (employee, org unit or tenant id).")
    from_status: GoalStatus = Field(description="Status before the change.")
    to_status: GoalStatus = Field(description="Status after the change.")
    suggested: bool = Field(
        description="True when Rhythm derived the status (e.g. low confidence), not a person."
    )
    changed_by: Identifier | None = Field(
        default=None, description="Employee id of who set it; null when suggested by Rhythm."
    )

    @model_validator(mode="after")
    def _a_change(self) -> GoalStatusChanged:
        if self.from_status == self.to_status:
            raise ValueError("from_status and to_status are the same")
        if not self.suggested and self.changed_by is None:
            raise ValueError("a status set by a person names them in changed_by")
        return self


class GoalStale(_GoalEvent):
    """Nobody recorded progress on a goal for its update interval."""

    type: ClassVar[str] = "rhythm.goal.stale.v1"

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "tenant_id": "acme",
                    "occurred_at": "2026-03-01T06:00:00Z",
                    "goal_id": "g-7f3a",
                    "owner_id": "e-1042",
                    "last_progress_at": "2026-02-12T15:45:00Z",
                    "update_interval_days": 14,
                }
            ]
        }
    )

    goal_id: Identifier = Field(description=_GOAL_ID)
    owner_id: Identifier = Field(description="The goal's owner (employee, org unit or tenant id).")
    last_progress_at: Instant = Field(
        description="Last recorded progress; the goal's creation time if none was recorded."
    )
    update_interval_days: UpdateInterval = Field(description=_INTERVAL)


class GoalArchived(_GoalEvent):
    """A goal left the active set; it no longer goes stale or counts in current progress."""

    type: ClassVar[str] = "rhythm.goal.archived.v1"

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "tenant_id": "acme",
                    "occurred_at": "2026-04-01T00:00:00Z",
                    "goal_id": "g-7f3a",
                    "reason": "period_ended",
                }
            ]
        }
    )

    goal_id: Identifier = Field(description=_GOAL_ID)
    reason: ArchiveReason = Field(description="Why the goal was archived.")
