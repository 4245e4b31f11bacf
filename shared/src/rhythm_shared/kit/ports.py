"""What handlers may ask of a unit of work, as Protocols that import no database library.

A service's handlers are typed by its own unit-of-work Protocol (``domain/ports.py``), which
extends :class:`UnitOfWorkPort` with the service's repositories. The SQL unit of work
(:class:`rhythm_shared.kit.uow.UnitOfWork` and the service's subclass) and the in-memory one of
unit tests (:class:`rhythm_shared.testing.fakes.FakeUnitOfWork`) both satisfy it, so a handler
runs the same against either (cosmicpython's "unit of work" and "repository" patterns).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from rhythm_shared.contracts.base import Event
from rhythm_shared.contracts.v1 import OrgUnitUpserted, PersonKeyDestroyed, PersonKeyIssued
from rhythm_shared.kit.audit import AuditEntry
from rhythm_shared.kit.clock import Clock
from rhythm_shared.kit.directory import (
    EmployeeEvent,
    OrgUnit,
    OrgUnitChange,
    Person,
    PersonChange,
)

__all__ = [
    "Directory",
    "OrgUnit",
    "OrgUnitChange",
    "People",
    "Person",
    "PersonChange",
    "UnitOfWorkPort",
]


class UnitOfWorkPort(Protocol):
    """One transaction: a state change, its outgoing events and its audit entries together."""

    @property
    def clock(self) -> Clock: ...

    async def publish(self, event: Event, *, event_id: str | None = None) -> str:
        """Queue ``event`` in the outbox, in this transaction; returns its CloudEvents id."""
        ...

    async def first_time(self, consumer: str, event_id: str) -> bool:
        """Record that ``consumer`` handles ``event_id`` now; False if it already has."""
        ...

    def audit(self, entry: AuditEntry) -> None:
        """Note an access to private data for the audit trail."""
        ...

    async def forget_person(self, tenant_id: str, employee_id: str) -> None:
        """Delete the kit's own rows that name a person being erased."""
        ...

    def compact_after_commit(self) -> None:
        """Leave no deleted bytes in the database's log once this commits (SQLite's WAL)."""
        ...


class Directory(Protocol):
    """Reads of one tenant's people directory: who manages whom, who heads which unit."""

    async def person(self, employee_id: str) -> Person | None: ...
    async def people(self, employee_ids: Iterable[str]) -> dict[str, Person]: ...
    async def manager_of(self, employee_id: str) -> str | None: ...
    async def manager_chain(self, employee_id: str) -> list[str]: ...
    async def direct_reports(self, manager_id: str) -> list[Person]: ...
    async def all_reports(self, manager_id: str) -> list[str]: ...
    async def org_unit(self, org_unit_id: str) -> OrgUnit | None: ...
    async def units_upwards(self, org_unit_id: str) -> list[OrgUnit]: ...
    async def unit_heads_upwards(self, org_unit_id: str) -> list[str]: ...
    async def unit_heads_above(self, employee_id: str) -> list[str]: ...
    async def subunits(self, org_unit_id: str) -> list[str]: ...
    async def child_units(self, org_unit_id: str) -> list[OrgUnit]: ...
    async def members(self, org_unit_ids: Sequence[str]) -> list[Person]: ...
    async def heads_units(self, employee_id: str) -> list[str]: ...


class People(Protocol):
    """The people directory as a repository: per-tenant reads, and the projection of
    ``rhythm.people.v1`` and ``rhythm.keys.v1`` into it (one rule: :mod:`.directory`)."""

    def directory(self, tenant_id: str) -> Directory: ...
    async def apply_employee(self, event: EmployeeEvent, event_id: str) -> PersonChange: ...
    async def apply_org_unit(self, event: OrgUnitUpserted, event_id: str) -> OrgUnitChange: ...
    async def apply_key(self, event: PersonKeyIssued | PersonKeyDestroyed) -> None: ...
