"""The unit of work: one database transaction that holds a state change and its outgoing events.

Entrypoints own the boundary (``async with uow_factory() as uow:`` commits on a clean exit and
rolls back on an exception); use cases take the unit of work and never commit themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from types import TracebackType
from typing import Any

from opentelemetry import propagate
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rhythm_shared.contracts.base import Event
from rhythm_shared.contracts.envelope import new_event_id, to_record
from rhythm_shared.kit.audit import AuditEntry, entry_row
from rhythm_shared.kit.clock import Clock
from rhythm_shared.kit.db import KitTables, write_gate

log = logging.getLogger("rhythm.uow")


class UnitOfWork:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        tables: KitTables,
        clock: Clock,
        source: str,
        on_commit: Callable[[], None] | None = None,
    ) -> None:
        self._sessions = sessions
        self._source = source
        self.tables = tables
        self.clock = clock
        self._on_commit = on_commit
        self._session: AsyncSession | None = None
        self._exit = contextlib.AsyncExitStack()
        self._outbox: list[dict[str, Any]] = []
        self._published = 0
        self._audit: list[AuditEntry] = []

    @property
    def session(self) -> AsyncSession:
        if self._session is None:
            raise RuntimeError("the unit of work is not open: use `async with`")
        return self._session

    async def __aenter__(self) -> UnitOfWork:
        self._outbox = []
        self._published = 0
        self._audit = []
        async with contextlib.AsyncExitStack() as stack:
            await stack.enter_async_context(write_gate(self._sessions.kw["bind"]))
            session = await stack.enter_async_context(self._sessions())
            await session.begin()
            self._exit = stack.pop_all()
        self._session = session
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        session = self.session
        try:
            if exc_type is None:
                await self.flush_outbox()
                await self._write_audit(session, self._audit)
                await session.commit()
                if self._published and self._on_commit:
                    self._on_commit()
            else:
                await session.rollback()
                # A refusal rolls the work back; the audit trail keeps it all the same.
                refused = [e for e in self._audit if not e.allowed]
                try:
                    await self._write_audit(session, refused, own_transaction=True)
                except Exception:  # the original error matters more than this one
                    log.exception("audit_write_failed", extra={"entries": len(refused)})
        finally:
            self._session = None
            await self._exit.aclose()  # closes the session, then frees the writer slot

    def audit(self, entry: AuditEntry) -> None:
        """Note an access to private data (or a change of who may see it) for the audit trail."""
        if self.tables.audit is None:
            raise RuntimeError("this service keeps no audit trail (define_kit_tables(audit=True))")
        self._audit.append(entry)

    async def _write_audit(
        self, session: AsyncSession, entries: list[AuditEntry], *, own_transaction: bool = False
    ) -> None:
        if not entries or self.tables.audit is None:
            return
        self._audit = []
        rows = [entry_row(e, self.clock.now()) for e in entries]
        if own_transaction:
            await session.begin()
        await session.execute(self.tables.audit.insert(), rows)
        if own_transaction:
            await session.commit()

    @property
    def dialect(self) -> str:
        return self._sessions.kw["bind"].dialect.name  # type: ignore[no-any-return]

    def insert(self, table: Any) -> Any:
        """A dialect-aware INSERT that supports ``on_conflict_do_nothing``."""
        return (pg_insert if self.dialect == "postgresql" else sqlite_insert)(table)

    async def publish(self, event: Event, *, event_id: str | None = None) -> str:
        """Queue ``event`` in the outbox, in this transaction. Returns its CloudEvents id.

        The current trace context is stored with it, so the consumer's span joins the trace of
        the request that caused the event (W3C Trace Context).
        """
        trace_headers: dict[str, str] = {}
        propagate.inject(trace_headers)
        eid = event_id or new_event_id()
        record = to_record(event, source=self._source, event_id=eid, trace_headers=trace_headers)
        # Rows are written together just before commit (one executemany, in publish order):
        # a sweep that emits thousands of events pays one round trip, not thousands.
        self._outbox.append(
            {
                "event_id": eid,
                "topic": record.topic,
                "key": record.key.decode(),
                "event_type": event.type,
                "headers": [[k, v.decode()] for k, v in record.headers],
                "payload": record.value.decode(),
                "created_at": self.clock.now(),
            }
        )
        return eid

    async def flush_outbox(self) -> None:
        """Write the events published so far (done by commit; call it to read them back)."""
        if self._outbox:
            rows, self._outbox = self._outbox, []
            await self.session.execute(self.tables.outbox.insert(), rows)
            self._published += len(rows)

    async def first_time(self, consumer: str, event_id: str) -> bool:
        """Record that ``consumer`` handles ``event_id`` now; False if it already has."""
        stmt = (
            self.insert(self.tables.inbox)
            .values(consumer=consumer, event_id=event_id, processed_at=self.clock.now())
            .on_conflict_do_nothing()
        )
        result = await self.session.execute(stmt)
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]


class UnitOfWorkFactory:
    """Makes units of work; wakes the outbox relay when one commits events."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        tables: KitTables,
        clock: Clock,
        source: str,
    ) -> None:
        self.sessions = sessions
        self.tables = tables
        self.clock = clock
        self.source = source
        self.events_committed = asyncio.Event()

    def __call__(self) -> UnitOfWork:
        return UnitOfWork(
            self.sessions, self.tables, self.clock, self.source, self.events_committed.set
        )
