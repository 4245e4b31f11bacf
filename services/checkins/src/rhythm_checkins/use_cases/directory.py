"""Reads of the people directory (the kit's one view of people and org units) for this service.

The directory is projected from rhythm.people.v1 by :mod:`rhythm_checkins.use_cases.people`;
this module only reads it, so cadence and conversations can use it without importing the
reactions to people events (which plan obligations and so import cadence).
"""

from __future__ import annotations

from datetime import date

from rhythm_checkins.adapters.db import directory
from rhythm_checkins.domain.policy import EmployeeProfile
from rhythm_shared.kit.people import PeopleDirectory, Person
from rhythm_shared.kit.uow import UnitOfWork


def people(uow: UnitOfWork, tenant_id: str) -> PeopleDirectory:
    """The tenant's directory for this unit of work (reads are memoised on it)."""
    return PeopleDirectory(uow.session, directory, tenant_id)


async def get_employee(uow: UnitOfWork, tenant_id: str, employee_id: str) -> Person | None:
    return await people(uow, tenant_id).person(employee_id)


async def manager_chain(uow: UnitOfWork, tenant_id: str, employee_id: str) -> list[str]:
    """The employee's manager, their manager, ... up to the top (loops cut off)."""
    return await people(uow, tenant_id).manager_chain(employee_id)


async def employee_profile(people_dir: PeopleDirectory, employee_id: str) -> EmployeeProfile | None:
    """What the cadence needs of an employee, with their unit's chain up to the root."""
    person = await people_dir.person(employee_id)
    if person is None:
        return None
    units: tuple[str, ...] = ()
    if person.org_unit_id is not None:
        found = await people_dir.units_upwards(person.org_unit_id)
        units = tuple(u.org_unit_id for u in found) or (person.org_unit_id,)
    return EmployeeProfile(
        employee_id=person.employee_id,
        manager_id=person.manager_id,
        org_unit_id=person.org_unit_id or "",
        time_zone=person.time_zone,
        # Every upsert carries a hire date; only a row migrated without one lacks it.
        hired_on=person.hired_on or date.min,
        active=person.active,
        deactivated_at=person.deactivated_at,
        org_unit_chain=units,
    )
