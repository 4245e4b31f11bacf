"""Check-in commands against the fake unit of work: no database, no broker."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from checkins_fakes import FakeCheckinsUnitOfWork
from checkins_handler_support import HR, MONDAY, T, monthly_policy, new_uow, run, who

from rhythm_checkins.commands import (
    AddActionItem,
    CancelCheckin,
    CompleteCheckin,
    RecordNotes,
    RescheduleCheckin,
    ScheduleCheckin,
    SetActionItemDone,
    SetTenantSettings,
    SubmitReflection,
    SweepCadence,
)
from rhythm_checkins.domain.records import Goal
from rhythm_shared.contracts.v1 import (
    CheckinCancelled,
    CheckinCompleted,
    CheckinRescheduled,
    CheckinScheduled,
    PulseRecorded,
    ReflectionSubmitted,
)
from rhythm_shared.kit.audit import AuditAction
from rhythm_shared.kit.errors import Conflict, Forbidden, InvalidInput, NotFound

ANA, MIA, BEN, BOSS = who("ana"), who("mia", "manager"), who("ben"), who("boss", "manager")
WEDNESDAY_2PM = datetime(2026, 3, 4, 14, 0)  # no offset: read in the employee's zone


async def scheduled(uow: FakeCheckinsUnitOfWork) -> str:
    answer = await run(
        uow, ScheduleCheckin(principal=ANA, employee_id="ana", scheduled_for=WEDNESDAY_2PM)
    )
    checkin_id: str = answer["checkin_id"]
    return checkin_id


async def test_the_employee_schedules_a_checkin_with_their_manager_of_the_directory() -> None:
    uow = new_uow()
    answer = await run(
        uow, ScheduleCheckin(principal=ANA, employee_id="ana", scheduled_for=WEDNESDAY_2PM)
    )
    assert uow.committed
    row = uow.checkins.rows[answer["checkin_id"]]
    assert (row.employee_id, row.manager_id, row.state) == ("ana", "mia", "scheduled")
    assert row.scheduled_for == datetime(2026, 3, 4, 13, 0, tzinfo=UTC)  # 14:00 in Amsterdam
    assert row.initiated_by == "employee"
    [event] = uow.published(CheckinScheduled)
    assert (event.checkin_id, event.manager_id) == (row.id, "mia")
    assert answer["invite_sequence"] == 0
    assert any(
        e.action == AuditAction.CHANGE_ACCESS and e.target.endswith(":participants")
        for e in uow.audited
    )


async def test_scheduling_for_someone_else_is_refused_and_a_wrong_manager_is_bad_input() -> None:
    uow = new_uow()
    with pytest.raises(Forbidden):
        await run(
            uow, ScheduleCheckin(principal=BEN, employee_id="ana", scheduled_for=WEDNESDAY_2PM)
        )
    with pytest.raises(InvalidInput):
        await run(
            uow,
            ScheduleCheckin(
                principal=ANA, employee_id="ana", manager_id="boss", scheduled_for=WEDNESDAY_2PM
            ),
        )
    assert uow.checkins.rows == {}
    assert uow.events == []
    assert uow.rolled_back


async def test_rescheduling_moves_it_and_raises_the_invitation_sequence_once() -> None:
    uow = new_uow()
    checkin_id = await scheduled(uow)
    later = datetime(2026, 3, 5, 10, 0, tzinfo=UTC)
    answer = await run(
        uow, RescheduleCheckin(principal=MIA, checkin_id=checkin_id, scheduled_for=later)
    )
    assert answer["scheduled_for"] == later
    assert answer["invite_sequence"] == 1
    [moved] = uow.published(CheckinRescheduled)
    assert moved.previous_scheduled_for == datetime(2026, 3, 4, 13, 0, tzinfo=UTC)
    # The same time again changes nothing.
    again = await run(
        uow, RescheduleCheckin(principal=MIA, checkin_id=checkin_id, scheduled_for=later)
    )
    assert again["invite_sequence"] == 1
    assert len(uow.published(CheckinRescheduled)) == 1


async def test_cancelling_twice_tells_calendars_once_and_a_cancelled_one_cannot_move() -> None:
    uow = new_uow()
    checkin_id = await scheduled(uow)
    first = await run(uow, CancelCheckin(principal=ANA, checkin_id=checkin_id))
    second = await run(uow, CancelCheckin(principal=ANA, checkin_id=checkin_id))
    assert first["state"] == second["state"] == "cancelled"
    assert len(uow.published(CheckinCancelled)) == 1
    with pytest.raises(Conflict):
        await run(
            uow,
            RescheduleCheckin(principal=ANA, checkin_id=checkin_id, scheduled_for=WEDNESDAY_2PM),
        )


async def test_a_stranger_does_not_learn_that_the_checkin_exists() -> None:
    uow = new_uow()
    uow.people.add_person(T, "zoe", manager_id="boss", time_zone="UTC")
    checkin_id = await scheduled(uow)
    with pytest.raises(NotFound):
        await run(uow, CancelCheckin(principal=who("zoe"), checkin_id=checkin_id))
    assert [e.allowed for e in uow.audited if e.actor_id == "zoe"] == [False]


async def test_the_reflection_is_kept_and_its_pulse_stays_internal_unless_shared() -> None:
    uow = new_uow()
    checkin_id = await scheduled(uow)
    answer = await run(
        uow,
        SubmitReflection(principal=ANA, checkin_id=checkin_id, wins="Shipped it", pulse=4),
    )
    assert answer["reflection"]["wins"] == "Shipped it"
    assert uow.checkins.rows[checkin_id].pulse == 4
    [pulse] = uow.published(PulseRecorded)
    assert pulse.pulse == 4
    [public] = uow.published(ReflectionSubmitted)
    assert public.pulse is None
    with pytest.raises(Forbidden):  # the reflection is the employee's own
        await run(uow, SubmitReflection(principal=MIA, checkin_id=checkin_id, wins="x"))


async def test_notes_take_only_live_goals_and_keep_each_once() -> None:
    uow = new_uow()
    await uow.goals.upsert(Goal(T, "g-1", "person", "ana", "Faster checkout", "tenant"))
    checkin_id = await scheduled(uow)
    with pytest.raises(InvalidInput):
        await run(
            uow, RecordNotes(principal=MIA, checkin_id=checkin_id, goals_discussed=("g-404",))
        )
    answer = await run(
        uow,
        RecordNotes(
            principal=MIA,
            checkin_id=checkin_id,
            goal="p95 < 420 ms",
            goals_discussed=("g-1", "g-1"),
        ),
    )
    assert answer["grow"]["goal"] == "p95 < 420 ms"
    assert uow.checkins.rows[checkin_id].goals_discussed == ["g-1"]


async def test_an_action_item_belongs_to_one_of_the_two_and_can_be_done_and_reopened() -> None:
    uow = new_uow()
    checkin_id = await scheduled(uow)
    with pytest.raises(InvalidInput):
        await run(
            uow, AddActionItem(principal=MIA, checkin_id=checkin_id, owner_id="ben", text="x")
        )
    item = await run(
        uow, AddActionItem(principal=MIA, checkin_id=checkin_id, owner_id="ana", text="Draft it")
    )
    assert uow.checkins.items[item["action_item_id"]].text == "Draft it"
    done = await run(uow, SetActionItemDone(principal=ANA, item_id=item["action_item_id"]))
    assert done["done"] is True
    assert done["done_at"] == MONDAY
    reopened = await run(
        uow, SetActionItemDone(principal=ANA, item_id=item["action_item_id"], done=False)
    )
    assert reopened["done"] is False
    with pytest.raises(NotFound):
        await run(uow, SetActionItemDone(principal=BEN, item_id=item["action_item_id"]))


async def test_completing_closes_the_months_obligation_and_tells_it_once() -> None:
    uow = new_uow()
    await run(uow, monthly_policy())
    await run(uow, SweepCadence())  # plans everyone the policy covers
    [owed] = [
        o
        for o in uow.cadence.obligations.values()
        if o.employee_id == "ana" and o.period_start == date(2026, 3, 1)
    ]
    checkin_id = await scheduled(uow)
    uow.clock.travel_to(datetime(2026, 3, 4, 15, 0, tzinfo=UTC))
    answer = await run(uow, CompleteCheckin(principal=MIA, checkin_id=checkin_id, pulse=3))
    assert answer["state"] == "completed"
    assert answer["obligation_id"] == owed.id
    assert uow.cadence.obligations[owed.id].state == "closed"
    [completed] = uow.published(CheckinCompleted)
    assert (completed.obligation_id, completed.pulse) == (owed.id, None)
    with pytest.raises(Conflict):
        await run(uow, CompleteCheckin(principal=MIA, checkin_id=checkin_id))


async def test_a_checkin_is_not_completed_before_it_was_held() -> None:
    uow = new_uow()
    checkin_id = await scheduled(uow)
    with pytest.raises(InvalidInput):
        await run(
            uow,
            CompleteCheckin(
                principal=MIA, checkin_id=checkin_id, held_at=MONDAY + timedelta(days=1)
            ),
        )
    assert uow.checkins.rows[checkin_id].state == "scheduled"


async def test_hr_admin_shares_individual_pulse_and_the_change_is_on_record() -> None:
    uow = new_uow()
    answer = await run(
        uow, SetTenantSettings(principal=HR, changes={"share_individual_pulse": True})
    )
    assert answer == {"reviews_visible_to_manager_chain": False, "share_individual_pulse": True}
    assert (await uow.checkins.settings(T)).share_individual_pulse
    assert [e.target for e in uow.audited] == [f"tenant/{T}:share_individual_pulse=on"]
    with pytest.raises(Forbidden):
        await run(uow, SetTenantSettings(principal=MIA, changes={"share_individual_pulse": False}))
    with pytest.raises(InvalidInput):
        await run(uow, SetTenantSettings(principal=HR, changes={"nonsense": True}))
    # Shared now: the public event carries the pulse.
    checkin_id = await scheduled(uow)
    await run(uow, SubmitReflection(principal=ANA, checkin_id=checkin_id, pulse=2))
    [public] = uow.published(ReflectionSubmitted)
    assert public.pulse == 2
