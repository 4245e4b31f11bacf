"""Every message the goals service handles, and the one function that handles it.

Commands come from the HTTP API (:mod:`rhythm_goals.entrypoints.http`), events from the people
and keys topics (:mod:`rhythm_goals.entrypoints.consumers`), timed rounds from the jobs
(:mod:`rhythm_goals.entrypoints.jobs`). Each function takes the unit of work the entrypoint
opened and the message; it never commits.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from rhythm_goals.commands import (
    AlignGoal,
    ArchiveGoal,
    BulkCreateGoals,
    ChangeStatus,
    Command,
    CreateGoal,
    RecordProgress,
    UpdateGoal,
)
from rhythm_goals.domain.ports import GoalsUnitOfWork
from rhythm_goals.use_cases.goals import (
    align_goal,
    archive_goal,
    bulk_create_goals,
    change_status,
    create_goal,
    record_progress,
    update_goal,
)
from rhythm_goals.use_cases.people import (
    apply_org_unit,
    apply_person,
    apply_person_key,
    archive_leavers_goals,
    erase_person,
)
from rhythm_goals.use_cases.staleness import mark_stale_goals, stale_event_id
from rhythm_shared.contracts.base import Event
from rhythm_shared.contracts.v1 import (
    EmployeeDeactivated,
    EmployeeErased,
    EmployeeUpserted,
    OrgUnitUpserted,
    PersonKeyDestroyed,
    PersonKeyIssued,
)
from rhythm_shared.contracts.v2 import EmployeeUpsertedV2

COMMAND_HANDLERS: dict[type[Command], Callable[[GoalsUnitOfWork, Any], Awaitable[Any]]] = {
    CreateGoal: create_goal,
    BulkCreateGoals: bulk_create_goals,
    UpdateGoal: update_goal,
    RecordProgress: record_progress,
    ChangeStatus: change_status,
    ArchiveGoal: archive_goal,
    AlignGoal: align_goal,
}

EVENT_HANDLERS: dict[type[Event], Callable[[GoalsUnitOfWork, Any], Awaitable[None]]] = {
    EmployeeUpserted: apply_person,
    EmployeeUpsertedV2: apply_person,
    EmployeeDeactivated: apply_person,
    EmployeeErased: erase_person,
    OrgUnitUpserted: apply_org_unit,
    PersonKeyIssued: apply_person_key,
    PersonKeyDestroyed: apply_person_key,
}

#: Timed rounds: each claims at most ``limit`` due items and returns how many it handled.
JOB_HANDLERS: dict[str, Callable[[GoalsUnitOfWork, int], Awaitable[int]]] = {
    "goal-staleness": mark_stale_goals,
    #: Deactivations dated ahead take effect: their owners' open goals are archived.
    "archive-leavers-goals": archive_leavers_goals,
}

__all__ = [
    "COMMAND_HANDLERS",
    "EVENT_HANDLERS",
    "JOB_HANDLERS",
    "align_goal",
    "apply_org_unit",
    "apply_person",
    "apply_person_key",
    "archive_goal",
    "archive_leavers_goals",
    "bulk_create_goals",
    "change_status",
    "create_goal",
    "erase_person",
    "mark_stale_goals",
    "record_progress",
    "stale_event_id",
    "update_goal",
]
