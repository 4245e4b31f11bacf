"""Erasure (GDPR Art. 17, issue 14): what the notifications service holds of a person goes.

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

import asyncio
import json
import logging
from typing import Any

from sqlalchemy import Text, cast, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from rhythm_notifications.adapters import db
from rhythm_shared.contracts.envelope import Envelope
from rhythm_shared.contracts.v1 import EmployeeErased, PersonDataErased, PersonKeyDestroyed
from rhythm_shared.kit.db import write_gate
from rhythm_shared.kit.people import DirectoryProjection, PeopleDirectory
from rhythm_shared.kit.uow import UnitOfWork

log = logging.getLogger("rhythm.notifications.erasure")

SERVICE = "notifications"

_PEOPLE = DirectoryProjection(db.directory)
_checkpoints: set[asyncio.Task[None]] = set()


async def erase_person(uow: UnitOfWork, envelope: Envelope, *, kek: bytes | None) -> None:
    event = envelope.event
    assert isinstance(event, EmployeeErased)
    tenant, person = event.tenant_id, event.employee_id
    session = uow.session
    # Before the tombstone destroys the key the name is read with.
    await _blank_names(uow, tenant, person, kek)
    await _PEOPLE.apply_employee(session, event, envelope.id)

    d, di = db.deliveries, db.digest_items
    obligations = await _own_obligations(uow, tenant, person)
    await session.execute(delete(d).where(d.c.tenant_id == tenant, d.c.recipient_id == person))
    await session.execute(delete(di).where(di.c.tenant_id == tenant, di.c.recipient_id == person))
    for table, column in (
        (db.recipient_settings, "employee_id"),
        (db.category_preferences, "employee_id"),
        (db.push_subscriptions, "employee_id"),
        (db.daily_caps, "recipient_id"),
    ):
        await session.execute(
            delete(table).where(table.c.tenant_id == tenant, table.c[column] == person)
        )
    o = db.overdue_checkins
    await session.execute(delete(o).where(o.c.tenant_id == tenant, o.c.employee_id == person))
    c = db.closed_obligations
    for chunk in _chunks(sorted(obligations), 500):
        await session.execute(
            delete(c).where(c.c.tenant_id == tenant, c.c.obligation_id.in_(chunk))
        )
    like = f"%{_escape_like(person)}%"
    w = db.webhook_deliveries
    await session.execute(
        delete(w).where(w.c.tenant_id == tenant, w.c.body.like(like, escape="\\"))
    )
    await _forget_kit_rows(uow, tenant, person)
    await uow.publish(
        PersonDataErased(
            tenant_id=tenant,
            occurred_at=uow.clock.now(),
            employee_id=person,
            erasure_id=event.erasure_id,
            service=SERVICE,
        )
    )
    checkpoint_after_commit(uow)


async def destroy_key(uow: UnitOfWork, envelope: Envelope, *, kek: bytes | None) -> None:
    """The person's data key is destroyed (an erasure): their name leaves others' payloads
    first, while the key still opens it, whether or not ``EmployeeErased`` came in before."""
    event = envelope.event
    assert isinstance(event, PersonKeyDestroyed)
    await _blank_names(uow, event.tenant_id, event.employee_id, kek)
    await _PEOPLE.keys.apply(uow.session, event)


async def _blank_names(uow: UnitOfWork, tenant: str, person: str, kek: bytes | None) -> None:
    """Blank the person's name and address in others' payloads (read from the directory,
    opened with their key while it is there)."""
    known = await PeopleDirectory(uow.session, db.directory, tenant, kek=kek).person(person)
    for name in sorted({n for n in (known.display_name, known.email) if n} if known else ()):
        await _blank_in_payloads(uow, tenant, name)


async def _own_obligations(uow: UnitOfWork, tenant: str, person: str) -> set[str]:
    """The person's obligations: counted as overdue, or named by reminders sent to them."""
    o, d = db.overdue_checkins, db.deliveries
    found = set(
        (
            await uow.session.scalars(
                select(o.c.obligation_id).where(o.c.tenant_id == tenant, o.c.employee_id == person)
            )
        ).all()
    )
    rows = await uow.session.execute(
        select(d.c.payload).where(d.c.tenant_id == tenant, d.c.recipient_id == person)
    )
    for (payload,) in rows:
        facts = payload.get("facts") if isinstance(payload, dict) else None
        value = facts.get("obligation_id") if isinstance(facts, dict) else None
        if isinstance(value, str):
            found.add(value)
    return found


