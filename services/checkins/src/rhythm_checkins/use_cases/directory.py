"""Event-carried state from other services: people (manager chain, zone, activity) and goals."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, select, update

from rhythm_checkins.adapters.db import employees, goal_progress, goals, obligations, org_units
from rhythm_checkins.domain.obligations import OUTSTANDING, ObligationState
from rhythm_checkins.domain.policy import EmployeeProfile
from rhythm_shared.contracts.v1 import (
    EmployeeDeactivated,
    EmployeeUpserted,
    GoalArchived,
    GoalCreated,
    GoalProgressRecorded,
    OrgUnitUpserted,
)
from rhythm_shared.kit.uow import UnitOfWork

MAX_CHAIN = 32  # a manager chain or unit tree deeper than this is a cycle in the HR data

_OUTSTANDING = [s.value for s in OUTSTANDING]


@dataclass(frozen=True)
class EmployeeRow:
    employee_id: str
    manager_id: str | None
    org_unit_id: str
    time_zone: str
    active: bool
    deactivated_at: datetime | None


async def get_employee(uow: UnitOfWork, tenant_id: str, employee_id: str) -> EmployeeRow | None:
    row = (
        await uow.session.execute(
            select(employees).where(
                employees.c.tenant_id == tenant_id, employees.c.employee_id == employee_id
            )
        )
    ).first()
    if row is None:
        return None
    return EmployeeRow(
        row.employee_id,
        row.manager_id,
        row.org_unit_id,
        row.time_zone,
        row.active,
        row.deactivated_at,
    )


async def manager_chain(uow: UnitOfWork, tenant_id: str, employee_id: str) -> list[str]:
    """The employee's manager, their manager, ... up to the top (cycles cut off)."""
    chain: list[str] = []
    current = await get_employee(uow, tenant_id, employee_id)
    while current is not None and current.manager_id and len(chain) < MAX_CHAIN:
        if current.manager_id in chain or current.manager_id == employee_id:
            break
        chain.append(current.manager_id)
        current = await get_employee(uow, tenant_id, current.manager_id)
    return chain


async def org_unit_chain(uow: UnitOfWork, tenant_id: str, org_unit_id: str) -> tuple[str, ...]:
    chain = [org_unit_id]
    current: str | None = org_unit_id
    while current and len(chain) < MAX_CHAIN:
        parent = await uow.session.scalar(
            select(org_units.c.parent_id).where(
                org_units.c.tenant_id == tenant_id, org_units.c.org_unit_id == current
            )
        )
        if not parent or parent in chain:
            break
        chain.append(parent)
        current = parent
    return tuple(chain)


async def employee_profile(
    uow: UnitOfWork, tenant_id: str, employee_id: str
) -> EmployeeProfile | None:
    row = (
        await uow.session.execute(
            select(employees).where(
                employees.c.tenant_id == tenant_id, employees.c.employee_id == employee_id
            )
        )
    ).first()
    if row is None:
        return None
    return EmployeeProfile(
        employee_id=row.employee_id,
        manager_id=row.manager_id,
        org_unit_id=row.org_unit_id,
        time_zone=row.time_zone,
        hired_on=row.hired_on,
        active=row.active,
        deactivated_at=row.deactivated_at,
        org_unit_chain=await org_unit_chain(uow, tenant_id, row.org_unit_id),
    )


async def cancel_outstanding(
    uow: UnitOfWork, tenant_id: str, employee_id: str, *, due_from: datetime | None = None
) -> int:
    """Nothing more is owed: outstanding obligations (due from ``due_from``) are cancelled."""
    where = [
        obligations.c.tenant_id == tenant_id,
        obligations.c.employee_id == employee_id,
        obligations.c.state.in_(_OUTSTANDING),
    ]
    if due_from is not None:
        where.append(obligations.c.due_at >= due_from)
    result = await uow.session.execute(
        update(obligations)
        .where(and_(*where))
        .values(
            state=ObligationState.CANCELLED.value,
            next_action_at=None,
            updated_at=uow.clock.now(),
        )
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def apply_employee_upserted(uow: UnitOfWork, event: EmployeeUpserted) -> None:
    """Replace what we hold of the employee; a new manager takes over the open obligations;
    an inactive employee owes nothing; otherwise plan what they owe now."""
    from rhythm_checkins.use_cases.cadence import plan_employee  # planning needs the row first

    now = uow.clock.now()
    before = await get_employee(uow, event.tenant_id, event.employee_id)
    values = {
        "manager_id": event.manager_id,
        "org_unit_id": event.org_unit_id,
        "time_zone": event.time_zone,
        "hired_on": event.hired_on,
        "active": event.active,
        "deactivated_at": None if event.active else event.occurred_at,
        "plan_at": now if event.active else None,
        "updated_at": now,
    }
    stmt = uow.insert(employees).values(
        tenant_id=event.tenant_id, employee_id=event.employee_id, **values
    )
    await uow.session.execute(
        stmt.on_conflict_do_update(index_elements=["tenant_id", "employee_id"], set_=values)
    )
    if not event.active:
        await cancel_outstanding(uow, event.tenant_id, event.employee_id)
        return
    if before is not None and event.manager_id and before.manager_id != event.manager_id:
        await uow.session.execute(
            update(obligations)
            .where(
                obligations.c.tenant_id == event.tenant_id,
                obligations.c.employee_id == event.employee_id,
                obligations.c.state.in_(_OUTSTANDING),
            )
            .values(manager_id=event.manager_id, updated_at=now)
        )
    await plan_employee(uow, event.tenant_id, event.employee_id)


async def apply_employee_deactivated(uow: UnitOfWork, event: EmployeeDeactivated) -> None:
    now = uow.clock.now()
    effective = event.effective_at
    already_gone = effective <= now
    result = await uow.session.execute(
        update(employees)
        .where(
            employees.c.tenant_id == event.tenant_id,
            employees.c.employee_id == event.employee_id,
        )
        .values(
            active=not already_gone,
            deactivated_at=effective,
            plan_at=None if already_gone else employees.c.plan_at,
            updated_at=now,
        )
    )
    if result.rowcount == 0:  # type: ignore[attr-defined]
        return  # never heard of them: nothing is owed
    await cancel_outstanding(
        uow, event.tenant_id, event.employee_id, due_from=None if already_gone else effective
    )


async def apply_org_unit_upserted(uow: UnitOfWork, event: OrgUnitUpserted) -> None:
    values = {"parent_id": event.parent_id, "updated_at": uow.clock.now()}
    stmt = uow.insert(org_units).values(
        tenant_id=event.tenant_id, org_unit_id=event.org_unit_id, **values
    )
    await uow.session.execute(
        stmt.on_conflict_do_update(index_elements=["tenant_id", "org_unit_id"], set_=values)
    )


async def apply_goal_created(uow: UnitOfWork, event: GoalCreated) -> None:
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
