"""Alembic, per service, driven from code: the runner migrates a service's database to the head
of the image's scripts (at start-up unless ``MIGRATE_ON_START=false``, or ``rhythm migrate``).

Each service keeps its scripts in ``<package>/migrations`` with an ``env.py`` that calls
:func:`run_env`; they build the kit's own tables with the steps of :mod:`.schema`. On
PostgreSQL an advisory lock lets several replicas start at once.

Rollbacks. After every run the runner records each revision it knows, with its parent, in
``schema_lineage``. An older image meeting a database at a revision it does not know reads that
record: if the revision descends from the image's own head and every step in between is
``rollback_safe`` (expand-only: it adds, and removes nothing the older code reads or writes), the
schema is *ahead* and the image runs on it without migrating; otherwise it refuses to start,
naming the revisions (see docs/operations-upgrades.md). A migration is rollback-safe unless its
module says ``rollback_safe = False``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from alembic import command, context, op
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, inspect, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from rhythm_shared.kit.db import define_schema_lineage

_MIGRATION_LOCK = 7_301_000

LINEAGE = define_schema_lineage(MetaData())


class SchemaIncompatible(RuntimeError):
    """The database is at a revision this image cannot run on (nor migrate from)."""


@dataclass(frozen=True)
class SchemaState:
    """Where the database stands against the image's migration scripts."""

    database: str | None
    head: str
    #: current: at the head; behind: needs migrating; ahead: a newer image's rollback-safe steps.
    status: Literal["current", "behind", "ahead"]

    @property
    def ready(self) -> bool:
        return self.status != "behind"

    def describe(self) -> str:
        at = self.database or "empty"
        if self.status == "behind":
            return f"schema at {at}, this image needs {self.head}: run `rhythm migrate`"
        if self.status == "ahead":
            return f"schema at {at}, ahead of this image's {self.head} (rollback-safe steps)"
        return f"schema at {at}"


def alembic_config(script_location: Path, url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(script_location))
    if url:
        config.set_main_option("sqlalchemy.url", url)
    return config


def _scripts(script_location: Path) -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config(script_location))


def _head(scripts: ScriptDirectory) -> str:
    heads = scripts.get_heads()
    if len(heads) != 1:
        raise RuntimeError(f"the migration scripts have {len(heads)} heads, not one: {heads}")
    return str(heads[0])


def _parent(down_revision: Any) -> str | None:
    if down_revision is None:
        return None
    return down_revision if isinstance(down_revision, str) else ",".join(down_revision)


def _state(connection: Connection, scripts: ScriptDirectory) -> SchemaState:
    database = MigrationContext.configure(connection).get_current_revision()
    head = _head(scripts)
    known = {script.revision for script in scripts.walk_revisions()}
    if database is None or database in known:
        # One line of history per service: a known revision is the head or one of its ancestors.
        return SchemaState(database, head, "current" if database == head else "behind")
    lineage: dict[str, Any] = {}
    if inspect(connection).has_table(LINEAGE.name):
        lineage = {row.revision: row for row in connection.execute(select(LINEAGE))}
    steps: list[Any] = []
    revision: str | None = database
    while revision not in known:
        row = lineage.get(revision) if revision is not None else None
        if row is None or len(steps) > len(lineage):
            raise SchemaIncompatible(
                f"the database is at revision {database}, which this image does not know and "
                f"no newer image recorded as descending from {head}: deploy the image that "
                "migrated it, or restore the database from before that migration"
            )
        steps.append(row)
        revision = row.down_revision
    if revision != head:
        raise SchemaIncompatible(
            f"the database is at revision {database}, which descends from {revision}, not from "
            f"this image's head {head}: deploy a newer image"
        )
    unsafe = [row.revision for row in reversed(steps) if not row.rollback_safe]
    if unsafe:
        raise SchemaIncompatible(
            f"the database is at revision {database}; {', '.join(unsafe)} removed or changed "
            f"what this image (head {head}) uses (not rollback-safe): roll forward, or restore "
            "the database from before that migration"
        )
    return SchemaState(database, head, "ahead")


