"""What the goals API answers with: read models built from rows, with their OpenAPI examples."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from rhythm_goals import domain
from rhythm_shared.contracts.v1 import (
    ArchiveReason,
    Direction,
    GoalKind,
    GoalStatus,
    OwnerType,
    Visibility,
)


class KeyResultView(BaseModel):
    key_result_id: str
    title: str | None
    unit: str
    start: float
    target: float
    current: float
    direction: Direction
    weight: float
    progress: float = Field(description="Share of the way from start to target, 0 to 1.")
    confidence: float | None


class GoalView(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "goal_id": "6b0f7c1e-4d0a-4c3e-9a55-2f4f3f7b9d10",
                    "owner_type": "person",
                    "owner_id": "e-1042",
                    "parent_goal_id": None,
                    "kind": "okr",
                    "title": "Cut checkout latency in half",
                    "description": "Customers abandon slow checkouts.",
                    "visibility": "tenant",
                    "period_start": "2026-01-01",
                    "period_end": "2026-03-31",
                    "update_interval_days": 14,
                    "status": "on_track",
                    "status_overridden": False,
                    "suggested_status": "on_track",
                    "progress": 0.42,
                    "confidence": 0.7,
                    "revision": 3,
                    "created_at": "2026-01-05T09:30:00Z",
                    "created_by": "e-1042",
                    "updated_at": "2026-02-12T15:45:00Z",
                    "last_progress_at": "2026-02-12T15:45:00Z",
                    "stale": False,
                    "stale_since": None,
                    "archived_at": None,
                    "archive_reason": None,
                    "key_results": [
                        {
                            "key_result_id": "kr-1",
                            "title": "p95 checkout latency",
                            "unit": "ms",
                            "start": 840,
                            "target": 420,
                            "current": 610,
                            "direction": "decrease",
                            "weight": 2,
                            "progress": 0.55,
                            "confidence": 0.7,
                        }
                    ],
                }
            ]
        }
    )

    goal_id: str
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
    status_overridden: bool = Field(description="True while a person's status stands.")
    suggested_status: GoalStatus = Field(description="What Rhythm suggests from progress now.")
    progress: float
    confidence: float | None
    revision: int
    created_at: datetime
    created_by: str
    updated_at: datetime
    last_progress_at: datetime | None
    stale: bool = Field(description="No progress for the update interval (reported as GoalStale).")
    stale_since: datetime | None
    archived_at: datetime | None
    archive_reason: ArchiveReason | None
    key_results: list[KeyResultView]


class GoalPage(BaseModel):
    items: list[GoalView]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null: done.")


class RevisionView(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "revision": 2,
                    "action": "updated",
                    "changes": {"title": {"from": "Old", "to": "New"}},
                    "changed_by": "e-1042",
                    "changed_at": "2026-02-10T14:00:00Z",
                }
            ]
        }
    )

    revision: int
    action: str = Field(
        description="created, updated, realigned, progress_recorded, status_changed, archived."
    )
    changes: dict[str, Any]
    changed_by: str | None = Field(description="Who changed it; null when Rhythm did.")
    changed_at: datetime


class HistoryPage(BaseModel):
    items: list[RevisionView]
    next_cursor: str | None


class TreeNode(BaseModel):
    """A goal in the alignment tree; a goal the caller may not see shows only that it exists."""

    goal_id: str
    hidden: bool = False
    owner_type: OwnerType | None = None
    owner_id: str | None = None
    title: str | None = None
    status: GoalStatus | None = None
    progress: float | None = None
    archived: bool = False
    children: list[TreeNode] = Field(default_factory=list)


class AlignmentTree(BaseModel):
    ancestors: list[TreeNode] = Field(description="From the root down to the node's parent.")
    node: TreeNode = Field(description="The goal asked for, with its descendants.")
    truncated: bool = Field(description="True when depth or size limits cut the tree short.")


class BulkCreated(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"count": 2, "goal_ids": ["6b0f7c1e-...", "9a1d2e3f-..."]}]}
    )

    count: int
    goal_ids: list[str]


def key_result_view(row: Any) -> KeyResultView:
    return KeyResultView(
        key_result_id=row.key_result_id,
        title=row.title,
        unit=row.unit,
        start=row.start,
        target=row.target,
        current=row.current,
        direction=Direction(row.direction),
        weight=row.weight,
        progress=domain.key_result_progress(row.start, row.target, row.current),
        confidence=row.confidence,
    )


def goal_view(row: Any, krs: Sequence[Any], now: datetime) -> GoalView:
    elapsed = domain.elapsed_fraction(row.period_start, row.period_end, now)
    return GoalView(
        goal_id=row.goal_id,
        owner_type=OwnerType(row.owner_type),
        owner_id=row.owner_id,
        parent_goal_id=row.parent_goal_id,
        kind=GoalKind(row.kind),
        title=row.title,
        description=row.description,
        visibility=Visibility(row.visibility),
        period_start=row.period_start,
        period_end=row.period_end,
        update_interval_days=row.update_interval_days,
        status=GoalStatus(row.status),
        status_overridden=row.status_overridden,
        suggested_status=domain.suggest_status(row.progress, elapsed, row.confidence),
        progress=row.progress,
        confidence=row.confidence,
        revision=row.revision,
        created_at=row.created_at,
        created_by=row.created_by,
        updated_at=row.updated_at,
        last_progress_at=row.last_progress_at,
        stale=row.stale_since is not None,
        stale_since=row.stale_since,
        archived_at=row.archived_at,
        archive_reason=ArchiveReason(row.archive_reason) if row.archive_reason else None,
        key_results=[key_result_view(kr) for kr in krs],
    )


def tree_node(row: Any, visible: bool) -> TreeNode:
    if not visible:
        return TreeNode(goal_id=row.goal_id, hidden=True, archived=row.archived_at is not None)
    return TreeNode(
        goal_id=row.goal_id,
        owner_type=OwnerType(row.owner_type),
        owner_id=row.owner_id,
        title=row.title,
        status=GoalStatus(row.status),
        progress=row.progress,
        archived=row.archived_at is not None,
    )
