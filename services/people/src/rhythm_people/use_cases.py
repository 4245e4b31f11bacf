"""People commands: one function per command, each takes the caller's unit of work.

The use cases never commit: the entrypoint (an HTTP request, the CSV import) owns the
transaction, so a sync's state and its events commit together or not at all.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from pydantic import ValidationError

from rhythm_people import domain, erasure, keys
from rhythm_people.adapters.db import PeopleRepository, publish_all
from rhythm_people.domain import (
    Employee,
    Kind,
    OrgUnit,
    Problem,
    ProvisionedUser,
    StoredEmployee,
)
from rhythm_shared.kit.errors import Conflict, DomainError, FieldError, InvalidInput, NotFound
from rhythm_shared.kit.uow import UnitOfWork

#: Above this many items a sync reads the tenant's whole state once instead of by id.
FULL_STATE_THRESHOLD = 2_000

_PLURAL: dict[Kind, str] = {"org_unit": "org_units", "employee": "employees"}


class PeopleRejected(InvalidInput):
    """A sync refused as a whole; ``problems`` says which items and fields, and why."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        super().__init__(
            [
                FieldError(
                    loc=("body", _PLURAL[p.kind], p.index, *([p.field] if p.field else [])),
                    msg=p.msg,
                )
                for p in problems
            ]
        )


@dataclass(frozen=True)
class ItemOutcome:
    kind: Kind
    id: str
    outcome: str  # created | updated | unchanged


@dataclass
class SyncResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    stale: int = 0  # older than the state stored: dropped, nothing written or published
    events: int = 0
    items: list[ItemOutcome] = field(default_factory=list)


@dataclass
class SyncProgress:
    """Callbacks for long syncs (the CSV import draws progress bars from them)."""

    planned: Callable[[int], None] = lambda _total: None
    written: Callable[[int], None] = lambda _n: None


async def sync_people(
    uow: UnitOfWork,
    tenant: str,
    units: Sequence[OrgUnit],
    employees: Sequence[Employee],
    *,
    progress: SyncProgress | None = None,
    keep_unit_heads: bool = False,
    versions: Mapping[str, datetime] | None = None,
) -> SyncResult:
    """Store the org units and employees HR states, and announce what changed.

    All or nothing: one bad item refuses the whole sync (:class:`PeopleRejected`). Org units are
    written and published before employees, so a consumer that reads in order finds the unit of
    an employee already known. With ``keep_unit_heads`` (sources that do not know heads, such as
    the CSV import), a unit without a head keeps the head it has. ``versions`` are the source's
    times of the employees' states (``source_updated_at``): an employee older than the state
    stored is ``stale`` and left as it is (two syncs of a person can arrive out of order).
    """
    await erasure.refuse_erased(uow, tenant, [e.employee_id for e in employees])
    repo = PeopleRepository(uow, tenant)
    if len(units) + len(employees) > FULL_STATE_THRESHOLD:
        stored_units = await repo.org_units()
        stored_employees = await repo.employees()
        unit_parents = {k: u.parent_id for k, u in stored_units.items()}
        managers = {k: s.employee.manager_id for k, s in stored_employees.items()}
    else:
        stored_units = await repo.org_units(u.org_unit_id for u in units)
        stored_employees = await repo.employees(e.employee_id for e in employees)
        in_sync_units = {u.org_unit_id: u.parent_id for u in units}
        in_sync_people = {e.employee_id: e.manager_id for e in employees}
        unit_parents = await repo.chains_upward(
            [*(u.parent_id for u in units if u.parent_id), *(e.org_unit_id for e in employees)],
            repo.unit_edges,
            in_sync_units,
        )
        managers = await repo.chains_upward(
            [
                *(e.manager_id for e in employees if e.manager_id),
                *(u.head_id for u in units if u.head_id),
            ],
            repo.manager_edges,
            in_sync_people,
        )
    if keep_unit_heads:
        units = [domain.keep_head(u, stored_units.get(u.org_unit_id)) for u in units]
    referenced = [
        *(e.manager_id for e in employees if e.manager_id),
        *(u.head_id for u in units if u.head_id),
    ]
    managers = {**await erasure.as_managers(uow, tenant, referenced), **managers}
    problems = domain.check_sync(
        units, employees, unit_parents=unit_parents, employee_managers=managers
    )
    if problems:
        raise PeopleRejected(problems)

    plan = domain.plan_sync(
        units,
        employees,
        stored_units=stored_units,
        stored_employees=stored_employees,
        versions=versions,
    )
    progress = progress or SyncProgress()
    progress.planned(2 * (len(plan.units) + len(plan.employees)))
    now = uow.clock.now()
    await repo.save_org_units(plan.units, now, progress.written)
    await publish_all(
        uow, [domain.org_unit_upserted(tenant, u, now) for u in plan.units], progress.written
    )
    await repo.save_employees(plan.employees, now, progress.written, versions)
    await repo.save_versions(plan.newer_versions)
    # Each person's name and address go out sealed with their data key (v2), a new person's
    # key ahead of them on rhythm.keys.v1 (keys.py).
    issued, upserts = await keys.upserts(uow, tenant, plan.employees, now)
    await publish_all(uow, issued)
    await publish_all(uow, upserts, progress.written)

    changed = {("org_unit", u.org_unit_id) for u in plan.units}
    changed |= {("employee", e.employee_id) for e in plan.employees}
    result = SyncResult(events=len(plan.units) + len(plan.employees))
    for kind, entity_id in [
        *(("org_unit", u.org_unit_id) for u in units),
        *(("employee", e.employee_id) for e in employees),
    ]:
        outcome = plan.outcome(kind, entity_id, (kind, entity_id) in changed)  # type: ignore[arg-type]
        result.items.append(ItemOutcome(kind, entity_id, outcome))  # type: ignore[arg-type]
        setattr(result, outcome, getattr(result, outcome) + 1)
    return result


