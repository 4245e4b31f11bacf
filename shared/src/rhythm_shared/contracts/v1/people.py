"""``rhythm.people.v1``: people and org units, as the HR platform knows them.

Every service keeps the slice it needs from these (event-carried state), so they carry what a
consumer needs to write to someone: a display name, an email address, a time zone and a locale.
"""

from __future__ import annotations

from datetime import date
from typing import ClassVar

from pydantic import ConfigDict, Field, model_validator

from rhythm_shared.contracts import topics
from rhythm_shared.contracts.base import Event, Identifier, Instant
from rhythm_shared.contracts.v1.values import DisplayName, Email, Locale, TimeZoneName


class EmployeeUpserted(Event):
    """An employee was created or changed in the HR platform; the body is their full current state.

    Consumers replace what they hold for employee_id with this body (last write wins per key).
    """

    type: ClassVar[str] = "rhythm.employee.upserted.v1"
    topic: ClassVar[str] = topics.PEOPLE
    entity: ClassVar[str] = "employee"
    entity_field: ClassVar[str] = "employee_id"

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "tenant_id": "acme",
                    "occurred_at": "2026-03-02T08:15:00Z",
                    "employee_id": "e-1042",
                    "email": "ana.devries@acme.example.com",
                    "display_name": "Ana de Vries",
                    "manager_id": "e-0007",
                    "org_unit_id": "ou-platform",
                    "time_zone": "Europe/Amsterdam",
                    "locale": "nl",
                    "hired_on": "2023-09-01",
                    "active": True,
                }
            ]
        }
    )

    employee_id: Identifier = Field(description="The employee's id, stable across HR syncs.")
    email: Email = Field(description="Work email address, used to send notifications.")
    display_name: DisplayName = Field(description="Name to address the employee by in messages.")
    manager_id: Identifier | None = Field(
        default=None, description="The direct manager's employee id; null at the top of the tree."
    )
    org_unit_id: Identifier = Field(description="The org unit the employee belongs to.")
    time_zone: TimeZoneName = Field(
        description="IANA time zone (e.g. Europe/Amsterdam); due times are computed in it."
    )
    locale: Locale = Field(description="Preferred language for messages, e.g. nl or en-GB.")
    hired_on: date = Field(description="First working day (ISO date).")
    active: bool = Field(
        default=True, description="False while the employee is on record but not working."
    )

    @model_validator(mode="after")
    def _not_own_manager(self) -> EmployeeUpserted:
        if self.manager_id == self.employee_id:
            raise ValueError("an employee cannot be their own manager")
        return self


class EmployeeDeactivated(Event):
    """An employee left (or will leave) the organisation; nothing more is owed to or by them."""

    type: ClassVar[str] = "rhythm.employee.deactivated.v1"
    topic: ClassVar[str] = topics.PEOPLE
    entity: ClassVar[str] = "employee"
    entity_field: ClassVar[str] = "employee_id"

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "tenant_id": "acme",
                    "occurred_at": "2026-03-02T08:15:00Z",
                    "employee_id": "e-1042",
                    "effective_at": "2026-03-31T23:59:59+02:00",
                }
            ]
        }
    )

    employee_id: Identifier = Field(description="The employee who is deactivated.")
    effective_at: Instant = Field(
        description="From when the employee is inactive; may lie in the future."
    )


class OrgUnitUpserted(Event):
    """An org unit (department, team) was created or changed; the body is its full current state."""

    type: ClassVar[str] = "rhythm.org_unit.upserted.v1"
    topic: ClassVar[str] = topics.PEOPLE
    entity: ClassVar[str] = "org_unit"
    entity_field: ClassVar[str] = "org_unit_id"

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "tenant_id": "acme",
                    "occurred_at": "2026-03-02T08:15:00Z",
                    "org_unit_id": "ou-platform",
                    "name": "Platform Engineering",
                    "parent_id": "ou-engineering",
                    "head_id": "e-0007",
                }
            ]
        }
    )

    org_unit_id: Identifier = Field(description="The org unit's id, stable across HR syncs.")
    name: DisplayName = Field(description="The org unit's name as shown in reports.")
    parent_id: Identifier | None = Field(
        default=None, description="The enclosing org unit; null for the root."
    )
    head_id: Identifier | None = Field(
        default=None, description="Employee id of the unit's head, if the HR platform knows one."
    )

    @model_validator(mode="after")
    def _not_own_parent(self) -> OrgUnitUpserted:
        if self.parent_id == self.org_unit_id:
            raise ValueError("an org unit cannot be its own parent")
        return self


class EmployeeErased(Event):
    """A person's data is to be erased everywhere (GDPR Art. 17): every service deletes what it
    holds of them and reports back with ``PersonDataErased``; their data key is destroyed, so
    retained records that carry their sealed name and address can no longer be read. Later
    events about the same employee id are ignored."""

    type: ClassVar[str] = "rhythm.employee.erased.v1"
    topic: ClassVar[str] = topics.PEOPLE
    entity: ClassVar[str] = "employee"
    entity_field: ClassVar[str] = "employee_id"

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "tenant_id": "acme",
                    "occurred_at": "2026-06-02T08:15:00Z",
                    "employee_id": "e-1042",
                    "erasure_id": "er-5f2b9c",
                }
            ]
        }
    )

    employee_id: Identifier = Field(description="The person to erase.")
    erasure_id: Identifier = Field(description="The erasure, to report progress against.")
