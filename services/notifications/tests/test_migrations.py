"""The migrations build exactly the tables the code defines, on SQLite and PostgreSQL, and the
service's old people table moves into the kit's directory without losing anyone."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from rhythm_notifications.adapters.db import metadata
from rhythm_notifications.main import MIGRATIONS
from rhythm_shared.kit.db import create_engine
from rhythm_shared.kit.migrations import alembic_config, upgrade_to_head


async def test_migrating_to_head_leaves_nothing_for_autogenerate_to_add(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        await upgrade_to_head(engine, MIGRATIONS)
        await upgrade_to_head(engine, MIGRATIONS)  # a second start is a no-op

        def diff(connection: Any) -> list[Any]:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return list(compare_metadata(context, metadata))

        def tables(connection: Any) -> set[str]:
            return set(inspect(connection).get_table_names())

        async with engine.connect() as connection:
            assert await connection.run_sync(diff) == []
            names = await connection.run_sync(tables)
            assert {"directory_employees", "directory_org_units"} <= names
            assert "people" not in names
    finally:
        await engine.dispose()


async def test_the_old_people_table_moves_into_the_directory_and_any_real_event_wins(
    database_url: str,
) -> None:
    engine = create_engine(database_url)
    at = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    left = datetime(2026, 4, 1, tzinfo=UTC)

    def migrate(connection: Connection, revision: str) -> None:
        config = alembic_config(MIGRATIONS)
        config.attributes["connection"] = connection
        command.upgrade(config, revision)

    try:
        async with engine.connect() as connection:
            await connection.run_sync(migrate, "0004")
            await connection.execute(
                text(
                    "INSERT INTO people (tenant_id, employee_id, email, display_name, manager_id,"
                    " locale, time_zone, active, inactive_from, updated_at) VALUES"
                    " ('t', 'ana', 'ana@example.com', 'Ana', 'mgr', 'en-GB', 'Europe/Paris',"
                    " :yes, NULL, :at), ('t', 'leo', 'leo@example.com', 'Leo', NULL, 'en', 'UTC',"
                    " :yes, :left, :at)"
                ),
                {"yes": True, "at": at, "left": left},
            )
            await connection.commit()
            await connection.run_sync(migrate, "head")
            await connection.commit()
            rows = (
                await connection.execute(
                    text(
                        "SELECT employee_id, email, manager_id, time_zone, deactivated_at,"
                        " profile_event_id, deactivation_event_id FROM directory_employees"
                        " ORDER BY employee_id"
                    )
                )
            ).all()
        assert [tuple(r[:4]) for r in rows] == [
            ("ana", "ana@example.com", "mgr", "Europe/Paris"),
            ("leo", "leo@example.com", None, "UTC"),
        ]
        assert rows[0].deactivated_at is None
        assert rows[0].deactivation_event_id is None
        assert rows[1].deactivated_at is not None  # still leaving on 1 April
        assert {r.profile_event_id for r in rows} == {""}  # any real event id sorts after it
    finally:
        await engine.dispose()
