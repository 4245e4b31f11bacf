"""The contributors kept at ingest (unit_contributors, their numbers in unit_contributor_counts)
and the managers' reports (manager_reports, manager_report_counts) answer exactly what counting
the facts at request time answers, on SQLite and PostgreSQL: for every unit, the tenant, family,
manager and month, after a person moves mid-month, a unit moves in the tree, an obligation
changes manager, HR history arrives late, events are replayed or duplicated, a person is
erased, the events come in another order (a rebuild), and after migrations 0007 and 0008 fill
the tables from the facts of an existing read model."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from alembic import command
from sqlalchemy import select
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from rhythm_reporting.adapters.db import (
    CONTRIBUTOR_FAMILIES,
    kit,
    manager_report_counts,
    manager_reports,
    obligation_facts,
    unit_contributor_counts,
    unit_contributors,
)
from rhythm_reporting.adapters.queries import Queries
from rhythm_reporting.adapters.store import ensure_active_generation
from rhythm_reporting.adapters.unit_of_work import SqlReportingUnitOfWork
from rhythm_reporting.commands import ProjectEvents
from rhythm_reporting.domain.periods import Period
from rhythm_reporting.domain.projection import TENANT
from rhythm_reporting.handlers import project_events
from rhythm_reporting.main import MIGRATIONS
from rhythm_reporting.queries import OrgIndex
from rhythm_shared.contracts.base import Event
from rhythm_shared.contracts.v1 import (
    CheckinCompleted,
    CheckinDue,
    CheckinKind,
    EmployeeErased,
    EmployeeUpserted,
    FeedbackGiven,
    FeedbackKind,
    Initiator,
    OrgUnitUpserted,
    ReflectionSubmitted,
)
from rhythm_shared.kit.clock import ManualClock
from rhythm_shared.kit.db import create_engine, session_factory
from rhythm_shared.kit.migrations import alembic_config, upgrade_to_head

T = "acme"
EARLY = datetime(2026, 1, 1, tzinfo=UTC)
MONTHS = ("2026-02", "2026-03", "2026-04")


def at(month: int, day: int) -> datetime:
    return datetime(2026, month, day, 9, tzinfo=UTC)


def unit(org_unit: str, parent: str | None, when: datetime = EARLY) -> OrgUnitUpserted:
    return OrgUnitUpserted(
        tenant_id=T, occurred_at=when, org_unit_id=org_unit, name=org_unit, parent_id=parent
    )


def person(employee: str, org_unit: str, when: datetime = EARLY) -> EmployeeUpserted:
    return EmployeeUpserted(
        tenant_id=T,
        occurred_at=when,
        employee_id=employee,
        email=f"{employee}@example.com",
        display_name=f"Person {employee}",
        manager_id="boss",
        org_unit_id=org_unit,
        time_zone="UTC",
        locale="en",
        hired_on=date(2020, 1, 1),
        active=True,
    )


def due(obligation: str, employee: str, when: datetime, manager: str = "boss") -> CheckinDue:
    return CheckinDue(
        tenant_id=T,
        occurred_at=when - timedelta(days=3),
        obligation_id=obligation,
        employee_id=employee,
        manager_id=manager,
        kind=CheckinKind.MONTHLY,
        period_start=when.date().replace(day=1),
        period_end=when.date(),
        due_at=when,
    )


def held(checkin: str, employee: str, when: datetime, pulse: int | None) -> CheckinCompleted:
    return CheckinCompleted(
        tenant_id=T,
        occurred_at=when,
        checkin_id=checkin,
        kind=CheckinKind.MONTHLY,
        employee_id=employee,
        manager_id="boss",
        held_at=when,
        initiated_by=Initiator.EMPLOYEE,
        pulse=pulse,
    )


def reflected(employee: str, when: datetime, pulse: int) -> ReflectionSubmitted:
    return ReflectionSubmitted(tenant_id=T, occurred_at=when, employee_id=employee, pulse=pulse)


def feedback(fid: str, giver: str, receiver: str, when: datetime) -> FeedbackGiven:
    return FeedbackGiven(
        tenant_id=T,
        occurred_at=when,
        feedback_id=fid,
        giver_id=giver,
        receiver_id=receiver,
        kind=FeedbackKind.PRAISE,
        requested=False,
    )


def org() -> list[Event]:
    """top > (sales > (east, west), ops > (plant)); seven people in east, four in west, three
    in plant, a head in top."""
    events: list[Event] = [
        unit("top", None),
        unit("sales", "top"),
        unit("east", "sales"),
        unit("west", "sales"),
        unit("ops", "top"),
        unit("plant", "ops"),
        person("head", "top"),
    ]
    events += [person(f"e{i}", "east") for i in range(7)]
    events += [person(f"w{i}", "west") for i in range(4)]
    events += [person(f"p{i}", "plant") for i in range(3)]
    return events


def activity(tag: str, people: Sequence[str], month: int) -> list[Event]:
    """Each person's facts of every family in the month, twice for some (one person, two
    facts)."""
    events: list[Event] = []
    for i, p in enumerate(people):
        events += [
            due(f"{tag}-o{i}", p, at(month, 5)),
            held(f"{tag}-c{i}", p, at(month, 6), pulse=3 if i % 2 else None),
            feedback(f"{tag}-f{i}", p, people[(i + 1) % len(people)], at(month, 7)),
        ]
        if i % 3 == 0:
            events += [
                due(f"{tag}-o{i}b", p, at(month, 20)),
                reflected(p, at(month, 21), pulse=4),
            ]
    return events


EVERYONE = ["head", *(f"e{i}" for i in range(7)), *(f"w{i}" for i in range(4))]
EVERYONE += [f"p{i}" for i in range(3)]


async def project(
    engine: AsyncEngine, events: Sequence[Event], tag: str, generation: int | None = None
) -> int:
    sessions = session_factory(engine)
    if generation is None:
        async with sessions() as session, session.begin():
            generation = await ensure_active_generation(session, EARLY)
    clock = ManualClock(EARLY)
    async with SqlReportingUnitOfWork(
        sessions, kit, clock, "reporting", generation=generation
    ) as uow:
        await project_events(uow, ProjectEvents.of((f"{tag}-{i}", e) for i, e in enumerate(events)))
    return generation


async def rollup_rows(engine: AsyncEngine, generation: int) -> list[tuple[Any, ...]]:
    t = unit_contributors
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(t.c.org_unit_id, t.c.family, t.c.month, t.c.person_id, t.c.facts).where(
                t.c.generation == generation
            )
        )
        return sorted(tuple(r) for r in rows.all())


async def kept_rows(engine: AsyncEngine, generation: int) -> list[tuple[Any, ...]]:
    """Every row kept at ingest for the small-group rule, of one generation, by table."""
    out = [("unit_contributors", *r) for r in await rollup_rows(engine, generation)]
    async with engine.connect() as conn:
        for t in (unit_contributor_counts, manager_reports, manager_report_counts):
            columns = [c for c in t.columns if c.name not in ("generation", "tenant_id")]
            rows = await conn.execute(select(*columns).where(t.c.generation == generation))
            out += sorted((t.name, *r) for r in rows.all())
    return out


async def assert_rollups_equal_counting_the_facts(engine: AsyncEngine) -> dict[str, int]:
    """Every cell, rolled up against counted at request time; returns the tenant's March."""
    async with engine.connect() as conn:
        q = await Queries.open(conn, T)
        tree = OrgIndex(await q.all_units(), await q.all_people())
        march = {}
        for family in CONTRIBUTOR_FAMILIES:
            for month in MONTHS:
                start, end = Period.parse(month).bounds
                units: list[str | None] = [*await q.units_with_facts(family, [month]), None]
                cells: list[tuple[str, Sequence[str | None]]] = [(TENANT, units)]
                cells += [(u, tree.subtree(u)) for u in sorted(tree.parent)]
                for cell, members in cells:
                    counted = await q.contributors(family, start, end, members)
                    rolled = await q.rolled_up_contributors(family, month, cell)
                    assert rolled == counted, (family, month, cell)
                march[family] = await q.rolled_up_contributors(family, "2026-03", TENANT)
        t = obligation_facts
        for month in MONTHS:
            start, end = Period.parse(month).bounds
            due_then = select(t.c.manager_id, t.c.employee_id).where(
                t.c.generation == q.g, t.c.due_at >= start, t.c.due_at < end
            )
            people: dict[str | None, set[str]] = {}
            for manager, employee in (await conn.execute(due_then)).all():
                people.setdefault(manager, set()).add(employee)
            assert await q.month_reports(month) == {m: len(p) for m, p in people.items()}
            for manager, reports in people.items():
                assert await q.reports_of(month, {manager}, 100) == reports, (month, manager)
        return march


