"""Every command the people service accepts: what a caller asks for, as data.

The entrypoints build them (HTTP request models, SCIM resources, the CSV import's rows are
translated here) and hand them to their handler (:data:`rhythm_people.handlers.COMMAND_HANDLERS`).
The tenant is always the caller's (from the token), never the body's.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from rhythm_people.domain.model import Employee, OrgUnit, ProvisionedUser


class Command(BaseModel):
    model_config = ConfigDict(frozen=True)

    tenant: str


class SyncPeople(Command):
    """Store org units and employees in their full current state, all or nothing (a batch, the
    CSV import). ``versions``: the source's times of the employees' states. With
    ``keep_unit_heads`` (sources that do not know heads), a unit without a head keeps its own."""

    org_units: tuple[OrgUnit, ...] = ()
    employees: tuple[Employee, ...] = ()
    versions: Mapping[str, datetime] = Field(default_factory=dict)
    keep_unit_heads: bool = False


class UpsertEmployee(Command):
    """Create or replace one employee (``source_updated_at``: the source's time of the state)."""

    employee: Employee
    source_updated_at: datetime | None = None


class UpsertOrgUnit(Command):
    """Create or replace one org unit."""

    org_unit: OrgUnit


class DeactivateEmployee(Command):
    """Deactivate an employee, from ``effective_at`` (default: now)."""

    employee_id: str
    effective_at: datetime | None = None


class ProvisionUser(Command):
    """Create (``employee_id`` None) or replace a person as an identity provider states them.

    ``if_match``: the version the caller expects (RFC 7232 ``If-Match``). ``based_on``: the
    version the stated state was derived from (a SCIM PATCH applied to it); a person who
    changed since is a conflict, so a patch never overwrites a change it did not see."""

    user: ProvisionedUser
    employee_id: str | None = None
    if_match: str | None = None
    based_on: str | None = None


class RemoveUser(Command):
    """A SCIM DELETE of a User: deactivated and no longer served; their history stays."""

    employee_id: str
    if_match: str | None = None


class ProvisionGroup(Command):
    """Create (``org_unit_id`` None) or rename an org unit as a SCIM Group states it."""

    name: str
    external_id: str | None = None
    org_unit_id: str | None = None
    if_match: str | None = None
    based_on: str | None = None


class RemoveGroup(Command):
    """A SCIM DELETE of a Group: no longer served; the unit and its people stay."""

    org_unit_id: str
    if_match: str | None = None


class EraseEmployee(Command):
    """Erase a person everywhere (GDPR Art. 17)."""

    employee_id: str
