"""The HTTP API under ``/v1/goals``: translate requests into commands and queries, nothing more.

A write's request model is its command's field set (:mod:`rhythm_goals.commands`) with the
examples the OpenAPI document shows; the route adds who asks (the token) and the goal (the path),
hands the command to its handler in one unit of work (with ``Idempotency-Key``, the answer is
stored in the same one), and answers with the goal as it now reads.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import JSONResponse
from pydantic import ConfigDict

from rhythm_goals import commands, handlers, queries
from rhythm_goals.adapters.unit_of_work import GoalsRuntime, SqlGoalsUnitOfWork
from rhythm_goals.queries import (
    AlignmentTree,
    BulkCreated,
    GoalFilter,
    GoalPage,
    GoalView,
    HistoryPage,
    ReportScope,
)
from rhythm_shared.contracts.base import Identifier
from rhythm_shared.contracts.v1 import GoalStatus, OwnerType
from rhythm_shared.kit.auth import Principal
from rhythm_shared.kit.http import IdempotencyKey, PrincipalDep, get_runtime, run_idempotent

router = APIRouter(prefix="/v1/goals", tags=["goals"])

GoalId = Annotated[Identifier, Path(description="The goal's id.")]
Limit = Annotated[int, Query(ge=1, le=200, description="Page size.")]
Cursor = Annotated[str | None, Query(max_length=500, description="From a page's next_cursor.")]
_ERRORS: dict[int | str, dict[str, Any]] = {
    403: {"description": "Visible to you, but not yours to change"},
    404: {"description": "No such goal in your tenant, or not visible to you"},
    409: {"description": "The goal is archived"},
    422: {"description": "Field-level messages saying what is wrong"},
}


def _filters(
    status: Annotated[GoalStatus | None, Query(description="Only goals in this status.")] = None,
    owner_type: Annotated[OwnerType | None, Query()] = None,
    owner_id: Annotated[Identifier | None, Query()] = None,
    unit: Annotated[
        Identifier | None, Query(description="Only goals owned by this org unit.")
    ] = None,
    active_on: Annotated[
        date | None, Query(description="Only goals whose period includes this day.")
    ] = None,
    period_start: Annotated[
        date | None, Query(description="Only goals starting on or after this day.")
    ] = None,
    period_end: Annotated[
        date | None, Query(description="Only goals ending on or before this day.")
    ] = None,
    include_archived: Annotated[bool, Query()] = False,
) -> GoalFilter:
    return GoalFilter(
        status=status,
        owner_type=owner_type,
        owner_id=owner_id,
        org_unit_id=unit,
        active_on=active_on,
        period_start=period_start,
        period_end=period_end,
        include_archived=include_archived,
    )


Filters = Annotated[GoalFilter, Depends(_filters)]
GoalsRuntimeDep = Annotated[GoalsRuntime, Depends(get_runtime)]


# --- request models: the commands' field sets, with their examples ----------------------------

_KR_EXAMPLE: dict[str, Any] = {
    "key_result_id": "kr-1",
    "title": "p95 checkout latency",
    "unit": "ms",
    "start": 840,
    "target": 420,
    "direction": "decrease",
    "weight": 2,
}


class CreateGoal(commands.CreateGoalFields):
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


class UpdateGoal(commands.UpdateGoalFields):
    """Revise a goal's definition; only the fields given change.

    ``key_results`` replaces the list: entries with a known ``key_result_id`` keep their current
    value, new ones start at their start value, missing ones are removed.
    """

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"title": "Cut checkout latency by 60 %", "period_end": "2026-04-30"}]
        }
    )


class RecordProgress(commands.RecordProgressFields):
    """Record a new value for a key result, with how confident the owner is."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"value": 610, "confidence": 0.7, "comment": "CDN rollout halfway."}]
        }
    )


class ChangeStatus(commands.ChangeStatusFields):
    """Set the status by hand, or (status null) hand it back to Rhythm's suggestion."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"status": "at_risk"}, {"status": None}]}
    )


class ArchiveGoal(commands.ArchiveGoalFields):
    model_config = ConfigDict(json_schema_extra={"examples": [{"reason": "superseded"}]})


class AlignGoal(commands.AlignGoalFields):
    """Hang a goal under another goal (align/realign), or make it a root (null)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"parent_goal_id": "g-team-12"}]})


class BulkCreateGoals(commands.BulkCreateGoalsFields):
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


Action = Callable[[SqlGoalsUnitOfWork], Awaitable[tuple[int, Any]]]


