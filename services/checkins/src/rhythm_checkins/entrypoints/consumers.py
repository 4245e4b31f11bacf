"""Kafka consumers: each handler maps one event type to one use case."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rhythm_checkins.use_cases import erasure, goals, people
from rhythm_shared.contracts import topics
from rhythm_shared.contracts.envelope import Envelope
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
from rhythm_shared.kit.consumer import ConsumerSpec
from rhythm_shared.kit.uow import UnitOfWork

GROUP = "checkins"


async def on_employee_upserted(uow: UnitOfWork, envelope: Envelope) -> None:
    assert isinstance(envelope.event, EmployeeUpserted | EmployeeUpsertedV2)
    await people.apply_employee_event(uow, envelope.event, envelope.id)


async def on_employee_deactivated(uow: UnitOfWork, envelope: Envelope) -> None:
    assert isinstance(envelope.event, EmployeeDeactivated)
    await people.apply_employee_event(uow, envelope.event, envelope.id)


async def on_employee_erased(uow: UnitOfWork, envelope: Envelope) -> None:
    assert isinstance(envelope.event, EmployeeErased)
    await erasure.erase_person(uow, envelope.event, envelope.id)


async def on_person_key(uow: UnitOfWork, envelope: Envelope) -> None:
    assert isinstance(envelope.event, PersonKeyIssued | PersonKeyDestroyed)
    await people.apply_person_key(uow, envelope.event)


async def on_org_unit_upserted(uow: UnitOfWork, envelope: Envelope) -> None:
    assert isinstance(envelope.event, OrgUnitUpserted)
    await people.apply_org_unit_event(uow, envelope.event, envelope.id)


async def on_goal_created(uow: UnitOfWork, envelope: Envelope) -> None:
    assert isinstance(envelope.event, GoalCreated)
    await goals.apply_goal_created(uow, envelope.event)


async def on_goal_archived(uow: UnitOfWork, envelope: Envelope) -> None:
    assert isinstance(envelope.event, GoalArchived)
    await goals.apply_goal_archived(uow, envelope.event)


async def on_goal_progress_recorded(uow: UnitOfWork, envelope: Envelope) -> None:
    assert isinstance(envelope.event, GoalProgressRecorded)
    await goals.apply_goal_progress(uow, envelope.event)


def consumers(_runtime: Any) -> Sequence[ConsumerSpec]:
    return [
        ConsumerSpec(
            group=GROUP,
            topics=[topics.PEOPLE, topics.KEYS, topics.GOALS],
            handlers={
                EmployeeUpserted: on_employee_upserted,
                EmployeeUpsertedV2: on_employee_upserted,
                EmployeeDeactivated: on_employee_deactivated,
                EmployeeErased: on_employee_erased,
                PersonKeyIssued: on_person_key,
                PersonKeyDestroyed: on_person_key,
                OrgUnitUpserted: on_org_unit_upserted,
                GoalCreated: on_goal_created,
                GoalArchived: on_goal_archived,
                GoalProgressRecorded: on_goal_progress_recorded,
            },
        )
    ]