async def test_rollups_follow_moves_late_history_duplicates_and_erasure(
    database_url: str,
) -> None:
    engine = create_engine(database_url)
    try:
        await upgrade_to_head(engine, MIGRATIONS)
        g = await project(engine, [*org(), *activity("feb", EVERYONE, 2)], "a")

        # A person moves from east to plant on March 15th: their March facts before the move
        # count in east (and sales), those after it in plant (and ops); top counts them once.
        moves = [person("e0", "plant", at(3, 15))]
        march = [*activity("mar", EVERYONE, 3), due("late-e0", "e0", at(3, 25))]
        march += [due("mar-o1", "e0", at(3, 5), "boss2"), due("mar-o2", "e1", at(3, 5), "boss2")]
        await project(engine, [*moves, *march], "b")
        async with engine.connect() as conn:
            q = await Queries.open(conn, T)
            for cell in ("east", "sales", "plant", "ops", "top"):
                people = {
                    r[0]
                    for r in await conn.execute(
                        select(unit_contributors.c.person_id).where(
                            unit_contributors.c.org_unit_id == cell,
                            unit_contributors.c.family == "obligations",
                            unit_contributors.c.month == "2026-03",
                        )
                    )
                }
                assert "e0" in people, cell
            assert await q.rolled_up_contributors("obligations", "2026-03", "top") == 15
            # pulse in odd check-ins or in reflections
            assert await q.rolled_up_contributors("pulse", "2026-03", "top") == 10
        await assert_rollups_equal_counting_the_facts(engine)

        # The same batch again, and again under new event ids (a redelivery at new offsets).
        before = await kept_rows(engine, g)
        await project(engine, [*moves, *march], "b")
        await project(engine, [*moves, *march], "c")
        assert await kept_rows(engine, g) == before

        # West moves from sales to ops: its people leave sales' subtree and join ops'; later
        # facts of theirs in the same batch follow the tree as it is now.
        await project(engine, [unit("west", "ops", at(4, 1)), *activity("apr", EVERYONE, 4)], "d")
        async with engine.connect() as conn:
            q = await Queries.open(conn, T)
            assert await q.rolled_up_contributors("obligations", "2026-02", "sales") == 7
            assert await q.rolled_up_contributors("obligations", "2026-02", "ops") == 7

        # HR history that arrives late: w1 has been in plant since February. Their facts move;
        # the rows they leave go (no row of 0 facts stays).
        await project(engine, [person("w1", "plant", at(2, 1))], "e")
        march_now = await assert_rollups_equal_counting_the_facts(engine)
        rows = await rollup_rows(engine, g)
        assert all(r[4] > 0 for r in rows)
        assert not [r for r in rows if r[0] == "west" and r[3] == "w1"]

        # Erasure: the counts stay, no row names the person.
        erased = EmployeeErased(
            tenant_id=T, occurred_at=at(5, 1), employee_id="e3", erasure_id="er-1"
        )
        await project(engine, [erased], "f")
        assert not [r for r in await kept_rows(engine, g) if "e3" in r]
        # A fact about them that arrives after the erasure goes under a pseudonym as well.
        await project(engine, [due("after-e3", "e3", at(4, 28))], "g")
        assert await assert_rollups_equal_counting_the_facts(engine) == march_now
        assert not [r for r in await kept_rows(engine, g) if "e3" in r]
    finally:
        await engine.dispose()


