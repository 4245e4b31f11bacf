"""What the unit tests of the handlers share: a team in the in-memory directory, who asks,
and envelopes of consumed events."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from checkins_fakes import FakeCheckinsUnitOfWork

from rhythm_checkins.commands import Command, SetPolicy
from rhythm_checkins.domain.policy import Rule
from rhythm_checkins.handlers import EVENT_HANDLERS, handle
from rhythm_shared.contracts.base import Event
from rhythm_shared.contracts.envelope import Envelope
from rhythm_shared.contracts.v1 import CheckinKind, EmployeeUpserted, Frequency, PolicyScope
from rhythm_shared.kit.auth import Principal
from rhythm_shared.kit.clock import ManualClock

T = "acme"
#: A Monday in March 2026; the month's check-in is due on Tuesday 31 March, 17:00 in Amsterdam.
MONDAY = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ZONE = "Europe/Amsterdam"


def who(subject: str, *roles: str) -> Principal:
    return Principal(subject=subject, tenant=T, roles=frozenset(roles or ("employee",)))


HR = who("hr-1", "hr_admin")


def new_uow(at: datetime = MONDAY) -> FakeCheckinsUnitOfWork:
    """boss ← mia (manager) ← ana, ben, in unit ou-eng under ou-root."""
    uow = FakeCheckinsUnitOfWork(ManualClock(at))
    uow.people.add_unit(T, "ou-root", head_id="boss")
    uow.people.add_unit(T, "ou-eng", parent_id="ou-root", head_id="mia")
    for person, manager in (("boss", None), ("mia", "boss"), ("ana", "mia"), ("ben", "mia")):
        uow.people.add_person(
            T,
            person,
            manager_id=manager,
            org_unit_id="ou-eng" if manager else "ou-root",
            time_zone=ZONE,
            hired_on=date(2020, 1, 6),
        )
    return uow


def monthly_policy(scope: PolicyScope = PolicyScope.TENANT, scope_id: str = T) -> SetPolicy:
    return SetPolicy(
        principal=HR,
        scope=scope,
        scope_id=scope_id,
        rules=(Rule(kind=CheckinKind.MONTHLY, frequency=Frequency.MONTHLY),),
        escalate_after=1,
    )


async def run(uow: FakeCheckinsUnitOfWork, command: Command) -> Any:
    """``command`` in a unit of work, through the map, as the HTTP layer runs it."""
    async with uow:
        return await handle(uow, command)


def envelope(event: Event, event_id: str = "ev-1") -> Envelope[Event]:
    return Envelope(
        id=event_id,
        source="/rhythm/people",
        type=event.type,
        time=event.occurred_at,
        subject=event.subject,
        tenant_id=event.tenant_id,
        event=event,
    )


async def consume(uow: FakeCheckinsUnitOfWork, event: Event, event_id: str = "ev-1") -> None:
    """``event`` in a unit of work, through the map, as the consumer runs it."""
    async with uow:
        await EVENT_HANDLERS[type(event)](uow, envelope(event, event_id))


def upsert(
    employee_id: str,
    manager_id: str | None,
    *,
    at: datetime,
    active: bool = True,
    time_zone: str = ZONE,
) -> EmployeeUpserted:
    return EmployeeUpserted(
        tenant_id=T,
        occurred_at=at,
        employee_id=employee_id,
        email=f"{employee_id}@example.com",
        display_name=employee_id.upper(),
        manager_id=manager_id,
        org_unit_id="ou-eng",
        time_zone=time_zone,
        locale="en-GB",
        hired_on=date(2020, 1, 6),
        active=active,
    )
