"""Reporting's SQL unit of work: the kit's transaction, on one read-model generation."""

from __future__ import annotations

import sys
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Self

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rhythm_reporting.adapters.db import directory
from rhythm_reporting.adapters.store import ReadModelStore, active_generation
from rhythm_reporting.settings import Settings
from rhythm_shared.contracts.envelope import Envelope
from rhythm_shared.kit.clock import Clock
from rhythm_shared.kit.db import KitTables
from rhythm_shared.kit.people import DIRECTORY_EVENTS, SqlPeople
from rhythm_shared.kit.runtime import Runtime
from rhythm_shared.kit.uow import UnitOfWork


class SqlReportingUnitOfWork(UnitOfWork):
    """``uow.read_model`` is one generation of the read model and ``uow.people`` the kit's
    people directory, both on the transaction's session.

    ``generation=None`` means the live model: the unit of work takes the live writers' lock
    (shared: replicas write side by side), then reads which generation is active, so a
    rebuild's swap (which takes the same lock exclusively) is either wholly before this
    transaction or wholly after it.

    On PostgreSQL, replicas of the consumer group apply their own partitions at the same time:
    :meth:`prepare` takes the org-dimension lock exclusively for a batch that changes people or
    org units (it re-attributes facts of every partition) and shared otherwise, when the store
    locks each fact it folds; :meth:`store_positions` refuses a batch whose partition another
    replica applied meanwhile (``PositionsMoved``)."""

    read_model: ReadModelStore
    people: SqlPeople

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        tables: KitTables,
        clock: Clock,
        source: str,
        on_commit: Callable[[], None] | None = None,
        *,
        generation: int | None = None,
        kek: bytes | None = None,
    ) -> None:
        super().__init__(sessions, tables, clock, source, on_commit)
        self.generation = generation
        self._kek = kek
        self._positions_read: dict[tuple[str, int], int] = {}

    @property
    def kek(self) -> bytes | None:
        return self._kek

    def bind(self, session: AsyncSession) -> None:
        self.read_model = ReadModelStore(session, self.generation or 0)
        self.people = SqlPeople(session, directory, self._kek)

    async def __aenter__(self) -> Self:
        await super().__aenter__()
        if self.generation is not None:
            return self
        try:
            await self.read_model.lock_live_writers(shared=True)
            active = await active_generation(self.session)
            if active is None:
                raise RuntimeError("no active read-model generation (the service creates one)")
            self.read_model.generation = active
        except BaseException:
            await self.__aexit__(*sys.exc_info())
            raise
        return self

    async def prepare(self, envelopes: Sequence[Envelope]) -> None:
        # A deadlock or serialization failure here or later is retried by the kit's consumer.
        if self.generation is None:
            changes_org = any(isinstance(e.event, DIRECTORY_EVENTS) for e in envelopes)
            await self.read_model.lock_org_dimension(exclusive=changes_org)
        await self.people.read_ahead(envelopes)

    # The consumer's positions (rhythm_shared.kit.consumer.PositionStore), in this generation.

    async def stored_positions(self, topics: Collection[str]) -> dict[tuple[str, int], int]:
        positions = await self.read_model.positions(topics)
        self._positions_read.update(positions)
        return positions

    async def store_positions(self, positions: Mapping[tuple[str, int], int]) -> None:
        # Compare-and-set against what this transaction read: the fence against a replica that
        # lost the partition in a rebalance and finishes its batch after the new owner.
        await self.read_model.save_positions(positions, self.clock.now(), self._positions_read)


#: What reporting's entrypoints are handed: its settings, its unit of work, no resources.
ReportingRuntime = Runtime[Settings, SqlReportingUnitOfWork, None]
