"""HTTP for HR systems: push employees and org units in, read them back.

Every write takes an ``Idempotency-Key`` (a retried request has no second effect) and answers
with what happened to each item: created, updated or unchanged (unchanged items publish nothing).
Callers need the ``integration`` or ``hr_admin`` role.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Annotated, Any, cast

from fastapi import APIRouter, Path, Query
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from rhythm_people import commands, handlers, queries
from rhythm_people.adapters.unit_of_work import SqlPeopleUnitOfWork
from rhythm_people.domain import access
from rhythm_people.domain.model import Employee, OrgUnit, StoredEmployee, check_tenant
from rhythm_people.handlers import PeopleRejected, SyncResult
from rhythm_shared.contracts.base import Identifier
from rhythm_shared.contracts.v1.values import DisplayName, Email, Locale, TimeZoneName
from rhythm_shared.kit.access import require, role_relationships
from rhythm_shared.kit.auth import Principal
from rhythm_shared.kit.errors import FieldError, InvalidInput
from rhythm_shared.kit.http import IdempotencyKey, PrincipalDep, RuntimeDep, run_idempotent
from rhythm_shared.kit.limits import body_limit
from rhythm_shared.kit.uow import UnitOfWork

router = APIRouter(prefix="/v1/people", tags=["people"])

#: Most items one batch request may carry; larger syncs split into several requests or use the
#: CSV import (`rhythm people import`).
MAX_BATCH = 1_000
#: A batch's own body limit (the service-wide HTTP_MAX_BODY_BYTES is for single items): 1,000
#: items at their longest legal fields (~2 KB each as escaped JSON), with room to spare.
MAX_BATCH_BYTES = 4 * 1024 * 1024

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@-]*$"
EmployeeId = Annotated[str, Path(min_length=1, max_length=128, pattern=ID_PATTERN)]
OrgUnitId = Annotated[str, Path(min_length=1, max_length=128, pattern=ID_PATTERN)]

_EMPLOYEE_EXAMPLE: dict[str, Any] = {
    "email": "ana.devries@acme.example.com",
    "display_name": "Ana de Vries",
    "manager_id": "e-0007",
    "org_unit_id": "ou-platform",
    "time_zone": "Europe/Amsterdam",
    "locale": "nl",
    "hired_on": "2023-09-01",
    "active": True,
}


class EmployeeState(BaseModel):
    """An employee's full current state in the HR platform (absent optional fields are null)."""

    model_config = ConfigDict(
        str_strip_whitespace=True,
        extra="forbid",
        json_schema_extra={"examples": [_EMPLOYEE_EXAMPLE]},
    )

    tenant_id: Identifier | None = Field(
        default=None, description="Optional; when given it must be the tenant of your token."
    )
    email: Email
    display_name: DisplayName
    manager_id: Identifier | None = None
    org_unit_id: Identifier
    time_zone: TimeZoneName = Field(description="IANA time zone, e.g. Europe/Amsterdam.")
    locale: Locale = Field(description="BCP 47 language tag: nl, en-GB.")
    hired_on: date
    active: bool = True
    source_updated_at: AwareDatetime | None = Field(
        default=None,
        description=(
            "Optional: when the HR platform last changed this person. A write older than the"
            " one stored is answered `stale` with the current state, and changes nothing."
        ),
    )


#: Fields of a request that are about the write, not the employee's state.
_NOT_STATE = {"tenant_id", "source_updated_at"}


class EmployeeItem(EmployeeState):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"employee_id": "e-1042", **_EMPLOYEE_EXAMPLE}]}
    )

    employee_id: Identifier


class OrgUnitState(BaseModel):
    """An org unit's full current state."""

    model_config = ConfigDict(
        str_strip_whitespace=True,
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"name": "Platform Engineering", "parent_id": "ou-engineering", "head_id": "e-0007"}
            ]
        },
    )

    tenant_id: Identifier | None = Field(
        default=None, description="Optional; when given it must be the tenant of your token."
    )
    name: DisplayName
    parent_id: Identifier | None = None
    head_id: Identifier | None = None


class OrgUnitItem(OrgUnitState):
    org_unit_id: Identifier


