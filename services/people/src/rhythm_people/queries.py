"""The read side of the people service: what the HTTP and SCIM GETs answer.

Every query takes a read-only session (``async with runtime.uow.read() as session``), which
neither waits for nor blocks a sync that is writing, and reads through the repositories.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from rhythm_people.adapters.repository import SqlErasureRepository, SqlPeopleRepository
from rhythm_people.domain.erasure import ErasureState
from rhythm_people.domain.model import OrgUnit, StoredEmployee
from rhythm_shared.kit.errors import NotFound


async def employee(session: AsyncSession, tenant: str, employee_id: str) -> StoredEmployee:
    stored = (await SqlPeopleRepository(session).employees(tenant, [employee_id])).get(employee_id)
    if stored is None:
        raise NotFound(f"employee {employee_id!r} not found")
    return stored


async def org_unit(session: AsyncSession, tenant: str, org_unit_id: str) -> OrgUnit:
    unit = (await SqlPeopleRepository(session).org_units(tenant, [org_unit_id])).get(org_unit_id)
    if unit is None:
        raise NotFound(f"org unit {org_unit_id!r} not found")
    return unit


async def employees(
    session: AsyncSession,
    tenant: str,
    *,
    after: str | None = None,
    limit: int = 100,
    org_unit_id: str | None = None,
    manager_id: str | None = None,
) -> list[StoredEmployee]:
    """A page of employees by id, after ``after``."""
    return await SqlPeopleRepository(session).page_employees(
        tenant, after=after, limit=limit, org_unit_id=org_unit_id, manager_id=manager_id
    )


async def org_units(
    session: AsyncSession, tenant: str, *, after: str | None = None, limit: int = 100
) -> list[OrgUnit]:
    """A page of org units by id, after ``after``."""
    return await SqlPeopleRepository(session).page_org_units(tenant, after=after, limit=limit)


async def provisioned_user(session: AsyncSession, tenant: str, employee_id: str) -> StoredEmployee:
    """A person as SCIM serves them: not one deleted over SCIM."""
    stored = (await SqlPeopleRepository(session).employees(tenant, [employee_id])).get(employee_id)
    if stored is None or stored.scim_deleted_at is not None:
        raise NotFound(f"User {employee_id!r} not found")
    return stored


async def provisioned_users(
    session: AsyncSession,
    tenant: str,
    *,
    offset: int,
    limit: int,
    user_name: str | None = None,
    external_id: str | None = None,
    employee_id: str | None = None,
) -> tuple[int, list[StoredEmployee]]:
    """SCIM's Users matching the filter, a page of them and the total."""
    return await SqlPeopleRepository(session).scim_users(
        tenant,
        offset=offset,
        limit=limit,
        user_name=user_name,
        external_id=external_id,
        employee_id=employee_id,
    )


async def provisioned_group(
    session: AsyncSession, tenant: str, org_unit_id: str
) -> tuple[OrgUnit, str | None]:
    """An org unit as SCIM serves it (not one deleted over SCIM), with its ``externalId``."""
    _, found = await SqlPeopleRepository(session).scim_groups(
        tenant, offset=0, limit=1, org_unit_id=org_unit_id
    )
    if not found:
        raise NotFound(f"Group {org_unit_id!r} not found")
    return found[0]


async def provisioned_groups(
    session: AsyncSession,
    tenant: str,
    *,
    offset: int,
    limit: int,
    display_name: str | None = None,
    external_id: str | None = None,
    org_unit_id: str | None = None,
) -> tuple[int, list[tuple[OrgUnit, str | None]]]:
    """SCIM's Groups matching the filter, a page of them and the total."""
    return await SqlPeopleRepository(session).scim_groups(
        tenant,
        offset=offset,
        limit=limit,
        display_name=display_name,
        external_id=external_id,
        org_unit_id=org_unit_id,
    )


async def erasure(session: AsyncSession, tenant: str, erasure_id: str) -> ErasureState:
    state = await SqlErasureRepository(session).get(tenant, erasure_id)
    if state is None:
        raise NotFound(f"erasure {erasure_id!r} not found")
    return state
