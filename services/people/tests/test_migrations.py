"""The migrations build exactly the tables the code defines, on SQLite and PostgreSQL, and their
downgrades take every one of them away again."""

from __future__ import annotations

from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from rhythm_people.adapters.db import metadata
from rhythm_people.main import MIGRATIONS
from rhythm_shared.kit.db import create_engine
from rhythm_shared.kit.migrations import LINEAGE, alembic_config, upgrade_to_head


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


async def test_downgrading_to_base_leaves_only_the_runners_own_tables(database_url: str) -> None:
    engine = create_engine(database_url)

    def downgrade(connection: Connection) -> set[str]:
        config = alembic_config(MIGRATIONS)
        config.attributes["connection"] = connection
        command.downgrade(config, "base")
        return set(inspect(connection).get_table_names())

    try:
        await upgrade_to_head(engine, MIGRATIONS)
        async with engine.connect() as connection:
            tables = await connection.run_sync(downgrade)
            await connection.commit()
        assert tables == {"alembic_version", LINEAGE.name}
        assert (await upgrade_to_head(engine, MIGRATIONS)).status == "current"
    finally:
        await engine.dispose()
