"""What reporting's handlers ask of storage, as Protocols (no database library here).

The SQL read model (:class:`rhythm_reporting.adapters.store.ReadModelStore`) and the in-memory
one of the unit tests (``tests/reporting_fakes.py``) both implement :class:`ReadModel`;
handlers are typed by :class:`ReportingUnitOfWork`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from rhythm_reporting.domain.projection import EmployeeVersion, Fact
from rhythm_shared.kit.ports import People, UnitOfWorkPort

#: Rollup rows to add to: (tenant, rest of the key, column -> delta).
RollupRows = Sequence[tuple[str, tuple[Any, ...], Mapping[str, int]]]


class ReadModel(Protocol):
    """One generation of the read model (facts, org dimension, rollups), in one transaction."""

    async def load_unit_parents(self, tenant: str, units: Iterable[str]) -> dict[str, str | None]:
        """Parent pointers of ``units`` and all their known ancestors."""
        ...

    async def org_changed(self) -> None:
        """The org units or employees change in this transaction (raise the org version)."""
        ...

    async def facts_changed(self, tenant: str, slots: Iterable[tuple[str, str]]) -> None:
        """Facts of these (family, slot)s change in this transaction (raise their numbers)."""
        ...

    async def save_units(self, tenant: str, rows: Sequence[Mapping[str, Any]]) -> None: ...

    async def load_versions(
        self, tenant: str, people: Iterable[str]
    ) -> dict[str, list[EmployeeVersion]]: ...

    async def save_versions(
        self, tenant: str, versions: Mapping[str, Sequence[EmployeeVersion]]
    ) -> None: ...

    async def load_employees(self, tenant: str, people: Iterable[str]) -> dict[str, Fact]: ...

    async def save_employees(self, tenant: str, rows: Iterable[Fact]) -> None: ...

    async def load_facts(self, kind: str, tenant: str, keys: Iterable[str]) -> dict[str, Fact]: ...

    async def load_facts_of_people(
        self, kind: str, tenant: str, people: Iterable[str]
    ) -> dict[str, Fact]: ...

    async def save_facts(self, kind: str, tenant: str, facts: Mapping[str, Fact]) -> None: ...

    async def load_unit_rollups(
        self, table_name: str, tenant: str, units: Iterable[str]
    ) -> dict[str, dict[tuple[Any, ...], dict[str, int]]]:
        """Rows of subtree rollups for ``units``: unit -> rest of key -> counts."""
        ...

    async def add_to_rollup(self, table_name: str, rows: RollupRows) -> None:
        """``count = count + delta`` for each row (a membership row that falls to 0 goes)."""
        ...

    async def erased(self, tenant: str, people: Iterable[str]) -> set[str]:
        """Those of ``people`` the people directory holds as erased (tombstones)."""
        ...

    async def data_key(self, tenant: str, employee_id: str) -> tuple[str, str] | None:
        """The person's wrapped data key (key id, wrapped key); None if none or destroyed."""
        ...

    async def pseudonymise(self, tenant: str, person: str, alias: str) -> None:
        """Move what the read model holds of ``person`` (every generation) to ``alias``; the
        titles of goals they own go blank and their names in the org history too."""
        ...


class ReportingUnitOfWork(UnitOfWorkPort, Protocol):
    """One batch's transaction: the read model, the people directory, the outbox."""

    @property
    def read_model(self) -> ReadModel: ...

    @property
    def people(self) -> People: ...

    @property
    def kek(self) -> bytes | None:
        """The key-encryption key that opens the names upserts v2 carry sealed (None: blank)."""
        ...
