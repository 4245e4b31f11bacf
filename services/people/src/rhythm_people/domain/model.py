"""People and org units as the HR platform states them, and the rules a sync must obey.

Pure: no I/O. A sync (one PUT, a batch, a CSV import) is a set of org units and employees in
their full current state. It is accepted only as a whole: every reference resolves (a manager,
an org unit, a parent unit, a unit head), the manager chain and the unit tree stay trees, and no
id appears twice. Only what actually changed becomes an event, so a full HR sync of an unchanged
organisation publishes nothing.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from rhythm_shared.contracts.base import Identifier
from rhythm_shared.contracts.v1.people import (
    EmployeeDeactivated,
    EmployeeUpserted,
    OrgUnitUpserted,
)
from rhythm_shared.contracts.v1.values import DisplayName, Email, Locale, TimeZoneName
from rhythm_shared.kit.errors import InvalidInput

Kind = Literal["org_unit", "employee"]


class OrgUnit(BaseModel):
    """An org unit (department, team) in its full current state."""

    model_config = ConfigDict(frozen=True, str_strip_whitespace=True, extra="forbid")

    org_unit_id: Identifier
    name: DisplayName
    parent_id: Identifier | None = None
    head_id: Identifier | None = None


class Employee(BaseModel):
    """An employee in their full current state, with the contract's field types."""

    model_config = ConfigDict(frozen=True, str_strip_whitespace=True, extra="forbid")

    employee_id: Identifier
    email: Email
    display_name: DisplayName
    manager_id: Identifier | None = None
    org_unit_id: Identifier
    time_zone: TimeZoneName
    locale: Locale
    hired_on: date
    active: bool = Field(default=True)


@dataclass(frozen=True)
class Problem:
    """Why one item of a sync is refused: which item (kind, index), which field, what is wrong."""

    kind: Kind
    index: int
    field: str | None
    msg: str


@dataclass(frozen=True)
class SourceIdentity:
    """How an identity provider names a person (SCIM ``userName``, ``externalId``) and the
    department and organization it states; empty for people only the HR feeds sent."""

    user_name: str | None = None
    external_id: str | None = None
    department: str | None = None
    organization: str | None = None


@dataclass(frozen=True)
class StoredEmployee:
    """What the service holds for an employee: the HR state plus its deactivation, the newest
    version the source stated (``source_updated_at``) and the identity provider's names."""

    employee: Employee
    deactivated_at: datetime | None = None
    source_updated_at: datetime | None = None
    identity: SourceIdentity = field(default_factory=SourceIdentity)
    scim_deleted_at: datetime | None = None


@dataclass
class Plan:
    """What a sync changes: the items to store and announce, and what stays as it is."""

    units: list[OrgUnit] = field(default_factory=list)
    employees: list[Employee] = field(default_factory=list)
    created: set[tuple[Kind, str]] = field(default_factory=set)
    stale: set[str] = field(default_factory=set)
    #: Unchanged employees whose source version moved on: only the version is stored.
    newer_versions: dict[str, datetime] = field(default_factory=dict)
    unchanged_units: int = 0
    unchanged_employees: int = 0

    def outcome(self, kind: Kind, entity_id: str, changed: bool) -> str:
        if kind == "employee" and entity_id in self.stale:
            return "stale"
        if not changed:
            return "unchanged"
        return "created" if (kind, entity_id) in self.created else "updated"


