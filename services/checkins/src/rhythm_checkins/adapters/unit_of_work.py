"""The service's SQL unit of work: the kit's, carrying this service's repositories."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from sqlalchemy import delete, or_
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from rhythm_checkins.adapters.db import directory, kit
from rhythm_checkins.adapters.repository import (
    SqlCadenceRepository,
    SqlCheckinRepository,
    SqlDepartureRepository,
    SqlFeedbackRepository,
    SqlGoalRepository,
)
from rhythm_shared.contracts.v1 import (
    EmployeeDeactivated,
    EmployeeErased,
    EmployeeUpserted,
    OrgUnitUpserted,
    PersonKeyDestroyed,
    PersonKeyIssued,
)
from rhythm_shared.contracts.v2 import EmployeeUpsertedV2
from rhythm_shared.kit.db import write_gate
from rhythm_shared.kit.people import (
    DirectoryProjection,
    OrgUnitChange,
    PeopleDirectory,
    PersonChange,
)
from rhythm_shared.kit.uow import UnitOfWork, UnitOfWorkFactory

log = logging.getLogger("rhythm.checkins.uow")

_projection = DirectoryProjection(directory)
_checkpoints: set[asyncio.Task[None]] = set()


class _Keys:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def apply(self, event: PersonKeyIssued | PersonKeyDestroyed) -> None:
        await _projection.keys.apply(self.session, event)


class _DirectoryWriter:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.keys = _Keys(session)

    async def apply_employee(
        self,
        event: EmployeeUpserted | EmployeeUpsertedV2 | EmployeeDeactivated | EmployeeErased,
        event_id: str,
    ) -> PersonChange:
        return await _projection.apply_employee(self.session, event, event_id)

    async def apply_org_unit(self, event: OrgUnitUpserted, event_id: str) -> OrgUnitChange:
        return await _projection.apply_org_unit(self.session, event, event_id)


class SqlCheckinsReader:
    """The repositories on one session (the read side opens it read-only)."""

    def __init__(self, session: AsyncSession, insert: Any = None) -> None:
        self.session = session
        self.checkins = SqlCheckinRepository(session, insert)
        self.feedback = SqlFeedbackRepository(session)
        self.cadence = SqlCadenceRepository(session, insert)
        self.goals = SqlGoalRepository(session, insert)

    def people(self, tenant_id: str) -> PeopleDirectory:
        # A fresh one each time: its reads are memoised, and a consumer's unit of work may
        # apply several people events one after the other.
        return PeopleDirectory(self.session, directory, tenant_id)


class SqlCheckinsUnitOfWork(UnitOfWork):
    checkins: SqlCheckinRepository
    feedback: SqlFeedbackRepository
    cadence: SqlCadenceRepository
    goals: SqlGoalRepository
    departures: SqlDepartureRepository
    directory: _DirectoryWriter

    async def __aenter__(self) -> SqlCheckinsUnitOfWork:
        await super().__aenter__()
        self.bind(self.session)
        return self

    def bind(self, session: AsyncSession) -> None:
        self._reader = SqlCheckinsReader(session, self.insert)
        self.checkins = self._reader.checkins
        self.feedback = self._reader.feedback
        self.cadence = self._reader.cadence
        self.goals = self._reader.goals
        self.departures = SqlDepartureRepository(session, self.insert)
        self.directory = _DirectoryWriter(session)

    def people(self, tenant_id: str) -> PeopleDirectory:
        return self._reader.people(tenant_id)

    async def forget_person(self, tenant_id: str, employee_id: str) -> None:
        """Published events and stored answers that name the person (a LIKE on the id is
        broad — ``e-1`` also matches ``e-10`` — which only deletes a published row or a replay
        early)."""
        like = f"%{_escape_like(employee_id)}%"
        o, i = kit.outbox, kit.idempotency
        await self.session.execute(
            delete(o).where(
                o.c.published_at.is_not(None),
                or_(o.c.payload.like(like, escape="\\"), o.c.key.like(like, escape="\\")),
            )
        )
        await self.session.execute(
            delete(i).where(
                i.c.tenant_id == tenant_id,
                or_(i.c.principal == employee_id, i.c.response.like(like, escape="\\")),
            )
        )

    def compact_after_commit(self) -> None:
        """On SQLite, truncate the write-ahead log once this unit of work has committed."""
        engine = self.session.bind
        if self.dialect != "sqlite" or not isinstance(engine, AsyncEngine):
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
    except Exception:
        log.exception("wal_checkpoint_failed")


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class SqlCheckinsUnitOfWorkFactory(UnitOfWorkFactory):
    def __call__(self) -> SqlCheckinsUnitOfWork:
        return SqlCheckinsUnitOfWork(
            self.sessions, self.tables, self.clock, self.source, self.events_committed.set
        )
