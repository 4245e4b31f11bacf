"""Commands: what a caller asks the goals service to do (imperative names).

They are pydantic models, so the HTTP API validates types and shapes with them (422 with
field-level messages) and documents them with examples; rules that need more than one field
or the database live in :mod:`rhythm_goals.domain` and :mod:`rhythm_goals.use_cases`.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from rhythm_goals.domain import DEFAULT_UPDATE_INTERVAL_DAYS
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

Number = Annotated[float, Field(allow_inf_nan=False)]
Description = Annotated[str, Field(max_length=10_000)]
Interval = Annotated[int, Field(ge=1, le=366)]


class _Command(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class KeyResultInput(_Command):
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


_KR_EXAMPLE: dict[str, Any] = {
    "key_result_id": "kr-1",
    "title": "p95 checkout latency",
    "unit": "ms",
    "start": 840,
    "target": 420,
    "direction": "decrease",
    "weight": 2,
}


class CreateGoal(_Command):
    """Set a goal for a person, an org unit or the company."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "owner_type": "person",
                    "owner_id": "e-1042",
                    "title": "Cut checkout latency in half",
                    "description": "Customers abandon slow checkouts.",
                    "kind": "okr",
                    "visibility": "tenant",
                    "period_start": "2026-01-01",
                    "period_end": "2026-03-31",
                    "parent_goal_id": None,
                    "update_interval_days": 14,
                    "key_results": [_KR_EXAMPLE],
                }
            ]
        }
    )

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


class UpdateGoal(_Command):
    """Revise a goal's definition; only the fields given change.

    ``key_results`` replaces the list: entries with a known ``key_result_id`` keep their current
    value, new ones start at their start value, missing ones are removed.
    """

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"title": "Cut checkout latency by 60 %", "period_end": "2026-04-30"}]
        }
    )

    title: Title | None = None
    description: Description | None = None
    kind: GoalKind | None = None
    visibility: Visibility | None = None
    period_start: date | None = None
    period_end: date | None = None
    update_interval_days: Interval | None = None
    key_results: list[KeyResultInput] | None = Field(default=None, max_length=50)


class RecordProgress(_Command):
    """Record a new value for a key result, with how confident the owner is."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"value": 610, "confidence": 0.7, "comment": "CDN rollout halfway."}]
        }
    )

    value: Number = Field(description="The measured value, in the key result's unit.")
    confidence: Number = Field(ge=0, le=1, description="How likely the goal is met, 0 to 1.")
    comment: Description | None = Field(default=None, description="Stays in the goals service.")


class ChangeStatus(_Command):
    """Set the status by hand, or (status null) hand it back to Rhythm's suggestion."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"status": "at_risk"}, {"status": None}]}
    )

    status: GoalStatus | None = Field(
        description="The new status; null: follow Rhythm's suggestion from progress again."
    )


class ArchiveGoal(_Command):
    model_config = ConfigDict(json_schema_extra={"examples": [{"reason": "superseded"}]})

    reason: ArchiveReason = ArchiveReason.WITHDRAWN


class AlignGoal(_Command):
    """Hang a goal under another goal (align/realign), or make it a root (null)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"parent_goal_id": "g-team-12"}]})

    parent_goal_id: Identifier | None


class TemplateTarget(StrEnum):
    PEOPLE = "people"
    TEAMS = "teams"


class GoalTemplate(_Command):
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


class BulkCreateGoals(_Command):
    """Create one goal from a template for every person (or every team) of an org unit."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "org_unit_id": "ou-platform",
                    "target": "people",
                    "include_subunits": False,
                    "template": {
                        "title": "{name}: on-call handbook up to date",
                        "kind": "okr",
                        "visibility": "tenant",
                        "period_start": "2026-04-01",
                        "period_end": "2026-06-30",
                        "parent_goal_id": "g-platform-q2",
                        "key_results": [
                            {"unit": "%", "start": 0, "target": 100, "direction": "increase"}
                        ],
                    },
                }
            ]
        }
    )

    org_unit_id: Identifier
    target: TemplateTarget = Field(
        default=TemplateTarget.PEOPLE,
        description="people: each active member; teams: each child org unit.",
    )
    include_subunits: bool = Field(
        default=False, description="people: also members of units below the org unit."
    )
    template: GoalTemplate
