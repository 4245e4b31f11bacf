"""The goals service's SQL unit of work: the kit's transaction with the service's repositories
on its session (``uow.goals``, ``uow.leavers``) and the people directory (``uow.people``)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from rhythm_goals.adapters.db import people_tables
from rhythm_goals.adapters.repository import SqlGoalRepository, SqlLeaverRepository
from rhythm_goals.settings import Settings
from rhythm_shared.contracts.envelope import Envelope
from rhythm_shared.kit.people import SqlPeople
from rhythm_shared.kit.runtime import Runtime
from rhythm_shared.kit.uow import UnitOfWork


class SqlGoalsUnitOfWork(UnitOfWork):
    goals: SqlGoalRepository
    leavers: SqlLeaverRepository
    people: SqlPeople

    def bind(self, session: AsyncSession) -> None:
        self.goals = SqlGoalRepository(session)
        self.leavers = SqlLeaverRepository(session)
        self.people = SqlPeople(session, people_tables)

    async def prepare(self, envelopes: Sequence[Envelope]) -> None:
        await self.people.read_ahead(envelopes)


#: What the goals entrypoints are handed: the goals settings, the goals unit of work, and no
#: resources of its own.
GoalsRuntime = Runtime[Settings, SqlGoalsUnitOfWork, None]
