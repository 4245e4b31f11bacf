"""The people directory's projection, and erasure (GDPR Art. 17, issue 14).

On ``EmployeeErased``, in the one transaction of the event's inbox row:

* everything addressed to the person goes: their deliveries and digest items (sent or not),
  preferences, quiet hours, push subscriptions, daily permits, the missed check-ins counted for
  them or their manager digest, and the closed obligations that were theirs;
* in what others were sent or are owed (a manager told of the person's missed check-in), the
  person's name is blanked wherever it was written into the stored payload; the person's id
  stays there, as the id of someone else's history. The name is read with the person's data
  key, and ``PersonKeyDestroyed`` (rhythm.keys.v1) may be consumed before ``EmployeeErased``
  (rhythm.people.v1, another partition): :func:`destroy_key` blanks it too, before the key goes;
* webhook deliveries whose body names the person go (sent or owed: an erased person's events
  are no longer forwarded to the tenant's endpoints);
* the directory keeps the id as a tombstone and the person's data key is destroyed
  (:class:`~rhythm_shared.kit.people.DirectoryProjection`); published outbox rows and stored
  idempotent answers that name them go.

``PersonDataErased(service="notifications")`` is queued in the same transaction; a repeated
``EmployeeErased`` is a duplicate for the inbox and reports nothing twice. A person the service
never knew is erased all the same and reported done. On SQLite a ``PRAGMA
wal_checkpoint(TRUNCATE)`` follows the commit, so no old page stays in the write-ahead log.
"""

from __future__ import annotations

import functools

from rhythm_notifications.domain.erasure import obligations_named, without, written_forms
from rhythm_notifications.domain.ports import NotificationsUnitOfWork
from rhythm_shared.contracts.envelope import Envelope
from rhythm_shared.contracts.v1 import (
    EmployeeDeactivated,
    EmployeeErased,
    EmployeeUpserted,
    OrgUnitUpserted,
    PersonKeyDestroyed,
    PersonKeyIssued,
)
from rhythm_shared.contracts.v2 import EmployeeUpsertedV2
from rhythm_shared.kit.erasure import finish_erasure

SERVICE = "notifications"


async def apply_person(
    uow: NotificationsUnitOfWork,
    envelope: Envelope[EmployeeUpserted | EmployeeUpsertedV2 | EmployeeDeactivated],
) -> None:
    """A people event into the directory (its one rule: last writer wins by occurred_at).

    Nothing else reacts here: who is written to, and whether they are still active, is read
    from the directory when a notification is decided and again when it is sent.
    """
    await uow.people.apply_employee(envelope.event, envelope.id)


async def apply_org_unit(uow: NotificationsUnitOfWork, envelope: Envelope[OrgUnitUpserted]) -> None:
    await uow.people.apply_org_unit(envelope.event, envelope.id)


async def apply_key(uow: NotificationsUnitOfWork, envelope: Envelope[PersonKeyIssued]) -> None:
    """A person's data key (rhythm.keys.v1): what opens their sealed name and address."""
    await uow.people.apply_key(envelope.event)


async def erase_person(
    uow: NotificationsUnitOfWork, envelope: Envelope[EmployeeErased], *, kek: bytes | None
) -> None:
    event = envelope.event
    tenant, person = event.tenant_id, event.employee_id
    # Before the tombstone destroys the key the name is read with.
    await _blank_names(uow, tenant, person, kek)
    await uow.people.apply_employee(event, envelope.id)
    # The person's obligations: counted as overdue, or named by reminders sent to them.
    obligations = await uow.deliveries.overdue_obligations_of(tenant, person)
    obligations |= obligations_named(await uow.deliveries.payloads_for(tenant, person))
    await uow.deliveries.forget(tenant, person, obligations)
    await uow.preferences.forget(tenant, person)
    await uow.webhooks.forget_mentions(tenant, person)
    await finish_erasure(uow, event, service=SERVICE)


async def destroy_key(
    uow: NotificationsUnitOfWork, envelope: Envelope[PersonKeyDestroyed], *, kek: bytes | None
) -> None:
    """The person's data key is destroyed (an erasure): their name leaves others' payloads
    first, while the key still opens it, whether or not ``EmployeeErased`` came in before."""
    event = envelope.event
    await _blank_names(uow, event.tenant_id, event.employee_id, kek)
    await uow.people.apply_key(event)


async def _blank_names(
    uow: NotificationsUnitOfWork, tenant: str, person: str, kek: bytes | None
) -> None:
    """Blank the person's name and address in others' payloads (read from the directory,
    opened with their key while it is there)."""
    known = await uow.people_opened_with(kek).directory(tenant).person(person)
    for name in sorted({n for n in (known.display_name, known.email) if n} if known else ()):
        await uow.deliveries.rewrite_payloads(
            tenant, written_forms(name), functools.partial(without, name=name)
        )
