"""The people service's handlers, and the explicit map from each message type to its handler.

One ``verb_noun(uow, message)`` function per command and per event consumed. Handlers never
commit: the entrypoint owns the transaction (an HTTP request, the CSV import, a consumed record),
so a sync's state and its events commit together or not at all. Rules come from
:mod:`rhythm_people.domain`; data goes through the unit of work's repositories
(:class:`rhythm_people.domain.ports.PeopleUnitOfWork`) — no SQL here.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from rhythm_people import commands
from rhythm_people.domain import erasure, keys, model
from rhythm_people.domain.erasure import ErasureState
from rhythm_people.domain.keys import DataKey
from rhythm_people.domain.model import Employee, Kind, OrgUnit, Problem, StoredEmployee
from rhythm_people.domain.ports import PeopleUnitOfWork, Written
from rhythm_shared.contracts.base import Event
from rhythm_shared.contracts.envelope import Envelope
from rhythm_shared.contracts.v1 import (
    EmployeeErased,
    PersonDataErased,
    PersonKeyDestroyed,
    PersonKeyIssued,
)
from rhythm_shared.contracts.v2 import EmployeeUpsertedV2
from rhythm_shared.kit.errors import Conflict, DomainError, FieldError, InvalidInput, NotFound

log = logging.getLogger("rhythm.people")

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


class PreconditionFailed(DomainError):
    """An ``If-Match`` that names a version other than the current one (RFC 7232 §3.1)."""

    status_code = 412


@dataclass(frozen=True)
class ItemOutcome:
    kind: Kind
    id: str
    outcome: str  # created | updated | unchanged | stale


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
    written: Written = lambda _n: None


# -- syncs: every route that states people goes through sync_people -------------------------------


async def sync_people(
    uow: PeopleUnitOfWork, cmd: commands.SyncPeople, *, progress: SyncProgress | None = None
) -> SyncResult:
    """Store the org units and employees HR states, and announce what changed.

    All or nothing: one bad item refuses the whole sync (:class:`PeopleRejected`). Org units are
    written and published before employees, so a consumer that reads in order finds the unit of
    an employee already known. An employee older than the state stored (``versions``) is
    ``stale`` and left as it is (two syncs of a person can arrive out of order).
    """
    tenant, units, employees = cmd.tenant, list(cmd.org_units), list(cmd.employees)
    erasure.refuse_erased(
        await uow.erasures.erased_among(tenant, [e.employee_id for e in employees])
    )
    people = uow.people
    full = len(units) + len(employees) > FULL_STATE_THRESHOLD
    if full:
        stored_units = await people.org_units(tenant)
    else:
        stored_units = await people.org_units(tenant, [u.org_unit_id for u in units])
    if cmd.keep_unit_heads:
        # Before the references are looked up: the head kept is one of them.
        units = [model.keep_head(u, stored_units.get(u.org_unit_id)) for u in units]
    if full:
        stored_employees = await people.employees(tenant)
        unit_parents = {k: u.parent_id for k, u in stored_units.items()}
        managers = {k: s.employee.manager_id for k, s in stored_employees.items()}
    else:
        stored_employees = await people.employees(tenant, [e.employee_id for e in employees])
        unit_parents = await people.unit_chains(
            tenant,
            [*(u.parent_id for u in units if u.parent_id), *(e.org_unit_id for e in employees)],
            {u.org_unit_id: u.parent_id for u in units},
        )
        managers = await people.manager_chains(
            tenant,
            [
                *(e.manager_id for e in employees if e.manager_id),
                *(u.head_id for u in units if u.head_id),
            ],
            {e.employee_id: e.manager_id for e in employees},
        )
    referenced = [
        *(e.manager_id for e in employees if e.manager_id),
        *(u.head_id for u in units if u.head_id),
    ]
    # Erased people stand as tombstones at the top of the manager tree, so a report who still
    # names them as manager (HR has not moved them yet) stays valid.
    tombstones = await uow.erasures.erased_among(tenant, referenced)
    managers = {**dict.fromkeys(tombstones), **managers}
    problems = model.check_sync(
        units, employees, unit_parents=unit_parents, employee_managers=managers
    )
    if problems:
        raise PeopleRejected(problems)

    plan = model.plan_sync(
        units,
        employees,
        stored_units=stored_units,
        stored_employees=stored_employees,
        versions=cmd.versions,
    )
    progress = progress or SyncProgress()
    progress.planned(2 * (len(plan.units) + len(plan.employees)))
    now = uow.clock.now()
    await people.save_org_units(tenant, plan.units, now, progress.written)
    await uow.publish_all(
        [model.org_unit_upserted(tenant, u, now) for u in plan.units], progress.written
    )
    await people.save_employees(tenant, plan.employees, now, progress.written, cmd.versions)
    await people.save_versions(tenant, plan.newer_versions)
    # Each person's name and address go out sealed with their data key (v2), a new person's
    # key ahead of them on rhythm.keys.v1 (domain/keys.py).
    issued, upserts = await _sealed_upserts(uow, tenant, plan.employees, now)
    await uow.publish_all(issued)
    await uow.publish_all(upserts, progress.written)

    changed = {("org_unit", u.org_unit_id) for u in plan.units}
    changed |= {("employee", e.employee_id) for e in plan.employees}
    result = SyncResult(events=len(plan.units) + len(plan.employees))
    items: list[tuple[Kind, str]] = [
        *(("org_unit", u.org_unit_id) for u in units),
        *(("employee", e.employee_id) for e in employees),
    ]
    for kind, entity_id in items:
        outcome = plan.outcome(kind, entity_id, (kind, entity_id) in changed)
        result.items.append(ItemOutcome(kind, entity_id, outcome))
        setattr(result, outcome, getattr(result, outcome) + 1)
    return result


async def _sealed_upserts(
    uow: PeopleUnitOfWork, tenant: str, employees: Sequence[Employee], now: datetime
) -> tuple[list[PersonKeyIssued], list[EmployeeUpsertedV2]]:
    """The events of a sync's changed employees: the keys issued for people who had none (to
    be published first, and stored), and every one's ``EmployeeUpsertedV2``."""
    kek = uow.keys.kek()
    ids = sorted({e.employee_id for e in employees})
    stored = await uow.keys.stored(tenant, ids)
    data_keys: dict[str, DataKey] = {}
    issued: list[PersonKeyIssued] = []
    for employee_id in ids:
        row = stored.get(employee_id)
        if row is None:
            data_keys[employee_id], announced = keys.issue_key(kek, tenant, employee_id, now)
            issued.append(announced)
        elif row.wrapped_key is None:  # destroyed: an erased person is refused before this
            raise RuntimeError(f"the data key of {employee_id!r} was destroyed")
        else:
            data_keys[employee_id] = keys.open_key(
                kek, tenant, employee_id, row.key_id, row.wrapped_key
            )
    if issued:
        await uow.keys.add(issued)
    upserts = [keys.sealed_upsert(tenant, e, data_keys[e.employee_id], now) for e in employees]
    return issued, upserts


