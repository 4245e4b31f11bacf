"""Policy resolution, planning, ramp-up, the obligation state machine and miss counting."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from rhythm_checkins.domain.access import POLICY, ROUTES, text_operation, to_checkin
from rhythm_checkins.domain.conversations import (
    completion_error,
    feedback_error,
    pulse_error,
)
from rhythm_checkins.domain.obligations import (
    Escalation,
    Fact,
    IllegalTransition,
    ObligationState,
    consecutive_misses,
    escalation_target,
    obligation_id,
    should_escalate,
    sweep_step,
    transition,
)
from rhythm_checkins.domain.policy import (
    CadencePolicy,
    EmployeeProfile,
    Rule,
    next_planning_day,
    plan,
    resolve_policy,
    validate_policy,
)
from rhythm_shared.contracts.v1.values import (
    CheckinKind,
    EscalationLevel,
    EscalationTarget,
    Frequency,
    PolicyScope,
)
from rhythm_shared.kit.access import Relationship, allowed

MONTHLY = Rule(CheckinKind.MONTHLY, Frequency.MONTHLY, grace_days=5, lead_time_days=3)
QUARTERLY = Rule(CheckinKind.QUARTERLY_REVIEW, Frequency.QUARTERLY, grace_days=10, lead_time_days=7)


def policy(scope: PolicyScope, scope_id: str, *rules: Rule, **kw: object) -> CadencePolicy:
    return CadencePolicy(f"p-{scope_id}", scope, scope_id, rules or (MONTHLY,), **kw)  # type: ignore[arg-type]


def ana(**kw: object) -> EmployeeProfile:
    base: dict[str, object] = {
        "employee_id": "e-1",
        "manager_id": "m-1",
        "org_unit_id": "ou-team",
        "time_zone": "Europe/Amsterdam",
        "hired_on": date(2020, 1, 1),
        "org_unit_chain": ("ou-team", "ou-eng", "ou-root"),
    }
    base.update(kw)
    return EmployeeProfile(**base)  # type: ignore[arg-type]


def test_the_most_specific_policy_wins() -> None:
    tenant = policy(PolicyScope.TENANT, "acme")
    eng = policy(PolicyScope.ORG_UNIT, "ou-eng")
    team = policy(PolicyScope.ORG_UNIT, "ou-team")
    own = policy(PolicyScope.EMPLOYEE, "e-1")
    assert resolve_policy([tenant, eng, team, own], "acme", ana()) is own
    assert resolve_policy([tenant, eng, team], "acme", ana()) is team
    assert resolve_policy([eng, tenant], "acme", ana()) is eng
    assert resolve_policy([tenant], "acme", ana()) is tenant
    assert resolve_policy([policy(PolicyScope.EMPLOYEE, "e-2")], "acme", ana()) is None


def test_another_tenants_policy_never_applies() -> None:
    assert resolve_policy([policy(PolicyScope.TENANT, "other")], "acme", ana()) is None


def test_a_policy_without_a_frequency_is_refused_field_by_field() -> None:
    bad = policy(
        PolicyScope.TENANT,
        "acme",
        Rule(CheckinKind.MONTHLY, "0", 5, 3),  # type: ignore[arg-type]
        escalate_after=0,
    )
    locs = {e.loc for e in validate_policy(bad)}
    assert ("body", "rules", 0, "frequency") in locs
    assert ("body", "escalate_after") in locs


def test_a_reminder_longer_than_the_period_is_refused() -> None:
    bad = policy(PolicyScope.TENANT, "acme", Rule(CheckinKind.MONTHLY, Frequency.WEEKLY, 2, 7))
    assert [e.loc for e in validate_policy(bad)] == [("body", "rules", 0, "lead_time_days")]
    assert validate_policy(policy(PolicyScope.TENANT, "acme", MONTHLY, QUARTERLY)) == []


def test_planning_owes_this_period_and_the_next_with_reminder_and_grace() -> None:
    planned = plan(ana(), policy(PolicyScope.TENANT, "acme", MONTHLY), date(2026, 3, 10))
    assert [p.period.start for p in planned] == [date(2026, 3, 1), date(2026, 4, 1)]
    march = planned[0]
    assert march.due_at == datetime(2026, 3, 31, 15, 0, tzinfo=UTC)
    assert march.remind_at == march.due_at - timedelta(days=3)
    assert march.miss_at == march.due_at + timedelta(days=5)


def test_a_new_hire_owes_nothing_during_ramp_up() -> None:
    hire = ana(hired_on=date(2026, 3, 2))
    pol = policy(PolicyScope.TENANT, "acme", MONTHLY, QUARTERLY, ramp_up_days=30)
    planned = plan(hire, pol, date(2026, 3, 10))
    assert [(p.kind, p.period.start) for p in planned] == [
        (CheckinKind.MONTHLY, date(2026, 4, 1)),
        (CheckinKind.QUARTERLY_REVIEW, date(2026, 4, 1)),
    ]


def test_an_inactive_employee_or_one_without_manager_owes_nothing() -> None:
    pol = policy(PolicyScope.TENANT, "acme")
    assert plan(ana(active=False), pol, date(2026, 3, 10)) == []
    assert plan(ana(manager_id=None), pol, date(2026, 3, 10)) == []
    leaving = ana(deactivated_at=datetime(2026, 4, 1, tzinfo=UTC))
    assert [p.period.start for p in plan(leaving, pol, date(2026, 3, 10))] == [date(2026, 3, 1)]


def test_planning_comes_back_when_the_soonest_period_rolls_over() -> None:
    pol = policy(PolicyScope.TENANT, "acme", MONTHLY, QUARTERLY)
    assert next_planning_day(pol, date(2026, 3, 10)) == date(2026, 4, 1)
    assert next_planning_day(None, date(2026, 3, 10)) is None


NOW = datetime(2026, 3, 31, 12, tzinfo=UTC)


def test_the_sweeper_reminds_at_lead_time_then_reports_a_miss_after_grace() -> None:
    remind, miss = NOW - timedelta(hours=1), NOW + timedelta(days=5)
    step = sweep_step(ObligationState.OPEN, remind, miss, NOW)
    assert step is not None
    assert (step.target, step.fact, step.next_action_at) == (
        ObligationState.DUE_NOTIFIED,
        Fact.DUE,
        miss,
    )
    assert sweep_step(ObligationState.DUE_NOTIFIED, remind, miss, NOW) is None
    later = sweep_step(ObligationState.DUE_NOTIFIED, remind, miss, miss)
    assert later is not None
    assert (later.target, later.fact) == (ObligationState.MISSED, Fact.MISSED)


def test_a_reminder_that_would_come_after_the_miss_is_skipped() -> None:
    step = sweep_step(ObligationState.OPEN, NOW - timedelta(days=9), NOW - timedelta(days=1), NOW)
    assert step is not None
    assert step.fact == Fact.MISSED


def test_closed_and_missed_obligations_are_final() -> None:
    assert sweep_step(ObligationState.CLOSED, NOW, NOW, NOW) is None
    with pytest.raises(IllegalTransition):
        transition(ObligationState.CLOSED, ObligationState.MISSED)
    with pytest.raises(IllegalTransition):
        transition(ObligationState.MISSED, ObligationState.CLOSED)
    assert transition(ObligationState.MISSED, ObligationState.ESCALATED)


def test_misses_in_a_row_count_up_and_a_kept_checkin_resets_them() -> None:
    assert consecutive_misses(None, 0) == 1
    assert consecutive_misses(ObligationState.MISSED, 1) == 2
    assert consecutive_misses(ObligationState.ESCALATED, 2) == 3
    assert consecutive_misses(ObligationState.CLOSED, 0) == 1
    assert consecutive_misses(ObligationState.CANCELLED, 0) == 1
    assert not should_escalate(1, 2)
    assert should_escalate(2, 2)


def test_escalation_goes_to_skip_level_or_hr_with_fallbacks() -> None:
    skip = EscalationTarget.SKIP_LEVEL
    assert escalation_target(skip, "m", "s", "hr") == Escalation("s", EscalationLevel.SKIP_LEVEL)
    assert escalation_target(EscalationTarget.HR, "m", "s", "hr").level == EscalationLevel.HR
    assert escalation_target(skip, "m", None, "hr").to_id == "hr"
    assert escalation_target(EscalationTarget.HR, "m", "s", None).to_id == "s"
    assert escalation_target(skip, "m", None, None).level == EscalationLevel.MANAGER


def test_obligation_ids_are_deterministic_per_employee_kind_and_period() -> None:
    a = obligation_id("acme", "e-1", CheckinKind.MONTHLY, date(2026, 3, 1))
    assert a == obligation_id("acme", "e-1", CheckinKind.MONTHLY, date(2026, 3, 1))
    assert a != obligation_id("acme", "e-1", CheckinKind.MONTHLY, date(2026, 4, 1))
    assert a != obligation_id("other", "e-1", CheckinKind.MONTHLY, date(2026, 3, 1))


def test_the_pulse_is_one_to_five() -> None:
    assert pulse_error(3, "pulse") is None
    assert pulse_error(None, "pulse") is None
    error = pulse_error(6, "pulse")
    assert error is not None
    assert error.loc == ("body", "pulse")
    assert pulse_error(0, "pulse") is not None


def test_a_checkin_cannot_be_completed_before_its_scheduled_day() -> None:
    scheduled = datetime(2026, 3, 26, 13, 0, tzinfo=UTC)
    zone = "Europe/Amsterdam"
    assert completion_error(scheduled, scheduled - timedelta(hours=10), zone) is None  # same day
    error = completion_error(scheduled, scheduled - timedelta(days=1), zone)
    assert error is not None
    assert error.loc == ("body", "held_at")


def test_notes_are_for_the_two_people_and_reviews_for_the_chain_when_enabled() -> None:
    R = Relationship
    for shared in (False, True):
        monthly = text_operation(review=False, shared_with_chain=shared)
        assert allowed(POLICY, monthly, frozenset({R.SELF}))
        assert allowed(POLICY, monthly, frozenset({R.MANAGER}))
        assert not allowed(POLICY, monthly, frozenset({R.MANAGER_CHAIN}))
    hidden = text_operation(review=True, shared_with_chain=False)
    shown = text_operation(review=True, shared_with_chain=True)
    assert not allowed(POLICY, hidden, frozenset({R.MANAGER_CHAIN}))
    assert allowed(POLICY, shown, frozenset({R.MANAGER_CHAIN}))
    for others in (R.PEER, R.UNIT_HEAD, R.HR_ADMIN, R.EXECUTIVE, R.INTEGRATION):
        assert not allowed(POLICY, shown, frozenset({others}))


def test_for_one_checkin_the_manager_is_the_manager_of_that_conversation() -> None:
    R = Relationship
    # The manager who held it, since moved elsewhere in the tree, is still its manager.
    held = to_checkin(frozenset({R.PEER}), "old", as_person=True, checkin_manager_id="old")
    assert held == {R.MANAGER}
    # The employee's manager of now, who was not in that conversation, is above it only.
    later = to_checkin(frozenset({R.MANAGER}), "new", as_person=True, checkin_manager_id="old")
    assert later == {R.MANAGER_CHAIN}
    # A token that does not act as a person is never a participant.
    assert to_checkin(
        frozenset({R.HR_ADMIN}), "old", as_person=False, checkin_manager_id="old"
    ) == {R.HR_ADMIN}


def test_every_route_has_an_operation_and_every_operation_a_row() -> None:
    assert set(ROUTES.values()) <= set(POLICY)
    # Executives see aggregates (reporting): nothing here shows them an individual's data.
    with_executives = [op for op, rels in POLICY.items() if Relationship.EXECUTIVE in rels]
    assert with_executives == ["list_cadence_policies"]


def test_feedback_goes_to_someone_else() -> None:
    assert feedback_error("e", "e") is not None
    assert feedback_error("e", "f") is None
