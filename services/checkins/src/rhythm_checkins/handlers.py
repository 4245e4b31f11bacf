"""The explicit map from each message to the one function that handles it.

Command handlers are what the HTTP API and the jobs call; event handlers are what the consumer
registers. Each is ``verb_noun(uow, message)``, typed by its message; the functions live in
:mod:`rhythm_checkins.use_cases`, one module per area.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from rhythm_checkins.commands import (
    AddActionItem,
    CancelCheckin,
    Command,
    CompleteCheckin,
    GiveFeedback,
    RecordNotes,
    RemoveDueTexts,
    RequestFeedback,
    RescheduleCheckin,
    ScheduleCheckin,
    SetActionItemDone,
    SetPolicy,
    SetTenantSettings,
    SubmitReflection,
    SweepCadence,
)
from rhythm_checkins.use_cases.cadence import set_policy, sweep_cadence
from rhythm_checkins.use_cases.checkins import (
    add_action_item,
    cancel_checkin,
    complete_checkin,
    record_notes,
    reschedule_checkin,
    schedule_checkin,
    set_action_item_done,
    set_tenant_settings,
    submit_reflection,
)
from rhythm_checkins.use_cases.erasure import erase_person
from rhythm_checkins.use_cases.feedback import give_feedback, request_feedback
from rhythm_checkins.use_cases.goals import (
    apply_goal_archived,
    apply_goal_created,
    apply_goal_progress,
)
from rhythm_checkins.use_cases.people import apply_employee, apply_org_unit, apply_person_key
from rhythm_checkins.use_cases.retention import remove_due_texts
from rhythm_shared.contracts.base import Event
from rhythm_shared.contracts.v1 import (
    EmployeeDeactivated,
    EmployeeErased,
    EmployeeUpserted,
    GoalArchived,
    GoalCreated,
    GoalProgressRecorded,
    OrgUnitUpserted,
    PersonKeyDestroyed,
    PersonKeyIssued,
)
from rhythm_shared.contracts.v2 import EmployeeUpsertedV2

Handler = Callable[[Any, Any], Awaitable[Any]]

COMMAND_HANDLERS: dict[type[Command], Handler] = {
    ScheduleCheckin: schedule_checkin,
    RescheduleCheckin: reschedule_checkin,
    CancelCheckin: cancel_checkin,
    SubmitReflection: submit_reflection,
    RecordNotes: record_notes,
    AddActionItem: add_action_item,
    SetActionItemDone: set_action_item_done,
    CompleteCheckin: complete_checkin,
    SetTenantSettings: set_tenant_settings,
    GiveFeedback: give_feedback,
    RequestFeedback: request_feedback,
    SetPolicy: set_policy,
    SweepCadence: sweep_cadence,
    RemoveDueTexts: remove_due_texts,
}

EVENT_HANDLERS: dict[type[Event], Handler] = {
    EmployeeUpserted: apply_employee,
    EmployeeUpsertedV2: apply_employee,
    EmployeeDeactivated: apply_employee,
    EmployeeErased: erase_person,
    PersonKeyIssued: apply_person_key,
    PersonKeyDestroyed: apply_person_key,
    OrgUnitUpserted: apply_org_unit,
    GoalCreated: apply_goal_created,
    GoalArchived: apply_goal_archived,
    GoalProgressRecorded: apply_goal_progress,
}


async def handle(uow: Any, command: Command) -> Any:
    """Run ``command`` with the handler the map names for it, in ``uow``."""
    return await COMMAND_HANDLERS[type(command)](uow, command)