async def upsert_employee(
    uow: PeopleUnitOfWork, cmd: commands.UpsertEmployee
) -> tuple[str, StoredEmployee]:
    """One employee through :func:`sync_people`; the outcome and the state now stored."""
    employee_id = cmd.employee.employee_id
    versions = {employee_id: cmd.source_updated_at} if cmd.source_updated_at else {}
    result = await sync_people(
        uow, commands.SyncPeople(tenant=cmd.tenant, employees=(cmd.employee,), versions=versions)
    )
    return result.items[0].outcome, await _employee(uow, cmd.tenant, employee_id)


async def upsert_org_unit(uow: PeopleUnitOfWork, cmd: commands.UpsertOrgUnit) -> str:
    """One org unit through :func:`sync_people`; its outcome."""
    result = await sync_people(
        uow, commands.SyncPeople(tenant=cmd.tenant, org_units=(cmd.org_unit,))
    )
    return result.items[0].outcome


async def _employee(uow: PeopleUnitOfWork, tenant: str, employee_id: str) -> StoredEmployee:
    stored = (await uow.people.employees(tenant, [employee_id])).get(employee_id)
    if stored is None:
        raise NotFound(f"employee {employee_id!r} not found")
    return stored


async def deactivate_employee(
    uow: PeopleUnitOfWork, cmd: commands.DeactivateEmployee
) -> tuple[StoredEmployee, bool]:
    """Deactivate an employee; returns their state and whether this changed anything."""
    stored = await _employee(uow, cmd.tenant, cmd.employee_id)
    if stored.deactivated_at is not None:
        return stored, False  # already deactivated: a retry has no second effect
    now = uow.clock.now()
    await uow.people.deactivate(cmd.tenant, cmd.employee_id, now)
    await uow.publish(
        model.employee_deactivated(cmd.tenant, cmd.employee_id, cmd.effective_at or now, now)
    )
    after = StoredEmployee(
        employee=stored.employee.model_copy(update={"active": False}), deactivated_at=now
    )
    return after, True


