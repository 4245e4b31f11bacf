"""The people directory's one rule, pure: what a person and an org unit are, and how people
events fold into them (:func:`fold_employee`, :func:`fold_org_unit`). No database here, so the
rule can be checked over every order of events and shared by the SQL directory
(:mod:`rhythm_shared.kit.people`) and the in-memory one of unit tests
(:mod:`rhythm_shared.testing.fakes`). The rule itself is described in :mod:`.people`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import date, datetime

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

#: The events that describe one employee, whatever their version.
EmployeeEvent = EmployeeUpserted | EmployeeUpsertedV2 | EmployeeDeactivated | EmployeeErased
#: The same, for ``isinstance`` (spelled out, so that it narrows to ``EmployeeEvent``).
EMPLOYEE_EVENTS = (EmployeeUpserted, EmployeeUpsertedV2, EmployeeDeactivated, EmployeeErased)
#: Every event the directory applies: people, org units and the keys of people's data.
DIRECTORY_EVENTS: tuple[type[Event], ...] = (
    *EMPLOYEE_EVENTS,
    OrgUnitUpserted,
    PersonKeyIssued,
    PersonKeyDestroyed,
)

#: A manager chain or a unit tree deeper than this is a loop in the HR data: the walk stops.
MAX_DEPTH = 64


#: The version of a write: the HR platform's time, then the event id to break ties.
Version = tuple[datetime, str]


@dataclass(frozen=True)
class Person:
    """What the directory holds of one employee."""

    employee_id: str
    email: str | None = None
    display_name: str | None = None
    manager_id: str | None = None
    org_unit_id: str | None = None
    time_zone: str = "UTC"
    locale: str = "en"
    hired_on: date | None = None
    #: As the HR platform last sent it (an upsert may say inactive).
    active: bool = True
    #: A deactivation in force from this instant (which may lie ahead).
    deactivated_at: datetime | None = None
    #: Version of the last upsert applied (None: only a deactivation is known so far).
    profile_version: Version | None = None
    #: Version of the deactivation in force (None once a newer upsert cleared it).
    deactivation_version: Version | None = None
    #: The person was erased: nothing of them is kept but the id, for good.
    erased: bool = False

    @property
    def known(self) -> bool:
        """An upsert has arrived (not only a deactivation) and the person is not erased."""
        return self.profile_version is not None and not self.erased

    def active_at(self, instant: datetime) -> bool:
        return (
            self.known
            and self.active
            and (self.deactivated_at is None or instant < self.deactivated_at)
        )


@dataclass(frozen=True)
class OrgUnit:
    org_unit_id: str
    name: str
    parent_id: str | None = None
    head_id: str | None = None
    version: Version | None = None


_NOBODY = Person(employee_id="")


def _newer(version: Version, than: Version | None) -> bool:
    return than is None or version > than


def fold_employee(current: Person | None, event: EmployeeEvent, event_id: str) -> Person:
    """The state after ``event``: the one rule of the directory (see the module docstring)."""
    version: Version = (event.occurred_at, event_id)
    # Someone not known yet: every field at its default (the id is the event's, below).
    person = _NOBODY if current is None else current
    if person.erased:
        return person
    if isinstance(event, EmployeeErased):
        return Person(employee_id=event.employee_id, active=False, erased=True)
    if isinstance(event, EmployeeUpserted | EmployeeUpsertedV2):
        if not _newer(version, person.profile_version):
            return person
        clears = _newer(version, person.deactivation_version)
        if isinstance(event, EmployeeUpsertedV2):
            email, display_name = event.sealed.email, event.sealed.display_name
        else:
            email, display_name = str(event.email), event.display_name
        # Built whole rather than by dataclasses.replace, which costs three times as much: this
        # runs for every people event of every service.
        return Person(
            employee_id=event.employee_id,
            email=email,
            display_name=display_name,
            manager_id=event.manager_id,
            org_unit_id=event.org_unit_id,
            time_zone=event.time_zone,
            locale=event.locale,
            hired_on=event.hired_on,
            active=event.active,
            deactivated_at=None if clears else person.deactivated_at,
            profile_version=version,
            # A cleared deactivation is older than this upsert: nothing compares with it again.
            deactivation_version=None if clears else person.deactivation_version,
        )
    if not (
        _newer(version, person.profile_version) and _newer(version, person.deactivation_version)
    ):
        return person
    return dataclasses.replace(
        person,
        employee_id=event.employee_id,
        deactivated_at=event.effective_at,
        deactivation_version=version,
    )


def fold_org_unit(current: OrgUnit | None, event: OrgUnitUpserted, event_id: str) -> OrgUnit:
    version: Version = (event.occurred_at, event_id)
    if current is not None and not _newer(version, current.version):
        return current
    return OrgUnit(
        org_unit_id=event.org_unit_id,
        name=event.name,
        parent_id=event.parent_id,
        head_id=event.head_id,
        version=version,
    )


@dataclass(frozen=True)
class PersonChange:
    """What one people event did to the directory, for the service's own reactions."""

    before: Person | None
    after: Person

    @property
    def changed(self) -> bool:
        return self.before != self.after


@dataclass(frozen=True)
class OrgUnitChange:
    before: OrgUnit | None
    after: OrgUnit

    @property
    def changed(self) -> bool:
        return self.before != self.after
