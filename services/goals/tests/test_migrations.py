"""The migrations build exactly the tables the code defines, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, inspect, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from rhythm_goals.adapters.db import leavers, metadata, people_tables
from rhythm_goals.main import MIGRATIONS
from rhythm_shared.kit.db import create_engine
from rhythm_shared.kit.migrations import alembic_config, upgrade_to_head
from rhythm_shared.kit.people import PeopleDirectory


async def test_migrating_to_head_leaves_nothing_for_autogenerate_to_add(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        await upgrade_to_head(engine, MIGRATIONS)
        await upgrade_to_head(engine, MIGRATIONS)  # a second start is a no-op

        def diff(connection: Any) -> list[Any]:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return list(compare_metadata(context, metadata))

        def indexes(connection: Any) -> set[str]:
            return {str(ix["name"]) for ix in inspect(connection).get_indexes("goals")}

        async with engine.connect() as connection:
            assert await connection.run_sync(diff) == []
            assert "ix_goals_next_stale_check_at" in await connection.run_sync(indexes)
    finally:
        await engine.dispose()


async def _migrate(engine: AsyncEngine, revision: str, *, down: bool = False) -> None:
    def run(connection: Connection) -> None:
        config = alembic_config(MIGRATIONS)
        config.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(config, revision)

    async with engine.connect() as connection:
        await connection.run_sync(run)
        await connection.commit()


async def test_the_old_people_slice_moves_into_the_directory_and_leavers(database_url: str) -> None:
    engine = create_engine(database_url)
    at = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    leaves_at = datetime(2026, 4, 1, tzinfo=UTC)
    try:
        await _migrate(engine, "0003")
        async with engine.begin() as connection:
            await connection.execute(
                text(
                    "INSERT INTO employees (tenant_id, employee_id, display_name, manager_id, "
                    "org_unit_id, active, deactivated_at, archive_goals_at, source_time) VALUES "
                    "('t', 'ann', 'Ann', 'mia', 'ou-1', :yes, NULL, NULL, :at), "
                    "('t', 'bob', 'Bob', 'mia', 'ou-1', :yes, :leaves, :leaves, :at)"
                ),
                {"yes": True, "at": at, "leaves": leaves_at},
            )
            await connection.execute(
                text(
                    "INSERT INTO org_units (tenant_id, org_unit_id, name, parent_id, head_id, "
                    "source_time) VALUES ('t', 'ou-1', 'Platform', NULL, 'mia', :at)"
                ),
                {"at": at},
            )
        await _migrate(engine, "head")

        sessions = async_sessionmaker(engine)
        async with sessions() as session:
            people = PeopleDirectory(session, people_tables, "t")
            ann, bob = await people.person("ann"), await people.person("bob")
            assert ann is not None
            assert bob is not None
            assert (ann.manager_id, ann.org_unit_id, ann.display_name) == ("mia", "ou-1", "Ann")
            assert ann.profile_version == (at, "")  # any real event of that instant wins
            assert bob.deactivated_at == leaves_at
            assert await people.unit_heads_above("ann") == ["mia"]
            due = (await session.execute(select(leavers))).all()
            assert [(r.employee_id, r.archive_goals_at) for r in due] == [("bob", leaves_at)]
            tables = await session.run_sync(lambda s: inspect(s.connection()).get_table_names())
            assert {"employees", "org_units"} & set(tables) == set()

        await _migrate(engine, "0003", down=True)  # and back
        async with engine.connect() as connection:
            rows = (
                await connection.execute(
                    text("SELECT employee_id, archive_goals_at FROM employees ORDER BY 1")
                )
            ).all()
        assert [r.employee_id for r in rows] == ["ann", "bob"]
    finally:
        await engine.dispose()
