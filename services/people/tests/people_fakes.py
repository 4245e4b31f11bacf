"""The people service's unit of work in memory, for unit tests of its handlers.

Each repository keeps the same rules as its SQL twin in ``adapters/repository.py`` (what an
upsert keeps, what SCIM sees); mypy checks that :class:`FakePeopleUnitOfWork` satisfies
:class:`rhythm_people.domain.ports.PeopleUnitOfWork` where the tests hand it to the handlers.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from rhythm_people.domain.erasure import ErasureState
from rhythm_people.domain.model import Employee, OrgUnit, SourceIdentity, StoredEmployee
from rhythm_people.domain.ports import PeopleUnitOfWork, StoredKey, Written
from rhythm_shared.contracts.base import Event
from rhythm_shared.contracts.v1 import PersonKeyIssued
from rhythm_shared.kit import crypto
from rhythm_shared.kit.clock import ManualClock
from rhythm_shared.testing.fakes import FakeUnitOfWork


@dataclass(frozen=True)
class StoredUnit:
    unit: OrgUnit
    external_id: str | None = None
    scim_deleted_at: datetime | None = None


class InMemoryPeopleRepository:
    def __init__(self) -> None:
        self.stored_employees: dict[tuple[str, str], StoredEmployee] = {}
        self.stored_units: dict[tuple[str, str], StoredUnit] = {}

    def _employees_of(self, tenant: str) -> dict[str, StoredEmployee]:
        return {i: s for (t, i), s in sorted(self.stored_employees.items()) if t == tenant}

    def _units_of(self, tenant: str) -> dict[str, StoredUnit]:
        return {i: u for (t, i), u in sorted(self.stored_units.items()) if t == tenant}

    async def employees(
        self, tenant: str, ids: Iterable[str] | None = None
    ) -> dict[str, StoredEmployee]:
        found = self._employees_of(tenant)
        return found if ids is None else {i: found[i] for i in set(ids) if i in found}

    async def org_units(self, tenant: str, ids: Iterable[str] | None = None) -> dict[str, OrgUnit]:
        found = {i: u.unit for i, u in self._units_of(tenant).items()}
        return found if ids is None else {i: found[i] for i in set(ids) if i in found}

    async def manager_chains(
        self, tenant: str, starts: Iterable[str], known: Mapping[str, str | None]
    ) -> dict[str, str | None]:
        edges = {i: s.employee.manager_id for i, s in self._employees_of(tenant).items()}
        return _chains(edges, starts, known)

    async def unit_chains(
        self, tenant: str, starts: Iterable[str], known: Mapping[str, str | None]
    ) -> dict[str, str | None]:
        edges = {i: u.unit.parent_id for i, u in self._units_of(tenant).items()}
        return _chains(edges, starts, known)

    async def scim_users(
        self,
        tenant: str,
        *,
        offset: int,
        limit: int,
        user_name: str | None = None,
        external_id: str | None = None,
        employee_id: str | None = None,
    ) -> tuple[int, list[StoredEmployee]]:
        def matches(s: StoredEmployee) -> bool:
            name = s.identity.user_name
            return (
                s.scim_deleted_at is None
                and (
                    user_name is None
                    or name == user_name
                    or (name is None and s.employee.email == user_name)
                )
                and (external_id is None or s.identity.external_id == external_id)
                and (employee_id is None or s.employee.employee_id == employee_id)
            )

        found = [s for s in self._employees_of(tenant).values() if matches(s)]
        return len(found), found[offset : offset + limit]

    async def scim_groups(
        self,
        tenant: str,
        *,
        offset: int,
        limit: int,
        display_name: str | None = None,
        external_id: str | None = None,
        org_unit_id: str | None = None,
    ) -> tuple[int, list[tuple[OrgUnit, str | None]]]:
        found = [
            (u.unit, u.external_id)
            for u in self._units_of(tenant).values()
            if u.scim_deleted_at is None
            and (display_name is None or u.unit.name == display_name)
            and (external_id is None or u.external_id == external_id)
            and (org_unit_id is None or u.unit.org_unit_id == org_unit_id)
        ]
        return len(found), found[offset : offset + limit]

    async def org_unit_named(self, tenant: str, name: str) -> OrgUnit | None:
        served = [u.unit for u in self._units_of(tenant).values() if u.scim_deleted_at is None]
        by_id = [u for u in served if u.org_unit_id == name]
        by_name = [u for u in served if u.name == name]
        found = by_id or by_name
        return found[0] if found else None

    async def save_org_units(
        self, tenant: str, units: Sequence[OrgUnit], now: datetime, progress: Written | None = None
    ) -> None:
        for u in units:
            before = self.stored_units.get((tenant, u.org_unit_id), StoredUnit(u))
            self.stored_units[(tenant, u.org_unit_id)] = dataclasses.replace(before, unit=u)
        if units and progress:
            progress(len(units))

    async def save_employees(
        self,
        tenant: str,
        people: Sequence[Employee],
        now: datetime,
        progress: Written | None = None,
        versions: Mapping[str, datetime] | None = None,
    ) -> None:
        versions = versions or {}
        for e in people:
            before = self.stored_employees.get((tenant, e.employee_id))
            version = versions.get(e.employee_id)
            if before is None:
                after = StoredEmployee(employee=e, source_updated_at=version)
            else:
                after = dataclasses.replace(
                    before,
                    employee=e,
                    deactivated_at=None if e.active else before.deactivated_at,
                    source_updated_at=version or before.source_updated_at,
                )
            self.stored_employees[(tenant, e.employee_id)] = after
        if people and progress:
            progress(len(people))

    def _change(self, tenant: str, employee_id: str, **changes: object) -> None:
        key = (tenant, employee_id)
        if key in self.stored_employees:
            self.stored_employees[key] = dataclasses.replace(
                self.stored_employees[key],
                **changes,  # type: ignore[arg-type]
            )

    async def save_versions(self, tenant: str, versions: Mapping[str, datetime]) -> None:
        for employee_id, version in versions.items():
            self._change(tenant, employee_id, source_updated_at=version)

    async def save_identity(
        self,
        tenant: str,
        employee_id: str,
        identity: SourceIdentity,
        *,
        deleted_at: datetime | None = None,
    ) -> None:
        self._change(tenant, employee_id, identity=identity, scim_deleted_at=deleted_at)

    async def save_unit_identity(
        self,
        tenant: str,
        org_unit_id: str,
        external_id: str | None,
        *,
        deleted_at: datetime | None = None,
    ) -> None:
        key = (tenant, org_unit_id)
        if key in self.stored_units:
            self.stored_units[key] = dataclasses.replace(
                self.stored_units[key], external_id=external_id, scim_deleted_at=deleted_at
            )

    async def deactivate(self, tenant: str, employee_id: str, at: datetime) -> None:
        stored = self.stored_employees.get((tenant, employee_id))
        if stored is not None:
            inactive = stored.employee.model_copy(update={"active": False})
            self._change(tenant, employee_id, employee=inactive, deactivated_at=at)

    async def delete_employee(self, tenant: str, employee_id: str) -> None:
        self.stored_employees.pop((tenant, employee_id), None)


def _chains(
    edges: Mapping[str, str | None], starts: Iterable[str], known: Mapping[str, str | None]
) -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    frontier = {s for s in starts if s not in known}
    while frontier:
        fetched = {i: edges[i] for i in frontier if i in edges}
        found.update(fetched)
        frontier = {
            p for p in fetched.values() if p is not None and p not in found and p not in known
        }
    return found


class InMemoryKeyStore:
    def __init__(self) -> None:
        self._kek = crypto.new_data_key()
        self.keys: dict[tuple[str, str], StoredKey] = {}

    def kek(self) -> bytes:
        return self._kek

    async def stored(self, tenant: str, employee_ids: Sequence[str]) -> dict[str, StoredKey]:
        return {i: self.keys[(tenant, i)] for i in employee_ids if (tenant, i) in self.keys}

    async def add(self, issued: Sequence[PersonKeyIssued]) -> None:
        for i in issued:
            self.keys[(i.tenant_id, i.employee_id)] = StoredKey(i.key_id, i.wrapped_key)

    async def destroy(self, tenant: str, employee_id: str, now: datetime) -> str | None:
        stored = self.keys.get((tenant, employee_id))
        if stored is None:
            return None
        self.keys[(tenant, employee_id)] = StoredKey(stored.key_id, None)
        return stored.key_id


class InMemoryErasureRepository:
    def __init__(self, events: list[Event]) -> None:
        #: The unit of work's queued events: in memory none is ever sent.
        self._events = events
        self.erasures: dict[str, tuple[str, ErasureState]] = {}
        #: (tenant, employee id) whose unsent events were withdrawn.
        self.withdrawn: list[tuple[str, str]] = []

    async def erased_among(self, tenant: str, employee_ids: Iterable[str]) -> set[str]:
        erased = {s.employee_id for t, s in self.erasures.values() if t == tenant}
        return erased & set(employee_ids)

    async def of_person(self, tenant: str, employee_id: str) -> ErasureState | None:
        found = [
            s for t, s in self.erasures.values() if t == tenant and s.employee_id == employee_id
        ]
        return found[0] if found else None

    async def get(self, tenant: str, erasure_id: str) -> ErasureState | None:
        found = self.erasures.get(erasure_id)
        return found[1] if found is not None and found[0] == tenant else None

    async def add(self, tenant: str, erasure_id: str, employee_id: str, at: datetime) -> None:
        self.erasures[erasure_id] = (tenant, ErasureState(erasure_id, employee_id, at, None))

    async def record_part(self, erasure_id: str, service: str, at: datetime) -> bool:
        tenant, state = self.erasures[erasure_id]
        if service in state.parts:
            return False
        parts = {**state.parts, service: at}
        self.erasures[erasure_id] = (tenant, dataclasses.replace(state, parts=parts))
        return True

    async def complete(self, erasure_id: str, at: datetime) -> None:
        tenant, state = self.erasures[erasure_id]
        self.erasures[erasure_id] = (tenant, dataclasses.replace(state, completed_at=at))

    async def withdraw_events(self, tenant: str, employee_id: str) -> None:
        self.withdrawn.append((tenant, employee_id))
        self._events[:] = [e for e in self._events if e.key != f"{tenant}/{employee_id}"]


class FakePeopleUnitOfWork(FakeUnitOfWork):
    """The people unit of work in memory; ``events`` holds what ``publish_all`` queued too."""

    def __init__(self, clock: ManualClock | None = None) -> None:
        super().__init__(clock)
        self.people = InMemoryPeopleRepository()
        self.keys = InMemoryKeyStore()
        self.erasures = InMemoryErasureRepository(self.events)

    async def publish_all(self, events: Sequence[Event], progress: Written | None = None) -> int:
        self.events.extend(events)
        if events and progress:
            progress(len(events))
        return len(events)


def conforms(uow: FakePeopleUnitOfWork) -> PeopleUnitOfWork:
    """Type-checked: the fake is a :class:`PeopleUnitOfWork` (mypy fails here if it drifts)."""
    return uow