def check_tenant(caller_tenant: str, stated_tenant: str | None) -> None:
    """A body may state its tenant; it must be the caller's (a token never writes elsewhere)."""
    if stated_tenant is not None and stated_tenant != caller_tenant:
        raise InvalidInput.field("tenant_id", msg="does not match the tenant of your token")


async def deactivate_employee(
    uow: UnitOfWork, tenant: str, employee_id: str, effective_at: datetime | None
) -> tuple[StoredEmployee, bool]:
    """Deactivate an employee; returns their state and whether this changed anything."""
    repo = PeopleRepository(uow, tenant)
    stored = (await repo.employees([employee_id])).get(employee_id)
    if stored is None:
        raise NotFound(f"employee {employee_id!r} not found")
    if stored.deactivated_at is not None:
        return stored, False  # already deactivated: a retry has no second effect
    now = uow.clock.now()
    await repo.deactivate(employee_id, now)
    await uow.publish(domain.employee_deactivated(tenant, employee_id, effective_at or now, now))
    after = StoredEmployee(
        employee=stored.employee.model_copy(update={"active": False}), deactivated_at=now
    )
    return after, True


async def get_employee(uow: UnitOfWork, tenant: str, employee_id: str) -> StoredEmployee:
    stored = (await PeopleRepository(uow, tenant).employees([employee_id])).get(employee_id)
    if stored is None:
        raise NotFound(f"employee {employee_id!r} not found")
    return stored


async def get_org_unit(uow: UnitOfWork, tenant: str, org_unit_id: str) -> OrgUnit:
    unit = (await PeopleRepository(uow, tenant).org_units([org_unit_id])).get(org_unit_id)
    if unit is None:
        raise NotFound(f"org unit {org_unit_id!r} not found")
    return unit


async def list_employees(
    uow: UnitOfWork,
    tenant: str,
    *,
    after: str | None = None,
    limit: int = 100,
    org_unit_id: str | None = None,
    manager_id: str | None = None,
) -> list[StoredEmployee]:
    return await PeopleRepository(uow, tenant).page_employees(
        after=after, limit=limit, org_unit_id=org_unit_id, manager_id=manager_id
    )


async def list_org_units(
    uow: UnitOfWork, tenant: str, *, after: str | None = None, limit: int = 100
) -> list[OrgUnit]:
    return await PeopleRepository(uow, tenant).page_org_units(after=after, limit=limit)


# -- provisioning by an identity provider (SCIM 2.0, RFC 7644) -----------------------------------


class PreconditionFailed(DomainError):
    """An ``If-Match`` that names a version other than the current one (RFC 7232 §3.1)."""

    status_code = 412


def _check_version(if_match: str | None, current: str) -> None:
    if if_match is None or if_match.strip() == "*":
        return
    offered = {tag.strip() for tag in if_match.split(",")}
    # Weak comparison (RFC 7232 §2.3.2): W/"x" and "x" name the same version.
    if current.removeprefix("W/") not in {tag.removeprefix("W/") for tag in offered}:
        raise PreconditionFailed(
            f"the resource changed: its version is {current}, the request names {if_match}"
        )


