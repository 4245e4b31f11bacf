"""Reporting's unit of work in memory, for unit tests of the handlers: no database, no broker.

:class:`InMemoryReadModel` keeps what :class:`rhythm_reporting.adapters.store.ReadModelStore`
keeps (one generation: facts, org history, rollups), with the same methods (the
:class:`rhythm_reporting.domain.ports.ReadModel` Protocol; mypy checks both against it).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from rhythm_reporting.adapters.db import (
    MEMBERSHIP_ROLLUPS,
    ROLLUP_TABLES,
    key_columns,
    value_columns,
)
from rhythm_reporting.domain.ports import ReadModel, ReportingUnitOfWork, RollupRows
from rhythm_reporting.domain.projection import FACT_KINDS, PEOPLE_COLUMNS, EmployeeVersion, Fact
from rhythm_shared.contracts.v1 import PersonKeyDestroyed, PersonKeyIssued
from rhythm_shared.kit.clock import ManualClock
from rhythm_shared.testing.fakes import FakeUnitOfWork, InMemoryPeople

Key = tuple[str, str]  # (tenant, id)


class InMemoryPeopleAndKeys(InMemoryPeople):
    """The kit's in-memory directory, also keeping the wrapped data keys that SQL keeps beside
    it (the read model opens names with them)."""

    def __init__(self) -> None:
        super().__init__()
        self.wrapped: dict[Key, tuple[str, str]] = {}

    async def apply_key(self, event: PersonKeyIssued | PersonKeyDestroyed) -> None:
        key = (event.tenant_id, event.employee_id)
        if isinstance(event, PersonKeyIssued) and key not in self.keys:
            self.wrapped[key] = (event.key_id, event.wrapped_key)
        await super().apply_key(event)


class InMemoryReadModel:
    def __init__(self, people: InMemoryPeopleAndKeys) -> None:
        #: The directory whose tombstones say who is erased.
        self._people = people
        self.units: dict[Key, dict[str, Any]] = {}
        #: How often the org changed (the SQL store's org version).
        self.org_version = 0
        #: How often each (tenant, family, slot)'s facts changed (the SQL store's fact_versions).
        self.fact_versions: dict[tuple[str, str, str], int] = {}
        self.versions: dict[Key, list[EmployeeVersion]] = {}
        self.employees: dict[Key, Fact] = {}
        self.facts: dict[str, dict[Key, Fact]] = {kind: {} for kind in FACT_KINDS}
        #: table -> (tenant, key columns' values) -> value columns' counts
        self.rollups: dict[str, dict[tuple[str, tuple[Any, ...]], dict[str, int]]] = {
            table: {} for table in ROLLUP_TABLES
        }

    # -- the org dimension ---------------------------------------------------------------------

    async def load_unit_parents(self, tenant: str, units: Iterable[str]) -> dict[str, str | None]:
        known: dict[str, str | None] = {}
        frontier = {u for u in units if u}
        while frontier:
            found = {u for u in frontier if (tenant, u) in self.units}
            for unit in found:
                known[unit] = self.units[(tenant, unit)]["parent_id"]
            frontier = {p for u in found if (p := known[u])} - set(known)
        return known

    async def org_changed(self) -> None:
        self.org_version += 1

    async def facts_changed(self, tenant: str, slots: Iterable[tuple[str, str]]) -> None:
        for family, slot in slots:
            key = (tenant, family, slot)
            self.fact_versions[key] = self.fact_versions.get(key, 0) + 1

    async def save_units(self, tenant: str, rows: Sequence[Mapping[str, Any]]) -> None:
        for row in rows:
            self.units[(tenant, row["org_unit_id"])] = dict(row)

    async def load_versions(
        self, tenant: str, people: Iterable[str]
    ) -> dict[str, list[EmployeeVersion]]:
        return {p: list(self.versions[(tenant, p)]) for p in people if (tenant, p) in self.versions}

    async def save_versions(
        self, tenant: str, versions: Mapping[str, Sequence[EmployeeVersion]]
    ) -> None:
        for person, history in versions.items():
            # An upsert per (person, valid_from), as the SQL one.
            by_start = {v.valid_from: v for v in self.versions.get((tenant, person), [])}
            by_start.update({v.valid_from: v for v in history})
            self.versions[(tenant, person)] = [by_start[k] for k in sorted(by_start)]

    async def load_employees(self, tenant: str, people: Iterable[str]) -> dict[str, Fact]:
        return _load(self.employees, "employee_id", tenant, people)

    async def save_employees(self, tenant: str, rows: Iterable[Fact]) -> None:
        for row in rows:
            self.employees[(tenant, row["employee_id"])] = dict(row)

    # -- facts ---------------------------------------------------------------------------------

    async def load_facts(self, kind: str, tenant: str, keys: Iterable[str]) -> dict[str, Fact]:
        return _load(self.facts[kind], None, tenant, keys)

    async def load_facts_of_people(
        self, kind: str, tenant: str, people: Iterable[str]
    ) -> dict[str, Fact]:
        wanted = set(people)
        return {
            key: dict(fact)
            for (t, key), fact in self.facts[kind].items()
            if t == tenant and any(fact.get(c) in wanted for c in PEOPLE_COLUMNS[kind])
        }

    async def save_facts(self, kind: str, tenant: str, facts: Mapping[str, Fact]) -> None:
        for key, fact in facts.items():
            self.facts[kind][(tenant, key)] = dict(fact)

    # -- rollups -------------------------------------------------------------------------------

    async def load_unit_rollups(
        self, table_name: str, tenant: str, units: Iterable[str]
    ) -> dict[str, dict[tuple[Any, ...], dict[str, int]]]:
        wanted = set(units)
        out: dict[str, dict[tuple[Any, ...], dict[str, int]]] = {}
        for (t, key), counts in self.rollups[table_name].items():
            if t == tenant and key[0] in wanted:
                out.setdefault(key[0], {})[key[1:]] = dict(counts)
        return out

    async def add_to_rollup(self, table_name: str, rows: RollupRows) -> None:
        values = value_columns(ROLLUP_TABLES[table_name])
        table = self.rollups[table_name]
        for tenant, key, deltas in rows:
            counts = table.setdefault((tenant, tuple(key)), dict.fromkeys(values, 0))
            for v in values:
                counts[v] += deltas.get(v, 0)
            fell = any(deltas.get(v, 0) < 0 for v in values)
            if table_name in MEMBERSHIP_ROLLUPS and fell and all(counts[v] <= 0 for v in values):
                del table[(tenant, tuple(key))]

    def rollup(self, table_name: str, tenant: str, *key: Any) -> dict[str, int] | None:
        """One rollup row's counts (None: no row), for assertions."""
        return self.rollups[table_name].get((tenant, key))

    # -- erasure -------------------------------------------------------------------------------

    async def erased(self, tenant: str, people: Iterable[str]) -> set[str]:
        rows = self._people.employees
        return {p for p in people if (tenant, p) in rows and rows[(tenant, p)].erased}

    async def data_key(self, tenant: str, employee_id: str) -> tuple[str, str] | None:
        if self._people.keys.get((tenant, employee_id)) is None:
            return None  # none, or destroyed
        return self._people.wrapped.get((tenant, employee_id))

    async def pseudonymise(self, tenant: str, person: str, alias: str) -> None:
        for kind in FACT_KINDS:
            for (t, _), fact in self.facts[kind].items():
                if t != tenant or (kind == "goal" and fact.get("owner_type") != "person"):
                    continue
                for column in PEOPLE_COLUMNS[kind]:
                    if fact.get(column) == person:
                        fact[column] = alias
                        if kind == "goal":
                            fact["title"] = None
        contributors = self.rollups["unit_contributors"]
        at = key_columns(ROLLUP_TABLES["unit_contributors"]).index("person_id")
        for t, key in list(contributors):
            if t == tenant and key[at] == person:
                moved = (*key[:at], alias, *key[at + 1 :])
                contributors[(t, moved)] = contributors.pop((t, key))
        if (tenant, person) in self.versions:
            self.versions[(tenant, alias)] = [
                dataclasses.replace(v, display_name="") for v in self.versions.pop((tenant, person))
            ]
        if (tenant, person) in self.employees:
            row = self.employees.pop((tenant, person))
            self.employees[(tenant, alias)] = {**row, "employee_id": alias, "display_name": None}


class FakeReportingUnitOfWork(FakeUnitOfWork):
    def __init__(self, clock: ManualClock | None = None, *, kek: bytes | None = None) -> None:
        super().__init__(clock)
        self.people = InMemoryPeopleAndKeys()
        self.read_model = InMemoryReadModel(self.people)
        self._kek = kek

    @property
    def kek(self) -> bytes | None:
        return self._kek


def _load(
    rows: Mapping[Key, Fact], key: str | None, tenant: str, keys: Iterable[str]
) -> dict[str, Fact]:
    out: dict[str, Fact] = {}
    for k in keys:
        if (tenant, k) in rows:
            fact = dict(rows[(tenant, k)])
            if key is not None:
                fact.pop(key, None)
            out[k] = fact
    return out


# Both in-memory pieces conform to the Protocols the handlers are typed by (checked by mypy).
_READ_MODEL: type[ReadModel] = InMemoryReadModel
_UNIT_OF_WORK: type[ReportingUnitOfWork] = FakeReportingUnitOfWork
