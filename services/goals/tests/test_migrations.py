"""The migrations build exactly the tables the code defines, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from rhythm_goals.adapters.db import metadata
from rhythm_goals.main import MIGRATIONS
from rhythm_shared.kit.db import create_engine
from rhythm_shared.kit.migrations import upgrade_to_head


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
