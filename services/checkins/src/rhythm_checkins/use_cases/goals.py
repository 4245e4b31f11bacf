"""Event-carried state from the goals service: which goals may be discussed, and their progress."""

from __future__ import annotations

from rhythm_checkins.domain.ports import CheckinsUnitOfWork
from rhythm_checkins.domain.records import Goal
from rhythm_shared.contracts.envelope import Envelope
from rhythm_shared.contracts.v1 import GoalArchived, GoalCreated, GoalProgressRecorded, OwnerType


async def apply_goal_created(uow: CheckinsUnitOfWork, envelope: Envelope[GoalCreated]) -> None:
    event = envelope.event
    if event.owner_type == OwnerType.PERSON and await uow.goals.owner_erased(
        event.tenant_id, event.owner_id
    ):
        return  # a goal of an erased person arriving late: its title is not taken in
    await uow.goals.upsert(
        Goal(
            tenant_id=event.tenant_id,
            goal_id=event.goal_id,
            owner_type=event.owner_type.value,
            owner_id=event.owner_id,
            title=event.title,
            visibility=event.visibility.value,
            progress=0.0,
            archived=False,
            updated_at=uow.clock.now(),
        )
    )


async def apply_goal_archived(uow: CheckinsUnitOfWork, envelope: Envelope[GoalArchived]) -> None:
    event = envelope.event
    await uow.goals.archive(event.tenant_id, event.goal_id, uow.clock.now())


async def apply_goal_progress(
    uow: CheckinsUnitOfWork, envelope: Envelope[GoalProgressRecorded]
) -> None:
    event = envelope.event
    await uow.goals.record_progress(
        event.tenant_id, event.goal_id, event.goal_progress, event.occurred_at, uow.clock.now()
    )
