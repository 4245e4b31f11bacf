"""One DATABASE_URL, two engines: SQLite (aiosqlite, the embedded default) and PostgreSQL (asyncpg).

The kit's own tables (outbox, inbox, idempotency keys) are defined on each service's metadata
by :func:`define_kit_tables`, so they live in the service's database and migrate with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    bindparam,
    event,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.ext.asyncio import AsyncSession as AsyncSession
from sqlalchemy.sql import ColumnElement, Select

from rhythm_shared.kit.writers import WriterGate, writes_are_urgent

log = logging.getLogger("rhythm.db")

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

T = TypeVar("T")

#: Values per IN list or multi-row statement: well under every backend's bound-parameter limit.
IN_LIST = 500


def chunks(items: Iterable[T], size: int = IN_LIST) -> Iterator[list[T]]:
    """``items`` in lists of ``size`` (the last one shorter), for statements with a bound list."""
    it = iter(items)
    while batch := list(islice(it, size)):
        yield batch


def where_one_of(
    query: Select[Any], column: ColumnElement[Any], values: Sequence[Any], dialect: Dialect
) -> Select[Any]:
    """``query`` narrowed to the rows whose ``column`` is one of ``values`` (a chunk of ids).

    On PostgreSQL, a join to ``unnest`` of one array parameter rather than ``IN ($1, ..., $n)``:
    a prepared statement keeps the generic plan it made while its table was small, and on a
    table that fills faster than autovacuum analyzes it (a new tenant's first HR sync) that plan
    reads the tenant's rows and tests each against the whole list, per statement. Measured on a
    never-analyzed table, 500 ids: IN 416-476 ms at 40,000 rows, ``= ANY($1)`` 217-300 ms; the
    join 5-26 ms (at worst, planned on the empty table, one pass that probes a hash of the ids;
    1 ms once analyzed). SQLite plans each statement anew: IN, which it answers from the index.
    """
    if dialect.name != "postgresql":
        return query.where(column.in_(values))
    wanted = (
        func.unnest(bindparam(None, list(dict.fromkeys(values)), type_=ARRAY(column.type)))
        .table_valued("value")
        .render_derived()
    )
    return query.join(wanted, column == wanted.c.value)


#: An auto-incrementing 64-bit key that SQLite also auto-increments (it needs INTEGER).
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware datetimes in, UTC-aware datetimes out, on SQLite as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def new_metadata() -> MetaData:
    return MetaData(naming_convention=NAMING_CONVENTION)


@dataclass(frozen=True)
class KitTables:
    outbox: Table
    inbox: Table
    idempotency: Table
    #: The audit trail of access to private data, in services that hold private texts.
    audit: Table | None = None


def define_kit_tables(metadata: MetaData, *, audit: bool = False) -> KitTables:
    outbox = Table(
        "outbox",
        metadata,
        Column("seq", BigId, primary_key=True, autoincrement=True),
        Column("event_id", String(64), nullable=False, unique=True),
        Column("topic", String(200), nullable=False),
        Column("key", String(300), nullable=False),
        Column("event_type", String(120), nullable=False),
        Column("headers", JSON, nullable=False),
        Column("payload", Text, nullable=False),
        Column("created_at", UtcDateTime, nullable=False),
        Column("published_at", UtcDateTime, nullable=True, index=True),  # housekeeping
        comment="Transactional outbox: events committed with their state change, relayed in order.",
    )
    # The relay only ever reads unpublished rows, oldest first: a partial index keeps that cheap
    # however many published rows pile up.
    Index(
        "ix_outbox_unpublished",
        outbox.c.seq,
        postgresql_where=outbox.c.published_at.is_(None),
        sqlite_where=outbox.c.published_at.is_(None),
    )
    inbox = Table(
        "inbox",
        metadata,
        Column("consumer", String(120), primary_key=True),
        Column("event_id", String(64), primary_key=True),
        Column("processed_at", UtcDateTime, nullable=False, index=True),  # housekeeping
        comment="Consumed event ids per consumer: a duplicate has no second effect.",
    )
    idempotency = Table(
        "idempotency_keys",
        metadata,
        Column("tenant_id", String(128), primary_key=True),
        Column("principal", String(128), primary_key=True),
        Column("key", String(200), primary_key=True),
        Column("request_hash", String(64), nullable=False),
        Column("status_code", Integer, nullable=False),
        Column("response", Text, nullable=False),
        Column("created_at", UtcDateTime, nullable=False, index=True),  # housekeeping
        comment="Responses to writes sent with an Idempotency-Key header.",
    )
    define_schema_lineage(metadata)
    if audit:
        return KitTables(outbox, inbox, idempotency, define_audit_table(metadata))
    return KitTables(outbox=outbox, inbox=inbox, idempotency=idempotency)


def define_audit_table(metadata: MetaData) -> Table:
    """The audit trail of access to private data (:mod:`rhythm_shared.kit.audit`)."""
    table = Table(
        "audit_log",
        metadata,
        Column("seq", BigId, primary_key=True, autoincrement=True),
        Column("tenant_id", String(128), nullable=False),
        Column("at", UtcDateTime, nullable=False, index=True),  # housekeeping
        Column("actor_id", String(128), nullable=False),
        Column("subject_id", String(128), nullable=False),
        Column("action", String(32), nullable=False),
        Column("target", String(300), nullable=False),
        Column("allowed", Boolean, nullable=False),
        comment="Who read or was refused private texts, and changes to who may see them (kit).",
    )
    Index("ix_audit_log_subject", table.c.tenant_id, table.c.subject_id, table.c.at)
    return table


def define_schema_lineage(metadata: MetaData) -> Table:
    """The migration runner's record of every revision applied (:mod:`.migrations`): how an
    older image recognises a newer schema it may still run on. The runner creates it."""
    return Table(
        "schema_lineage",
        metadata,
        Column("revision", String(64), primary_key=True),
        Column("down_revision", String(64), nullable=True),
        Column("rollback_safe", Boolean, nullable=False),
        Column("recorded_at", UtcDateTime, nullable=False),
        comment="Migration revisions applied, with their parents: rollbacks to older images.",
    )


#: How long a SQLite writer waits for the write lock (in SQLite, and in the write gate below)
#: before it gets an error instead of a hang.
SQLITE_BUSY_TIMEOUT_S = 60


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """An async engine for ``url``. SQLite gets WAL, a busy timeout and immediate transactions."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1] if "///" in url else ""
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(
            url,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S},
            hide_parameters=True,  # bound values (note texts among them) never reach a log
            **kwargs,
        )

        @event.listens_for(engine.sync_engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            # Let SQLAlchemy emit BEGIN itself (below), so writers take the lock up front
            # instead of failing with SQLITE_BUSY when a read transaction upgrades.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            # Deleted rows are overwritten, not left in free pages: an erasure leaves no bytes.
            cursor.execute("PRAGMA secure_delete=ON")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_S * 1000}")
            cursor.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _on_begin(connection: Any) -> None:
            connection.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 10)
    kwargs.setdefault("pool_pre_ping", True)
    return create_async_engine(url, hide_parameters=True, **kwargs)


