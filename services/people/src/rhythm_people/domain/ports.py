"""What the handlers need from storage, as Protocols: the SQL adapters
(:mod:`rhythm_people.adapters.repository`) and the tests' in-memory fakes both implement them.

Every method is scoped by tenant: no call reads or writes another tenant's rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from rhythm_people.domain.erasure import ErasureState
from rhythm_people.domain.model import Employee, OrgUnit, SourceIdentity, StoredEmployee
from rhythm_shared.contracts.base import Event
from rhythm_shared.contracts.v1 import PersonKeyIssued
from rhythm_shared.kit.ports import UnitOfWorkPort

#: Called with how many items a bulk step just wrote (the CSV import's progress bars).
Written = Callable[[int], None]


class PeopleRepository(Protocol):
    """The employees and org units the HR platform stated, and their identity-provider names."""

    async def employees(
        self, tenant: str, ids: Iterable[str] | None = None
    ) -> dict[str, StoredEmployee]:
        """The stored employees with ``ids`` (all of the tenant's when ``ids`` is None)."""
        ...

    async def org_units(
        self, tenant: str, ids: Iterable[str] | None = None
    ) -> dict[str, OrgUnit]: ...

    async def manager_chains(
        self, tenant: str, starts: Iterable[str], known: Mapping[str, str | None]
    ) -> dict[str, str | None]:
        """The stored manager of each of ``starts`` and of everyone above them (stopping at
        ids in ``known``): employee id -> manager id."""
        ...

    async def unit_chains(
        self, tenant: str, starts: Iterable[str], known: Mapping[str, str | None]
    ) -> dict[str, str | None]:
        """The stored parent of each unit of ``starts`` and of every unit above them."""
        ...

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
        """SCIM's view of the employees (none deleted over SCIM), by id, with the total count.
        A person no identity provider named has their email as ``userName``."""
        ...

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
        """SCIM's view of the org units (none deleted over SCIM), by id, with the total."""
        ...

    async def org_unit_named(self, tenant: str, name: str) -> OrgUnit | None:
        """The unit ``name`` names (none deleted over SCIM): the unit with that id, else the
        first by id with that name."""
        ...

    async def save_org_units(
        self, tenant: str, units: Sequence[OrgUnit], now: datetime, progress: Written | None = None
    ) -> None:
        """Insert or replace the units' state (their SCIM identity stays)."""
        ...

    async def save_employees(
        self,
        tenant: str,
        people: Sequence[Employee],
        now: datetime,
        progress: Written | None = None,
        versions: Mapping[str, datetime] | None = None,
    ) -> None:
        """Insert or replace the employees' state. Only an active state ends a deactivation (an
        inactive one keeps when it began); a write without a version keeps the stored one."""
        ...

    async def save_versions(self, tenant: str, versions: Mapping[str, datetime]) -> None: ...

    async def save_identity(
        self,
        tenant: str,
        employee_id: str,
        identity: SourceIdentity,
        *,
        deleted_at: datetime | None = None,
    ) -> None: ...

    async def save_unit_identity(
        self,
        tenant: str,
        org_unit_id: str,
        external_id: str | None,
        *,
        deleted_at: datetime | None = None,
    ) -> None: ...

    async def deactivate(self, tenant: str, employee_id: str, at: datetime) -> None: ...

    async def delete_employee(self, tenant: str, employee_id: str) -> None: ...


@dataclass(frozen=True)
class StoredKey:
    """A person's data key as kept: wrapped by the key-encryption key; None once destroyed."""

    key_id: str
    wrapped_key: str | None


class KeyStore(Protocol):
    """The people's data keys, wrapped by the deployment's key-encryption key."""

    def kek(self) -> bytes:
        """The key-encryption key (DATA_KEY_ENCRYPTION_KEY)."""
        ...

    async def stored(self, tenant: str, employee_ids: Sequence[str]) -> dict[str, StoredKey]: ...

    async def add(self, issued: Sequence[PersonKeyIssued]) -> None: ...

    async def destroy(self, tenant: str, employee_id: str, now: datetime) -> str | None:
        """Destroy the person's key; its id (None: they never had one)."""
        ...


class ErasureRepository(Protocol):
    """Erasures (the erased people's tombstones) and each service's report of its part."""

    async def erased_among(self, tenant: str, employee_ids: Iterable[str]) -> set[str]: ...

    async def of_person(self, tenant: str, employee_id: str) -> ErasureState | None: ...

    async def get(self, tenant: str, erasure_id: str) -> ErasureState | None: ...

    async def add(self, tenant: str, erasure_id: str, employee_id: str, at: datetime) -> None: ...

    async def record_part(self, erasure_id: str, service: str, at: datetime) -> bool:
        """Record that ``service`` erased its part; False if it had already reported it."""
        ...

    async def complete(self, erasure_id: str, at: datetime) -> None: ...

    async def withdraw_events(self, tenant: str, employee_id: str) -> None:
        """Withdraw the person's own events (keyed by them) that are not sent yet."""
        ...


class PeopleUnitOfWork(UnitOfWorkPort, Protocol):
    """What the people handlers work with: one transaction, its repositories, its outbox."""

    @property
    def people(self) -> PeopleRepository: ...

    @property
    def keys(self) -> KeyStore: ...

    @property
    def erasures(self) -> ErasureRepository: ...

    async def publish_all(self, events: Sequence[Event], progress: Written | None = None) -> int:
        """Queue many events in order, in bulk (an HR sync of 200,000 people)."""
        ...
