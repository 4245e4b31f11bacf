"""Commands: what a caller asks the goals service to do (imperative names), each handled by one
function of :mod:`rhythm_goals.handlers`.

A command is a frozen pydantic model: who asks (``by``), which goal (``goal_id``) and what they
ask for. What a caller may send is declared once here, in the field sets the commands are made
of (``...Fields``); the HTTP API's request models (:mod:`rhythm_goals.entrypoints.http`) are the
same field sets with their examples, so types and shapes are validated where they come in (422
with field-level messages). Rules that need more than one field or the stored goals live in
:mod:`rhythm_goals.domain` and the use cases.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from rhythm_goals.domain.model import DEFAULT_UPDATE_INTERVAL_DAYS
from rhythm_shared.contracts.base import Identifier
from rhythm_shared.contracts.v1 import (
    ArchiveReason,
    Direction,
    GoalKind,
    GoalStatus,
    OwnerType,
    Visibility,
)
from rhythm_shared.contracts.v1.values import MeasureUnit, Title
from rhythm_shared.kit.auth import Principal

Number = Annotated[float, Field(allow_inf_nan=False)]
Description = Annotated[str, Field(max_length=10_000)]
Interval = Annotated[int, Field(ge=1, le=366)]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)


class Command(_Frozen):
    """Every command names who asks; what they may do follows from it (domain.access)."""

    by: Principal


class OnGoal(Command):
    """A command on one goal of the caller's tenant."""

    goal_id: Identifier


class KeyResultInput(_Frozen):
    """A key result: a metric moving from start to target in a direction."""

    key_result_id: Identifier | None = Field(
        default=None,
        description="Stable id within the goal; generated (kr-1, kr-2, ...) if absent.",
    )
    title: Title | None = Field(default=None, description="What is measured, in words.")
    unit: MeasureUnit = Field(examples=["%"])
    start: Number = Field(description="Value at the start of the period.")
    target: Number = Field(description="Value that means the key result is met.")
    direction: Direction = Field(
        default=Direction.INCREASE, description="Whether progress means going up or down."
    )
    weight: Number = Field(default=1.0, gt=0, le=100, description="Relative weight.")


class CreateGoalFields(_Frozen):
    """What a new goal is: its owner, definition, period, alignment and key results."""

    owner_type: OwnerType = Field(default=OwnerType.PERSON, description="Who owns the goal.")
    owner_id: Identifier | None = Field(
        default=None,
        description="Employee id, org unit id or tenant id; defaults to the caller for a person.",
    )
    title: Title
    description: Description | None = None
    kind: GoalKind = GoalKind.OKR
    visibility: Visibility = Visibility.TENANT
    period_start: date
    period_end: date
    parent_goal_id: Identifier | None = Field(
        default=None, description="The goal this one contributes to (alignment)."
    )
    update_interval_days: Interval = Field(
        default=DEFAULT_UPDATE_INTERVAL_DAYS,
        description="Days without progress after which the goal is stale.",
    )
    key_results: list[KeyResultInput] = Field(default_factory=list, max_length=50)


class CreateGoal(CreateGoalFields, Command):
    """Set a goal for a person, an org unit or the company."""


class UpdateGoalFields(_Frozen):
    """Revise a goal's definition; only the fields given change.

    ``key_results`` replaces the list: entries with a known ``key_result_id`` keep their current
    value, new ones start at their start value, missing ones are removed.
    """

    title: Title | None = None
    description: Description | None = None
    kind: GoalKind | None = None
    visibility: Visibility | None = None
    period_start: date | None = None
    period_end: date | None = None
    update_interval_days: Interval | None = None
    key_results: list[KeyResultInput] | None = Field(default=None, max_length=50)


class UpdateGoal(UpdateGoalFields, OnGoal):
    """Revise a goal; the fields set on the command (``model_fields_set``) are the ones asked."""


class RecordProgressFields(_Frozen):
    """Record a new value for a key result, with how confident the owner is."""

    value: Number = Field(description="The measured value, in the key result's unit.")
    confidence: Number = Field(ge=0, le=1, description="How likely the goal is met, 0 to 1.")
    comment: Description | None = Field(default=None, description="Stays in the goals service.")


class RecordProgress(RecordProgressFields, OnGoal):
    key_result_id: Identifier


class ChangeStatusFields(_Frozen):
    """Set the status by hand, or (status null) hand it back to Rhythm's suggestion."""

    status: GoalStatus | None = Field(
        description="The new status; null: follow Rhythm's suggestion from progress again."
    )


class ChangeStatus(ChangeStatusFields, OnGoal):
    pass


class ArchiveGoalFields(_Frozen):
    reason: ArchiveReason = ArchiveReason.WITHDRAWN


class ArchiveGoal(ArchiveGoalFields, OnGoal):
    pass


class AlignGoalFields(_Frozen):
    """Hang a goal under another goal (align/realign), or make it a root (null)."""

    parent_goal_id: Identifier | None


class AlignGoal(AlignGoalFields, OnGoal):
    pass


class TemplateTarget(StrEnum):
    PEOPLE = "people"
    TEAMS = "teams"


class GoalTemplate(_Frozen):
    """What every bulk-created goal looks like; ``{name}`` in the title becomes the owner's name."""

    title: Title = Field(examples=["{name}: ship the Q2 reliability plan"])
    description: Description | None = None
    kind: GoalKind = GoalKind.OKR
    visibility: Visibility = Visibility.TENANT
    period_start: date
    period_end: date
    parent_goal_id: Identifier | None = None
    update_interval_days: Interval = DEFAULT_UPDATE_INTERVAL_DAYS
    key_results: list[KeyResultInput] = Field(default_factory=list, max_length=50)


class BulkCreateGoalsFields(_Frozen):
    """Create one goal from a template for every person (or every team) of an org unit."""

    org_unit_id: Identifier
    target: TemplateTarget = Field(
        default=TemplateTarget.PEOPLE,
        description="people: each active member; teams: each child org unit.",
    )
    include_subunits: bool = Field(
        default=False, description="people: also members of units below the org unit."
    )
    template: GoalTemplate


class BulkCreateGoals(BulkCreateGoalsFields, Command):
    pass
