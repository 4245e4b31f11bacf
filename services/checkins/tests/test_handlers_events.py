"""The event handlers (what the consumer registers) against the fake unit of work."""

from __future__ import annotations

from datetime import UTC, date, datetime

from checkins_fakes import FakeCheckinsUnitOfWork
from checkins_handler_support import MONDAY, T, consume, monthly_policy, new_uow, run, upsert, who

from rhythm_checkins.commands import ScheduleCheckin
from rhythm_checkins.domain.records import Feedback, Goal
from rhythm_checkins.handlers import EVENT_HANDLERS
from rhythm_shared.contracts.v1 import (
    ArchiveReason,
    EmployeeDeactivated,
    EmployeeErased,
    GoalArchived,
    GoalCreated,
    GoalKind,
    GoalProgressRecorded,
    OrgUnitUpserted,
    OwnerType,
    PersonDataErased,
    PersonKeyDestroyed,
    PersonKeyIssued,
    Visibility,
)
from rhythm_shared.contracts.v2 import EmployeeUpsertedV2
from rhythm_shared.kit.audit import AuditAction

LATER = datetime(2026, 3, 2, 10, tzinfo=UTC)


async def planned(uow: FakeCheckinsUnitOfWork) -> None:
    await run(uow, monthly_policy())
    await consume(uow, upsert("ana", "mia", at=LATER), "ev-plan")


def test_every_people_goals_and_keys_event_the_consumer_reads_has_a_handler() -> None:
    assert {EmployeeUpsertedV2, EmployeeDeactivated, EmployeeErased, OrgUnitUpserted} <= set(
        EVENT_HANDLERS
    )
    assert {PersonKeyIssued, PersonKeyDestroyed, GoalCreated, GoalArchived} <= set(EVENT_HANDLERS)
    assert GoalProgressRecorded in EVENT_HANDLERS


async def test_an_upsert_plans_the_employee_under_the_policy() -> None:
    uow = new_uow()
    await planned(uow)
    assert uow.committed
    owed = sorted(o.period_start for o in uow.cadence.obligations.values())
    assert owed == [date(2026, 3, 1), date(2026, 4, 1)]
    assert uow.cadence.plan_at[(T, "ana")] is not None


async def test_a_new_manager_takes_over_what_is_open_and_it_is_on_record() -> None:
    uow = new_uow()
    await planned(uow)
    await run(
        uow,
        ScheduleCheckin(
            principal=who("ana"), employee_id="ana", scheduled_for=datetime(2026, 3, 4, 14)
        ),
    )
    await consume(uow, upsert("ana", "boss", at=datetime(2026, 3, 2, 11, tzinfo=UTC)), "ev-move")
    assert {o.manager_id for o in uow.cadence.obligations.values()} == {"boss"}
    assert {c.manager_id for c in uow.checkins.rows.values()} == {"boss"}
    targets = {e.target for e in uow.audited if e.action == AuditAction.CHANGE_ACCESS}
    assert "employee/ana:manager" in targets


async def test_a_late_older_upsert_changes_nothing() -> None:
    uow = new_uow()
    await planned(uow)
    before = dict(uow.cadence.obligations)
    await consume(uow, upsert("ana", "boss", at=datetime(2026, 1, 1, tzinfo=UTC)), "ev-old")
    assert uow.cadence.obligations == before
    ana = await uow.people.directory(T).person("ana")
    assert ana is not None
    assert ana.manager_id == "mia"


async def test_a_deactivation_in_force_cancels_what_is_owed_and_records_the_departure() -> None:
    uow = new_uow()
    await planned(uow)
    gone = datetime(2026, 3, 1, tzinfo=UTC)  # before now: in force
    told = datetime(2026, 3, 2, 11, tzinfo=UTC)  # after the upsert that planned her
    await consume(
        uow,
        EmployeeDeactivated(tenant_id=T, occurred_at=told, employee_id="ana", effective_at=gone),
        "ev-gone",
    )
    assert {o.state for o in uow.cadence.obligations.values()} == {"cancelled"}
    assert uow.cadence.plan_at[(T, "ana")] is None
    assert uow.departures.rows[(T, "ana")].left_at == gone


