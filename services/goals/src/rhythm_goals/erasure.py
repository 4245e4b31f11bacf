"""Erasure (GDPR Art. 17, issue 14): what the goals service holds of a person goes.

On ``EmployeeErased``, in the one transaction of the event's inbox row:

* the person's own goals are deleted with their key results, progress history (comments
  included) and revisions: a person-owned goal is the person's (its title and description say
  what they work on), so no API answers for it any more (404). Other people's goals that were
  aligned to one of them lose that alignment (the parent no longer exists);
* the comments they wrote on other people's and teams' goals are blanked (in the progress
  history and in the revision that recorded them); the values they recorded stay, under their
  id, as the goal's history;
* the directory keeps the id as a tombstone and their data key is destroyed (the kit's
  :class:`~rhythm_shared.kit.people.DirectoryProjection`); a pending archive of their goals goes;
* published outbox rows that name them (payload or key) and idempotent answers that mention
  them go; outbox rows of their deleted goals go whether published or not (a queued event
  would carry a title out after the erasure);
* the audit trail stays: it holds ids, kinds and times, never texts, and it is the record of
  who read what (the person's id stays as an id there, as on the facts of other people's goals).

``PersonDataErased(service="goals")`` is queued in the same transaction; a repeated
``EmployeeErased`` is a duplicate for the inbox and reports nothing twice. A person the service
never knew is erased all the same (nothing to delete) and reported done. On SQLite a
``PRAGMA wal_checkpoint(TRUNCATE)`` follows the commit, so no old page with the texts stays in
the write-ahead log.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from rhythm_goals.adapters.db import (
    goal_revisions,
    goals,
    key_results,
    kit,
    leavers,
    people_tables,
    progress_records,
)
from rhythm_shared.contracts.envelope import Envelope
from rhythm_shared.contracts.v1 import EmployeeErased, OwnerType, PersonDataErased
from rhythm_shared.kit.db import write_gate
from rhythm_shared.kit.people import DirectoryProjection
from rhythm_shared.kit.uow import UnitOfWork

log = logging.getLogger("rhythm.goals.erasure")

SERVICE = "goals"

_PEOPLE = DirectoryProjection(people_tables)
_checkpoints: set[asyncio.Task[None]] = set()


async def erase_person(uow: UnitOfWork, envelope: Envelope) -> None:
    event = envelope.event
    assert isinstance(event, EmployeeErased)
    tenant, person = event.tenant_id, event.employee_id
    await _PEOPLE.apply_employee(uow.session, event, envelope.id)
    session = uow.session
    await session.execute(
        delete(leavers).where(leavers.c.tenant_id == tenant, leavers.c.employee_id == person)
    )
    own = list(
        (
            await session.scalars(
                select(goals.c.goal_id).where(
                    goals.c.tenant_id == tenant,
                    goals.c.owner_type == OwnerType.PERSON.value,
                    goals.c.owner_id == person,
                )
            )
        ).all()
    )
    for chunk in _chunks(own, 500):
        await session.execute(
            update(goals)
            .where(goals.c.tenant_id == tenant, goals.c.parent_goal_id.in_(chunk))
            .values(parent_goal_id=None)
        )
        # Children first: SQLite's foreign keys cascade too, but not every engine is asked to.
        for table in (progress_records, key_results, goal_revisions):
            await session.execute(delete(table).where(table.c.goal_id.in_(chunk)))
        await session.execute(delete(goals).where(goals.c.goal_id.in_(chunk)))
        await session.execute(
            delete(kit.outbox).where(kit.outbox.c.key.in_([f"{tenant}/{g}" for g in chunk]))
        )
    await session.execute(
        update(progress_records)
        .where(
            progress_records.c.tenant_id == tenant,
            progress_records.c.recorded_by == person,
            progress_records.c.comment.is_not(None),
        )
        .values(comment=None)
    )
    revisions = await session.execute(
        select(goal_revisions.c.seq, goal_revisions.c.changes).where(
            goal_revisions.c.tenant_id == tenant,
            goal_revisions.c.changed_by == person,
            goal_revisions.c.action == "progress_recorded",
        )
    )
    for seq, changes in revisions.all():
        if isinstance(changes, dict) and changes.get("comment") is not None:
            await session.execute(
                update(goal_revisions)
                .where(goal_revisions.c.seq == seq)
                .values(changes={**changes, "comment": None})
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