# -- provisioning by an identity provider (SCIM 2.0, RFC 7644) -----------------------------------


def _check_version(if_match: str | None, current: str) -> None:
    if if_match is None or if_match.strip() == "*":
        return
    offered = {tag.strip() for tag in if_match.split(",")}
    # Weak comparison (RFC 7232 §2.3.2): W/"x" and "x" name the same version.
    if current.removeprefix("W/") not in {tag.removeprefix("W/") for tag in offered}:
        raise PreconditionFailed(
            f"the resource changed: its version is {current}, the request names {if_match}"
        )


def _check_based_on(based_on: str | None, current: str) -> None:
    if based_on is not None and based_on != current:
        raise Conflict("the resource changed while the request was applied to it: send it again")


async def _provisioned_user(uow: PeopleUnitOfWork, tenant: str, employee_id: str) -> StoredEmployee:
    """A person as SCIM serves them: not one deleted over SCIM."""
    stored = (await uow.people.employees(tenant, [employee_id])).get(employee_id)
    if stored is None or stored.scim_deleted_at is not None:
        raise NotFound(f"User {employee_id!r} not found")
    return stored


async def _unit_named(
    uow: PeopleUnitOfWork, tenant: str, name: str, parent_id: str | None, new: list[OrgUnit]
) -> OrgUnit:
    unit = await uow.people.org_unit_named(tenant, name)
    if unit is None:
        unit = OrgUnit(org_unit_id=model.unit_id_for_name(name), name=name, parent_id=parent_id)
        new.append(unit)
    return unit


async def _unit_of(
    uow: PeopleUnitOfWork, tenant: str, user: model.ProvisionedUser, current: str | None
) -> tuple[str, list[OrgUnit]]:
    """The org unit a person belongs to by the documented mapping, and the units to create.

    ``department`` names the unit (by id, else by name), ``organization`` the unit above it; a
    name no unit has creates the unit (the department's under the organization's). With neither,
    the person keeps their unit, and a new person joins ``unassigned``.
    """
    new: list[OrgUnit] = []
    top = None
    if user.organization:
        top = await _unit_named(uow, tenant, user.organization, None, new)
    if user.department:
        parent = top.org_unit_id if top else None
        unit = await _unit_named(uow, tenant, user.department, parent, new)
        return unit.org_unit_id, new
    if top is not None:
        return top.org_unit_id, new
    if current is not None:
        return current, new
    if not (await uow.people.org_units(tenant, [model.UNASSIGNED_UNIT.org_unit_id])):
        new.append(model.UNASSIGNED_UNIT)
    return model.UNASSIGNED_UNIT.org_unit_id, new


def new_employee_id() -> str:
    return f"e-{uuid.uuid4().hex[:12]}"


