"""People commands: one function per command, each takes the caller's unit of work.

The use cases never commit: the entrypoint (an HTTP request, the CSV import) owns the
transaction, so a sync's state and its events commit together or not at all.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from rhythm_people import domain
from rhythm_people.adapters.db import PeopleRepository, publish_all
from rhythm_people.domain import Employee, Kind, OrgUnit, Problem, StoredEmployee
from rhythm_shared.kit.errors import FieldError, InvalidInput, NotFound
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
    await publish_all(
        uow,
        [domain.employee_upserted(tenant, e, now) for e in plan.employees],
        progress.written,
    )

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
