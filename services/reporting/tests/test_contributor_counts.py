"""The small-group rule's contributor counts (adapters/queries.py), on SQLite and PostgreSQL:
capped counts are the exact count up to the cap, the whole tenant is listed from the rollups
without losing facts that have no unit, and a person counts once however many facts or units."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from rhythm_reporting.adapters.db import (
    MEMBERSHIP_ROLLUPS,
    ROLLUP_TABLES,
    goal_facts,
    key_columns,
    kit,
    value_columns,
)
from rhythm_reporting.adapters.queries import Queries, _in_units
from rhythm_reporting.adapters.store import _upsert_statement, ensure_active_generation
from rhythm_reporting.adapters.unit_of_work import SqlReportingUnitOfWork
from rhythm_reporting.commands import ProjectEvents
from rhythm_reporting.domain.periods import Period
from rhythm_reporting.handlers import project_events
from rhythm_reporting.main import MIGRATIONS
from rhythm_shared.contracts.base import Event
from rhythm_shared.contracts.v1 import (
    CheckinDue,
    CheckinKind,
    EmployeeUpserted,
    GoalCreated,
    GoalKind,
    OrgUnitUpserted,
    OwnerType,
    Visibility,
)
from rhythm_shared.kit.clock import ManualClock
from rhythm_shared.kit.db import create_engine, session_factory
from rhythm_shared.kit.migrations import upgrade_to_head

T = "acme"
EARLY = datetime(2026, 1, 1, tzinfo=UTC)
MARCH, APRIL = datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC)


def _person(employee: str, unit: str, at: datetime) -> EmployeeUpserted:
    return EmployeeUpserted(
        tenant_id=T,
        occurred_at=at,
        employee_id=employee,
        email=f"{employee}@example.com",
        display_name=f"Person {employee}",
        manager_id=None,
        org_unit_id=unit,
        time_zone="UTC",
        locale="en",
        hired_on=date(2020, 1, 1),
        active=True,
    )


def _due(obligation: str, employee: str, due: datetime) -> CheckinDue:
    return CheckinDue(
        tenant_id=T,
        occurred_at=due - timedelta(days=3),
        obligation_id=obligation,
        employee_id=employee,
        manager_id="boss",
        kind=CheckinKind.MONTHLY,
        period_start=due.date().replace(day=1),
        period_end=due.date(),
        due_at=due,
    )


async def test_capped_and_tenant_wide_counts_equal_counting_the_people(database_url: str) -> None:
    events: list[Event] = [
        OrgUnitUpserted(
            tenant_id=T, occurred_at=EARLY, org_unit_id="top", name="Top", parent_id=None
        ),
        OrgUnitUpserted(
            tenant_id=T, occurred_at=EARLY, org_unit_id="team", name="Team", parent_id="top"
        ),
        *(_person(f"p{i}", "team", EARLY) for i in range(6)),
        _person("head", "top", EARLY),
        # Moves from the team to the top on March 15th: one person in both, counted once.
        _person("mover", "team", EARLY),
        _person("mover", "top", datetime(2026, 3, 15, tzinfo=UTC)),
    ]
    for i in range(6):  # two obligations each in March: still six people
        events += [
            _due(f"a{i}", f"p{i}", MARCH + timedelta(days=2)),
            _due(f"b{i}", f"p{i}", MARCH + timedelta(days=20)),
        ]
    events += [
        _due("h", "head", MARCH + timedelta(days=5)),
        _due("m1", "mover", MARCH + timedelta(days=5)),
        _due("m2", "mover", MARCH + timedelta(days=25)),
        _due("x", "stranger", MARCH + timedelta(days=5)),  # nobody knows them: no unit
        _due("later", "p0", APRIL + timedelta(days=5)),
    ]
    engine = create_engine(database_url)
    try:
        await upgrade_to_head(engine, MIGRATIONS)
        sessions = session_factory(engine)
        async with sessions() as session, session.begin():
            generation = await ensure_active_generation(session, EARLY)
        async with SqlReportingUnitOfWork(
            sessions, kit, ManualClock(EARLY), "reporting", generation=generation
        ) as uow:
            await project_events(uow, ProjectEvents.of((f"e{i}", e) for i, e in enumerate(events)))
        async with engine.connect() as conn:
            q = await Queries.open(conn, T)

            async def count(units: list[str | None], cap: int | None = None) -> int:
                return await q.contributors("obligations", MARCH, APRIL, units, cap)

            assert await count(["team"]) == 7  # p0..p5 and the mover
            assert await count(["top"]) == 2  # the head and the mover
            assert await count(["team", "top"]) == 8
            assert [await count(["team", "top"], cap) for cap in (3, 8, 20)] == [3, 8, 8]
            assert await count([None]) == 1
            listed = await q.units_with_facts("obligations", ["2026-03"])
            assert listed == ["team", "top"]
            assert await count([*listed, None]) == 9
            assert await count([*listed, None], 5) == 5
            assert await count([]) == 0
            assert await q.units_with_facts("obligations", ["2026-02"]) == []
            assert await q.unknown_units_with_facts("obligations", ["2026-03"]) == {}
            # Whose own facts there are (not below; None: no unit), asked of many cells at once,
            # as counting says: 3 cells (a statement of 4, padded) and 1 without a unit.
            cells: list[tuple[str | None, str]] = [
                ("team", "2026-03"),
                ("top", "2026-03"),
                ("top", "2026-04"),
                ("team", "2026-04"),
                ("nowhere", "2026-03"),
                (None, "2026-03"),
                (None, "2026-04"),
            ]
            counted = set()
            for unit, month in cells:
                start, end = Period.parse(month).bounds
                if await q.contributors("obligations", start, end, [unit]):
                    counted.add((unit, month))
            assert await q.own_facts("obligations", cells) == counted
            assert counted == {
                ("team", "2026-03"),
                ("top", "2026-03"),
                ("team", "2026-04"),
                (None, "2026-03"),
            }
            assert await q.own_facts("pulse", cells) == set()
            # The manager rows: distinct reports per manager, counted by the database; the
            # people of some managers (None: no manager) and those outside a team, capped.
            assert await q.month_reports("2026-03") == {"boss": 9}
            assert await q.month_reports("2026-02") == {}
            assert len(await q.reports_of("2026-03", {"boss"}, 20)) == 9
            assert len(await q.reports_of("2026-03", {"boss", None}, 3)) == 3
            assert await q.reports_of("2026-03", {None, "nobody"}, 5) == set()
            assert await q.outside_team("2026-03", ["team", "top"], "boss", 5) == 0
            assert await q.outside_team("2026-03", ["team"], "other", 20) == 7
            assert await q.outside_team("2026-03", ["team", "top"], "other", 5) == 5
    finally:
        await engine.dispose()


def _goal(goal: str, owner: str, start: date, end: date) -> GoalCreated:
    return GoalCreated(
        tenant_id=T,
        occurred_at=EARLY + timedelta(days=1),
        goal_id=goal,
        owner_type=OwnerType.PERSON,
        owner_id=owner,
        kind=GoalKind.OKR,
        title=None,
        visibility=Visibility.PRIVATE,
        period_start=start,
        period_end=end,
        update_interval_days=14,
        key_results=[],
    )


async def test_goal_owners_of_many_cells_at_once_equal_counting_each(database_url: str) -> None:
    q1, q2 = (date(2026, 1, 1), date(2026, 3, 31)), (date(2026, 4, 1), date(2026, 6, 30))
    events: list[Event] = [
        OrgUnitUpserted(tenant_id=T, occurred_at=EARLY, org_unit_id="top", name="Top"),
        OrgUnitUpserted(
            tenant_id=T, occurred_at=EARLY, org_unit_id="team", name="Team", parent_id="top"
        ),
        *(_person(f"p{i}", "team", EARLY) for i in range(7)),
        _person("head", "top", EARLY),
        *(_goal(f"g{i}", f"p{i}", *q1) for i in range(7)),
        _goal("g-second", "p0", *q1),  # a second goal of p0: still one owner
        _goal("g-head", "head", *q2),
        _goal("g-stranger", "stranger", *q1),  # nobody knows them: no unit
    ]
    engine = create_engine(database_url)
    try:
        await upgrade_to_head(engine, MIGRATIONS)
        sessions = session_factory(engine)
        async with sessions() as session, session.begin():
            generation = await ensure_active_generation(session, EARLY)
        async with SqlReportingUnitOfWork(
            sessions, kit, ManualClock(EARLY), "reporting", generation=generation
        ) as uow:
            await project_events(uow, ProjectEvents.of((f"e{i}", e) for i, e in enumerate(events)))
        async with engine.connect() as conn:
            q = await Queries.open(conn, T)
            cells: list[list[str | None]] = [["team"], ["top"], ["team", "top"], [None], [], ["x"]]
            for span in (q1, q2):
                for cap in (3, 5, 20):
                    each = [await q.goal_owners(span, units, cap=cap) for units in cells]
                    assert await q.goal_owner_counts(span, cells, cap) == each
            assert await q.goal_owner_counts(q1, cells, 20) == [7, 0, 7, 1, 0, 0]
            assert await q.goal_owners(q1, None) == 8  # the whole tenant, with no unit too
            assert await q.goal_owner_counts(q2, cells, 5) == [0, 1, 1, 0, 0, 0]
    finally:
        await engine.dispose()


@contextlib.asynccontextmanager
async def _projected(database_url: str, events: list[Event]) -> AsyncIterator[Queries]:
    """The queries of a fresh read model that has projected ``events``."""
    engine = create_engine(database_url)
    try:
        await upgrade_to_head(engine, MIGRATIONS)
        sessions = session_factory(engine)
        async with sessions() as session, session.begin():
            generation = await ensure_active_generation(session, EARLY)
        async with SqlReportingUnitOfWork(
            sessions, kit, ManualClock(EARLY), "reporting", generation=generation
        ) as uow:
            await project_events(uow, ProjectEvents.of((f"e{i}", e) for i, e in enumerate(events)))
        async with engine.connect() as conn:
            yield await Queries.open(conn, T)
    finally:
        await engine.dispose()


async def test_a_long_unit_list_counts_as_the_short_one(database_url: str) -> None:
    # Thousands of units (a division's subtree) go as one JSON array parameter, not one
    # parameter each: the same people, with and without None (facts with no unit).
    events: list[Event] = [
        OrgUnitUpserted(tenant_id=T, occurred_at=EARLY, org_unit_id="top", name="Top"),
        OrgUnitUpserted(
            tenant_id=T, occurred_at=EARLY, org_unit_id="team", name="Team", parent_id="top"
        ),
        *(_person(f"p{i}", "team", EARLY) for i in range(6)),
        _person("head", "top", EARLY),
        *(_due(f"a{i}", f"p{i}", MARCH + timedelta(days=2)) for i in range(6)),
        _due("h", "head", MARCH + timedelta(days=5)),
        _due("x", "stranger", MARCH + timedelta(days=5)),  # nobody knows them: no unit
        *(_goal(f"g{i}", f"p{i}", date(2026, 1, 1), date(2026, 3, 31)) for i in range(6)),
        _goal("g-stranger", "stranger", date(2026, 1, 1), date(2026, 3, 31)),
    ]
    filler = [f"unit-{i:04d}" for i in range(2000)]  # no facts in any of them
    q1 = (date(2026, 1, 1), date(2026, 3, 31))
    async with _projected(database_url, events) as q:
        short: list[list[str | None]] = [["team"], ["team", "top"], [None], ["top", None]]
        expected = {
            "contributors": [6, 7, 1, 2],
            "outside_team": [6, 7],
            "goal_owners": [6, 6, 1, 1],
        }
        for units in (short, [[*filler, *u] for u in short]):
            got = {
                "contributors": [
                    await q.contributors("obligations", MARCH, APRIL, u) for u in units
                ],
                "outside_team": [
                    await q.outside_team("2026-03", [n for n in u if n is not None], "other", 20)
                    for u in units[:2]
                ],
                "goal_owners": [await q.goal_owners(q1, u) for u in units],
            }
            assert got == expected
            assert await q.goal_owner_counts(q1, units, 20) == expected["goal_owners"]
            outside: list[tuple[str, list[str | None], list[str]]] = [
                ("2026-03", u, []) for u in units
            ]
            assert await q.outside_counts("obligations", outside, 20) == expected["contributors"]
            assert await q.contributors("obligations", MARCH, APRIL, units[1], cap=3) == 3


def test_a_long_unit_list_is_one_parameter_and_one_cached_statement() -> None:
    column = goal_facts.c.org_unit_id
    many = [f"unit-{i:04d}" for i in range(2000)]
    statement = select(column).where(_in_units(column, [*many, None]))
    for url in ("sqlite+aiosqlite://", "postgresql+asyncpg://db/reporting"):  # not connected
        dialect = create_async_engine(url).dialect
        assert list(statement.compile(dialect=dialect).params.values()) == [many]
    other = select(column).where(_in_units(column, [*many[1:], "elsewhere", None]))
    assert statement._generate_cache_key() == other._generate_cache_key()


def test_rollup_rows_built_by_position_match_every_tables_columns() -> None:
    """The store builds rollup rows as (generation, tenant, key..., values...) tuples, tens of
    thousands a batch, without naming columns: each table's written columns are in that order."""
    for url in ("sqlite+aiosqlite://", "postgresql+asyncpg://db/reporting"):  # not connected
        dialect = create_async_engine(url).dialect
        for table in (*ROLLUP_TABLES.values(), *MEMBERSHIP_ROLLUPS.values()):
            _, columns, _, _ = _upsert_statement(dialect, table, True)
            assert columns == [
                "generation",
                "tenant_id",
                *key_columns(table),
                *value_columns(table),
            ], table.name


