"""People events: the kit's directory applies them with its one rule; this service reacts.

A late or repeated event changes nothing in the directory, so nothing happens here either. What
did change: a new manager takes over the open obligations and the check-ins still to be held;
an inactive employee owes nothing; a deactivation dated ahead cancels what falls due from then
on; otherwise the employee is planned again (zone, unit or hire date may have moved). Who left
when is recorded for the retention of their texts (:mod:`rhythm_checkins.use_cases.retention`).
"""

from __future__ import annotations

from rhythm_checkins.domain.ports import CheckinsUnitOfWork
from rhythm_checkins.domain.retention import left_at
from rhythm_checkins.use_cases.cadence import cancel_outstanding, plan_employee
from rhythm_checkins.use_cases.retention import record_departure
from rhythm_shared.contracts.envelope import Envelope
from rhythm_shared.contracts.v1 import (
    EmployeeDeactivated,
    EmployeeErased,
    EmployeeUpserted,
    OrgUnitUpserted,
    PersonKeyDestroyed,
    PersonKeyIssued,
)
from rhythm_shared.contracts.v2 import EmployeeUpsertedV2
from rhythm_shared.kit.audit import AuditAction, AuditEntry

#: The actor of access changes that arrive as people events (the HR platform, via the people
#: service), in the audit trail.
PEOPLE_ACTOR = "rhythm.people"

EmployeeEvent = EmployeeUpserted | EmployeeUpsertedV2 | EmployeeDeactivated | EmployeeErased


async def apply_employee(
    uow: CheckinsUnitOfWork,
    envelope: Envelope[EmployeeUpserted | EmployeeUpsertedV2 | EmployeeDeactivated],
) -> None:
    await react_to_employee(uow, envelope.event, envelope.id)


async def react_to_employee(uow: CheckinsUnitOfWork, event: EmployeeEvent, event_id: str) -> None:
    """The directory takes the event in; the cadence and retention follow what changed."""
    change = await uow.people.apply_employee(event, event_id)
    after = change.after
    if not change.changed or not after.known:
        return  # nothing moved, or only a deactivation is known so far (nobody to plan)
    tenant, employee_id = event.tenant_id, after.employee_id
    before = change.before if change.before is not None and change.before.known else None
    if before is not None and after.manager_id and before.manager_id != after.manager_id:
        await _new_manager(uow, tenant, employee_id, after.manager_id)
    await record_departure(uow, tenant, employee_id, left_at(after))
    now = uow.clock.now()
    if not after.active_at(now):
        await cancel_outstanding(uow, tenant, employee_id)
        await uow.cadence.set_plan_at(tenant, employee_id, None)
        return
    if after.deactivated_at is not None:
        await cancel_outstanding(uow, tenant, employee_id, due_from=after.deactivated_at)
    await plan_employee(uow, tenant, employee_id, person=after)


async def _new_manager(
    uow: CheckinsUnitOfWork, tenant: str, employee_id: str, manager_id: str
) -> None:
    """The new manager takes over what is open: obligations and check-ins not yet held (who
    may read those check-ins changes with it, so the audit trail records it)."""
    now = uow.clock.now()
    await uow.cadence.hand_over(tenant, employee_id, manager_id, now)
    open_checkins = await uow.checkins.hand_over(tenant, employee_id, manager_id, now)
    targets = [
        f"employee/{employee_id}:manager",
        *(f"checkin/{c}:participants" for c in open_checkins),
    ]
    for target in targets:
        uow.audit(
            AuditEntry(
                tenant_id=tenant,
                actor_id=PEOPLE_ACTOR,
                subject_id=employee_id,
                action=AuditAction.CHANGE_ACCESS,
                target=target,
                allowed=True,
            )
        )


async def apply_person_key(
    uow: CheckinsUnitOfWork, envelope: Envelope[PersonKeyIssued | PersonKeyDestroyed]
) -> None:
    """Keep a person's data key as ``rhythm.keys.v1`` delivers it (issued, or destroyed)."""
    await uow.people.apply_key(envelope.event)


async def apply_org_unit(uow: CheckinsUnitOfWork, envelope: Envelope[OrgUnitUpserted]) -> None:
    await uow.people.apply_org_unit(envelope.event, envelope.id)
