"""In-memory stand-ins for unit tests of handlers: no database, no broker.

A service's ``tests/fakes.py`` subclasses :class:`FakeUnitOfWork` with in-memory versions of its
repositories; handlers typed by the service's unit-of-work Protocol run against it unchanged.
The people directory follows the same one rule as the SQL one (:mod:`rhythm_shared.kit.directory`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import Self

from rhythm_shared.contracts.base import Event
from rhythm_shared.contracts.envelope import new_event_id
from rhythm_shared.contracts.v1 import (
    EmployeeErased,
    OrgUnitUpserted,
    PersonKeyDestroyed,
    PersonKeyIssued,
)
from rhythm_shared.kit.audit import AuditEntry
from rhythm_shared.kit.clock import ManualClock
from rhythm_shared.kit.directory import (
    MAX_DEPTH,
    EmployeeEvent,
    OrgUnit,
    OrgUnitChange,
    Person,
    PersonChange,
    fold_employee,
    fold_org_unit,
)

#: Where a fake clock starts unless told otherwise.
EPOCH = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


class FakeUnitOfWork:
    """A unit of work in memory: what was published, audited and forgotten, and whether it
    committed (a clean ``async with`` exit) or rolled back (an exception)."""

    def __init__(self, clock: ManualClock | None = None) -> None:
        self.clock = clock or ManualClock(EPOCH)
        #: Published events, committed or not (look at ``committed``).
        self.events: list[Event] = []
        self.audited: list[AuditEntry] = []
        self.forgotten: list[tuple[str, str]] = []
        self.compacted = False
        self.committed = False
        self.rolled_back = False
        self._seen: set[tuple[str, str]] = set()

    async def __aenter__(self) -> Self:
        self.committed = self.rolled_back = False
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.committed = True
        else:
            self.rolled_back = True

    async def publish(self, event: Event, *, event_id: str | None = None) -> str:
        self.events.append(event)
        return event_id or new_event_id()

    async def first_time(self, consumer: str, event_id: str) -> bool:
        return event_id in await self.first_times(consumer, [event_id])

    async def first_times(self, consumer: str, event_ids: Sequence[str]) -> set[str]:
        fresh = {i for i in event_ids if (consumer, i) not in self._seen}
        self._seen |= {(consumer, i) for i in fresh}
        return fresh

    def audit(self, entry: AuditEntry) -> None:
        self.audited.append(entry)

    async def forget_person(self, tenant_id: str, employee_id: str) -> None:
        self.forgotten.append((tenant_id, employee_id))

    def compact_after_commit(self) -> None:
        self.compacted = True

    def published(self, kind: type[Event]) -> list[Event]:
        """The events of one type published so far, in order."""
        return [e for e in self.events if isinstance(e, kind)]


class InMemoryDirectory:
    """One tenant's directory in memory (satisfies :class:`rhythm_shared.kit.ports.Directory`)."""

    def __init__(self, people: InMemoryPeople, tenant_id: str) -> None:
        self._all = people
        self.tenant_id = tenant_id

    def _people(self) -> dict[str, Person]:
        return {
            i: p for (t, i), p in self._all.employees.items() if t == self.tenant_id and p.known
        }

    def _units(self) -> dict[str, OrgUnit]:
        return {i: u for (t, i), u in self._all.units.items() if t == self.tenant_id}

    async def person(self, employee_id: str) -> Person | None:
        return self._people().get(employee_id)

    async def people(self, employee_ids: Iterable[str]) -> dict[str, Person]:
        known = self._people()
        return {i: known[i] for i in sorted(set(employee_ids)) if i in known}

    async def manager_of(self, employee_id: str) -> str | None:
        person = await self.person(employee_id)
        return None if person is None else person.manager_id

    async def manager_chain(self, employee_id: str) -> list[str]:
        chain: list[str] = []
        seen = {employee_id}
        person = await self.person(employee_id)
        while person is not None and person.manager_id and person.manager_id not in seen:
            if len(chain) >= MAX_DEPTH:
                break
            chain.append(person.manager_id)
            seen.add(person.manager_id)
            person = await self.person(person.manager_id)
        return chain

    async def direct_reports(self, manager_id: str) -> list[Person]:
        return sorted(
            (p for p in self._people().values() if p.manager_id == manager_id),
            key=lambda p: p.employee_id,
        )

    async def all_reports(self, manager_id: str) -> list[str]:
        # Like the SQL walk, over every row of the tenant (also people known only by a
        # deactivation so far), level by level, loops cut.
        rows = [p for (t, _), p in self._all.employees.items() if t == self.tenant_id]
        found: list[str] = []
        seen = {manager_id}
        level = [manager_id]
        depth = 0
        while level and depth < MAX_DEPTH:
            depth += 1
            below = sorted({p.employee_id for p in rows if p.manager_id in level} - seen)
            seen.update(below)
            found.extend(below)
            level = below
        return found

    async def org_unit(self, org_unit_id: str) -> OrgUnit | None:
        return self._units().get(org_unit_id)

    async def units_upwards(self, org_unit_id: str) -> list[OrgUnit]:
        units: list[OrgUnit] = []
        seen: set[str] = set()
        unit_id: str | None = org_unit_id
        while unit_id is not None and unit_id not in seen and len(seen) < MAX_DEPTH:
            seen.add(unit_id)
            unit = await self.org_unit(unit_id)
            if unit is None:
                break
            units.append(unit)
            unit_id = unit.parent_id
        return units

    async def unit_heads_upwards(self, org_unit_id: str) -> list[str]:
        return [u.head_id for u in await self.units_upwards(org_unit_id) if u.head_id]

    async def unit_heads_above(self, employee_id: str) -> list[str]:
        person = await self.person(employee_id)
        if person is None or person.org_unit_id is None:
            return []
        return [h for h in await self.unit_heads_upwards(person.org_unit_id) if h != employee_id]

    async def subunits(self, org_unit_id: str) -> list[str]:
        units = self._units()
        found = [org_unit_id]
        seen = {org_unit_id}
        level = [org_unit_id]
        depth = 0
        while level and depth < MAX_DEPTH:
            depth += 1
            below = sorted({u.org_unit_id for u in units.values() if u.parent_id in level} - seen)
            seen.update(below)
            found.extend(below)
            level = below
        return found

    async def child_units(self, org_unit_id: str) -> list[OrgUnit]:
        return sorted(
            (u for u in self._units().values() if u.parent_id == org_unit_id),
            key=lambda u: u.org_unit_id,
        )

    async def members(self, org_unit_ids: Sequence[str]) -> list[Person]:
        wanted = set(org_unit_ids)
        return sorted(
            (p for p in self._people().values() if p.org_unit_id in wanted),
            key=lambda p: p.employee_id,
        )

    async def heads_units(self, employee_id: str) -> list[str]:
        return sorted(u.org_unit_id for u in self._units().values() if u.head_id == employee_id)


