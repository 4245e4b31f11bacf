"""Erasure (GDPR Art. 17, issue 14): what the check-ins service holds of a person goes.

On ``EmployeeErased``, in the one transaction of the event's inbox row:

* check-ins about the person (they are the employee) are deleted with their action items: the
  reflection, GROW agenda, notes and pulse are theirs. No API answers for them any more (404);
* check-ins they held as someone's manager stay: they are the other employee's 1:1 record too,
  and their notes are that employee's as much as the manager's. The manager's id stays as an
  id; the texts of the action items the erased manager owned there are removed (the item, its
  owner id and times stay, as after retention);
* feedback they received and requests they made or were asked to answer are deleted; the text
  of feedback they gave is removed (the row, its kind and time stay: it is the receiver's);
* what they owe (obligations, their due/missed/escalated facts, planning) and their departure
  row are deleted: an erased person owes nothing and is planned no more;
* the goals slice forgets their own goals (titles, progress) — and a late ``GoalCreated`` for
  an erased owner is not taken in (:mod:`rhythm_checkins.use_cases.goals`);
* the directory keeps the id as a tombstone and their data key is destroyed (the kit's
  directory projection);
* published outbox rows that name them and idempotent answers that mention them go; outbox rows
  of their deleted check-ins go whether published or not;
* the audit trail stays: ids, kinds and times, never texts; it records who read what.

``PersonDataErased(service="checkins")`` is queued in the same transaction; a repeated
``EmployeeErased`` is a duplicate for the inbox. A person the service never knew is reported
done all the same. On SQLite the write-ahead log is truncated after the commit, so no old page
with their texts stays in it.
"""

from __future__ import annotations

from rhythm_checkins.domain.ports import CheckinsUnitOfWork
from rhythm_checkins.use_cases.people import react_to_employee
from rhythm_shared.contracts.envelope import Envelope
from rhythm_shared.contracts.v1 import EmployeeErased
from rhythm_shared.kit.erasure import finish_erasure

SERVICE = "checkins"


async def erase_person(uow: CheckinsUnitOfWork, envelope: Envelope[EmployeeErased]) -> None:
    event = envelope.event
    tenant, person = event.tenant_id, event.employee_id
    await react_to_employee(uow, event, envelope.id)
    await uow.checkins.forget_person(tenant, person)
    await uow.feedback.forget_person(tenant, person)
    await uow.cadence.forget_person(tenant, person)
    await uow.departures.forget(tenant, person)
    await uow.goals.forget_owner(tenant, person)
    await finish_erasure(uow, event, service=SERVICE)