async def provision_user(
    uow: PeopleUnitOfWork, cmd: commands.ProvisionUser
) -> tuple[StoredEmployee, str]:
    """Create (``employee_id`` None) or replace a person as an identity provider states them.

    The person goes through :func:`sync_people` like every other route, so the same events go
    out; ``active: false`` also deactivates them (``EmployeeDeactivated``). Returns the stored
    person and the outcome (created, updated, unchanged).
    """
    tenant, user, employee_id = cmd.tenant, cmd.user, cmd.employee_id
    stored: StoredEmployee | None = None
    if employee_id is not None:
        stored = await _provisioned_user(uow, tenant, employee_id)
        _check_version(cmd.if_match, model.employee_version(stored))
        _check_based_on(cmd.based_on, model.employee_version(stored))
    else:
        employee_id = user.employee_number or new_employee_id()
        existing = (await uow.people.employees(tenant, [employee_id])).get(employee_id)
        claimed = existing is not None and existing.identity.user_name is not None
        if existing is not None and existing.scim_deleted_at is None and claimed:
            raise Conflict(f"a User with id (employeeNumber) {employee_id!r} already exists")
        # A person the HR feeds created is linked; one deleted over SCIM comes back; either way
        # with their history.
        stored = existing
    _, same_name = await uow.people.scim_users(tenant, offset=0, limit=2, user_name=user.user_name)
    if any(other.employee.employee_id != employee_id for other in same_name):
        raise Conflict(f"userName {user.user_name!r} is taken by another User")

    current_unit = stored.employee.org_unit_id if stored else None
    org_unit_id, new_units = await _unit_of(uow, tenant, user, current_unit)
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
    sync = commands.SyncPeople(tenant=tenant, org_units=tuple(new_units), employees=(employee,))
    outcome = (await sync_people(uow, sync)).items[-1].outcome
    after = await _employee(uow, tenant, employee_id)
    if not user.active and after.deactivated_at is None:
        await deactivate_employee(
            uow, commands.DeactivateEmployee(tenant=tenant, employee_id=employee_id)
        )
    if after.identity != user.identity() or after.scim_deleted_at is not None:
        await uow.people.save_identity(tenant, employee_id, user.identity())
        outcome = "updated" if outcome == "unchanged" else outcome
    return await _employee(uow, tenant, employee_id), outcome


async def remove_user(uow: PeopleUnitOfWork, cmd: commands.RemoveUser) -> None:
    """A SCIM DELETE: the person is deactivated and no longer served; their history stays."""
    stored = await _provisioned_user(uow, cmd.tenant, cmd.employee_id)
    _check_version(cmd.if_match, model.employee_version(stored))
    await deactivate_employee(
        uow, commands.DeactivateEmployee(tenant=cmd.tenant, employee_id=cmd.employee_id)
    )
    await uow.people.save_identity(
        cmd.tenant, cmd.employee_id, stored.identity, deleted_at=uow.clock.now()
    )


async def _provisioned_group(
    uow: PeopleUnitOfWork, tenant: str, org_unit_id: str
) -> tuple[OrgUnit, str | None]:
    _, found = await uow.people.scim_groups(tenant, offset=0, limit=1, org_unit_id=org_unit_id)
    if not found:
        raise NotFound(f"Group {org_unit_id!r} not found")
    return found[0]


async def provision_group(
    uow: PeopleUnitOfWork, cmd: commands.ProvisionGroup
) -> tuple[OrgUnit, str]:
    """Create (``org_unit_id`` None) or rename an org unit as a SCIM Group states it."""
    tenant, name, org_unit_id = cmd.tenant, cmd.name, cmd.org_unit_id
    if org_unit_id is None:
        if await uow.people.org_unit_named(tenant, name) is not None:
            raise Conflict(f"a Group named {name!r} already exists")
        org_unit_id = model.unit_id_for_name(name)
        current = (await uow.people.org_units(tenant, [org_unit_id])).get(org_unit_id)
        unit_state: dict[str, Any] = {"org_unit_id": org_unit_id, "name": name}
        if current is not None:  # deleted over SCIM before: it comes back where it was
            unit_state |= {"parent_id": current.parent_id, "head_id": current.head_id}
    else:
        current, stored_external_id = await _provisioned_group(uow, tenant, org_unit_id)
        version = model.org_unit_version(current, stored_external_id)
        _check_version(cmd.if_match, version)
        _check_based_on(cmd.based_on, version)
        unit_state = {**current.model_dump(), "name": name}
    try:
        unit = OrgUnit(**unit_state)
    except ValidationError as exc:
        raise InvalidInput(
            [FieldError(loc=("displayName",), msg=e["msg"]) for e in exc.errors()]
        ) from None
    result = await sync_people(uow, commands.SyncPeople(tenant=tenant, org_units=(unit,)))
    await uow.people.save_unit_identity(tenant, org_unit_id, cmd.external_id)
    return unit, result.items[0].outcome


