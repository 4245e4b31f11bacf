"""The rules of goals, without I/O."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from rhythm_goals.domain import model as domain
from rhythm_goals.domain.model import Measure
from rhythm_shared.contracts.v1 import Direction, GoalStatus

# --- progress maths ---------------------------------------------------------------------------


def test_increasing_key_result_progress_is_the_share_of_the_way_to_target() -> None:
    assert domain.key_result_progress(0, 100, 25) == pytest.approx(0.25)
    assert domain.key_result_progress(10, 20, 15) == pytest.approx(0.5)


def test_decreasing_key_result_progress_counts_the_way_down() -> None:
    assert domain.key_result_progress(840, 420, 630) == pytest.approx(0.5)
    assert domain.key_result_progress(5.0, 2.0, 2.0) == pytest.approx(1.0)


def test_key_result_progress_is_clamped_between_zero_and_one() -> None:
    assert domain.key_result_progress(0, 100, 150) == 1.0
    assert domain.key_result_progress(0, 100, -20) == 0.0
    assert domain.key_result_progress(840, 420, 900) == 0.0
    assert domain.key_result_progress(840, 420, 100) == 1.0


def test_key_result_with_target_equal_to_start_has_no_progress_rather_than_dividing_by_zero() -> (
    None
):
    assert domain.key_result_progress(5, 5, 7) == 0.0


def test_goal_progress_is_the_weighted_mean_of_its_key_results() -> None:
    measures = [Measure(0, 100, 100, weight=3), Measure(0, 10, 0, weight=1)]
    assert domain.goal_progress(measures) == pytest.approx(0.75)


def test_goal_without_key_results_has_zero_progress() -> None:
    assert domain.goal_progress([]) == 0.0


def test_an_overshooting_key_result_does_not_carry_another_beyond_one() -> None:
    measures = [Measure(0, 100, 500), Measure(0, 100, 0)]
    assert domain.goal_progress(measures) == pytest.approx(0.5)


# --- elapsed time and status suggestion -------------------------------------------------------


def test_elapsed_fraction_runs_from_the_first_days_midnight_to_the_end_of_the_last_day() -> None:
    start, end = date(2026, 1, 1), date(2026, 1, 10)
    assert domain.elapsed_fraction(start, end, datetime(2026, 1, 1, tzinfo=UTC)) == 0.0
    assert domain.elapsed_fraction(start, end, datetime(2026, 1, 6, tzinfo=UTC)) == 0.5
    assert domain.elapsed_fraction(start, end, datetime(2026, 1, 11, tzinfo=UTC)) == 1.0
    assert domain.elapsed_fraction(start, end, datetime(2025, 12, 1, tzinfo=UTC)) == 0.0
    assert domain.elapsed_fraction(start, end, datetime(2026, 5, 1, tzinfo=UTC)) == 1.0


@pytest.mark.parametrize(
    ("progress", "elapsed", "expected"),
    [
        (0.45, 0.5, GoalStatus.ON_TRACK),  # lags by 5 points
        (0.40, 0.5, GoalStatus.ON_TRACK),  # exactly 10 points: still on track
        (0.35, 0.5, GoalStatus.AT_RISK),  # 15 points
        (0.25, 0.5, GoalStatus.AT_RISK),  # exactly 25 points
        (0.20, 0.5, GoalStatus.OFF_TRACK),  # 30 points
        (0.90, 0.5, GoalStatus.ON_TRACK),  # ahead
        (1.00, 0.1, GoalStatus.ACHIEVED),
        (0.00, 0.05, GoalStatus.ON_TRACK),  # early in the period nobody is behind yet
        (0.00, 1.00, GoalStatus.OFF_TRACK),
    ],
)
def test_status_is_suggested_from_progress_against_elapsed_time(
    progress: float, elapsed: float, expected: GoalStatus
) -> None:
    assert domain.suggest_status(progress, elapsed) == expected


def test_low_confidence_turns_an_on_track_suggestion_into_at_risk() -> None:
    assert domain.suggest_status(0.5, 0.5, confidence=0.3) == GoalStatus.AT_RISK
    assert domain.suggest_status(0.5, 0.5, confidence=0.9) == GoalStatus.ON_TRACK
    assert domain.suggest_status(0.1, 0.5, confidence=0.9) == GoalStatus.OFF_TRACK


def test_a_status_set_by_a_person_is_not_overwritten_by_a_suggestion() -> None:
    assert domain.next_suggested_status(GoalStatus.AT_RISK, True, 0.9, 0.5, 0.9) is None


def test_a_suggested_status_moves_only_when_the_suggestion_differs() -> None:
    assert domain.next_suggested_status(GoalStatus.ON_TRACK, False, 0.5, 0.5, 0.9) is None
    assert (
        domain.next_suggested_status(GoalStatus.ON_TRACK, False, 0.1, 0.5, 0.9)
        == GoalStatus.OFF_TRACK
    )


def test_closed_goals_never_come_due_for_a_stale_check() -> None:
    now = datetime(2026, 3, 1, tzinfo=UTC)
    assert domain.next_stale_check(now, 14, GoalStatus.ACHIEVED) is None
    assert domain.next_stale_check(now, 14, GoalStatus.ABANDONED) is None
    assert domain.next_stale_check(now, 14, GoalStatus.AT_RISK) == now + timedelta(days=14)


def test_a_goal_whose_period_is_over_is_not_reported_stale() -> None:
    assert domain.goes_stale(date(2026, 3, 31), datetime(2026, 3, 31, 23, tzinfo=UTC))
    assert not domain.goes_stale(date(2026, 3, 31), datetime(2026, 4, 1, tzinfo=UTC))


# --- validation -------------------------------------------------------------------------------


def test_a_key_result_whose_target_equals_its_start_is_refused() -> None:
    problems = domain.check_key_result(0, 5, 5, Direction.INCREASE, 1)
    assert [p.loc for p in problems] == [("key_results", 0, "target")]


def test_a_key_result_whose_target_lies_against_its_direction_is_refused() -> None:
    assert domain.check_key_result(1, 10, 5, Direction.INCREASE, 1)[0].loc == (
        "key_results",
        1,
        "target",
    )
    assert domain.check_key_result(0, 5, 10, Direction.DECREASE, 1)
    assert not domain.check_key_result(0, 10, 5, Direction.DECREASE, 1)


def test_absurd_and_non_finite_magnitudes_are_refused() -> None:
    assert domain.check_key_result(0, 0, 1e13, Direction.INCREASE, 1)[0].loc[-1] == "target"
    assert domain.check_key_result(0, float("nan"), 1, Direction.INCREASE, 1)[0].loc[-1] == "start"
    assert domain.check_progress_value(float("inf"), 0, 100)
    assert domain.check_progress_value(2e12, 0, 100)


def test_a_progress_value_implausibly_far_from_its_key_result_is_refused() -> None:
    assert domain.check_progress_value(150, 0, 100) == []  # overshooting is plausible
    assert domain.check_progress_value(-50, 0, 100) == []
    problems = domain.check_progress_value(1_000_000, 0, 100)
    assert problems[0].loc == ("value",)


def test_a_period_that_ends_before_it_starts_is_refused() -> None:
    problems = domain.check_period(date(2026, 3, 31), date(2026, 3, 1))
    assert problems[0].loc == ("period_end",)
    assert domain.check_period(date(2026, 3, 1), date(2026, 3, 1)) == []
    assert domain.check_period(date(2026, 1, 1), date(2029, 1, 1))


def test_confidence_must_lie_between_zero_and_one() -> None:
    assert domain.check_confidence(1.2)
    assert domain.check_confidence(-0.1)
    assert domain.check_confidence(0.0) == []


# --- alignment cycles -------------------------------------------------------------------------


def test_aligning_a_goal_under_its_own_descendant_is_a_cycle() -> None:
    parents = {"person": "team", "team": "unit", "unit": "company", "company": None}
    assert domain.creates_cycle("unit", "person", parents.get)
    assert domain.creates_cycle("team", "team", parents.get)


def test_aligning_under_an_unrelated_branch_is_not_a_cycle() -> None:
    parents = {"person": "team", "team": "unit", "unit": None, "other": None}
    assert not domain.creates_cycle("person", "other", parents.get)
    assert not domain.creates_cycle("team", None, parents.get)


def test_a_loop_already_in_the_data_counts_as_a_cycle_rather_than_hanging() -> None:
    parents = {"a": "b", "b": "a"}
    assert domain.creates_cycle("x", "a", parents.get)


def test_template_titles_name_their_owner() -> None:
    assert domain.render_title("{name}: Q2 plan", "Ann") == "Ann: Q2 plan"
