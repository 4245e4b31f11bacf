"""``rhythm.employee.upserted.v2``: an employee's state with their name and address sealed.

v1 carried the name and email address in the clear, so every record on the people topic kept
them for the topic's retention — an erasure could not reach them. v2 carries them sealed with
the person's data key (``rsk1.<key_id>.<nonce+ciphertext>``, AES-256-GCM, the associated data
binding each value to its tenant, employee and field); the key comes on ``rhythm.keys.v1``
(``PersonKeyIssued``, wrapped by the key-encryption key) and erasure destroys it. Everything else
is as in v1. The people service publishes v2 only; consumers still read v1 records.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, ClassVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from rhythm_shared.contracts import topics
from rhythm_shared.contracts.base import Event, Identifier
from rhythm_shared.contracts.v1.values import Locale, TimeZoneName

Sealed = Annotated[
    str,
    Field(
        min_length=10,
        max_length=2048,
        pattern=r"^rsk1\.[A-Za-z0-9][A-Za-z0-9._:@-]*\.[A-Za-z0-9_-]+$",
        description="A value sealed with the person's data key: rsk1.<key_id>.<base64url>.",
    ),
]


class SealedPersonalData(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    key_id: Identifier = Field(description="The person's data key (PersonKeyIssued.key_id).")
    email: Sealed = Field(description="Work email address, sealed.")
    display_name: Sealed = Field(description="Name to address the employee by, sealed.")


class EmployeeUpsertedV2(Event):
    """An employee was created or changed in the HR platform; the body is their full current
    state, with the personal fields sealed (see the module docstring)."""

    type: ClassVar[str] = "rhythm.employee.upserted.v2"
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
                    "sealed": {
                        "key_id": "k-7d1c2a9b4e",
                        "email": "rsk1.k-7d1c2a9b4e.q1w2e3r4t5y6u7i8o9p0",
                        "display_name": "rsk1.k-7d1c2a9b4e.a1s2d3f4g5h6j7k8l9",
                    },
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
    sealed: SealedPersonalData = Field(description="Email address and name, sealed per person.")
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
    def _not_own_manager(self) -> EmployeeUpsertedV2:
        if self.manager_id == self.employee_id:
            raise ValueError("an employee cannot be their own manager")
        return self