async def remove_group(uow: PeopleUnitOfWork, cmd: commands.RemoveGroup) -> None:
    """A SCIM DELETE of a Group: no longer served; the unit and its people stay (no event
    removes a unit from Rhythm)."""
    unit, external_id = await _provisioned_group(uow, cmd.tenant, cmd.org_unit_id)
    _check_version(cmd.if_match, model.org_unit_version(unit, external_id))
    await uow.people.save_unit_identity(
        cmd.tenant, cmd.org_unit_id, external_id, deleted_at=uow.clock.now()
    )


# -- erasure (GDPR Art. 17; domain/erasure.py) ----------------------------------------------------


async def erase_employee(
    uow: PeopleUnitOfWork, cmd: commands.EraseEmployee
) -> tuple[ErasureState, bool]:
    """Start the erasure of a person; returns it and whether it is new (a second request for
    the same person answers with the first erasure).

    The person's data key is destroyed, what this service holds of them deleted (their employee
    row, their events not sent yet, the kit's rows that name them) and ``EmployeeErased``
    published, in this one transaction; the people service reports its own part done at once.
    """
    tenant, employee_id = cmd.tenant, cmd.employee_id
    first = await uow.erasures.of_person(tenant, employee_id)
    if first is not None:
        return first, False
    await _employee(uow, tenant, employee_id)
    now = uow.clock.now()
    erasure_id = erasure.new_erasure_id()
    await uow.erasures.add(tenant, erasure_id, employee_id, now)
    key_id = await uow.keys.destroy(tenant, employee_id, now)
    await uow.people.delete_employee(tenant, employee_id)
    await uow.erasures.withdraw_events(tenant, employee_id)
    await uow.forget_person(tenant, employee_id)
    if key_id is not None:  # None: they never had a key, their records were v1
        await uow.publish(
            PersonKeyDestroyed(
                tenant_id=tenant, occurred_at=now, employee_id=employee_id, key_id=key_id
            )
        )
    await uow.publish(
        EmployeeErased(
            tenant_id=tenant, occurred_at=now, employee_id=employee_id, erasure_id=erasure_id
        )
    )
    await uow.publish(
        PersonDataErased(
            tenant_id=tenant,
            occurred_at=now,
            employee_id=employee_id,
            erasure_id=erasure_id,
            service=erasure.SERVICE,
        )
    )
    await uow.erasures.record_part(erasure_id, erasure.SERVICE, now)
    uow.compact_after_commit()
    state = ErasureState(erasure_id, employee_id, now, None, parts={erasure.SERVICE: now})
    return state, True


async def record_erasure_part(uow: PeopleUnitOfWork, envelope: Envelope[PersonDataErased]) -> None:
    """A service reported its part of an erasure done; the last report completes it."""
    event = envelope.event
    state = await uow.erasures.get(event.tenant_id, event.erasure_id)
    if state is None or state.employee_id != event.employee_id:
        log.warning(
            "erasure_part_unknown",
            extra={"erasure_id": event.erasure_id, "service": event.service},
        )
        return
    await uow.erasures.record_part(event.erasure_id, event.service, event.occurred_at)
    pending = set(state.pending()) - {event.service}
    if state.completed_at is None and not pending:
        await uow.erasures.complete(event.erasure_id, uow.clock.now())
        log.info("erasure_completed", extra={"erasure_id": event.erasure_id})


COMMAND_HANDLERS: dict[type[commands.Command], Callable[..., Awaitable[Any]]] = {
    commands.SyncPeople: sync_people,
    commands.UpsertEmployee: upsert_employee,
    commands.UpsertOrgUnit: upsert_org_unit,
    commands.DeactivateEmployee: deactivate_employee,
    commands.ProvisionUser: provision_user,
    commands.RemoveUser: remove_user,
    commands.ProvisionGroup: provision_group,
    commands.RemoveGroup: remove_group,
    commands.EraseEmployee: erase_employee,
}

EVENT_HANDLERS: dict[type[Event], Callable[..., Awaitable[None]]] = {
    PersonDataErased: record_erasure_part,
}