async def test_rollups_are_the_same_whatever_the_order_of_the_events(database_url: str) -> None:
    """A rebuild replays topic by topic: facts may arrive before the org that places them."""
    events = [
        *org(),
        *activity("feb", EVERYONE, 2),
        person("e0", "plant", at(3, 15)),
        *activity("mar", EVERYONE, 3),
        unit("west", "ops", at(3, 20)),
        person("w1", "plant", at(2, 1)),
    ]
    engine = create_engine(database_url)
    try:
        await upgrade_to_head(engine, MIGRATIONS)
        live = await project(engine, events, "live")
        for i in range(0, len(events), 10):  # in batches, as the live consumer sees them
            await project(engine, events[i : i + 10], "again", live)
        # The people topic in its own order, after every fact it places.
        people = [e for e in events if isinstance(e, OrgUnitUpserted | EmployeeUpserted)]
        facts_first = [e for e in events if e not in people] + people
        for start in range(0, len(facts_first), 25):
            await project(engine, facts_first[start : start + 25], "rebuild", live + 1)
        assert await kept_rows(engine, live + 1) == await kept_rows(engine, live)
    finally:
        await engine.dispose()


async def test_migrations_0007_and_0008_fill_the_contributors_from_the_facts(
    database_url: str,
) -> None:
    engine = create_engine(database_url)

    def migrate(connection: Connection, step: str, revision: str) -> None:
        config = alembic_config(MIGRATIONS)
        config.attributes["connection"] = connection
        getattr(command, step)(config, revision)

    try:
        await upgrade_to_head(engine, MIGRATIONS)
        g = await project(
            engine,
            [
                *org(),
                *activity("feb", EVERYONE, 2),
                person("e0", "plant", at(3, 15)),
                *activity("mar", EVERYONE, 3),
                unit("west", "ops", at(3, 20)),
                due("nobody-knows", "stranger", at(3, 3)),  # no unit: the tenant only
                due("managed-elsewhere", "e2", at(3, 4), "boss2"),
            ],
            "a",
        )
        kept_at_ingest = await kept_rows(engine, g)
        assert {r[0] for r in kept_at_ingest} == {
            "unit_contributors",
            "unit_contributor_counts",
            "manager_reports",
            "manager_report_counts",
        }
        async with engine.connect() as connection:
            await connection.run_sync(migrate, "downgrade", "0006")
            await connection.run_sync(migrate, "upgrade", "0008")
            await connection.commit()
        assert await kept_rows(engine, g) == kept_at_ingest
    finally:
        await engine.dispose()