def check_sync(
    units: Sequence[OrgUnit],
    employees: Sequence[Employee],
    *,
    unit_parents: Mapping[str, str | None],
    employee_managers: Mapping[str, str | None],
) -> list[Problem]:
    """Every rule that spans items: duplicates, references and cycles.

    ``unit_parents`` and ``employee_managers`` are the stored edges; they must hold at least every
    stored id the sync refers to and their chains upward (the whole tenant will always do).
    """
    problems: list[Problem] = []
    problems += _duplicates("org_unit", [u.org_unit_id for u in units], "org_unit_id")
    problems += _duplicates("employee", [e.employee_id for e in employees], "employee_id")

    parents = dict(unit_parents)
    parents.update((u.org_unit_id, u.parent_id) for u in units)
    managers = dict(employee_managers)
    managers.update((e.employee_id, e.manager_id) for e in employees)

    for i, u in enumerate(units):
        if u.parent_id is not None and u.parent_id not in parents:
            problems.append(
                Problem("org_unit", i, "parent_id", f"unknown org unit {u.parent_id!r}")
            )
        if u.head_id is not None and u.head_id not in managers:
            problems.append(Problem("org_unit", i, "head_id", f"unknown employee {u.head_id!r}"))
    for i, e in enumerate(employees):
        if e.org_unit_id not in parents:
            problems.append(
                Problem("employee", i, "org_unit_id", f"unknown org unit {e.org_unit_id!r}")
            )
        if e.manager_id is not None and e.manager_id not in managers:
            problems.append(
                Problem("employee", i, "manager_id", f"unknown manager {e.manager_id!r}")
            )

    unit_index = {u.org_unit_id: i for i, u in enumerate(units)}
    for cycle in find_cycles(parents, unit_index):
        msg = _cycle_message(cycle, "an org unit cannot be its own parent", "unit tree cycle")
        for node in cycle:
            if node in unit_index:
                problems.append(Problem("org_unit", unit_index[node], "parent_id", msg))
    employee_index = {e.employee_id: i for i, e in enumerate(employees)}
    for cycle in find_cycles(managers, employee_index):
        msg = _cycle_message(cycle, "an employee cannot be their own manager", "manager cycle")
        for node in cycle:
            if node in employee_index:
                problems.append(Problem("employee", employee_index[node], "manager_id", msg))
    return sorted(problems, key=lambda p: (p.kind != "org_unit", p.index))


def _cycle_message(cycle: Sequence[str], self_loop: str, name: str) -> str:
    if len(cycle) == 1:
        return self_loop
    shown = cycle if len(cycle) <= 6 else [*cycle[:5], "…"]
    return f"{name}: {' → '.join([*shown, cycle[0]])}"


def _duplicates(kind: Kind, ids: Sequence[str], field_name: str) -> list[Problem]:
    seen: set[str] = set()
    problems = []
    for i, entity_id in enumerate(ids):
        if entity_id in seen:
            problems.append(Problem(kind, i, field_name, f"{entity_id!r} appears more than once"))
        seen.add(entity_id)
    return problems


def find_cycles(parent_of: Mapping[str, str | None], starts: Iterable[str]) -> list[list[str]]:
    """Cycles reachable by following ``parent_of`` upward from ``starts`` (each cycle once).

    Linear in the nodes visited: each node is walked at most once across all starts.
    """
    done: set[str] = set()
    cycles: list[list[str]] = []
    for start in starts:
        path: list[str] = []
        on_path: dict[str, int] = {}
        node: str | None = start
        while node is not None and node not in done:
            if node in on_path:
                cycles.append(path[on_path[node] :])
                break
            on_path[node] = len(path)
            path.append(node)
            node = parent_of.get(node)
        done.update(path)
    return cycles


def plan_sync(
    units: Sequence[OrgUnit],
    employees: Sequence[Employee],
    *,
    stored_units: Mapping[str, OrgUnit],
    stored_employees: Mapping[str, StoredEmployee],
    versions: Mapping[str, datetime] | None = None,
) -> Plan:
    """Keep only what differs from the stored state (last write wins per id).

    ``versions`` are the source's own times of the employees' states (``source_updated_at``):
    a state older than the one stored is a delayed write (a retry behind an outage) and is
    dropped as ``stale``, so an older write never overwrites a newer one. Without a version a
    write is taken as the newest.
    """
    versions = versions or {}
    plan = Plan()
    for u in units:
        before = stored_units.get(u.org_unit_id)
        if before is None:
            plan.created.add(("org_unit", u.org_unit_id))
        if before != u:
            plan.units.append(u)
        else:
            plan.unchanged_units += 1
    for e in employees:
        stored = stored_employees.get(e.employee_id)
        version = versions.get(e.employee_id)
        if (
            stored is not None
            and version is not None
            and stored.source_updated_at is not None
            and version < stored.source_updated_at
        ):
            plan.stale.add(e.employee_id)
            plan.unchanged_employees += 1
            continue
        if stored is None:
            plan.created.add(("employee", e.employee_id))
        # Deactivation stores active=False, so an employee HR sends as active again differs.
        if stored is None or stored.employee != e:
            plan.employees.append(e)
        else:
            plan.unchanged_employees += 1
            if version is not None and (
                stored.source_updated_at is None or version > stored.source_updated_at
            ):
                plan.newer_versions[e.employee_id] = version
    return plan