async def get_provisioned_user(uow: UnitOfWork, tenant: str, employee_id: str) -> StoredEmployee:
    """A person as SCIM serves them: not one deleted over SCIM."""
    stored = (await PeopleRepository(uow, tenant).employees([employee_id])).get(employee_id)
    if stored is None or stored.scim_deleted_at is not None:
        raise NotFound(f"User {employee_id!r} not found")
    return stored


async def find_provisioned_users(
    uow: UnitOfWork,
    tenant: str,
    *,
    offset: int,
    limit: int,
    user_name: str | None = None,
    external_id: str | None = None,
    employee_id: str | None = None,
) -> tuple[int, list[StoredEmployee]]:
    return await PeopleRepository(uow, tenant).scim_users(
        offset=offset,
        limit=limit,
        user_name=user_name,
        external_id=external_id,
        employee_id=employee_id,
    )


async def _unit_named(
    repo: PeopleRepository, name: str, parent_id: str | None, new: list[OrgUnit]
) -> OrgUnit:
    unit = await repo.org_unit_named(name)
    if unit is None:
        unit = domain.OrgUnit(
            org_unit_id=domain.unit_id_for_name(name), name=name, parent_id=parent_id
        )
        new.append(unit)
    return unit


async def _unit_of(
    repo: PeopleRepository, user: ProvisionedUser, current: str | None
) -> tuple[str, list[OrgUnit]]:
    """The org unit a person belongs to by the documented mapping, and the units to create.

    ``department`` names the unit (by id, else by name), ``organization`` the unit above it; a
    name no unit has creates the unit (the department's under the organization's). With neither,
    the person keeps their unit, and a new person joins ``unassigned``.
    """
    new: list[OrgUnit] = []
    top = None
    if user.organization:
        top = await _unit_named(repo, user.organization, None, new)
    if user.department:
        unit = await _unit_named(repo, user.department, top.org_unit_id if top else None, new)
        return unit.org_unit_id, new
    if top is not None:
        return top.org_unit_id, new
    if current is not None:
        return current, new
    if not (await repo.org_units([domain.UNASSIGNED_UNIT.org_unit_id])):
        new.append(domain.UNASSIGNED_UNIT)
    return domain.UNASSIGNED_UNIT.org_unit_id, new


async def provision_user(
    uow: UnitOfWork,
    tenant: str,
    user: ProvisionedUser,
    *,
    employee_id: str | None = None,
    if_match: str | None = None,
    new_id: Callable[[], str] = lambda: f"e-{uuid.uuid4().hex[:12]}",
) -> tuple[StoredEmployee, str]:
    """Create (``employee_id`` None) or replace a person as an identity provider states them.

    The person goes through :func:`sync_people` like every other route, so the same events go
    out; ``active: false`` also deactivates them (``EmployeeDeactivated``). Returns the stored
    person and the outcome (created, updated, unchanged).
    """
    repo = PeopleRepository(uow, tenant)
    stored: StoredEmployee | None = None
    if employee_id is not None:
        stored = await get_provisioned_user(uow, tenant, employee_id)
        _check_version(if_match, domain.employee_version(stored))
    else:
        employee_id = user.employee_number or new_id()
        existing = (await repo.employees([employee_id])).get(employee_id)
        claimed = existing is not None and existing.identity.user_name is not None
        if existing is not None and existing.scim_deleted_at is None and claimed:
            raise Conflict(f"a User with id (employeeNumber) {employee_id!r} already exists")
        # A person the HR feeds created is linked; one deleted over SCIM comes back; either way
        # with their history.
        stored = existing
    _, same_name = await repo.scim_users(offset=0, limit=2, user_name=user.user_name)
    if any(other.employee.employee_id != employee_id for other in same_name):
        raise Conflict(f"userName {user.user_name!r} is taken by another User")

    org_unit_id, new_units = await _unit_of(
        repo, user, stored.employee.org_unit_id if stored else None
    )
    state = {
        "employee_id": employee_id,
        "email": user.email,
        "display_name": user.display_name,
        "manager_id": user.manager_id,
        "org_unit_id": org_unit_id,
        "time_zone": user.time_zone,
        "locale": user.locale,
        # SCIM states no hire date: the day of provisioning, unless HR stated one already.
        "hired_on": stored.employee.hired_on if stored else uow.clock.now().date(),
        "active": user.active,
    }
    try:
        employee = Employee(**state)
    except ValidationError as exc:
        raise InvalidInput(
            [FieldError(loc=tuple(str(p) for p in e["loc"]), msg=e["msg"]) for e in exc.errors()]
        ) from None
    result = await sync_people(uow, tenant, new_units, [employee])
    outcome = result.items[-1].outcome
    after = (await repo.employees([employee_id]))[employee_id]
    if not user.active and after.deactivated_at is None:
        await deactivate_employee(uow, tenant, employee_id, None)
    if after.identity != user.identity() or after.scim_deleted_at is not None:
        await repo.save_identity(employee_id, user.identity())
        outcome = "updated" if outcome == "unchanged" else outcome
    return (await repo.employees([employee_id]))[employee_id], outcome