class InMemoryPeople:
    """The people directory in memory (satisfies :class:`rhythm_shared.kit.ports.People`):
    fill it with :meth:`add_person` and :meth:`add_unit`, or apply events as consumers do."""

    def __init__(self) -> None:
        self.employees: dict[tuple[str, str], Person] = {}
        self.units: dict[tuple[str, str], OrgUnit] = {}
        #: Data keys by (tenant, person): the key id, or None once destroyed.
        self.keys: dict[tuple[str, str], str | None] = {}

    def directory(self, tenant_id: str) -> InMemoryDirectory:
        return InMemoryDirectory(self, tenant_id)

    def add_person(self, tenant_id: str, employee_id: str, **fields: object) -> Person:
        """A known, active person (``manager_id``, ``org_unit_id``, ``display_name``, …)."""
        person = dataclasses.replace(
            Person(employee_id=employee_id, profile_version=(EPOCH, employee_id)),
            **fields,  # type: ignore[arg-type]
        )
        self.employees[(tenant_id, employee_id)] = person
        return person

    def add_unit(
        self,
        tenant_id: str,
        org_unit_id: str,
        *,
        name: str | None = None,
        parent_id: str | None = None,
        head_id: str | None = None,
    ) -> OrgUnit:
        unit = OrgUnit(
            org_unit_id=org_unit_id,
            name=name or org_unit_id,
            parent_id=parent_id,
            head_id=head_id,
            version=(EPOCH, org_unit_id),
        )
        self.units[(tenant_id, org_unit_id)] = unit
        return unit

    async def apply_employee(self, event: EmployeeEvent, event_id: str) -> PersonChange:
        key = (event.tenant_id, event.employee_id)
        before = self.employees.get(key)
        after = fold_employee(before, event, event_id)
        if isinstance(event, EmployeeErased):
            self.keys[key] = None
        self.employees[key] = after
        return PersonChange(before=before, after=after)

    async def apply_org_unit(self, event: OrgUnitUpserted, event_id: str) -> OrgUnitChange:
        key = (event.tenant_id, event.org_unit_id)
        before = self.units.get(key)
        after = fold_org_unit(before, event, event_id)
        self.units[key] = after
        return OrgUnitChange(before=before, after=after)

    async def apply_key(self, event: PersonKeyIssued | PersonKeyDestroyed) -> None:
        key = (event.tenant_id, event.employee_id)
        if isinstance(event, PersonKeyDestroyed):
            self.keys[key] = None
        elif key not in self.keys:
            self.keys[key] = event.key_id