def create_reader_engine(url: str, write_engine: AsyncEngine) -> AsyncEngine:
    """The engine queries read through. On SQLite, a second engine whose transactions do not
    take the write lock: the kit's writers begin IMMEDIATE, while a read only needs the
    consistent snapshot a deferred transaction in WAL mode gives, without waiting for, or
    blocking, a writer. Its connections are ``query_only``. On PostgreSQL, the same engine
    (MVCC readers never wait for writers)."""
    if not url.startswith("sqlite"):
        return write_engine
    engine = create_async_engine(
        url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S}, hide_parameters=True
    )

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_S * 1000}")
        cursor.execute("PRAGMA query_only=1")
        cursor.execute("PRAGMA cache_size=-65536")
        cursor.execute("PRAGMA mmap_size=268435456")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN")

    return engine


#: SQLite's busy handler waits for the write lock by sleeping (1 ms growing to 100 ms a try), so
#: writers of one process that contend through it lose most of their time asleep. They queue on
#: one gate per engine instead and go the moment the previous writer is done.
_WRITE_GATES: weakref.WeakKeyDictionary[Any, dict[asyncio.AbstractEventLoop, WriterGate]] = (
    weakref.WeakKeyDictionary()
)


@contextlib.asynccontextmanager
async def write_gate(engine: AsyncEngine) -> AsyncIterator[None]:
    """Hold the engine's writer slot for a transaction (SQLite; a no-op on PostgreSQL)."""
    if engine.dialect.name != "sqlite":
        yield
        return
    gates = _WRITE_GATES.setdefault(engine.sync_engine, {})
    gate = gates.setdefault(asyncio.get_running_loop(), WriterGate())
    try:
        async with asyncio.timeout(SQLITE_BUSY_TIMEOUT_S):
            await gate.acquire(urgent=writes_are_urgent())
    except TimeoutError:
        raise TimeoutError(
            f"waited {SQLITE_BUSY_TIMEOUT_S:.0f} s for the SQLite write lock: another "
            "transaction of this process is holding it"
        ) from None
    try:
        yield
    finally:
        gate.release()


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def escape_like(value: str) -> str:
    """``value`` for a LIKE pattern with ``escape="\\"``: its wildcards match themselves."""
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


_checkpoints: set[asyncio.Task[None]] = set()


def checkpoint_after_commit(engine: AsyncEngine) -> None:
    """On SQLite, truncate the write-ahead log once the running transaction has committed.

    The checkpoint cannot run inside the transaction; it queues for the engine's writer slot,
    which the unit of work holds until it has committed (or rolled back: then it is harmless).
    Erasures call it, so the deleted bytes leave the WAL file as well as the database file."""
    if engine.dialect.name != "sqlite":
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
