"""TEMPORARY stand-in for ``rhythm_shared.kit.ports`` until it lands on main."""

from __future__ import annotations

from typing import Protocol

from rhythm_shared.contracts.base import Event
from rhythm_shared.contracts.v1 import (
    EmployeeDeactivated,
    EmployeeErased,
    EmployeeUpserted,
    OrgUnitUpserted,
    PersonKeyDestroyed,
    PersonKeyIssued,
)
from rhythm_shared.contracts.v2 import EmployeeUpsertedV2
from rhythm_shared.kit.audit import AuditEntry
from rhythm_shared.kit.clock import Clock
from rhythm_shared.kit.people import OrgUnitChange, PeopleDirectory, Person, PersonChange

Directory = PeopleDirectory

__all__ = ["Directory", "DirectoryWriter", "Person", "UnitOfWorkPort"]


class UnitOfWorkPort(Protocol):
    clock: Clock

    async def publish(self, event: Event, *, event_id: str | None = None) -> str: ...

    async def first_time(self, consumer: str, event_id: str) -> bool: ...

    def audit(self, entry: AuditEntry) -> None: ...

    async def forget_person(self, tenant_id: str, employee_id: str) -> None: ...

    def compact_after_commit(self) -> None: ...


class KeyWriter(Protocol):
    async def apply(self, event: PersonKeyIssued | PersonKeyDestroyed) -> None: ...


class DirectoryWriter(Protocol):
    @property
    def keys(self) -> KeyWriter: ...

    async def apply_employee(
        self,
        event: EmployeeUpserted | EmployeeUpsertedV2 | EmployeeDeactivated | EmployeeErased,
        event_id: str,
    ) -> PersonChange: ...

    async def apply_org_unit(self, event: OrgUnitUpserted, event_id: str) -> OrgUnitChange: ...
