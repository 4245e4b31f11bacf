"""Cadence, feedback and retention commands against the fake unit of work."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from checkins_handler_support import HR, MONDAY, ZONE, T, monthly_policy, new_uow, run, who

from rhythm_checkins.commands import (
    GiveFeedback,
    RemoveDueTexts,
    RequestFeedback,
    SetPolicy,
    SweepCadence,
)
from rhythm_checkins.domain.policy import Rule
from rhythm_checkins.domain.records import Checkin, Departure
from rhythm_shared.contracts.v1 import (
    CadenceEscalated,
    CadencePolicyChanged,
    CheckinDue,
    CheckinKind,
    CheckinMissed,
    FeedbackGiven,
    FeedbackKind,
    Frequency,
    PolicyScope,
)
from rhythm_shared.kit.errors import Conflict, Forbidden, InvalidInput


async def test_a_tenant_policy_is_kept_told_and_plans_everyone_at_the_next_sweep() -> None:
    uow = new_uow()
    answer = await run(uow, monthly_policy())
    assert answer["rules"][0]["frequency"] == "monthly"
    [changed] = uow.published(CadencePolicyChanged)
    assert changed.policy_id == answer["policy_id"]
    assert {e for (_, e), at in uow.cadence.plan_at.items() if at == MONDAY} == {
        "boss",
        "mia",
        "ana",
        "ben",
    }
    result = await run(uow, SweepCadence())
    assert result.planned == 4
    owed = {(o.employee_id, o.period_start) for o in uow.cadence.obligations.values()}
    # boss has no manager: nobody owes him a check-in.
    assert ("ana", date(2026, 3, 1)) in owed
    assert ("ana", date(2026, 4, 1)) in owed
    assert not any(e == "boss" for e, _ in owed)


async def test_an_employee_policy_plans_them_at_once_and_only_hr_admin_sets_one() -> None:
    uow = new_uow()
    await run(uow, monthly_policy(PolicyScope.EMPLOYEE, "ana"))
    assert {o.employee_id for o in uow.cadence.obligations.values()} == {"ana"}
    with pytest.raises(Forbidden):
        await run(uow, monthly_policy().model_copy(update={"principal": who("mia", "manager")}))
    with pytest.raises(InvalidInput):
        await run(uow, monthly_policy(PolicyScope.EMPLOYEE, "nobody"))
    bad_rule = SetPolicy(
        principal=HR,
        scope=PolicyScope.TENANT,
        scope_id=T,
        rules=(Rule(CheckinKind.MONTHLY, Frequency.MONTHLY, grace_days=400),),
    )
    with pytest.raises(InvalidInput):
        await run(uow, bad_rule)


async def test_the_sweep_reminds_then_reports_a_miss_and_escalates_each_once() -> None:
    uow = new_uow()
    await run(uow, monthly_policy(PolicyScope.EMPLOYEE, "ana"))
    uow.clock.travel_to(datetime(2026, 3, 29, 12, tzinfo=UTC))
    reminded = await run(uow, SweepCadence())
    assert reminded.reminded == 1
    [due] = uow.published(CheckinDue)
    assert (due.employee_id, due.period_start) == ("ana", date(2026, 3, 1))
    assert (await run(uow, SweepCadence())).reminded == 0  # told once
    uow.clock.travel_to(datetime(2026, 4, 8, 12, tzinfo=UTC))
    missed = await run(uow, SweepCadence())
    assert (missed.missed, missed.escalated) == (1, 1)
    [miss] = uow.published(CheckinMissed)
    assert miss.consecutive_misses == 1
    [escalated] = uow.published(CadenceEscalated)
    assert escalated.escalated_to_id == "boss"  # the skip level
    march = next(o for o in uow.cadence.obligations.values() if o.period_start.month == 3)
    assert march.state == "escalated"
    assert {f for (_, f) in uow.cadence.facts} == {"due", "missed", "escalated"}


async def test_feedback_is_given_to_someone_else_and_answers_a_request_once() -> None:
    uow = new_uow()
    request = await run(uow, RequestFeedback(principal=who("ana"), from_id="ben", prompt="Demo?"))
    assert uow.feedback.requests[request["request_id"]].prompt == "Demo?"
    with pytest.raises(InvalidInput):
        await run(uow, RequestFeedback(principal=who("ana"), from_id="ana"))
    given = await run(
        uow,
        GiveFeedback(
            principal=who("ben"),
            receiver_id="ana",
            kind=FeedbackKind.PRAISE,
            text="Great demo",
            request_id=request["request_id"],
        ),
    )
    assert given["requested"] is True
    assert uow.feedback.requests[request["request_id"]].feedback_id == given["feedback_id"]
    [event] = uow.published(FeedbackGiven)
    assert (event.giver_id, event.receiver_id, event.requested) == ("ben", "ana", True)
    with pytest.raises(Conflict):
        await run(
            uow,
            GiveFeedback(
                principal=who("ben"),
                receiver_id="ana",
                kind=FeedbackKind.PRAISE,
                text="Again",
                request_id=request["request_id"],
            ),
        )
    with pytest.raises(InvalidInput):
        await run(
            uow,
            GiveFeedback(
                principal=who("ana"), receiver_id="ana", kind=FeedbackKind.PRAISE, text="x"
            ),
        )


async def test_retention_removes_the_texts_of_who_left_long_enough_ago_once() -> None:
    uow = new_uow()
    left = MONDAY - timedelta(days=400)
    await uow.departures.save(Departure(T, "ana", left_at=left))
    await uow.departures.save(Departure(T, "ben", left_at=MONDAY - timedelta(days=10)))
    for person in ("ana", "ben"):
        await uow.checkins.add(
            Checkin(
                id=f"c-{person}",
                tenant_id=T,
                kind="monthly",
                employee_id=person,
                manager_id="mia",
                scheduled_for=left,
                time_zone=ZONE,
                initiated_by="employee",
                initiated_by_id=person,
                state="completed",
                notes="private",
                pulse=3,
            )
        )
    command = RemoveDueTexts(texts_days=365, feedback_days=365, batch_size=10)
    result = await run(uow, command)
    assert (result.texts, result.feedback) == (1, 1)
    assert uow.checkins.rows["c-ana"].notes is None
    assert uow.checkins.rows["c-ana"].pulse == 3  # who, when and how much stay
    assert uow.checkins.rows["c-ben"].notes == "private"
    assert uow.departures.rows[(T, "ana")].texts_removed_at == MONDAY
    assert (await run(uow, command)).handled == 0
