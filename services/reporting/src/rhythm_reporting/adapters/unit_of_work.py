"""Reporting's SQL unit of work: the kit's transaction, on one read-model generation."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Self

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rhythm_reporting.adapters.db import directory
from rhythm_reporting.adapters.store import ReadModelStore, active_generation
from rhythm_shared.kit.clock import Clock
from rhythm_shared.kit.db import KitTables, write_gate
from rhythm_shared.kit.people import SqlPeople
from rhythm_shared.kit.uow import UnitOfWork

log = logging.getLogger("rhythm.reporting.ingest")


class SqlReportingUnitOfWork(UnitOfWork):
    """``uow.read_model`` is one generation of the read model and ``uow.people`` the kit's
    people directory, both on the transaction's session.

    ``generation=None`` means the live model: the unit of work takes the live writers' lock,
    then reads which generation is active, so a rebuild's swap (which takes the same lock) is
    either wholly before this transaction or wholly after it."""

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
        #: An erasure asked for the database's log to be compacted once this commits.
        self.compact = False

    @property
    def kek(self) -> bytes | None:
        return self._kek

    def bind(self, session: AsyncSession) -> None:
        self.read_model = ReadModelStore(session, self.generation or 0)
        self.people = SqlPeople(session, directory, self._kek)
        self.compact = False

    async def __aenter__(self) -> Self:
        await super().__aenter__()
        if self.generation is not None:
            return self
        try:
            await self.read_model.lock_live_writers()
            active = await active_generation(self.session)
            if active is None:
                raise RuntimeError("no active read-model generation (the service creates one)")
            self.read_model.generation = active
        except BaseException:
            await self.__aexit__(*sys.exc_info())
            raise
        return self

    def compact_after_commit(self) -> None:
        # Done by the ingest right after the commit, awaited (checkpoint_wal), not in the
        # background: the batch's erasures have left the WAL file when it moves on.
        self.compact = True


async def checkpoint_wal(sessions: async_sessionmaker[AsyncSession]) -> None:
    """On SQLite, truncate the write-ahead log after an erasure has committed, so no old page
    with the person's name stays in it (PostgreSQL: nothing to do, the rows are gone)."""
    engine = sessions.kw["bind"]
    if engine.dialect.name != "sqlite":
        return
    try:
        async with write_gate(engine), engine.connect() as conn:
            # On the driver's connection, outside any transaction (a checkpoint cannot run in one).
            driver = (await conn.get_raw_connection()).driver_connection
            assert driver is not None
            cursor = await driver.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            if (await cursor.fetchone() or (0,))[0]:
                log.warning("wal_checkpoint_busy")
    except Exception:  # the next checkpoint (SQLite's own, or the next erasure) will do
        log.exception("wal_checkpoint_failed")
