"""The small-group decisions dashboard requests keep in memory (queries.SmallGroups,
Decisions), on SQLite and PostgreSQL: a month's decisions serve while the org version and the
month's number stay, and are made again, equal to those a replica with nothing in memory makes,
once another writer (a second replica, its own engine) changes a fact of that family in that
month or the org; goals' decisions go with who owns a goal and when it counts, not with its
progress."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from rhythm_reporting.adapters.db import kit
from rhythm_reporting.adapters.queries import Queries
from rhythm_reporting.adapters.store import ensure_active_generation
from rhythm_reporting.adapters.unit_of_work import SqlReportingUnitOfWork
from rhythm_reporting.commands import ProjectEvents
from rhythm_reporting.domain.periods import Period
from rhythm_reporting.domain.projection import decision_slots
from rhythm_reporting.handlers import project_events
from rhythm_reporting.main import MIGRATIONS
from rhythm_reporting.queries import Decisions, SmallGroups
from rhythm_shared.contracts.base import Event
from rhythm_shared.contracts.v1 import (
    CheckinCompleted,
    CheckinKind,
    EmployeeUpserted,
    GoalCreated,
    GoalKind,
    GoalProgressRecorded,
    Initiator,
    OrgUnitUpserted,
    OwnerType,
    Visibility,
)
from rhythm_shared.kit.clock import ManualClock
from rhythm_shared.kit.db import create_engine, session_factory
from rhythm_shared.kit.migrations import upgrade_to_head

T = "acme"
EARLY = datetime(2026, 1, 1, tzinfo=UTC)
JANUARY = datetime(2026, 1, 20, 9, tzinfo=UTC)
MARCH = datetime(2026, 3, 20, 9, tzinfo=UTC)
UNITS = ["*", "ops", "a", "b", "c"]
CHECKINS = ("checkins",)
Q1 = Period.parse("2026-Q1")


def _person(employee: str, unit: str) -> EmployeeUpserted:
    return EmployeeUpserted(
        tenant_id=T,
        occurred_at=EARLY,
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


def _held(employee: str, when: datetime) -> CheckinCompleted:
    return CheckinCompleted(
        tenant_id=T,
        occurred_at=when,
        checkin_id=f"{employee}-{when.month}",
        kind=CheckinKind.MONTHLY,
        employee_id=employee,
        manager_id="boss",
        held_at=when,
        initiated_by=Initiator.EMPLOYEE,
        pulse=3,
    )


def _goal(goal: str, owner: str) -> GoalCreated:
    return GoalCreated(
        tenant_id=T,
        occurred_at=EARLY + timedelta(days=1),
        goal_id=goal,
        owner_type=OwnerType.PERSON,
        owner_id=owner,
        kind=GoalKind.OKR,
        title=None,
        visibility=Visibility.PRIVATE,
        period_start=date(2026, 1, 1),
        period_end=date(2026, 3, 31),
        update_interval_days=14,
        key_results=[],
    )


def _progress(goal: str, owner: str, value: float) -> GoalProgressRecorded:
    return GoalProgressRecorded(
        tenant_id=T,
        occurred_at=JANUARY,
        goal_id=goal,
        key_result_id="kr1",
        value=value,
        goal_progress=value,
        confidence=0.5,
        recorded_by=owner,
    )


async def _project(engine: AsyncEngine, events: list[Event]) -> None:
    """One batch, as a replica writing through its own engine applies it."""
    async with SqlReportingUnitOfWork(
        session_factory(engine), kit, ManualClock(MARCH), "reporting"
    ) as uow:
        batch = ProjectEvents.of((f"{id(events)}-{i}", e) for i, e in enumerate(events))
        await project_events(uow, batch)


async def _request(
    reader: AsyncEngine,
) -> tuple[dict[str, tuple[bool, bool, bool]], Decisions, Decisions]:
    """What a dashboard request of ``reader`` decides: each unit's January and Q1 check-ins and
    Q1 goals shown or not; and the January check-in and Q1 goal decisions it used."""
    async with reader.connect() as conn:
        q = await Queries.open(conn, T)
        groups = SmallGroups(q, 5)
        await groups.prepare(CHECKINS, UNITS, Q1.months)
        shown = {
            unit: (
                (await groups.month(CHECKINS, unit, "2026-01"))[0],
                await groups.period(CHECKINS, unit, Q1),
                await groups.goals(unit, Q1),
            )
            for unit in UNITS
        }
        return (
            shown,
            await groups.slot("checkins", "2026-01"),
            await groups.slot("goals", "2026-Q1"),
        )


async def _anew(
    database_url: str,
) -> tuple[dict[str, tuple[bool, bool, bool]], Decisions, Decisions]:
    """The same request on a replica with nothing in memory."""
    fresh = create_engine(database_url)
    try:
        return await _request(fresh)
    finally:
        await fresh.dispose()


async def test_kept_decisions_serve_until_another_replica_changes_their_month_or_goals(
    database_url: str,
) -> None:
    writer, reader = create_engine(database_url), create_engine(database_url)
    try:
        await upgrade_to_head(writer, MIGRATIONS)
        async with session_factory(writer)() as session, session.begin():
            await ensure_active_generation(session, EARLY)
        people = {"a": [f"a{i}" for i in range(6)], "b": [f"b{i}" for i in range(6)]}
        people["c"] = [f"c{i}" for i in range(5)]
        newcomers = ["c2", "c3", "c4"]  # in c from the start; no January check-in at first
        everyone = [p for members in people.values() for p in members if p not in newcomers]
        await _project(
            writer,
            [
                OrgUnitUpserted(tenant_id=T, occurred_at=EARLY, org_unit_id="ops", name="Ops"),
                *(
                    OrgUnitUpserted(
                        tenant_id=T, occurred_at=EARLY, org_unit_id=u, name=u, parent_id="ops"
                    )
                    for u in people
                ),
                *(_person(p, unit) for unit, members in people.items() for p in members),
                *(_held(p, JANUARY) for p in everyone),
                *(_goal(f"g-{p}", p) for p in everyone),
            ],
        )

        shown, january, goals = await _request(reader)
        # c is small; with it hidden the rest of ops is c's 2 people, so a shown part goes too.
        assert shown["c"] == (False, False, False)
        assert [shown[u][0] for u in ("*", "ops")] == [True, True]
        assert sum(shown[u][0] for u in ("a", "b")) == 1
        assert (shown, january, goals) == await _anew(database_url)
        again = await _request(reader)
        assert again[1] is january  # nothing changed: kept
        assert again[2] is goals

        # Check-ins of another month, and progress on a goal, leave both as they were.
        await _project(writer, [_held("c0", MARCH), _progress("g-a0", "a0", 0.4)])
        after = await _request(reader)
        assert after[1] is january
        assert after[2] is goals
        assert after == await _anew(database_url)

        # Three more people of c check in in January (the org stays as it was): January is
        # decided again, and c shows.
        await _project(writer, [_held(p, JANUARY) for p in newcomers])
        later = await _request(reader)
        assert later[1] is not january
        assert all(later[0][u][0] for u in UNITS)
        assert later == await _anew(database_url)

        # New goal owners in c: goals are decided again.
        kept = later[2]
        await _project(writer, [_goal(f"g-{p}", p) for p in newcomers])
        last = await _request(reader)
        assert last[1] is later[1]
        assert last[2] is not kept
        assert not later[0]["c"][2]
        assert last[0]["c"][2]
        assert last == await _anew(database_url)
    finally:
        await writer.dispose()
        await reader.dispose()


def test_what_a_fact_change_numbers_anew() -> None:
    checkin = {"held_at": JANUARY, "employee_id": "a0", "org_unit_id": "a"}
    moved = {**checkin, "held_at": MARCH}
    assert decision_slots("checkin", None, checkin) == {
        ("checkins", "2026-01"),
        ("pulse", "2026-01"),
    }
    assert decision_slots("checkin", checkin, moved) == {
        ("checkins", "2026-01"),
        ("pulse", "2026-01"),
        ("checkins", "2026-03"),
        ("pulse", "2026-03"),
    }
    feedback = {"given_at": MARCH, "giver_id": "a0", "receiver_id": "b0"}
    assert decision_slots("feedback", None, feedback) == {
        ("feedback_given", "2026-03"),
        ("feedback_received", "2026-03"),
    }
    assert decision_slots("obligation", {"due_at": None}, {"due_at": JANUARY}) == {
        ("obligations", "2026-01")
    }
    goal = {
        "owner_type": "person",
        "owner_id": "a0",
        "org_unit_id": "a",
        "created_at": EARLY,
        "archived_reason": None,
        "period_start": date(2026, 1, 1),
        "period_end": date(2026, 3, 31),
        "progress_bp": 0,
        "status": "on_track",
    }
    assert decision_slots("goal", goal, {**goal, "progress_bp": 4000, "status": "at_risk"}) == set()
    for column, value in [
        ("owner_id", "b0"),
        ("org_unit_id", "b"),
        ("archived_reason", "withdrawn"),
        ("period_end", date(2026, 6, 30)),
    ]:
        assert decision_slots("goal", goal, {**goal, column: value}) == {("goals", "*")}
    assert decision_slots("goal", None, goal) == {("goals", "*")}
