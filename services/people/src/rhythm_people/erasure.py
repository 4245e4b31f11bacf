"""Erasure of a person (GDPR Art. 17), started and tracked by the people service.

``erase_employee`` destroys the person's data key (``PersonKeyDestroyed``), deletes what this
service holds of them — their employee row, their outbox rows and the idempotency answers that
name them — and publishes ``EmployeeErased``, all in one transaction. Every service then erases
its part and reports ``PersonDataErased`` on ``rhythm.privacy.v1``; :func:`record_part` keeps
those reports, and the erasure is ``completed`` once every service of :data:`SERVICES` has.

The erasure row is the person's tombstone: it keeps their employee id (and nothing else of
them), so the id is never used again — a later upsert of it is refused (409, :class:`Erased`).
People who had the erased person as their manager keep the id as their ``manager_id`` (the id
of a tombstone) until HR states another.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, get_args

from sqlalchemy import Column, Index, String, Table, delete, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from rhythm_people import keys
from rhythm_people.adapters.db import employees, kit, metadata
from rhythm_shared.contracts.envelope import Envelope
from rhythm_shared.contracts.v1 import EmployeeErased, PersonDataErased
from rhythm_shared.contracts.v1.privacy import Service
from rhythm_shared.kit.db import UtcDateTime, write_gate
from rhythm_shared.kit.errors import Conflict, NotFound
from rhythm_shared.kit.uow import UnitOfWork

log = logging.getLogger("rhythm.people.erasure")

#: Every service that holds people's data: an erasure is complete when each reported its part.
SERVICES: tuple[Service, ...] = get_args(Service)
SERVICE: Service = "people"

erasures = Table(
    "erasures",
    metadata,
    Column("erasure_id", String(64), primary_key=True),
    Column("tenant_id", String(128), nullable=False),
    # The tombstone: the erased person's id, and nothing else of them.
    Column("employee_id", String(128), nullable=False),
    Column("requested_at", UtcDateTime, nullable=False),
    Column("completed_at", UtcDateTime, nullable=True),
    comment="Erasures (GDPR Art. 17); each row is the erased person's tombstone.",
)
Index("ux_erasures_person", erasures.c.tenant_id, erasures.c.employee_id, unique=True)

erasure_parts = Table(
    "erasure_parts",
    metadata,
    Column("erasure_id", String(64), primary_key=True),
    Column("service", String(32), primary_key=True),
    Column("erased_at", UtcDateTime, nullable=False),
    comment="Which service reported its part of an erasure done (PersonDataErased).",
)


class Erased(Conflict):
    """A write about a person who was erased: their id is a tombstone and stays one."""


@dataclass(frozen=True)
class ErasureState:
    erasure_id: str
    employee_id: str
    requested_at: datetime
    completed_at: datetime | None
    #: Service -> when it reported its part done (absent: not yet).
    parts: dict[str, datetime] = field(default_factory=dict)

    @property
    def state(self) -> str:
        return "completed" if self.completed_at is not None else "in_progress"

    def pending(self) -> list[str]:
        return [s for s in SERVICES if s not in self.parts]


def new_erasure_id() -> str:
    return f"er-{uuid.uuid4().hex[:16]}"


async def erased_among(uow: UnitOfWork, tenant: str, employee_ids: Iterable[str]) -> set[str]:
    ids = sorted(set(employee_ids))
    found: set[str] = set()
    for start in range(0, len(ids), 500):
        rows = await uow.session.execute(
            select(erasures.c.employee_id).where(
                erasures.c.tenant_id == tenant,
                erasures.c.employee_id.in_(ids[start : start + 500]),
            )
        )
        found.update(rows.scalars())
    return found


async def refuse_erased(uow: UnitOfWork, tenant: str, employee_ids: Sequence[str]) -> None:
    """Refuse a write about erased people (a delayed HR retry or an export that still has them
    must not bring anyone back)."""
    erased = await erased_among(uow, tenant, employee_ids)
    if erased:
        shown = ", ".join(repr(i) for i in sorted(erased)[:10])
        raise Erased(
            f"employee {shown} was erased: an erased id is never used again "
            "(remove the person from the sync, or give a new person a new id)"
        )


async def as_managers(
    uow: UnitOfWork, tenant: str, referenced: Iterable[str]
) -> dict[str, str | None]:
    """Erased people among ``referenced`` as tombstones at the top of the manager tree, so a
    report who still names them as manager (HR has not moved them yet) stays valid."""
    return {i: None for i in await erased_among(uow, tenant, referenced)}


async def _state(uow: UnitOfWork, row: Any) -> ErasureState:
    parts = await uow.session.execute(
        select(erasure_parts.c.service, erasure_parts.c.erased_at).where(
            erasure_parts.c.erasure_id == row.erasure_id
        )
    )
    return ErasureState(
        erasure_id=row.erasure_id,
        employee_id=row.employee_id,
        requested_at=row.requested_at,
        completed_at=row.completed_at,
        parts={p.service: p.erased_at for p in parts},
    )


async def get_erasure(uow: UnitOfWork, tenant: str, erasure_id: str) -> ErasureState:
    row = (
        await uow.session.execute(
            select(erasures).where(
                erasures.c.tenant_id == tenant, erasures.c.erasure_id == erasure_id
            )
        )
    ).first()
    if row is None:
        raise NotFound(f"erasure {erasure_id!r} not found")
    return await _state(uow, row)


async def erase_employee(
    uow: UnitOfWork, tenant: str, employee_id: str, *, new_id: str | None = None
) -> tuple[ErasureState, bool]:
    """Start the erasure of a person; returns it and whether it is new (a second request for
    the same person answers with the first erasure)."""
    first = (
        await uow.session.execute(
            select(erasures).where(
                erasures.c.tenant_id == tenant, erasures.c.employee_id == employee_id
            )
        )
    ).first()
    if first is not None:
        return await _state(uow, first), False
    e = employees
    person = (e.c.tenant_id == tenant, e.c.employee_id == employee_id)
    if await uow.session.scalar(select(e.c.employee_id).where(*person)) is None:
        raise NotFound(f"employee {employee_id!r} not found")
    now = uow.clock.now()
    erasure_id = new_id or new_erasure_id()
    await uow.session.execute(
        erasures.insert().values(
            erasure_id=erasure_id, tenant_id=tenant, employee_id=employee_id, requested_at=now
        )
    )
    destroyed = await keys.destroy(uow, tenant, employee_id, now)
    await uow.session.execute(delete(e).where(*person))
    await _forget_kit_rows(uow, tenant, employee_id)
    if destroyed is not None:
        await uow.publish(destroyed)
    await uow.publish(
        EmployeeErased(
            tenant_id=tenant, occurred_at=now, employee_id=employee_id, erasure_id=erasure_id
        )
    )
    # The people service's own part is done in this transaction; it reports it like the others.
    await uow.publish(
        PersonDataErased(
            tenant_id=tenant,
            occurred_at=now,
            employee_id=employee_id,
            erasure_id=erasure_id,
            service=SERVICE,
        )
    )
    await _record(uow, erasure_id, SERVICE, now)
    checkpoint_after_commit(uow)
    return await get_erasure(uow, tenant, erasure_id), True


async def _forget_kit_rows(uow: UnitOfWork, tenant: str, person: str) -> None:
    """The person's own events (keyed by them, sent or not: v1 ones carry their name in the
    clear), published events that name them, and stored answers that name them (a LIKE on the
    quoted id, so ``e-1`` does not match ``e-10``)."""
    like = f'%"{_escape_like(person)}"%'
    o, i = kit.outbox, kit.idempotency
    await uow.session.execute(
        delete(o).where(
            or_(
                o.c.key == f"{tenant}/{person}",
                o.c.published_at.is_not(None) & o.c.payload.like(like, escape="\\"),
            )
        )
    )
    await uow.session.execute(
        delete(i).where(i.c.tenant_id == tenant, i.c.response.like(like, escape="\\"))
    )


async def _record(uow: UnitOfWork, erasure_id: str, service: str, at: datetime) -> bool:
    stmt = (
        uow.insert(erasure_parts)
        .values(erasure_id=erasure_id, service=service, erased_at=at)
        .on_conflict_do_nothing()
    )
    return bool((await uow.session.execute(stmt)).rowcount == 1)  # type: ignore[attr-defined]


async def record_part(uow: UnitOfWork, envelope: Envelope) -> None:
    """A service reported its part of an erasure done; the last report completes it."""
    event = envelope.event
    assert isinstance(event, PersonDataErased)
    row = (
        await uow.session.execute(
            select(erasures).where(
                erasures.c.tenant_id == event.tenant_id,
                erasures.c.erasure_id == event.erasure_id,
            )
        )
    ).first()
    if row is None or row.employee_id != event.employee_id:
        log.warning(
            "erasure_part_unknown",
            extra={"erasure_id": event.erasure_id, "service": event.service},
        )
        return
    await _record(uow, event.erasure_id, event.service, event.occurred_at)
    state = await _state(uow, row)
    if state.completed_at is None and not state.pending():
        await uow.session.execute(
            erasures.update()
            .where(erasures.c.erasure_id == event.erasure_id)
            .values(completed_at=uow.clock.now())
        )
        log.info("erasure_completed", extra={"erasure_id": event.erasure_id})


# -- SQLite: no old page of the person in the write-ahead log ----------------------------------

_checkpoints: set[asyncio.Task[None]] = set()


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