class PeopleBatch(BaseModel):
    """Up to 1,000 items, applied all or nothing; org units are applied before employees."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "org_units": [{"org_unit_id": "ou-platform", "name": "Platform"}],
                    "employees": [{"employee_id": "e-1042", **_EMPLOYEE_EXAMPLE}],
                }
            ]
        },
    )

    # Each list alone is bounded here; together they are bounded by MAX_BATCH in the handler.
    org_units: list[OrgUnitItem] = Field(default_factory=list, max_length=MAX_BATCH)
    employees: list[EmployeeItem] = Field(default_factory=list, max_length=MAX_BATCH)


class Deactivation(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"effective_at": "2026-03-31T18:00:00Z"}]}
    )

    effective_at: AwareDatetime | None = Field(
        default=None, description="From when the employee is inactive (default: now)."
    )


class EmployeeOut(BaseModel):
    employee_id: str
    email: str
    display_name: str
    manager_id: str | None
    org_unit_id: str
    time_zone: str
    locale: str
    hired_on: date
    active: bool
    deactivated_at: datetime | None = None
    source_updated_at: datetime | None = None


class OrgUnitOut(BaseModel):
    org_unit_id: str
    name: str
    parent_id: str | None
    head_id: str | None


class ItemResult(BaseModel):
    kind: str
    id: str
    outcome: str = Field(
        description="created, updated, unchanged (no event) or stale (older than stored: no event)."
    )


class BatchResult(BaseModel):
    created: int
    updated: int
    unchanged: int
    stale: int = 0
    events: int = Field(description="Events queued for rhythm.people.v1.")
    items: list[ItemResult]


class EmployeeResult(BaseModel):
    outcome: str
    employee: EmployeeOut


class OrgUnitResult(BaseModel):
    outcome: str
    org_unit: OrgUnitOut


class EmployeePage(BaseModel):
    items: list[EmployeeOut]
    next_after: str | None = Field(description="Pass as `after` for the next page; null at end.")


class OrgUnitPage(BaseModel):
    items: list[OrgUnitOut]
    next_after: str | None


def _require(principal: Principal, operation: str) -> None:
    # Tenant-wide operations: the token's roles are the caller's only relationships (access.py).
    require(
        access.POLICY,
        operation,
        frozenset(role_relationships(principal)),
        "people data is managed by the integration or hr_admin role",
    )


def _opened(uow: UnitOfWork) -> SqlPeopleUnitOfWork:
    # run_idempotent hands over the unit of work the runtime made: the service's (main.py).
    return cast(SqlPeopleUnitOfWork, uow)


def _employee_out(stored: StoredEmployee) -> EmployeeOut:
    return EmployeeOut(
        **dict(stored.employee),
        deactivated_at=stored.deactivated_at,
        source_updated_at=stored.source_updated_at,
    )


def _domain(model: type[Any], data: dict[str, Any], loc: tuple[str | int, ...]) -> Any:
    """Build a domain object; its cross-field rules become 422s at ``loc``."""
    try:
        return model(**data)
    except ValidationError as exc:
        raise InvalidInput(
            [
                FieldError(loc=(*loc, *(str(p) for p in e["loc"])), msg=e["msg"])
                for e in exc.errors()
            ]
        ) from None


def _single(exc: PeopleRejected) -> InvalidInput:
    # One item: its problems belong to the body itself, not to item 0 of a list.
    return InvalidInput([FieldError(loc=("body", *e.loc[3:]), msg=e.msg) for e in exc.errors])


def _batch_result(result: SyncResult) -> BatchResult:
    return BatchResult(
        created=result.created,
        updated=result.updated,
        unchanged=result.unchanged,
        stale=result.stale,
        events=result.events,
        items=[ItemResult(kind=i.kind, id=i.id, outcome=i.outcome) for i in result.items],
    )


@router.put(
    "/employees/{employee_id}",
    response_model=EmployeeResult,
    responses={201: {"model": EmployeeResult, "description": "Created"}},
    summary="Create or replace an employee (publishes EmployeeUpserted only when it changed)",
)
async def put_employee(
    employee_id: EmployeeId,
    body: EmployeeState,
    runtime: RuntimeDep,
    principal: PrincipalDep,
    key: IdempotencyKey = None,
) -> Any:
    _require(principal, "upsert_employee")
    check_tenant(principal.tenant, body.tenant_id)
    employee: Employee = _domain(
        Employee, {"employee_id": employee_id, **body.model_dump(exclude=_NOT_STATE)}, ("body",)
    )
    command = commands.UpsertEmployee(
        tenant=principal.tenant, employee=employee, source_updated_at=body.source_updated_at
    )

    async def action(uow: UnitOfWork) -> tuple[int, Any]:
        try:
            outcome, stored = await handlers.upsert_employee(_opened(uow), command)
        except PeopleRejected as exc:
            raise _single(exc) from None
        body_out = EmployeeResult(outcome=outcome, employee=_employee_out(stored))
        return (201 if outcome == "created" else 200), body_out

    response = await run_idempotent(
        runtime, principal, key, {"id": employee_id, **body.model_dump(mode="json")}, action
    )
    runtime.uow.events_committed.set()  # bulk outbox rows: wake the relay now
    return response


@router.post(
    "/employees:batch",
    response_model=BatchResult,
    summary="Create or replace up to 1,000 org units and employees, all or nothing",
    description=f"Bodies up to {MAX_BATCH_BYTES // (1024 * 1024)} MiB (`x-max-body-bytes`).",
    openapi_extra=body_limit(MAX_BATCH_BYTES),
)
async def post_batch(
    body: PeopleBatch, runtime: RuntimeDep, principal: PrincipalDep, key: IdempotencyKey = None
) -> Any:
    _require(principal, "sync_people")
    if len(body.org_units) + len(body.employees) > MAX_BATCH:
        raise InvalidInput.field(
            "employees", msg=f"at most {MAX_BATCH} items per request (org units included)"
        )
    errors: list[FieldError] = []
    groups: list[tuple[str, Sequence[OrgUnitItem | EmployeeItem]]] = [
        ("org_units", body.org_units),
        ("employees", body.employees),
    ]
    for name, items in groups:
        for i, item in enumerate(items):
            if item.tenant_id is not None and item.tenant_id != principal.tenant:
                errors.append(
                    FieldError(
                        loc=("body", name, i, "tenant_id"),
                        msg="does not match the tenant of your token",
                    )
                )
    units: list[OrgUnit] = []
    people: list[Employee] = []
    for i, u in enumerate(body.org_units):
        try:
            units.append(
                _domain(OrgUnit, u.model_dump(exclude={"tenant_id"}), ("body", "org_units", i))
            )
        except InvalidInput as exc:
            errors += exc.errors
    for i, e in enumerate(body.employees):
        try:
            people.append(
                _domain(Employee, e.model_dump(exclude=_NOT_STATE), ("body", "employees", i))
            )
        except InvalidInput as exc:
            errors += exc.errors
    if errors:
        raise InvalidInput(errors)

    command = commands.SyncPeople(
        tenant=principal.tenant,
        org_units=tuple(units),
        employees=tuple(people),
        versions={
            e.employee_id: e.source_updated_at for e in body.employees if e.source_updated_at
        },
    )

    async def action(uow: UnitOfWork) -> tuple[int, Any]:
        return 200, _batch_result(await handlers.sync_people(_opened(uow), command))

    response = await run_idempotent(runtime, principal, key, body.model_dump(mode="json"), action)
    runtime.uow.events_committed.set()
    return response


@router.post(
    "/employees/{employee_id}:deactivate",
    response_model=EmployeeResult,
    summary="Deactivate an employee (publishes EmployeeDeactivated once)",
)
async def deactivate_employee(
    employee_id: EmployeeId,
    runtime: RuntimeDep,
    principal: PrincipalDep,
    body: Deactivation | None = None,
    key: IdempotencyKey = None,
) -> Any:
    _require(principal, "deactivate_employee")
    effective_at = body.effective_at if body else None
    command = commands.DeactivateEmployee(
        tenant=principal.tenant, employee_id=employee_id, effective_at=effective_at
    )

    async def action(uow: UnitOfWork) -> tuple[int, Any]:
        stored, changed = await handlers.deactivate_employee(_opened(uow), command)
        outcome = "updated" if changed else "unchanged"
        return 200, EmployeeResult(outcome=outcome, employee=_employee_out(stored))

    return await run_idempotent(
        runtime,
        principal,
        key,
        {"id": employee_id, "effective_at": effective_at},
        action,
    )


@router.put(
    "/org-units/{org_unit_id}",
    response_model=OrgUnitResult,
    responses={201: {"model": OrgUnitResult, "description": "Created"}},
    summary="Create or replace an org unit (publishes OrgUnitUpserted only when it changed)",
)
async def put_org_unit(
    org_unit_id: OrgUnitId,
    body: OrgUnitState,
    runtime: RuntimeDep,
    principal: PrincipalDep,
    key: IdempotencyKey = None,
) -> Any:
    _require(principal, "upsert_org_unit")
    check_tenant(principal.tenant, body.tenant_id)
    unit: OrgUnit = _domain(
        OrgUnit, {"org_unit_id": org_unit_id, **body.model_dump(exclude={"tenant_id"})}, ("body",)
    )
    command = commands.UpsertOrgUnit(tenant=principal.tenant, org_unit=unit)

    async def action(uow: UnitOfWork) -> tuple[int, Any]:
        try:
            outcome = await handlers.upsert_org_unit(_opened(uow), command)
        except PeopleRejected as exc:
            raise _single(exc) from None
        return (201 if outcome == "created" else 200), OrgUnitResult(
            outcome=outcome, org_unit=OrgUnitOut(**dict(unit))
        )

    response = await run_idempotent(
        runtime, principal, key, {"id": org_unit_id, **body.model_dump(mode="json")}, action
    )
    runtime.uow.events_committed.set()
    return response


@router.get("/employees/{employee_id}", response_model=EmployeeOut, summary="One employee")
async def get_employee(
    employee_id: EmployeeId, runtime: RuntimeDep, principal: PrincipalDep
) -> EmployeeOut:
    _require(principal, "read_employee")
    async with runtime.uow.read() as session:
        return _employee_out(await queries.employee(session, principal.tenant, employee_id))


@router.get("/employees", response_model=EmployeePage, summary="Employees, by id, a page at a time")
async def list_employees(
    runtime: RuntimeDep,
    principal: PrincipalDep,
    after: Annotated[
        str | None, Query(description="Last employee_id of the previous page.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    org_unit_id: str | None = None,
    manager_id: str | None = None,
) -> EmployeePage:
    _require(principal, "list_employees")
    async with runtime.uow.read() as session:
        rows = await queries.employees(
            session,
            principal.tenant,
            after=after,
            limit=limit,
            org_unit_id=org_unit_id,
            manager_id=manager_id,
        )
    items = [_employee_out(r) for r in rows]
    return EmployeePage(
        items=items, next_after=items[-1].employee_id if len(items) == limit else None
    )


@router.get("/org-units/{org_unit_id}", response_model=OrgUnitOut, summary="One org unit")
async def get_org_unit(
    org_unit_id: OrgUnitId, runtime: RuntimeDep, principal: PrincipalDep
) -> OrgUnitOut:
    _require(principal, "read_org_unit")
    async with runtime.uow.read() as session:
        unit = await queries.org_unit(session, principal.tenant, org_unit_id)
    return OrgUnitOut(**dict(unit))


@router.get("/org-units", response_model=OrgUnitPage, summary="Org units, by id, a page at a time")
async def list_org_units(
    runtime: RuntimeDep,
    principal: PrincipalDep,
    after: Annotated[
        str | None, Query(description="Last org_unit_id of the previous page.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> OrgUnitPage:
    _require(principal, "list_org_units")
    async with runtime.uow.read() as session:
        units = await queries.org_units(session, principal.tenant, after=after, limit=limit)
    items = [OrgUnitOut(**dict(u)) for u in units]
    return OrgUnitPage(
        items=items, next_after=items[-1].org_unit_id if len(items) == limit else None
    )
