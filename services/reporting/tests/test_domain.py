"""Pure rules of the read model: periods, attribution, outcomes, rollup arithmetic."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from pydantic import ValidationError

from rhythm_reporting.domain.metrics import (
    adherence,
    adherence_shares,
    change,
    next_to_hide,
    period_shown,
    suppressed,
    too_small,
)
from rhythm_reporting.domain.periods import Period, recent_periods
from rhythm_reporting.domain.projection import (
    TENANT,
    Deltas,
    EmployeeVersion,
    OrgTree,
    contributions,
    goal_is_stale,
    move_subtree,
    obligation_outcome,
    progress_bucket,
    version_at,
)


def at(month: int, day: int = 1) -> datetime:
    return datetime(2026, month, day, 12, tzinfo=UTC)


def test_a_period_is_a_month_a_quarter_or_a_year_with_the_previous_one_of_the_same_length() -> None:
    assert Period.parse("2026-Q1").months == ["2026-01", "2026-02", "2026-03"]
    assert Period.parse("2026-Q1").previous().label == "2025-Q4"
    assert Period.parse("2026-01").previous().label == "2025-12"
    assert Period.parse("2026").previous().label == "2025"
    assert Period.parse("2026-02").end == date(2026, 2, 28)
    assert Period.parse("2026-Q2").trend_months()[-1] == "2026-06"
    assert len(Period.parse("2026-Q2").trend_months()) == 12
    with pytest.raises(ValueError, match="quarter"):
        Period.parse("2026-Q5")
    assert recent_periods(at(3))[0] == "2026-Q1"


def test_an_event_counts_against_the_unit_the_person_was_in_at_the_time() -> None:
    history = [
        EmployeeVersion(at(1), "ou-a", "m1", "Ana", True),
        EmployeeVersion(at(4), "ou-b", "m2", "Ana", True),
    ]
    assert version_at(history, at(3)).org_unit_id == "ou-a"  # type: ignore[union-attr]
    assert version_at(history, at(4)).org_unit_id == "ou-b"  # type: ignore[union-attr]
    # Before the HR platform first told us about her: her first known unit.
    assert version_at(history, datetime(2025, 6, 1, tzinfo=UTC)).org_unit_id == "ou-a"  # type: ignore[union-attr]
    assert version_at([], at(1)) is None


def test_the_org_tree_walk_stops_at_a_cycle_in_bad_hr_data() -> None:
    tree = OrgTree({"a": "b", "b": "c", "c": "a", "x": None})
    assert tree.chain("a") == ("a", "b", "c")
    assert tree.chain("x") == ("x",)
    assert tree.chain("unknown") == ("unknown",)


def test_an_obligation_is_on_time_late_missed_or_open() -> None:
    due = at(3, 31)
    assert obligation_outcome({"due_at": due, "completed_at": at(3, 30)}) == "on_time"
    assert (
        obligation_outcome({"due_at": due, "completed_at": at(4, 2), "missed_at": at(4, 1)})
        == "late"
    )
    assert obligation_outcome({"due_at": due, "missed_at": at(4, 5)}) == "missed"
    assert obligation_outcome({"due_at": due}) == "open"


def test_a_stale_goal_is_no_longer_stale_once_progress_is_recorded() -> None:
    goal = {"status": "on_track", "stale_marker": at(2), "last_progress_at": at(2)}
    assert goal_is_stale(goal)
    assert not goal_is_stale({**goal, "last_progress_at": at(3)})
    assert not goal_is_stale({**goal, "status": "achieved"})
    assert progress_bucket(10_000) == "progress_80_100"
    assert progress_bucket(1_999) == "progress_0_20"
    assert progress_bucket(None) == "progress_0_20"


def test_a_fact_that_changes_moves_the_rollups_by_the_difference_only() -> None:
    tree = OrgTree({"team": "dept", "dept": None})
    before = {"due_at": at(3, 31), "org_unit_id": "team", "manager_id": "m"}
    after = {**before, "completed_at": at(3, 30)}
    deltas = Deltas()
    for c in contributions("obligation", before):
        deltas.add_contribution("t", c, tree, +1)
    for c in contributions("obligation", before):
        deltas.add_contribution("t", c, tree, -1)
    for c in contributions("obligation", after):
        deltas.add_contribution("t", c, tree, +1)
    rows = dict(deltas.nonzero())
    for unit in ("team", "dept", TENANT):
        assert rows[("unit_month_stats", "t", (unit, "2026-03"))] == {
            "obligations": 1,
            "on_time": 1,
        }
    assert rows[("manager_period_stats", "t", ("m", "2026-Q1"))]["on_time"] == 1


def test_moving_a_unit_moves_its_subtree_totals_between_ancestors() -> None:
    deltas = Deltas()
    totals = {("2026-03",): {"obligations": 4}}
    move_subtree(deltas, "t", "unit_month_stats", "team", totals, ["old", "root"], ["new", "root"])
    rows = dict(deltas.nonzero())
    assert rows[("unit_month_stats", "t", ("old", "2026-03"))] == {"obligations": -4}
    assert rows[("unit_month_stats", "t", ("new", "2026-03"))] == {"obligations": 4}
    assert ("unit_month_stats", "t", ("root", "2026-03")) not in rows


def test_shares_changes_and_the_small_group_rule() -> None:
    shares = adherence({"on_time": 3, "late": 1, "missed": 0, "open": 5, "obligations": 9})
    assert shares == {"on_time_pct": 75.0, "late_pct": 25.0, "missed_pct": 0.0}
    assert adherence({"on_time": 0, "late": 0, "missed": 0})["on_time_pct"] is None
    assert change(75.0, 70.5) == 4.5
    assert change(None, 70.5) is None
    assert suppressed(4, 5)
    assert not suppressed(5, 5)


def test_a_change_in_points_comes_from_the_unrounded_shares() -> None:
    now = adherence_shares({"on_time": 5, "late": 7, "missed": 0})  # 41.666...%
    before = adherence_shares({"on_time": 6, "late": 5, "missed": 0})  # 54.545...%
    assert adherence({"on_time": 5, "late": 7, "missed": 0})["on_time_pct"] == 41.7
    assert change(now["on_time_pct"], before["on_time_pct"]) == -12.9
    assert change(41.7, 54.5) == -12.8  # what rounding first would have said


def test_a_small_group_is_some_people_but_fewer_than_the_minimum() -> None:
    assert too_small(1, 5)
    assert too_small(4, 5)
    assert not too_small(0, 5)  # nobody's figures
    assert not too_small(5, 5)


def test_the_smallest_shown_part_goes_while_the_rest_of_a_total_is_a_small_group() -> None:
    parts = {"big": 9, "mid": 6, "grown": 5, "empty": 0}
    assert next_to_hide(parts, 3, 5) == "grown"
    assert next_to_hide(parts, 0, 5) is None  # the parts make the whole total
    assert next_to_hide(parts, 5, 5) is None
    assert next_to_hide({"empty": 0}, 2, 5) is None  # hiding nobody's cell changes nothing


def test_a_longer_period_is_shown_only_when_each_month_is_shown_or_empty() -> None:
    assert period_shown([(True, False), (False, True), (True, False)])
    assert not period_shown([(True, False), (False, False), (True, False)])


@pytest.mark.parametrize("size", [0, 1, 2])
def test_a_minimum_group_size_below_three_is_refused_at_start(size: int) -> None:
    from rhythm_reporting.settings import Settings

    with pytest.raises(ValidationError, match=r"MIN_GROUP_SIZE=\d+ is too small"):
        Settings(min_group_size=size)
    assert Settings(min_group_size=3).min_group_size == 3
