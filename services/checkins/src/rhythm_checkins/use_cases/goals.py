"""Event-carried state from the goals service: which goals may be discussed, and their progress."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select, update

from rhythm_checkins.adapters.db import directory, goal_progress, goals
from rhythm_shared.contracts.v1 import GoalArchived, GoalCreated, GoalProgressRecorded, OwnerType
from rhythm_shared.kit.uow import UnitOfWork


async def apply_goal_created(uow: UnitOfWork, event: GoalCreated) -> None:
    if event.owner_type == OwnerType.PERSON and await _erased(uow, event.tenant_id, event.owner_id):
        return  # a goal of an erased person arriving late: its title is not taken in
    values = {
        "owner_type": event.owner_type.value,
        "owner_id": event.owner_id,
        "title": event.title,
        "visibility": event.visibility.value,
        "archived": False,
        "updated_at": uow.clock.now(),
    }
    stmt = uow.insert(goals).values(
        tenant_id=event.tenant_id, goal_id=event.goal_id, progress=0.0, **values
    )
    await uow.session.execute(
        stmt.on_conflict_do_update(index_elements=["tenant_id", "goal_id"], set_=values)
    )


async def _erased(uow: UnitOfWork, tenant_id: str, employee_id: str) -> bool:
    e = directory.employees
    erased_at = await uow.session.scalar(
        select(e.c.erased_at).where(e.c.tenant_id == tenant_id, e.c.employee_id == employee_id)
    )
    return erased_at is not None


async def apply_goal_archived(uow: UnitOfWork, event: GoalArchived) -> None:
    await uow.session.execute(
        update(goals)
        .where(goals.c.tenant_id == event.tenant_id, goals.c.goal_id == event.goal_id)
        .values(archived=True, updated_at=uow.clock.now())
    )


async def apply_goal_progress(uow: UnitOfWork, event: GoalProgressRecorded) -> None:
    await uow.session.execute(
        update(goals)
        .where(goals.c.tenant_id == event.tenant_id, goals.c.goal_id == event.goal_id)
        .values(progress=event.goal_progress, updated_at=uow.clock.now())
    )
    await uow.session.execute(
        goal_progress.insert().values(
            tenant_id=event.tenant_id,
            goal_id=event.goal_id,
            progress=event.goal_progress,
            recorded_at=event.occurred_at,
        )
    )


async def unknown_goals(uow: UnitOfWork, tenant_id: str, goal_ids: Sequence[str]) -> set[str]:
    """Those of ``goal_ids`` that are not live goals of the tenant."""
    if not goal_ids:
        return set()
    known = (
        await uow.session.scalars(
            select(goals.c.goal_id).where(
                goals.c.tenant_id == tenant_id,
                goals.c.goal_id.in_(list(goal_ids)),
                goals.c.archived.is_(False),
            )
        )
    ).all()
    return set(goal_ids) - set(known)
