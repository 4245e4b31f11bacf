"""The unit of work: one database transaction that holds a state change and its outgoing events.

Entrypoints own the boundary (``async with uow_factory() as uow:`` commits on a clean exit and
rolls back on an exception); handlers take the unit of work and never commit themselves.

Each service subclasses :class:`UnitOfWork` and overrides :meth:`UnitOfWork.bind` to open its
repositories on the transaction's session (``uow.goals``, ``uow.people``); handlers see it
through the service's Protocol (:class:`rhythm_shared.kit.ports.UnitOfWorkPort` and its own
repositories), so a test hands them an in-memory unit of work instead
(:mod:`rhythm_shared.testing.fakes`). Reads go through :meth:`UnitOfWorkFactory.read`, which
takes no write lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from types import TracebackType
from typing import Any, Generic, Self

from opentelemetry import propagate
from sqlalchemy import delete, or_
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from typing_extensions import TypeVar

from rhythm_shared.contracts.base import Event
from rhythm_shared.contracts.envelope import Envelope, new_event_id, to_record
from rhythm_shared.kit.audit import AuditEntry, entry_row
from rhythm_shared.kit.clock import Clock
from rhythm_shared.kit.db import KitTables, checkpoint_after_commit, escape_like, write_gate

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

    def bind(self, session: AsyncSession) -> None:
        """Open the service's repositories on ``session`` (called as the unit of work opens)."""

    async def __aenter__(self) -> Self:
        self._outbox = []
        self._published = 0
        self._audit = []
        async with contextlib.AsyncExitStack() as stack:
            await stack.enter_async_context(write_gate(self._sessions.kw["bind"]))
            session = await stack.enter_async_context(self._sessions())
            await session.begin()
            self._exit = stack.pop_all()
        self._session = session
        self.bind(session)
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

    async def forget_person(self, tenant_id: str, employee_id: str) -> None:
        """Delete the kit's rows that name a person being erased: published events and stored
        answers (a LIKE on the id is broad — ``e-1`` also matches ``e-10`` — which only deletes a
        published row or a replay early). Unpublished events stay: they must still go out."""
        like = f"%{escape_like(employee_id)}%"
        o, i = self.tables.outbox, self.tables.idempotency
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
        """After an erasure: on SQLite, truncate the write-ahead log once this commits, so the
        deleted bytes leave the WAL file too (:func:`.db.checkpoint_after_commit`)."""
        engine = self.session.bind
        if isinstance(engine, AsyncEngine):
            checkpoint_after_commit(engine)

    async def prepare(self, envelopes: Sequence[Envelope]) -> None:
        """Called by the consumer with a batch's events before their handlers run, in this
        transaction: a service reads ahead here what its handlers would read one event at a
        time (the people directory's rows and org units, :meth:`.people.SqlPeople.read_ahead`)."""

    async def first_time(self, consumer: str, event_id: str) -> bool:
        """Record that ``consumer`` handles ``event_id`` now; False if it already has."""
        return event_id in await self.first_times(consumer, [event_id])

    async def first_times(self, consumer: str, event_ids: Sequence[str]) -> set[str]:
        """Record that ``consumer`` handles ``event_ids`` now, in one statement; the ids it had
        not handled before (an id twice in ``event_ids`` is recorded once)."""
        if not event_ids:
            return set()
        inbox = self.tables.inbox
        now = self.clock.now()
        # One statement compiled once; the rows go in as multi-row VALUES (insertmanyvalues).
        stmt = self.insert(inbox).on_conflict_do_nothing().returning(inbox.c.event_id)
        rows = [{"consumer": consumer, "event_id": i, "processed_at": now} for i in event_ids]
        return set((await self.session.execute(stmt, rows)).scalars())


U = TypeVar("U", bound=UnitOfWork, default=UnitOfWork)


class UnitOfWorkFactory(Generic[U]):
    """Makes units of work (of the service's class); wakes the outbox relay when one commits
    events; opens read-only sessions for queries."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        tables: KitTables,
        clock: Clock,
        source: str,
        unit_of_work: Callable[..., U] = UnitOfWork,  # type: ignore[assignment]
        readers: async_sessionmaker[AsyncSession] | None = None,
    ) -> None:
        self.sessions = sessions
        self.tables = tables
        self.clock = clock
        self.source = source
        self.unit_of_work = unit_of_work
        self.readers = readers or sessions
        self.events_committed = asyncio.Event()

    def __call__(self) -> U:
        return self.unit_of_work(
            self.sessions, self.tables, self.clock, self.source, self.events_committed.set
        )

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A session for reads: one consistent snapshot that neither waits for nor blocks the
        writers (on SQLite a deferred transaction on a query-only connection; see
        :func:`rhythm_shared.kit.db.create_reader_engine`). Writing through it fails."""
        async with self.readers() as session, session.begin():
            yield session
