"""The migrations build exactly the tables the code defines, on SQLite and PostgreSQL, and the
step to the kit's people directory keeps what the old people slice held."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, select, text

import rhythm_checkins
from rhythm_checkins.adapters.db import action_items, departures, directory, metadata, planning
from rhythm_shared.kit.db import create_engine
from rhythm_shared.kit.migrations import alembic_config, upgrade_to_head

MIGRATIONS = Path(rhythm_checkins.__file__).parent / "migrations"


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
            found = await connection.run_sync(tables)
        assert {"directory_employees", "directory_org_units", "planning", "audit_log"} <= found
        assert not {"employees", "org_units"} & found
    finally:
        await engine.dispose()


async def test_the_old_people_slice_moves_into_the_directory_with_a_version_any_event_beats(
    database_url: str,
) -> None:
    engine = create_engine(database_url)
    updated = datetime(2026, 3, 1, 9, tzinfo=UTC)
    try:

        def to(revision: str) -> Any:
            def run(connection: Any) -> None:
                config = alembic_config(MIGRATIONS)
                config.attributes["connection"] = connection
                command.upgrade(config, revision)

            return run

        async with engine.begin() as connection:
            await connection.run_sync(to("0002"))
            await connection.execute(
                text(
                    "INSERT INTO employees (tenant_id, employee_id, manager_id, org_unit_id,"
                    " time_zone, hired_on, active, deactivated_at, plan_at, updated_at) VALUES"
                    " ('t', 'ana', 'mia', 'ou-1', 'Europe/Amsterdam', :hired, :yes, NULL,"
                    " :plan, :at),"
                    " ('t', 'leo', 'mia', 'ou-1', 'UTC', :hired, :yes, :gone, NULL, :at)"
                ),
                {
                    "hired": date(2024, 1, 8),
                    "yes": True,
                    "plan": datetime(2026, 4, 1, tzinfo=UTC),
                    "gone": datetime(2026, 5, 1, tzinfo=UTC),
                    "at": updated,
                },
            )
            await connection.execute(
                text(
                    "INSERT INTO org_units (tenant_id, org_unit_id, parent_id, updated_at)"
                    " VALUES ('t', 'ou-1', NULL, :at)"
                ),
                {"at": updated},
            )
        await upgrade_to_head(engine, MIGRATIONS)
        e = directory.employees
        async with engine.connect() as connection:
            people = {
                r.employee_id: r
                for r in await connection.execute(select(e).order_by(e.c.employee_id))
            }
            plans = dict(
                (await connection.execute(select(planning.c.employee_id, planning.c.plan_at))).all()
            )
            units = (await connection.execute(select(directory.org_units))).all()
        ana, leo = people["ana"], people["leo"]
        assert (ana.manager_id, ana.org_unit_id, ana.time_zone) == (
            "mia",
            "ou-1",
            "Europe/Amsterdam",
        )
        assert (ana.profile_at, ana.profile_event_id) == (updated, "")
        assert (leo.deactivated_at, leo.deactivation_event_id) == (
            datetime(2026, 5, 1, tzinfo=UTC),
            "",
        )
        assert plans == {"ana": datetime(2026, 4, 1, tzinfo=UTC), "leo": None}
        assert [(u.org_unit_id, u.version_event_id) for u in units] == [("ou-1", "")]
    finally:
        await engine.dispose()


async def test_people_who_left_before_retention_existed_are_recorded_as_departures(
    database_url: str,
) -> None:
    engine = create_engine(database_url)
    profile = datetime(2026, 3, 1, 9, tzinfo=UTC)
    gone = datetime(2026, 5, 1, tzinfo=UTC)
    try:

        def to_0003(connection: Any) -> None:
            config = alembic_config(MIGRATIONS)
            config.attributes["connection"] = connection
            command.upgrade(config, "0003")

        async with engine.begin() as connection:
            await connection.run_sync(to_0003)
            await connection.execute(
                directory.employees.insert(),
                [
                    {
                        "tenant_id": "t",
                        "employee_id": p,
                        "time_zone": "UTC",
                        "locale": "en",
                        "active": active,
                        "deactivated_at": left,
                        "profile_at": profile,
                        "profile_event_id": "e",
                    }
                    for p, active, left in (
                        ("ana", True, None),
                        ("leo", True, gone),
                        ("zoe", False, None),
                    )
                ],
            )
            await connection.execute(
                text(
                    "INSERT INTO action_items (id, tenant_id, employee_id, checkin_id, owner_id,"
                    " text, created_at) VALUES ('ai-1', 't', 'leo', 'c-1', 'leo', 'memo', :at)"
                ),
                {"at": profile},
            )
        await upgrade_to_head(engine, MIGRATIONS)
        async with engine.connect() as connection:
            rows = await connection.execute(select(departures.c.employee_id, departures.c.left_at))
            left = {r.employee_id: r.left_at for r in rows}
            item = (await connection.execute(select(action_items.c.text))).scalar_one()
        # A dated deactivation counts from its date; an undated "inactive" from that update.
        assert left == {"leo": gone, "zoe": profile}
        assert item == "memo"  # the column became nullable; nothing written was lost
    finally:
        await engine.dispose()
