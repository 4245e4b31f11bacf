"""The service's SQL unit of work: the kit's, carrying this service's repositories."""

from __future__ import annotations

from collections.abc import Sequence

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
from rhythm_shared.kit.people import SqlPeople
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
        await self.people.read_ahead(envelopes)


#: What the entrypoints are handed: this service's settings and unit of work, no resources.
CheckinsRuntime = Runtime[Settings, SqlCheckinsUnitOfWork, None]
