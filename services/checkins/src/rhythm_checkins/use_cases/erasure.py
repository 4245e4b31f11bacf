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
  :class:`~rhythm_shared.kit.people.DirectoryProjection`);
* published outbox rows that name them and idempotent answers that mention them go; outbox rows
  of their deleted check-ins go whether published or not;
* the audit trail stays: ids, kinds and times, never texts; it records who read what.

``PersonDataErased(service="checkins")`` is queued in the same transaction; a repeated
``EmployeeErased`` is a duplicate for the inbox. A person the service never knew is reported
done all the same. On SQLite a ``PRAGMA wal_checkpoint(TRUNCATE)`` follows the commit, so no
old page with their texts stays in the write-ahead log.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from rhythm_checkins.adapters.db import (
    action_items,
    cadence_facts,
    checkins,
    departures,
    feedback,
    feedback_requests,
    goal_progress,
    goals,
    kit,
    obligations,
    planning,
)
from rhythm_checkins.use_cases.people import apply_employee_event
from rhythm_shared.contracts.v1 import EmployeeErased, OwnerType, PersonDataErased
from rhythm_shared.kit.db import write_gate
from rhythm_shared.kit.uow import UnitOfWork

log = logging.getLogger("rhythm.checkins.erasure")

SERVICE = "checkins"

_checkpoints: set[asyncio.Task[None]] = set()


async def erase_person(uow: UnitOfWork, event: EmployeeErased, event_id: str) -> None:
    tenant, person = event.tenant_id, event.employee_id
    await apply_employee_event(uow, event, event_id)
    session = uow.session

    about = list(
        (
            await session.scalars(
                select(checkins.c.id).where(
                    checkins.c.tenant_id == tenant, checkins.c.employee_id == person
                )
            )
        ).all()
    )
    await session.execute(
        delete(action_items).where(
            action_items.c.tenant_id == tenant, action_items.c.employee_id == person
        )
    )
    for chunk in _chunks(about, 500):
        await session.execute(delete(action_items).where(action_items.c.checkin_id.in_(chunk)))
        await session.execute(delete(checkins).where(checkins.c.id.in_(chunk)))
        await session.execute(
            delete(kit.outbox).where(kit.outbox.c.key.in_([f"{tenant}/{c}" for c in chunk]))
        )
    await session.execute(
        update(action_items)
        .where(action_items.c.tenant_id == tenant, action_items.c.owner_id == person)
        .values(text=None)
    )

    await session.execute(
        delete(feedback).where(feedback.c.tenant_id == tenant, feedback.c.receiver_id == person)
    )
    await session.execute(
        update(feedback)
        .where(feedback.c.tenant_id == tenant, feedback.c.giver_id == person)
        .values(text=None)
    )
    await session.execute(
        delete(feedback_requests).where(
            feedback_requests.c.tenant_id == tenant,
            or_(feedback_requests.c.requester_id == person, feedback_requests.c.from_id == person),
        )
    )

    owed = select(obligations.c.id).where(
        obligations.c.tenant_id == tenant, obligations.c.employee_id == person
    )
    await session.execute(delete(cadence_facts).where(cadence_facts.c.obligation_id.in_(owed)))
    await session.execute(
        delete(obligations).where(
            obligations.c.tenant_id == tenant, obligations.c.employee_id == person
        )
    )
    for table in (planning, departures):
        await session.execute(
            delete(table).where(table.c.tenant_id == tenant, table.c.employee_id == person)
        )

    own_goals = select(goals.c.goal_id).where(
        goals.c.tenant_id == tenant,
        goals.c.owner_type == OwnerType.PERSON.value,
        goals.c.owner_id == person,
    )
    await session.execute(
        delete(goal_progress).where(
            goal_progress.c.tenant_id == tenant, goal_progress.c.goal_id.in_(own_goals)
        )
    )
    await session.execute(
        delete(goals).where(
            goals.c.tenant_id == tenant,
            goals.c.owner_type == OwnerType.PERSON.value,
            goals.c.owner_id == person,
        )
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


async def _forget_kit_rows(uow: UnitOfWork, tenant: str, person: str) -> None:
    """Published events and stored answers that name the person (a LIKE on the id is broad —
    ``e-1`` also matches ``e-10`` — which only deletes a published row or a replay early)."""
    like = f"%{_escape_like(person)}%"
    o, i = kit.outbox, kit.idempotency
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
