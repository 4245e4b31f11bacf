"""The kit's migration steps (rhythm_shared.kit.schema): run in the order of the services'
histories they build exactly the tables the kit defines, their twins remove them again, and a
released step keeps its DDL (schema_steps.sql holds what each step emitted when released)."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.operations import Operations
from sqlalchemy import Connection, MetaData, inspect

from rhythm_shared.kit import schema
from rhythm_shared.kit.db import create_engine, define_kit_tables, new_metadata
from rhythm_shared.kit.migrations import LINEAGE
from rhythm_shared.kit.people import define_directory_tables

#: The steps in the order every service's history calls them, each with its downgrade.
STEPS: list[tuple[Callable[[], None], Callable[[], None]]] = [
    (schema.create_kit_tables, schema.drop_kit_tables),
    (schema.add_housekeeping_indexes, schema.drop_housekeeping_indexes),
    (schema.create_people_directory, schema.drop_people_directory),
    (schema.create_audit_log, schema.drop_audit_log),
    (schema.add_directory_erasure, schema.drop_directory_erasure),
]
RELEASED = Path(__file__).with_name("schema_steps.sql")


def _kit_metadata() -> MetaData:
    metadata = new_metadata()
    define_kit_tables(metadata, audit=True)
    define_directory_tables(metadata)
    return metadata


def _run(connection: Connection, steps: list[Callable[[], None]]) -> None:
    with Operations.context(MigrationContext.configure(connection)):
        for step in steps:
            step()


async def test_the_steps_build_exactly_the_kit_tables_and_their_twins_remove_them(
    database_url: str,
) -> None:
    engine = create_engine(database_url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_run, [up for up, _ in STEPS])
            # The migration runner creates its lineage table itself, after the scripts.
            await connection.run_sync(LINEAGE.create)

        def diff(connection: Connection) -> list[Any]:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return list(compare_metadata(context, _kit_metadata()))

        async with engine.connect() as connection:
            assert await connection.run_sync(diff) == []

        async with engine.begin() as connection:
            await connection.run_sync(_run, [down for _, down in reversed(STEPS)])
            tables = await connection.run_sync(lambda c: inspect(c).get_table_names())
        assert tables == [LINEAGE.name]
    finally:
        await engine.dispose()


def _emitted(dialect: str) -> str:
    """The DDL each step emits on a dialect, as Alembic's offline (--sql) mode writes it."""
    out = io.StringIO()
    context = MigrationContext.configure(
        dialect_name=dialect, opts={"as_sql": True, "output_buffer": out}
    )
    with Operations.context(context):
        for up, _ in STEPS:
            out.write(f"-- {dialect}: {up.__name__}\n")
            up()
    return "\n".join(line.rstrip() for line in out.getvalue().splitlines()).strip() + "\n"


def test_a_released_step_still_emits_the_ddl_it_was_released_with() -> None:
    emitted = _emitted("postgresql") + "\n" + _emitted("sqlite")
    # Databases already migrated hold what a step made: a change to a kit table is a new step
    # (and a new migration in every service), never an edit of a released one.
    assert emitted == RELEASED.read_text()