async def _run(
    runtime: GoalsRuntime, principal: Principal, key: str | None, fingerprint: Any, action: Action
) -> JSONResponse:
    """The kit's ``run_idempotent``, handing ``action`` the goals unit of work."""
    return await run_idempotent(runtime, principal, key, fingerprint, action)


def _goal_answer(status: int, cmd: commands.Command) -> Action:
    """The action of a command on one goal: its handler, then the goal as it now reads."""

    async def action(uow: SqlGoalsUnitOfWork) -> tuple[int, Any]:
        goal_id = await handlers.COMMAND_HANDLERS[type(cmd)](uow, cmd)
        return status, await queries.written_goal(
            uow.goals, cmd.by.tenant, goal_id, uow.clock.now()
        )

    return action


# --- writes (all accept Idempotency-Key) -------------------------------------------------------


@router.post(
    "",
    status_code=201,
    response_model=GoalView,
    responses=_ERRORS,
    summary="Set a goal for yourself, a report, a unit you head, or the company",
)
async def create_goal(
    body: CreateGoal, principal: PrincipalDep, runtime: GoalsRuntimeDep, key: IdempotencyKey = None
) -> JSONResponse:
    cmd = commands.CreateGoal(by=principal, **body.model_dump(exclude_unset=True))
    return await _run(runtime, principal, key, ["create", body], _goal_answer(201, cmd))


@router.post(
    "/bulk",
    status_code=201,
    response_model=BulkCreated,
    responses=_ERRORS,
    summary="Create a goal from a template for every person or team of an org unit",
)
async def bulk_create_goals(
    body: BulkCreateGoals,
    principal: PrincipalDep,
    runtime: GoalsRuntimeDep,
    key: IdempotencyKey = None,
) -> JSONResponse:
    cmd = commands.BulkCreateGoals(by=principal, **body.model_dump(exclude_unset=True))

    async def action(uow: SqlGoalsUnitOfWork) -> tuple[int, Any]:
        created = await handlers.COMMAND_HANDLERS[type(cmd)](uow, cmd)
        return 201, BulkCreated(count=len(created), goal_ids=created)

    return await _run(runtime, principal, key, ["bulk", body], action)


@router.patch("/{goal_id}", response_model=GoalView, responses=_ERRORS, summary="Revise a goal")
async def update_goal(
    goal_id: GoalId,
    body: UpdateGoal,
    principal: PrincipalDep,
    runtime: GoalsRuntimeDep,
    key: IdempotencyKey = None,
) -> JSONResponse:
    given = body.model_dump(exclude_unset=True)
    cmd = commands.UpdateGoal(by=principal, goal_id=goal_id, **given)
    fingerprint = ["update", goal_id, body.model_dump(mode="json", exclude_unset=True)]
    return await _run(runtime, principal, key, fingerprint, _goal_answer(200, cmd))


@router.post(
    "/{goal_id}/key-results/{key_result_id}/progress",
    status_code=201,
    response_model=GoalView,
    responses=_ERRORS,
    summary="Record progress on a key result",
)
async def record_progress(
    goal_id: GoalId,
    key_result_id: Annotated[Identifier, Path()],
    body: RecordProgress,
    principal: PrincipalDep,
    runtime: GoalsRuntimeDep,
    key: IdempotencyKey = None,
) -> JSONResponse:
    cmd = commands.RecordProgress(
        by=principal,
        goal_id=goal_id,
        key_result_id=key_result_id,
        **body.model_dump(exclude_unset=True),
    )
    fingerprint = ["progress", goal_id, key_result_id, body]
    return await _run(runtime, principal, key, fingerprint, _goal_answer(201, cmd))


@router.post(
    "/{goal_id}/status",
    response_model=GoalView,
    responses=_ERRORS,
    summary="Override the status, or hand it back to Rhythm's suggestion (status null)",
)
async def change_status(
    goal_id: GoalId,
    body: ChangeStatus,
    principal: PrincipalDep,
    runtime: GoalsRuntimeDep,
    key: IdempotencyKey = None,
) -> JSONResponse:
    cmd = commands.ChangeStatus(
        by=principal, goal_id=goal_id, **body.model_dump(exclude_unset=True)
    )
    fingerprint = ["status", goal_id, body]
    return await _run(runtime, principal, key, fingerprint, _goal_answer(200, cmd))


