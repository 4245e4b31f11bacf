"""Bad input is a 422 with field-level messages, and nothing is half-written."""

from __future__ import annotations

from typing import Any

import pytest
from goals_harness import GoalsService, StartGoals

pytestmark = pytest.mark.kafka


def _locs(response: Any) -> list[list[Any]]:
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert all(isinstance(d["msg"], str) and d["msg"] for d in detail)
    return [d["loc"] for d in detail]


KR = {"key_result_id": "kr-1", "unit": "%", "start": 0, "target": 100, "direction": "increase"}


async def _progress(svc: GoalsService, goal_id: str, body: Any) -> Any:
    return await svc.client.post(
        f"/v1/goals/{goal_id}/key-results/kr-1/progress", json=body, headers=svc.auth("ann")
    )


async def test_a_goal_that_breaks_a_rule_is_refused_field_by_field_and_nothing_is_written(
    start_goals: StartGoals,
) -> None:
    async with start_goals() as svc:
        await svc.seed_org()
        cases: list[tuple[dict[str, Any], list[Any]]] = [
            ({"key_results": [{**KR, "target": 0}]}, ["body", "key_results", 0, "target"]),
            (
                {"key_results": [KR, {**KR, "key_result_id": "kr-2", "start": 50, "target": 10}]},
                ["body", "key_results", 1, "target"],
            ),
            ({"key_results": [{**KR, "target": 1e15}]}, ["body", "key_results", 0, "target"]),
            ({"period_start": "2026-03-31", "period_end": "2026-03-01"}, ["body", "period_end"]),
            ({"parent_goal_id": "g-does-not-exist"}, ["body", "parent_goal_id"]),
            ({"owner_id": "someone-elsewhere"}, ["body", "owner_id"]),
            ({"owner_type": "org_unit", "owner_id": "ou-nowhere"}, ["body", "owner_id"]),
            ({"owner_type": "company", "owner_id": "other-co"}, ["body", "owner_id"]),
            ({"title": ""}, ["body", "title"]),
            ({"update_interval_days": 0}, ["body", "update_interval_days"]),
            ({"kind": "wish"}, ["body", "kind"]),
            ({"key_results": [{**KR, "start": "lots"}]}, ["body", "key_results", 0, "start"]),
        ]
        for body, loc in cases:
            response = await svc.create("hal", "hr_admin", **body)
            assert loc in _locs(response), (body, response.json())
        assert await svc.goal_count() == 0
        async with svc.runtime.uow() as uow:
            outbox = (await uow.session.execute(svc.runtime.tables.outbox.select())).all()
        assert outbox == []


async def test_progress_of_the_wrong_type_or_absurd_magnitude_is_refused(
    start_goals: StartGoals,
) -> None:
    async with start_goals() as svc:
        goal_id = (await svc.create("ann", key_results=[KR])).json()["goal_id"]
        for body, loc in (
            ({"value": "lots", "confidence": 0.5}, ["body", "value"]),
            ({"value": [1], "confidence": 0.5}, ["body", "value"]),
            ({"confidence": 0.5}, ["body", "value"]),
            ({"value": 1e13, "confidence": 0.5}, ["body", "value"]),
            ({"value": 5_000_000, "confidence": 0.5}, ["body", "value"]),
            ({"value": 10, "confidence": 1.5}, ["body", "confidence"]),
            ({"value": 10, "confidence": 0.5, "extra": 1}, ["body", "extra"]),
        ):
            assert loc in _locs(await _progress(svc, goal_id, body)), body
        # NaN is not JSON, but Python's parser accepts it: it must not get through either.
        nan = await svc.client.post(
            f"/v1/goals/{goal_id}/key-results/kr-1/progress",
            content=b'{"value": NaN, "confidence": 0.5}',
            headers={**svc.auth("ann"), "Content-Type": "application/json"},
        )
        assert nan.status_code == 422
        unknown_kr = await svc.client.post(
            f"/v1/goals/{goal_id}/key-results/kr-9/progress",
            json={"value": 10, "confidence": 0.5},
            headers=svc.auth("ann"),
        )
        assert unknown_kr.status_code == 404
        goal = (await svc.client.get(f"/v1/goals/{goal_id}", headers=svc.auth("ann"))).json()
        assert goal["revision"] == 1
        assert goal["key_results"][0]["current"] == 0


async def test_an_alignment_cycle_is_refused(start_goals: StartGoals) -> None:
    async with start_goals() as svc:
        company = (await svc.create("ann", title="Company")).json()["goal_id"]
        team = (await svc.create("ann", title="Team", parent_goal_id=company)).json()["goal_id"]
        person = (await svc.create("ann", title="Mine", parent_goal_id=team)).json()["goal_id"]
        for goal_id, parent in ((company, person), (company, company), (team, person)):
            response = await svc.client.put(
                f"/v1/goals/{goal_id}/parent",
                json={"parent_goal_id": parent},
                headers=svc.auth("ann"),
            )
            assert _locs(response) == [["body", "parent_goal_id"]]
        # Realigning along the tree is fine.
        response = await svc.client.put(
            f"/v1/goals/{person}/parent", json={"parent_goal_id": company}, headers=svc.auth("ann")
        )
        assert response.status_code == 200


async def test_an_update_that_breaks_a_rule_changes_nothing(start_goals: StartGoals) -> None:
    async with start_goals() as svc:
        goal_id = (await svc.create("ann", key_results=[KR])).json()["goal_id"]
        response = await svc.client.patch(
            f"/v1/goals/{goal_id}",
            json={"title": "New title", "period_end": "2026-02-01"},
            headers=svc.auth("ann"),
        )
        assert _locs(response) == [["body", "period_end"]]
        response = await svc.client.patch(
            f"/v1/goals/{goal_id}",
            json={"title": "New title", "key_results": [{**KR, "target": 0}]},
            headers=svc.auth("ann"),
        )
        assert _locs(response) == [["body", "key_results", 0, "target"]]
        goal = (await svc.client.get(f"/v1/goals/{goal_id}", headers=svc.auth("ann"))).json()
        assert goal["title"] == "Cut checkout latency in half"
        assert goal["revision"] == 1
