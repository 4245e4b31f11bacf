"""The migrations build exactly the tables the code defines, on SQLite and PostgreSQL, and the
people directory starts from the active generation's dimensions so unit heads keep their view."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession

from rhythm_reporting.adapters.db import directory, metadata
from rhythm_reporting.main import MIGRATIONS
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

        async with engine.connect() as connection:
            assert await connection.run_sync(diff) == []
    finally:
        await engine.dispose()


async def test_the_directory_starts_from_the_active_generation_and_any_real_event_wins(
    database_url: str,
) -> None:
    engine = create_engine(database_url)

    def migrate(connection: Connection, revision: str) -> None:
        config = alembic_config(MIGRATIONS)
        config.attributes["connection"] = connection
        command.upgrade(config, revision)

    try:
        async with engine.connect() as connection:
            await connection.run_sync(migrate, "0002")
            now = datetime(2026, 3, 1, tzinfo=UTC).replace(tzinfo=None)
            for generation, status in ((1, "retired"), (2, "active")):
                await connection.execute(
                    text(
                        "INSERT INTO read_model_generations (generation, status, created_at)"
                        " VALUES (:g, :s, :at)"
                    ),
                    {"g": generation, "s": status, "at": now},
                )
                head = "old-head" if status == "retired" else "mgr"
                await connection.execute(
                    text(
                        "INSERT INTO org_units (generation, tenant_id, org_unit_id, name,"
                        " parent_id, head_id) VALUES (:g, 't', 'team', 'Team', NULL, :head)"
                    ),
                    {"g": generation, "head": head},
                )
            await connection.commit()
            await connection.run_sync(migrate, "head")
            await connection.commit()
            people = PeopleDirectory(AsyncSession(bind=connection), directory, "t")
            assert await people.heads_units("mgr") == ["team"]
            assert await people.heads_units("old-head") == []
            [unit] = await people.units_upwards("team")
            assert unit.version is not None
            assert unit.version[1] == ""  # any real event id sorts after it
    finally:
        await engine.dispose()