@router.post(
    "/{goal_id}/archive", response_model=GoalView, responses=_ERRORS, summary="Archive a goal"
)
async def archive_goal(
    goal_id: GoalId,
    principal: PrincipalDep,
    runtime: GoalsRuntimeDep,
    body: ArchiveGoal | None = None,
    key: IdempotencyKey = None,
) -> JSONResponse:
    request = body or ArchiveGoal()
    cmd = commands.ArchiveGoal(
        by=principal, goal_id=goal_id, **request.model_dump(exclude_unset=True)
    )
    fingerprint = ["archive", goal_id, request]
    return await _run(runtime, principal, key, fingerprint, _goal_answer(200, cmd))


@router.put(
    "/{goal_id}/parent",
    response_model=GoalView,
    responses=_ERRORS,
    summary="Align (or realign) a goal under a parent goal; null makes it a root",
)
async def align_goal(
    goal_id: GoalId,
    body: AlignGoal,
    principal: PrincipalDep,
    runtime: GoalsRuntimeDep,
    key: IdempotencyKey = None,
) -> JSONResponse:
    cmd = commands.AlignGoal(by=principal, goal_id=goal_id, **body.model_dump(exclude_unset=True))
    fingerprint = ["align", goal_id, body]
    return await _run(runtime, principal, key, fingerprint, _goal_answer(200, cmd))


# --- reads ------------------------------------------------------------------------------------


@router.get("", response_model=GoalPage, summary="Goals visible to you, filtered and paginated")
async def list_goals(
    principal: PrincipalDep,
    runtime: GoalsRuntimeDep,
    filters: Filters,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> GoalPage:
    async with queries.reading(runtime) as reader:
        return await queries.list_goals(reader, principal, filters, cursor, limit)


@router.get("/mine", response_model=GoalPage, summary="Your own goals")
async def my_goals(
    principal: PrincipalDep,
    runtime: GoalsRuntimeDep,
    filters: Filters,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> GoalPage:
    async with queries.reading(runtime) as reader:
        return await queries.my_goals(reader, principal, filters, cursor, limit)


@router.get("/reports", response_model=GoalPage, summary="Your reports' goals")
async def reports_goals(
    principal: PrincipalDep,
    runtime: GoalsRuntimeDep,
    filters: Filters,
    scope: Annotated[
        ReportScope, Query(description="direct reports, or all below you")
    ] = ReportScope.DIRECT,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> GoalPage:
    async with queries.reading(runtime) as reader:
        return await queries.reports_goals(reader, principal, scope, filters, cursor, limit)


@router.get(
    "/org-units/{org_unit_id}",
    response_model=GoalPage,
    responses={404: _ERRORS[404]},
    summary="Goals of an org unit (optionally its subunits and members)",
)
async def org_unit_goals(
    org_unit_id: Annotated[Identifier, Path()],
    principal: PrincipalDep,
    runtime: GoalsRuntimeDep,
    filters: Filters,
    include_subunits: Annotated[bool, Query()] = False,
    include_members: Annotated[bool, Query(description="Also the members' own goals.")] = False,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> GoalPage:
    async with queries.reading(runtime) as reader:
        return await queries.org_unit_goals(
            reader,
            principal,
            org_unit_id,
            include_subunits=include_subunits,
            include_members=include_members,
            f=filters,
            cursor=cursor,
            limit=limit,
        )


@router.get("/{goal_id}", response_model=GoalView, responses={404: _ERRORS[404]}, summary="A goal")
async def get_goal(goal_id: GoalId, principal: PrincipalDep, runtime: GoalsRuntimeDep) -> GoalView:
    async with queries.reading(runtime) as reader:
        return await queries.get_goal(reader, goal_id, principal)


@router.get(
    "/{goal_id}/tree",
    response_model=AlignmentTree,
    responses={404: _ERRORS[404]},
    summary="The alignment tree around a goal: its ancestors and descendants",
)
async def alignment_tree(
    goal_id: GoalId,
    principal: PrincipalDep,
    runtime: GoalsRuntimeDep,
    depth: Annotated[int, Query(ge=0, le=10, description="Levels below the goal.")] = 5,
    include_archived: Annotated[bool, Query()] = False,
) -> AlignmentTree:
    async with queries.reading(runtime) as reader:
        return await queries.alignment_tree(
            reader, goal_id, principal, depth=depth, include_archived=include_archived
        )


@router.get(
    "/{goal_id}/history",
    response_model=HistoryPage,
    responses={404: _ERRORS[404]},
    summary="Every change of a goal: who changed what, and when",
)
async def goal_history(
    goal_id: GoalId,
    principal: PrincipalDep,
    runtime: GoalsRuntimeDep,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> HistoryPage:
    async with queries.reading(runtime) as reader:
        return await queries.goal_history(reader, goal_id, principal, cursor, limit)