async def test_units_with_facts_the_org_does_not_know_are_listed_by_month(
    database_url: str,
) -> None:
    events: list[Event] = [
        OrgUnitUpserted(tenant_id=T, occurred_at=EARLY, org_unit_id="top", name="Top"),
        _person("known", "top", EARLY),
        _person("lost", "ghost", EARLY),  # a unit named before (or without) its OrgUnitUpserted
        _person("gone", "attic", EARLY),
        _due("k", "known", MARCH + timedelta(days=2)),
        _due("l", "lost", MARCH + timedelta(days=2)),
        _due("l2", "lost", APRIL + timedelta(days=2)),
        _due("g", "gone", MARCH - timedelta(days=20)),  # February only
    ]
    async with _projected(database_url, events) as q:
        assert await q.unknown_units_with_facts("obligations", ["2026-03", "2026-04"]) == {
            "2026-03": ["ghost"],
            "2026-04": ["ghost"],
        }
        assert await q.unknown_units_with_facts("obligations", ["2026-02", "2026-03"]) == {
            "2026-02": ["attic"],
            "2026-03": ["ghost"],
        }
        assert await q.unknown_units_with_facts("obligations", ["2026-01"]) == {}
        assert await q.unknown_units_with_facts("checkins", ["2026-03"]) == {}
        assert await q.units_with_facts("obligations", ["2026-03"]) == ["ghost", "top"]