def check_tenant(caller_tenant: str, stated_tenant: str | None) -> None:
    """A body may state its tenant; it must be the caller's (a token never writes elsewhere)."""
    if stated_tenant is not None and stated_tenant != caller_tenant:
        raise InvalidInput.field("tenant_id", msg="does not match the tenant of your token")


def keep_head(unit: OrgUnit, stored: OrgUnit | None) -> OrgUnit:
    """``unit`` with the stored head when it names none (for sources that do not know heads)."""
    if unit.head_id is None and stored is not None and stored.head_id is not None:
        return unit.model_copy(update={"head_id": stored.head_id})
    return unit


def employee_upserted(tenant: str, e: Employee, now: datetime) -> EmployeeUpserted:
    # The fields were validated with the contract's own types: construct without re-validating.
    return EmployeeUpserted.model_construct(tenant_id=tenant, occurred_at=now, **e.__dict__)


def org_unit_upserted(tenant: str, u: OrgUnit, now: datetime) -> OrgUnitUpserted:
    return OrgUnitUpserted.model_construct(tenant_id=tenant, occurred_at=now, **u.__dict__)


def employee_deactivated(
    tenant: str, employee_id: str, effective_at: datetime, now: datetime
) -> EmployeeDeactivated:
    return EmployeeDeactivated(
        tenant_id=tenant, occurred_at=now, employee_id=employee_id, effective_at=effective_at
    )


@dataclass(frozen=True)
class ProvisionedUser:
    """What an identity provider states about a person (a SCIM User, RFC 7643 §4.1 and §4.3),
    in Rhythm's terms. ``department``/``organization`` name org units (see ``unit_for_name``);
    ``employee_number`` becomes the employee id of a person it creates."""

    user_name: str
    email: str
    display_name: str
    time_zone: str
    locale: str
    active: bool
    external_id: str | None = None
    employee_number: str | None = None
    department: str | None = None
    organization: str | None = None
    manager_id: str | None = None

    def identity(self) -> SourceIdentity:
        return SourceIdentity(
            user_name=self.user_name,
            external_id=self.external_id,
            department=self.department,
            organization=self.organization,
        )


#: The unit of a person an identity provider states no department or organization for.
UNASSIGNED_UNIT = OrgUnit(org_unit_id="unassigned", name="Unassigned")

_NOT_ID = re.compile(r"[^a-z0-9]+")


def unit_id_for_name(name: str) -> str:
    """The id of a unit created for a department or organization name: readable, stable, and
    distinct for names that differ only in case or punctuation (``ou-sales-1a2b3c4d``)."""
    slug = _NOT_ID.sub("-", name.lower()).strip("-")[:40].strip("-") or "unit"
    return f"ou-{slug}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"


def version_tag(*parts: Any) -> str:
    """A weak entity tag (RFC 7232 §2.3) of a state: it changes whenever the state does."""
    digest = hashlib.sha256(json.dumps(parts, default=str, sort_keys=True).encode()).hexdigest()
    return f'W/"{digest[:16]}"'


def employee_version(stored: StoredEmployee) -> str:
    return version_tag(
        stored.employee.model_dump(mode="json"),
        stored.identity.__dict__,
        stored.deactivated_at is not None,
    )


def org_unit_version(unit: OrgUnit, external_id: str | None) -> str:
    return version_tag(unit.model_dump(mode="json"), external_id)
