"""HR data where A manages B and B manages A (a cycle in the manager chain), on SQLite and
PostgreSQL: the manager table answers at once and shows no small group, by the rule's own
terms counted here from the events (each shown manager's reports, the reports of the managers
left out together, and the manager's unit less their team: none or at least five people)."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta

from rhythm_reporting.adapters.db import kit
from rhythm_reporting.adapters.queries import Queries
from rhythm_reporting.adapters.store import ensure_active_generation
from rhythm_reporting.adapters.unit_of_work import SqlReportingUnitOfWork
from rhythm_reporting.commands import ProjectEvents
from rhythm_reporting.domain.periods import Period
from rhythm_reporting.handlers import project_events
from rhythm_reporting.main import MIGRATIONS
from rhythm_reporting.queries import Scope, manager_adherence
from rhythm_shared.contracts.base import Event
from rhythm_shared.contracts.v1 import CheckinDue, CheckinKind, EmployeeUpserted, OrgUnitUpserted
from rhythm_shared.kit.clock import ManualClock
from rhythm_shared.kit.db import create_engine, session_factory
from rhythm_shared.kit.migrations import upgrade_to_head

T = "acme"
EARLY = datetime(2026, 1, 1, tzinfo=UTC)
MINIMUM = 5
#: employee -> (unit, manager): a and b manage each other; a has a team besides, c another.
PEOPLE = {
    "a": ("top", "b"),
    "b": ("top", "a"),
    **{f"a{i}": ("top", "a") for i in range(6)},
    "c": ("top", "a"),
    **{f"c{i}": ("ops", "c") for i in range(6)},
}


def _person(employee: str, unit: str, manager: str) -> EmployeeUpserted:
    return EmployeeUpserted(
        tenant_id=T,
        occurred_at=EARLY,
        employee_id=employee,
        email=f"{employee}@example.com",
        display_name=f"Person {employee}",
        manager_id=manager,
        org_unit_id=unit,
        time_zone="UTC",
        locale="en",
        hired_on=date(2020, 1, 1),
        active=True,
    )


def _due(employee: str, manager: str, month: int) -> CheckinDue:
    due = datetime(2026, month, 10, 9, tzinfo=UTC)
    return CheckinDue(
        tenant_id=T,
        occurred_at=due - timedelta(days=3),
        obligation_id=f"{employee}-{month}",
        employee_id=employee,
        manager_id=manager,
        kind=CheckinKind.MONTHLY,
        period_start=due.date().replace(day=1),
        period_end=due.date(),
        due_at=due,
    )


def _events() -> list[Event]:
    events: list[Event] = [
        OrgUnitUpserted(tenant_id=T, occurred_at=EARLY, org_unit_id="top", name="Top"),
        OrgUnitUpserted(
            tenant_id=T, occurred_at=EARLY, org_unit_id="ops", name="Ops", parent_id="top"
        ),
    ]
    events += [_person(p, unit, manager) for p, (unit, manager) in PEOPLE.items()]
    events += [_due(p, manager, m) for p, (_, manager) in PEOPLE.items() for m in (1, 2, 3)]
    return events


def _small(people: set[str]) -> bool:
    return 0 < len(people) < MINIMUM


async def test_a_cycle_of_managers_neither_hangs_nor_shows_a_small_group(
    database_url: str,
) -> None:
    engine = create_engine(database_url)
    try:
        await upgrade_to_head(engine, MIGRATIONS)
        sessions = session_factory(engine)
        async with sessions() as session, session.begin():
            generation = await ensure_active_generation(session, EARLY)
        async with SqlReportingUnitOfWork(
            sessions, kit, ManualClock(EARLY), "reporting", generation=generation
        ) as uow:
            events = _events()
            await project_events(uow, ProjectEvents.of((f"e{i}", e) for i, e in enumerate(events)))
        async with engine.connect() as conn:
            q = await Queries.open(conn, T)
            scope = Scope("*", "Whole organisation", len(PEOPLE))
            report = await asyncio.wait_for(
                manager_adherence(q, scope, Period.parse("2026-Q1"), MINIMUM, None), 10
            )
    finally:
        await engine.dispose()
    shown = {r["manager_id"] for r in report.rows}
    # b's team is a alone; c goes too, else b's one report would be everyone less a's and c's.
    assert shown == {"a"}
    assert report.summary["managers_suppressed"] == 2
    teams: dict[str, set[str]] = {}
    for p, (_, manager) in PEOPLE.items():
        teams.setdefault(manager, set()).add(p)
    left_out = set().union(*(team for m, team in teams.items() if m not in shown))
    assert not _small(left_out)
    top = set(PEOPLE)
    ops = {p for p, (unit, _) in PEOPLE.items() if unit == "ops"}
    for manager in shown:
        assert not _small(teams[manager])
        unit = top if PEOPLE[manager][0] == "top" else ops
        assert not _small(unit - teams[manager]), manager