async def test_a_deactivation_dated_ahead_cancels_only_what_falls_due_from_then() -> None:
    uow = new_uow()
    await planned(uow)
    leaves = datetime(2026, 4, 15, tzinfo=UTC)
    told = datetime(2026, 3, 2, 11, tzinfo=UTC)
    await consume(
        uow,
        EmployeeDeactivated(tenant_id=T, occurred_at=told, employee_id="ana", effective_at=leaves),
        "ev-leaves",
    )
    states = {o.period_start: o.state for o in uow.cadence.obligations.values()}
    assert states == {date(2026, 3, 1): "open", date(2026, 4, 1): "cancelled"}
    assert uow.departures.rows[(T, "ana")].left_at == leaves


async def test_erasure_forgets_the_person_and_reports_it_once_done() -> None:
    uow = new_uow()
    await planned(uow)
    await uow.goals.upsert(Goal(T, "g-ana", "person", "ana", "Mine", "tenant"))
    await uow.feedback.add(Feedback("f-1", T, "ben", "ana", "praise", "Nice", False, MONDAY))
    await uow.feedback.add(Feedback("f-2", T, "ana", "ben", "praise", "Thanks", False, MONDAY))
    await consume(
        uow,
        EmployeeErased(tenant_id=T, occurred_at=LATER, employee_id="ana", erasure_id="er-1"),
        "ev-erase",
    )
    assert uow.cadence.obligations == {}
    assert uow.goals.rows == {}
    assert set(uow.feedback.rows) == {"f-2"}
    assert uow.feedback.rows["f-2"].text is None  # what she gave stays, without its text
    assert await uow.people.directory(T).person("ana") is None
    assert uow.forgotten == [(T, "ana")]
    assert uow.compacted
    [done] = uow.published(PersonDataErased)
    assert (done.employee_id, done.erasure_id, done.service) == ("ana", "er-1", "checkins")
    # A late goal of hers is not taken in.
    await consume(uow, goal_created("g-late", "ana"), "ev-late")
    assert uow.goals.rows == {}


async def test_keys_and_org_units_go_to_the_directory() -> None:
    uow = new_uow()
    issued = PersonKeyIssued(
        tenant_id=T, occurred_at=LATER, employee_id="ana", key_id="k-1", wrapped_key="rkw1.c2VhbGVk"
    )
    await consume(uow, issued, "ev-key")
    assert uow.people.keys[(T, "ana")] == "k-1"
    destroyed = PersonKeyDestroyed(tenant_id=T, occurred_at=LATER, employee_id="ana", key_id="k-1")
    await consume(uow, destroyed, "ev-key-2")
    assert uow.people.keys[(T, "ana")] is None
    unit = OrgUnitUpserted(
        tenant_id=T, occurred_at=LATER, org_unit_id="ou-new", name="New", parent_id="ou-root"
    )
    await consume(uow, unit, "ev-unit")
    assert "ou-new" in await uow.people.directory(T).subunits("ou-root")


def goal_created(goal_id: str, owner_id: str) -> GoalCreated:
    return GoalCreated(
        tenant_id=T,
        occurred_at=LATER,
        goal_id=goal_id,
        owner_type=OwnerType.PERSON,
        owner_id=owner_id,
        kind=GoalKind.OKR,
        title="Faster checkout",
        visibility=Visibility.TENANT,
        period_start=date(2026, 1, 1),
        period_end=date(2026, 3, 31),
        update_interval_days=7,
    )


async def test_goals_arrive_make_progress_and_are_archived() -> None:
    uow = new_uow()
    await consume(uow, goal_created("g-1", "ana"), "ev-g1")
    assert await uow.goals.unknown(T, ["g-1"]) == set()
    progress = GoalProgressRecorded(
        tenant_id=T,
        occurred_at=LATER,
        goal_id="g-1",
        key_result_id="kr-1",
        value=3.0,
        goal_progress=0.4,
        confidence=0.8,
        recorded_by="ana",
    )
    await consume(uow, progress, "ev-g2")
    assert uow.goals.rows[(T, "g-1")].progress == 0.4
    assert await uow.goals.progress_at(T, "g-1", LATER) == 0.4
    await consume(uow, goal_created("g-1", "ana"), "ev-g3")  # again: progress stays
    assert uow.goals.rows[(T, "g-1")].progress == 0.4
    archived = GoalArchived(
        tenant_id=T, occurred_at=LATER, goal_id="g-1", reason=ArchiveReason.PERIOD_ENDED
    )
    await consume(uow, archived, "ev-g4")
    assert await uow.goals.unknown(T, ["g-1"]) == {"g-1"}
