"""The demo organisation `make run` seeds, and the quarter it plays, are sound and repeatable."""

from __future__ import annotations

from collections import Counter

from rhythm_cli import demo


def test_the_demo_organisation_is_a_tree_of_about_five_hundred_people() -> None:
    org = demo.generate_org()
    assert 450 <= len(org.people) <= 550
    units = {u["org_unit_id"]: u for u in org.units}
    for person in org.people.values():
        assert person.unit_id in units
        seen = set()
        manager = person.manager_id
        while manager is not None:  # every chain ends at the CEO, without cycles
            assert manager not in seen
            seen.add(manager)
            manager = org.people[manager].manager_id
    assert [p.employee_id for p in org.people.values() if p.manager_id is None] == [demo.CEO]
    for unit in units.values():
        assert unit["parent_id"] is None or unit["parent_id"] in units
        assert unit["head_id"] in org.people


def test_the_demo_is_the_same_every_time() -> None:
    first, second = demo.generate_org(), demo.generate_org()
    assert [(p.employee_id, p.name, p.manager_id) for p in first.people.values()] == [
        (p.employee_id, p.name, p.manager_id) for p in second.people.values()
    ]
    assert demo.plan_quarter(first) == demo.plan_quarter(second)


def test_the_played_quarter_has_teams_that_keep_the_rhythm_and_teams_that_do_not() -> None:
    org = demo.generate_org()
    plan = demo.plan_quarter(org)
    held = Counter(
        e for day in plan.checkins.values() for e, _, kind, _ in day if kind == "monthly"
    )
    by_team: dict[str, list[int]] = {}
    for person in org.people.values():
        if person.manager_id and person.unit_id.count("t") == 1:
            by_team.setdefault(person.unit_id, []).append(held[person.employee_id])
    shares = sorted(sum(v) / (4 * len(v)) for v in by_team.values())
    assert shares[0] < 0.6 < shares[-1]  # the dashboard has something to say
    kinds = Counter(kind for day in plan.checkins.values() for _, _, kind, _ in day)
    assert kinds["quarterly_review"] > 0
    initiators = Counter(i for day in plan.checkins.values() for _, i, _, _ in day)
    assert initiators["employee"] > 0
    assert initiators["manager"] > 0
    assert sum(len(v) for v in plan.feedback.values()) > 100