async def _blank_in_payloads(uow: UnitOfWork, tenant: str, name: str) -> None:
    """Blank ``name`` wherever a stored payload (deliveries, digest items) writes it out."""
    # JSON may store the name as written or with its non-ASCII letters escaped.
    patterns = {f"%{_escape_like(form)}%" for form in (name, json.dumps(name)[1:-1])}
    for table in (db.deliveries, db.digest_items):
        text = cast(table.c.payload, Text)
        rows = await uow.session.execute(
            select(table.c.id, table.c.payload).where(
                table.c.tenant_id == tenant, or_(*(text.like(p, escape="\\") for p in patterns))
            )
        )
        for row_id, payload in rows.all():
            blanked = _without(payload, name)
            if blanked != payload:
                await uow.session.execute(
                    update(table).where(table.c.id == row_id).values(payload=blanked)
                )


def _without(value: Any, name: str) -> Any:
    if isinstance(value, str):
        # Also where a line of text quotes the name ("Ana de Vries's goal is at risk").
        return value.replace(name, "")
    if isinstance(value, dict):
        return {k: _without(v, name) for k, v in value.items()}
    if isinstance(value, list):
        return [_without(v, name) for v in value]
    return value


async def _forget_kit_rows(uow: UnitOfWork, tenant: str, person: str) -> None:
    """Published events and stored answers that name the person (a LIKE on the id is broad —
    ``e-1`` also matches ``e-10`` — which only deletes a published row or a replay early)."""
    like = f"%{_escape_like(person)}%"
    o, i = db.kit.outbox, db.kit.idempotency
    await uow.session.execute(
        delete(o).where(
            o.c.published_at.is_not(None),
            or_(o.c.payload.like(like, escape="\\"), o.c.key.like(like, escape="\\")),
        )
    )
    await uow.session.execute(
        delete(i).where(
            i.c.tenant_id == tenant,
            or_(i.c.principal == person, i.c.response.like(like, escape="\\")),
        )
    )


def checkpoint_after_commit(uow: UnitOfWork) -> None:
    """On SQLite, truncate the write-ahead log once this unit of work has committed.

    The checkpoint cannot run inside the transaction; it queues for the engine's writer slot,
    which the unit of work holds until it has committed (or rolled back: then it is harmless)."""
    engine = uow.session.bind
    if uow.dialect != "sqlite" or not isinstance(engine, AsyncEngine):
        return
    task = asyncio.get_running_loop().create_task(_checkpoint(engine))
    _checkpoints.add(task)
    task.add_done_callback(_checkpoints.discard)


async def _checkpoint(engine: AsyncEngine) -> None:
    try:
        async with write_gate(engine), engine.connect() as conn:
            # On the driver's connection, outside any transaction (a checkpoint cannot run in
            # one, and the engine begins every transaction of its own with BEGIN IMMEDIATE).
            driver = (await conn.get_raw_connection()).driver_connection
            assert driver is not None
            cursor = await driver.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            busy = (await cursor.fetchone() or (0,))[0]
            if busy:
                log.warning("wal_checkpoint_busy")
    except Exception:  # the next checkpoint (SQLite's own, or the next erasure) will do
        log.exception("wal_checkpoint_failed")


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _chunks(items: list[str], size: int) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]