def _record_lineage(connection: Connection, scripts: ScriptDirectory) -> None:
    LINEAGE.create(connection, checkfirst=True)
    recorded = set(connection.execute(select(LINEAGE.c.revision)).scalars())
    now = datetime.now(UTC)
    rows = [
        {
            "revision": script.revision,
            "down_revision": _parent(script.down_revision),
            "rollback_safe": bool(getattr(script.module, "rollback_safe", True)),
            "recorded_at": now,
        }
        for script in scripts.walk_revisions()
        if script.revision not in recorded
    ]
    if rows:
        connection.execute(LINEAGE.insert(), rows)


async def schema_state(engine: AsyncEngine, script_location: Path) -> SchemaState:
    """Where the database stands; raises :class:`SchemaIncompatible` if the image cannot run."""
    scripts = _scripts(script_location)
    async with engine.connect() as connection:
        return await connection.run_sync(_state, scripts)


async def upgrade_to_head(engine: AsyncEngine, script_location: Path) -> SchemaState:
    """Migrate to the image's head, unless the schema is already ahead of it (a rollback to an
    older image, see the module's docstring). Raises :class:`SchemaIncompatible`."""
    scripts = _scripts(script_location)

    def _upgrade(connection: Connection) -> None:
        config = alembic_config(script_location)
        config.attributes["connection"] = connection
        command.upgrade(config, "head")

    async with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            await connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _MIGRATION_LOCK})
            await connection.commit()
        try:
            state = await connection.run_sync(_state, scripts)
            # Alembic begins its own transaction, which an autocommit block (CREATE INDEX
            # CONCURRENTLY) may commit and begin again: none may be open when it starts.
            await connection.commit()
            if state.status == "ahead":
                return state
            if state.status == "behind":
                await connection.run_sync(_upgrade)
                await connection.commit()
            await connection.run_sync(_record_lineage, scripts)
            await connection.commit()
            return SchemaState(state.head, state.head, "current")
        finally:
            if engine.dialect.name == "postgresql":
                await connection.execute(
                    text("SELECT pg_advisory_unlock(:k)"), {"k": _MIGRATION_LOCK}
                )
                await connection.commit()


def run_env(target_metadata: MetaData) -> None:
    """The body of every service's ``env.py``."""

    def configure(connection: Connection) -> None:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()

    connection: Any = context.config.attributes.get("connection")
    if connection is not None:
        configure(connection)
        return
    if context.is_offline_mode():
        context.configure(
            url=context.config.get_main_option("sqlalchemy.url"),
            target_metadata=target_metadata,
            literal_binds=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    import asyncio

    from rhythm_shared.kit.db import create_engine

    async def _online() -> None:
        url = context.config.get_main_option("sqlalchemy.url")
        if not url:
            raise RuntimeError("set sqlalchemy.url (DATABASE_URL) to run migrations")
        engine = create_engine(url)
        async with engine.connect() as conn:
            await conn.run_sync(configure)
            await conn.commit()
        await engine.dispose()

    asyncio.run(_online())


def create_index_concurrently(name: str, table: str, columns: Sequence[str]) -> None:
    """An index on a table that may already be large, built without blocking its writes.

    On PostgreSQL: ``CREATE INDEX CONCURRENTLY``, which cannot run in a transaction, so it runs in
    an autocommit block (the migration's earlier steps are committed first). A build that was
    interrupted leaves an INVALID index behind; it is dropped and built again. On SQLite (one
    writer anyway): a plain index. Put such an index in a migration of its own (see
    docs/operations-upgrades.md).
    """
    migration = op.get_context()
    if migration.dialect.name != "postgresql":
        op.create_index(name, table, list(columns), unique=False)
        return
    with migration.autocommit_block():
        if not migration.as_sql:
            invalid = op.get_bind().execute(
                text(
                    "SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                    "WHERE c.relname = :name AND NOT i.indisvalid"
                ),
                {"name": name},
            )
            if invalid.first() is not None:
                op.drop_index(name, table_name=table, postgresql_concurrently=True)
        op.create_index(
            name,
            table,
            list(columns),
            unique=False,
            postgresql_concurrently=True,
            if_not_exists=True,
        )


def drop_index_concurrently(name: str, table: str) -> None:
    """Drop an index without blocking the table's reads and writes on PostgreSQL."""
    migration = op.get_context()
    if migration.dialect.name != "postgresql":
        op.drop_index(name, table_name=table)
        return
    with migration.autocommit_block():
        op.drop_index(name, table_name=table, postgresql_concurrently=True, if_exists=True)
