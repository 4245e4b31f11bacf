"""The service's SQL unit of work: the kit's, carrying this service's repositories."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from types import TracebackType

from sqlalchemy.ext.asyncio import AsyncSession

from rhythm_checkins.adapters.db import directory
from rhythm_checkins.adapters.repository import (
    SqlCadenceRepository,
    SqlCheckinRepository,
    SqlDepartureRepository,
    SqlFeedbackRepository,
    SqlGoalRepository,
)
from rhythm_checkins.settings import Settings
from rhythm_shared.contracts.envelope import Envelope
from rhythm_shared.kit.people import EMPLOYEE_EVENTS, SqlPeople
from rhythm_shared.kit.runtime import Runtime
from rhythm_shared.kit.uow import UnitOfWork


class SqlCheckinsReader:
    """The repositories on a read-only session (``runtime.uow.read()``), for the read side."""

    def __init__(self, session: AsyncSession) -> None:
        self.checkins = SqlCheckinRepository(session, _no_writes)
        self.feedback = SqlFeedbackRepository(session)
        self.cadence = SqlCadenceRepository(session, _no_writes)
        self.goals = SqlGoalRepository(session, _no_writes)
        self.people = SqlPeople(session, directory)


def _no_writes(table: object) -> object:
    raise RuntimeError("a read-only session writes nothing")


class SqlCheckinsUnitOfWork(UnitOfWork):
    checkins: SqlCheckinRepository
    feedback: SqlFeedbackRepository
    cadence: SqlCadenceRepository
    goals: SqlGoalRepository
    departures: SqlDepartureRepository
    people: SqlPeople

    def bind(self, session: AsyncSession) -> None:
        self.checkins = SqlCheckinRepository(session, self.insert)
        self.feedback = SqlFeedbackRepository(session)
        self.cadence = SqlCadenceRepository(session, self.insert)
        self.goals = SqlGoalRepository(session, self.insert)
        self.departures = SqlDepartureRepository(session, self.insert)
        self.people = SqlPeople(session, directory)

    async def prepare(self, envelopes: Sequence[Envelope]) -> None:
        """Read ahead, in one statement per table, what the chunk's people events read one
        employee at a time: their directory rows, obligations, departures and check-ins still
        to be held. What the handlers then write of them is held by the repositories and
        written in one statement per table, before commit."""
        await self.people.read_ahead(envelopes)
        people = [
            (e.event.tenant_id, e.event.employee_id)
            for e in envelopes
            if isinstance(e.event, EMPLOYEE_EVENTS)
        ]
        if not people:
            return
        # Planning owes the period holding the employee's local today and the next ones: a day
        # before today in UTC holds every zone's today.
        ending_from = self.clock.now().date() - timedelta(days=1)
        await self.cadence.read_ahead(people, ending_from)
        await self.departures.read_ahead(people)
        await self.checkins.read_ahead(people)

    async def flush(self) -> None:
        """Write what the repositories hold (before commit; reads that need it flush too)."""
        await self.cadence.flush()
        await self.departures.flush()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            try:
                await self.flush()
            except BaseException as failed:  # rolls back, as a failing handler would
                await super().__aexit__(type(failed), failed, failed.__traceback__)
                raise
        await super().__aexit__(exc_type, exc, tb)


#: What the entrypoints are handed: this service's settings and unit of work, no resources.
CheckinsRuntime = Runtime[Settings, SqlCheckinsUnitOfWork, None]
