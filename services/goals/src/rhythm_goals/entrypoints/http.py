"""The HTTP API under ``/v1/goals``: translate requests into commands and queries, nothing more."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import JSONResponse

from rhythm_goals import queries, use_cases
from rhythm_goals.commands import (
    AlignGoal,
    ArchiveGoal,
    BulkCreateGoals,
    ChangeStatus,
    CreateGoal,
    RecordProgress,
    UpdateGoal,
)
from rhythm_goals.queries import GoalFilter, ReportScope
from rhythm_goals.views import AlignmentTree, BulkCreated, GoalPage, GoalView, HistoryPage
from rhythm_shared.contracts.base import Identifier
from rhythm_shared.contracts.v1 import GoalStatus, OwnerType
from rhythm_shared.kit.http import IdempotencyKey, PrincipalDep, RuntimeDep, run_idempotent
from rhythm_shared.kit.uow import UnitOfWork

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


# --- writes (all accept Idempotency-Key) -------------------------------------------------------


@router.post(
    "",
    status_code=201,
    response_model=GoalView,
    responses=_ERRORS,
    summary="Set a goal for yourself, a report, a unit you head, or the company",
)
async def create_goal(
    body: CreateGoal, principal: PrincipalDep, runtime: RuntimeDep, key: IdempotencyKey = None
) -> JSONResponse:
    async def action(uow: UnitOfWork) -> tuple[int, Any]:
        return 201, await use_cases.create_goal(uow, body, principal)

    return await run_idempotent(runtime, principal, key, ["create", body], action)


@router.post(
    "/bulk",
    status_code=201,
    response_model=BulkCreated,
    responses=_ERRORS,
    summary="Create a goal from a template for every person or team of an org unit",
)
async def bulk_create_goals(
    body: BulkCreateGoals, principal: PrincipalDep, runtime: RuntimeDep, key: IdempotencyKey = None
) -> JSONResponse:
    async def action(uow: UnitOfWork) -> tuple[int, Any]:
        return 201, await use_cases.bulk_create_goals(uow, body, principal)

    return await run_idempotent(runtime, principal, key, ["bulk", body], action)


@router.patch("/{goal_id}", response_model=GoalView, responses=_ERRORS, summary="Revise a goal")
async def update_goal(
    goal_id: GoalId,
    body: UpdateGoal,
    principal: PrincipalDep,
    runtime: RuntimeDep,
    key: IdempotencyKey = None,
) -> JSONResponse:
    async def action(uow: UnitOfWork) -> tuple[int, Any]:
        return 200, await use_cases.update_goal(uow, goal_id, body, principal)

    fingerprint = ["update", goal_id, body.model_dump(mode="json", exclude_unset=True)]
    return await run_idempotent(runtime, principal, key, fingerprint, action)


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
    runtime: RuntimeDep,
    key: IdempotencyKey = None,
) -> JSONResponse:
    async def action(uow: UnitOfWork) -> tuple[int, Any]:
        return 201, await use_cases.record_progress(uow, goal_id, key_result_id, body, principal)

    fingerprint = ["progress", goal_id, key_result_id, body]
    return await run_idempotent(runtime, principal, key, fingerprint, action)


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
    runtime: RuntimeDep,
    key: IdempotencyKey = None,
) -> JSONResponse:
    async def action(uow: UnitOfWork) -> tuple[int, Any]:
        return 200, await use_cases.change_status(uow, goal_id, body, principal)

    return await run_idempotent(runtime, principal, key, ["status", goal_id, body], action)


@router.post(
    "/{goal_id}/archive", response_model=GoalView, responses=_ERRORS, summary="Archive a goal"
)
async def archive_goal(
    goal_id: GoalId,
    principal: PrincipalDep,
    runtime: RuntimeDep,
    body: ArchiveGoal | None = None,
    key: IdempotencyKey = None,
) -> JSONResponse:
    command = body or ArchiveGoal()

    async def action(uow: UnitOfWork) -> tuple[int, Any]:
        return 200, await use_cases.archive_goal(uow, goal_id, command, principal)

    return await run_idempotent(runtime, principal, key, ["archive", goal_id, command], action)


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
    runtime: RuntimeDep,
    key: IdempotencyKey = None,
) -> JSONResponse:
    async def action(uow: UnitOfWork) -> tuple[int, Any]:
        return 200, await use_cases.align_goal(uow, goal_id, body, principal)

    return await run_idempotent(runtime, principal, key, ["align", goal_id, body], action)


# --- reads ------------------------------------------------------------------------------------


@router.get("", response_model=GoalPage, summary="Goals visible to you, filtered and paginated")
async def list_goals(
    principal: PrincipalDep,
    runtime: RuntimeDep,
    filters: Filters,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> GoalPage:
    async with runtime.uow() as uow:
        return await queries.list_goals(uow, principal, filters, cursor, limit)


@router.get("/mine", response_model=GoalPage, summary="Your own goals")
async def my_goals(
    principal: PrincipalDep,
    runtime: RuntimeDep,
    filters: Filters,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> GoalPage:
    async with runtime.uow() as uow:
        return await queries.my_goals(uow, principal, filters, cursor, limit)


@router.get("/reports", response_model=GoalPage, summary="Your reports' goals")
async def reports_goals(
    principal: PrincipalDep,
    runtime: RuntimeDep,
    filters: Filters,
    scope: Annotated[
        ReportScope, Query(description="direct reports, or all below you")
    ] = ReportScope.DIRECT,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> GoalPage:
    async with runtime.uow() as uow:
        return await queries.reports_goals(uow, principal, scope, filters, cursor, limit)


@router.get(
    "/org-units/{org_unit_id}",
    response_model=GoalPage,
    responses={404: _ERRORS[404]},
    summary="Goals of an org unit (optionally its subunits and members)",
)
async def org_unit_goals(
    org_unit_id: Annotated[Identifier, Path()],
    principal: PrincipalDep,
    runtime: RuntimeDep,
    filters: Filters,
    include_subunits: Annotated[bool, Query()] = False,
    include_members: Annotated[bool, Query(description="Also the members' own goals.")] = False,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> GoalPage:
    async with runtime.uow() as uow:
        return await queries.org_unit_goals(
            uow,
            principal,
            org_unit_id,
            include_subunits=include_subunits,
            include_members=include_members,
            f=filters,
            cursor=cursor,
            limit=limit,
        )


@router.get("/{goal_id}", response_model=GoalView, responses={404: _ERRORS[404]}, summary="A goal")
async def get_goal(goal_id: GoalId, principal: PrincipalDep, runtime: RuntimeDep) -> GoalView:
    async with runtime.uow() as uow:
        return await queries.get_goal(uow, goal_id, principal)


@router.get(
    "/{goal_id}/tree",
    response_model=AlignmentTree,
    responses={404: _ERRORS[404]},
    summary="The alignment tree around a goal: its ancestors and descendants",
)
async def alignment_tree(
    goal_id: GoalId,
    principal: PrincipalDep,
    runtime: RuntimeDep,
    depth: Annotated[int, Query(ge=0, le=10, description="Levels below the goal.")] = 5,
    include_archived: Annotated[bool, Query()] = False,
) -> AlignmentTree:
    async with runtime.uow() as uow:
        return await queries.alignment_tree(
            uow, goal_id, principal, depth=depth, include_archived=include_archived
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
    runtime: RuntimeDep,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> HistoryPage:
    async with runtime.uow() as uow:
        return await queries.goal_history(uow, goal_id, principal, cursor, limit)
