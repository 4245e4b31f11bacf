"""The manager table a dashboard request keeps in memory (queries.manager_table), on SQLite and
PostgreSQL: kept while the org version and the obligation numbers of the period's months stay,
and made again once another writer (a second replica, its own engine) changes an obligation
due in one of those months, the org, or erases a manager."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from rhythm_reporting.adapters.db import kit
from rhythm_reporting.adapters.queries import Queries
from rhythm_reporting.adapters.store import ensure_active_generation
from rhythm_reporting.adapters.unit_of_work import SqlReportingUnitOfWork
from rhythm_reporting.commands import ProjectEvents
from rhythm_reporting.domain.periods import Period
from rhythm_reporting.handlers import project_events
from rhythm_reporting.main import MIGRATIONS
from rhythm_reporting.queries import ManagerTable, SmallGroups, manager_table
from rhythm_shared.contracts.base import Event
from rhythm_shared.contracts.v1 import (
    CheckinDue,
    CheckinKind,
    CheckinMissed,
    EmployeeErased,
    EmployeeUpserted,
    OrgUnitUpserted,
)
from rhythm_shared.kit.clock import ManualClock
from rhythm_shared.kit.db import create_engine, session_factory
from rhythm_shared.kit.migrations import upgrade_to_head

T = "acme"
EARLY = datetime(2026, 1, 1, tzinfo=UTC)
JANUARY = datetime(2026, 1, 20, 9, tzinfo=UTC)
MARCH = datetime(2026, 3, 20, 9, tzinfo=UTC)


def _person(employee: str, manager: str | None) -> EmployeeUpserted:
    return EmployeeUpserted(
        tenant_id=T,
        occurred_at=EARLY,
        employee_id=employee,
        email=f"{employee}@example.com",
        display_name=f"Person {employee}",
        manager_id=manager,
        org_unit_id="ops",
        time_zone="UTC",
        locale="en",
        hired_on=date(2020, 1, 1),
        active=True,
    )


def _due(employee: str, due: datetime) -> CheckinDue:
    return CheckinDue(
        tenant_id=T,
        occurred_at=due,
        obligation_id=f"{employee}-{due.month}",
        employee_id=employee,
        manager_id="boss",
        kind=CheckinKind.MONTHLY,
        period_start=date(due.year, due.month, 1),
        period_end=date(due.year, due.month, 28),
        due_at=due,
    )


def _missed(employee: str, due: datetime) -> CheckinMissed:
    return CheckinMissed(
        tenant_id=T,
        occurred_at=due,
        obligation_id=f"{employee}-{due.month}",
        employee_id=employee,
        manager_id="boss",
        kind=CheckinKind.MONTHLY,
        period_start=date(due.year, due.month, 1),
        period_end=date(due.year, due.month, 28),
        due_at=due,
        consecutive_misses=1,
    )


async def _project(engine: AsyncEngine, events: list[Event]) -> None:
    """One batch, as a replica writing through its own engine applies it."""
    async with SqlReportingUnitOfWork(
        session_factory(engine), kit, ManualClock(MARCH), "reporting"
    ) as uow:
        batch = ProjectEvents.of((f"{id(events)}-{i}", e) for i, e in enumerate(events))
        await project_events(uow, batch)


async def _table(reader: AsyncEngine, period: str = "2026-01") -> ManagerTable:
    """What a dashboard request of the reading replica uses."""
    async with reader.connect() as conn:
        q = await Queries.open(conn, T)
        return await manager_table(q, SmallGroups(q, 5), Period.parse(period))


async def _made_anew(database_url: str, period: str = "2026-01") -> ManagerTable:
    """The table as a replica with nothing in memory makes it."""
    fresh = create_engine(database_url)
    try:
        return await _table(fresh, period)
    finally:
        await fresh.dispose()


def _counts(table: ManagerTable) -> dict[str, tuple[int, int, bool]]:
    """Manager -> (obligations, missed, shown)."""
    return {r[0]: (r[3], r[6], shown) for r, shown in table}


async def test_the_kept_manager_table_serves_until_another_replica_changes_its_months(
    database_url: str,
) -> None:
    writer, reader = create_engine(database_url), create_engine(database_url)
    try:
        await upgrade_to_head(writer, MIGRATIONS)
        async with session_factory(writer)() as session, session.begin():
            await ensure_active_generation(session, EARLY)
        team = [f"p{i}" for i in range(6)]
        await _project(
            writer,
            [
                OrgUnitUpserted(tenant_id=T, occurred_at=EARLY, org_unit_id="ops", name="Ops"),
                _person("boss", None),
                *(_person(p, "boss") for p in team),
                *(_due(p, JANUARY) for p in team),
            ],
        )

        first = await _table(reader)
        assert _counts(first) == {"boss": (6, 0, True)}
        assert first == await _made_anew(database_url)
        assert await _table(reader) is first  # nothing changed: not made again

        # Obligations of another month leave January's table as it was.
        await _project(writer, [_due("p0", MARCH)])
        assert await _table(reader) is first

        # The other replica declares a January obligation missed: the reader's next request
        # makes the table again, as a replica with nothing in memory would.
        await _project(writer, [_missed("p1", JANUARY)])
        second = await _table(reader)
        assert _counts(second) == {"boss": (6, 1, True)}
        assert second == await _made_anew(database_url)

        # An org change (a new report, no obligations yet): made again, with the team of 7.
        await _project(writer, [_person("p6", "boss")])
        third = await _table(reader)
        assert [r[2] for r, _ in second] == [6]
        assert [r[2] for r, _ in third] == [7]
        assert third == await _made_anew(database_url)

        # The manager is erased (their employee row renamed): made again, as anew.
        erased = EmployeeErased(tenant_id=T, occurred_at=MARCH, employee_id="boss", erasure_id="e")
        await _project(writer, [erased])
        fourth = await _table(reader)
        assert [r[1] for r, _ in third] == ["ops"]
        assert fourth != third
        assert fourth == await _made_anew(database_url)
    finally:
        await writer.dispose()
        await reader.dispose()