async def remove_user(
    uow: UnitOfWork, tenant: str, employee_id: str, *, if_match: str | None = None
) -> None:
    """A SCIM DELETE: the person is deactivated and no longer served; their history stays."""
    stored = await get_provisioned_user(uow, tenant, employee_id)
    _check_version(if_match, domain.employee_version(stored))
    await deactivate_employee(uow, tenant, employee_id, None)
    await PeopleRepository(uow, tenant).save_identity(
        employee_id, stored.identity, deleted_at=uow.clock.now()
    )


async def get_provisioned_group(
    uow: UnitOfWork, tenant: str, org_unit_id: str
) -> tuple[OrgUnit, str | None]:
    _, found = await PeopleRepository(uow, tenant).scim_groups(
        offset=0, limit=1, org_unit_id=org_unit_id
    )
    if not found:
        raise NotFound(f"Group {org_unit_id!r} not found")
    return found[0]


async def find_provisioned_groups(
    uow: UnitOfWork,
    tenant: str,
    *,
    offset: int,
    limit: int,
    display_name: str | None = None,
    external_id: str | None = None,
    org_unit_id: str | None = None,
) -> tuple[int, list[tuple[OrgUnit, str | None]]]:
    return await PeopleRepository(uow, tenant).scim_groups(
        offset=offset,
        limit=limit,
        display_name=display_name,
        external_id=external_id,
        org_unit_id=org_unit_id,
    )


async def provision_group(
    uow: UnitOfWork,
    tenant: str,
    name: str,
    external_id: str | None,
    *,
    org_unit_id: str | None = None,
    if_match: str | None = None,
) -> tuple[OrgUnit, str]:
    """Create (``org_unit_id`` None) or rename an org unit as a SCIM Group states it."""
    repo = PeopleRepository(uow, tenant)
    if org_unit_id is None:
        if await repo.org_unit_named(name) is not None:
            raise Conflict(f"a Group named {name!r} already exists")
        org_unit_id = domain.unit_id_for_name(name)
        current = (await repo.org_units([org_unit_id])).get(org_unit_id)
        unit_state: dict[str, str | None] = {"org_unit_id": org_unit_id, "name": name}
        if current is not None:  # deleted over SCIM before: it comes back where it was
            unit_state |= {"parent_id": current.parent_id, "head_id": current.head_id}
    else:
        current, stored_external_id = await get_provisioned_group(uow, tenant, org_unit_id)
        _check_version(if_match, domain.org_unit_version(current, stored_external_id))
        unit_state = {**current.model_dump(), "name": name}
    try:
        unit = OrgUnit(**unit_state)
    except ValidationError as exc:
        raise InvalidInput(
            [FieldError(loc=("displayName",), msg=e["msg"]) for e in exc.errors()]
        ) from None
    result = await sync_people(uow, tenant, [unit], [])
    await repo.save_unit_identity(org_unit_id, external_id)
    return unit, result.items[0].outcome


async def remove_group(
    uow: UnitOfWork, tenant: str, org_unit_id: str, *, if_match: str | None = None
) -> None:
    """A SCIM DELETE of a Group: no longer served; the unit and its people stay (no event
    removes a unit from Rhythm)."""
    unit, external_id = await get_provisioned_group(uow, tenant, org_unit_id)
    _check_version(if_match, domain.org_unit_version(unit, external_id))
    await PeopleRepository(uow, tenant).save_unit_identity(
        org_unit_id, external_id, deleted_at=uow.clock.now()
    )
