"""The org a dashboard request keeps in memory (queries.org_index), on SQLite and PostgreSQL:
kept while the active generation's org version stays, and read again once another writer (a
second replica, its own engine) changes an org unit or an employee, or a rebuilt generation is
swapped in."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from rhythm_reporting.adapters.db import kit
from rhythm_reporting.adapters.queries import Queries
from rhythm_reporting.adapters.store import (
    activate_generation,
    ensure_active_generation,
    start_generation,
)
from rhythm_reporting.adapters.unit_of_work import SqlReportingUnitOfWork
from rhythm_reporting.commands import ProjectEvents
from rhythm_reporting.handlers import project_events
from rhythm_reporting.main import MIGRATIONS
from rhythm_reporting.queries import OrgIndex, org_index
from rhythm_shared.contracts.base import Event
from rhythm_shared.contracts.v1 import CheckinDue, CheckinKind, EmployeeUpserted, OrgUnitUpserted
from rhythm_shared.kit.clock import ManualClock
from rhythm_shared.kit.db import create_engine, session_factory
from rhythm_shared.kit.migrations import upgrade_to_head

T = "acme"
EARLY = datetime(2026, 1, 1, tzinfo=UTC)
LATER = datetime(2026, 2, 1, tzinfo=UTC)


def _unit(unit: str, parent: str | None, at: datetime = EARLY) -> OrgUnitUpserted:
    return OrgUnitUpserted(
        tenant_id=T, occurred_at=at, org_unit_id=unit, name=unit, parent_id=parent
    )


def _person(employee: str, unit: str, at: datetime = EARLY) -> EmployeeUpserted:
    return EmployeeUpserted(
        tenant_id=T,
        occurred_at=at,
        employee_id=employee,
        email=f"{employee}@example.com",
        display_name=f"Person {employee}",
        org_unit_id=unit,
        time_zone="UTC",
        locale="en",
        hired_on=date(2020, 1, 1),
        active=True,
    )


def _due(employee: str) -> CheckinDue:
    due = datetime(2026, 1, 20, 9, tzinfo=UTC)
    return CheckinDue(
        tenant_id=T,
        occurred_at=due,
        obligation_id=f"{employee}-1",
        employee_id=employee,
        manager_id="boss",
        kind=CheckinKind.MONTHLY,
        period_start=date(2026, 1, 1),
        period_end=date(2026, 1, 31),
        due_at=due,
    )


async def _project(engine: AsyncEngine, events: list[Event], generation: int | None = None) -> None:
    """One batch, as a replica writing through its own engine applies it."""
    async with SqlReportingUnitOfWork(
        session_factory(engine), kit, ManualClock(LATER), "reporting", generation=generation
    ) as uow:
        batch = ProjectEvents.of((f"{id(events)}-{i}", e) for i, e in enumerate(events))
        await project_events(uow, batch)


async def _org(reader: AsyncEngine) -> tuple[OrgIndex, int]:
    """What a dashboard request of the reading replica uses, and the version it read."""
    async with reader.connect() as conn:
        q = await Queries.open(conn, T)
        return await org_index(q), q.org_version


async def test_the_kept_org_serves_until_another_replica_changes_the_org(
    database_url: str,
) -> None:
    writer, reader = create_engine(database_url), create_engine(database_url)
    try:
        await upgrade_to_head(writer, MIGRATIONS)
        async with session_factory(writer)() as session, session.begin():
            await ensure_active_generation(session, EARLY)
        people = [_person(f"p{i}", "ops") for i in range(6)]
        await _project(writer, [_unit("top", None), _unit("ops", "top"), *people])

        first, version = await _org(reader)
        assert first.children("top") == ["ops"]
        assert first.people["top"] == 6
        again, same = await _org(reader)
        assert same == version
        assert again is first  # nothing changed: not read again

        # Facts alone leave the org as it was.
        await _project(writer, [_due("p0")])
        assert (await _org(reader))[0] is first

        # The other replica adds a unit: the reader's next request sees it.
        await _project(writer, [_unit("sales", "top", LATER)])
        second, newer = await _org(reader)
        assert newer > version
        assert second is not first
        assert second.children("top") == ["ops", "sales"]

        # An employee moving changes the headcounts.
        await _project(writer, [_person("p0", "sales", LATER)])
        third, _ = await _org(reader)
        assert (third.people["ops"], third.people["sales"]) == (5, 1)
        assert third.headcount_children("top", 5) != second.headcount_children("top", 5)
    finally:
        await writer.dispose()
        await reader.dispose()


async def test_a_rebuilt_generation_swapped_in_is_read_anew(database_url: str) -> None:
    writer, reader = create_engine(database_url), create_engine(database_url)
    try:
        await upgrade_to_head(writer, MIGRATIONS)
        sessions = session_factory(writer)
        async with sessions() as session, session.begin():
            await ensure_active_generation(session, EARLY)
        await _project(writer, [_unit("top", None), _unit("ops", "top")])
        old, _ = await _org(reader)
        assert old.children("top") == ["ops"]

        async with sessions() as session, session.begin():
            rebuilt = await start_generation(session, LATER)
        # The rebuild's org differs, with the org version its own generation starts from.
        await _project(writer, [_unit("top", None), _unit("hr", "top")], generation=rebuilt)
        async with sessions() as session, session.begin():
            await activate_generation(session, rebuilt, LATER)
        new, _ = await _org(reader)
        assert new.children("top") == ["hr"]
    finally:
        await writer.dispose()
        await reader.dispose()
