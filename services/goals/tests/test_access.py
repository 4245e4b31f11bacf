"""Who may do what: employees, managers, unit heads, hr_admin, and other tenants."""

from __future__ import annotations

import pytest
from goals_harness import StartGoals

pytestmark = pytest.mark.kafka


async def test_employee_manager_and_hr_admin_each_edit_what_is_theirs(
    start_goals: StartGoals,
) -> None:
    async with start_goals() as svc:
        await svc.seed_org()
        ann_goal = (await svc.create("ann")).json()["goal_id"]

        async def retitle(subject: str, *roles: str) -> int:
            response = await svc.client.patch(
                f"/v1/goals/{ann_goal}",
                json={"title": f"by {subject}"},
                headers=svc.auth(subject, *roles),
            )
            return int(response.status_code)

        assert await retitle("ann") == 200  # own goal
        assert await retitle("bob") == 403  # a colleague sees it but may not change it
        assert await retitle("carl", "manager") == 403  # another branch's manager
        assert await retitle("mia", "manager") == 200  # direct manager, head of the unit
        assert await retitle("ceo", "manager") == 200  # further up the chain
        assert await retitle("hal", "hr_admin") == 200  # hr_admin, not in the people slice

        # A manager sets goals for a report; an employee cannot set one for a colleague.
        assert (await svc.create("mia", "manager", owner_id="bob")).status_code == 201
        assert (await svc.create("ann", owner_id="bob")).status_code == 403

        # Unit goals: the unit's head (and heads above), not its members or other heads.
        for subject, expected in (("mia", 201), ("ceo", 201), ("ann", 403), ("sam", 403)):
            response = await svc.create(subject, owner_type="org_unit", owner_id="ou-platform")
            assert response.status_code == expected, (subject, response.text)
        # Company goals: hr_admin and executives.
        assert (await svc.create("ann", owner_type="company")).status_code == 403
        company = await svc.create("exe", "executive", owner_type="company")
        assert company.status_code == 201
        assert company.json()["owner_id"] == svc.tenant


async def test_another_tenants_goal_is_a_404_for_every_read_and_write(
    start_goals: StartGoals,
) -> None:
    async with start_goals() as svc:
        goal_id = (await svc.create("ann")).json()["goal_id"]
        outsider = svc.auth("ann", "hr_admin", tenant="other-tenant")
        calls = [
            svc.client.get(f"/v1/goals/{goal_id}", headers=outsider),
            svc.client.get(f"/v1/goals/{goal_id}/history", headers=outsider),
            svc.client.get(f"/v1/goals/{goal_id}/tree", headers=outsider),
            svc.client.patch(f"/v1/goals/{goal_id}", json={"title": "x"}, headers=outsider),
            svc.client.post(
                f"/v1/goals/{goal_id}/key-results/kr-1/progress",
                json={"value": 500, "confidence": 0.5},
                headers=outsider,
            ),
            svc.client.post(
                f"/v1/goals/{goal_id}/status", json={"status": "at_risk"}, headers=outsider
            ),
            svc.client.post(f"/v1/goals/{goal_id}/archive", headers=outsider),
            svc.client.put(
                f"/v1/goals/{goal_id}/parent", json={"parent_goal_id": None}, headers=outsider
            ),
        ]
        for call in calls:
            response = await call
            assert response.status_code == 404, response.text
        listing = await svc.client.get("/v1/goals", headers=outsider)
        assert listing.json()["items"] == []
        # Aligning under another tenant's goal: that parent is unknown here.
        foreign_child = await svc.client.post(
            "/v1/goals",
            json={
                "title": "Mine",
                "period_start": "2026-03-01",
                "period_end": "2026-03-31",
                "parent_goal_id": goal_id,
            },
            headers=svc.auth("zoe", tenant="other-tenant"),
        )
        assert foreign_child.status_code == 422
        assert foreign_child.json()["detail"][0]["loc"] == ["body", "parent_goal_id"]


async def test_a_private_goal_is_seen_only_by_its_owner_their_managers_and_hr_admin(
    start_goals: StartGoals,
) -> None:
    async with start_goals() as svc:
        await svc.seed_org()
        private = (await svc.create("ann", visibility="private", title="Secret")).json()["goal_id"]
        public = (await svc.create("ann", title="Public")).json()["goal_id"]
        for subject, roles, expected in (
            ("ann", (), 200),
            ("mia", ("manager",), 200),
            ("ceo", ("manager",), 200),
            ("hal", ("hr_admin",), 200),
            ("bob", (), 404),
            ("sam", ("manager",), 404),
        ):
            response = await svc.client.get(
                f"/v1/goals/{private}", headers=svc.auth(subject, *roles)
            )
            assert response.status_code == expected, subject
            listing = await svc.client.get(
                "/v1/goals", params={"owner_id": "ann"}, headers=svc.auth(subject, *roles)
            )
            ids = {g["goal_id"] for g in listing.json()["items"]}
            assert public in ids
            assert (private in ids) == (expected == 200), subject
        # A colleague cannot even change a private goal they cannot see: 404, not 403.
        response = await svc.client.patch(
            f"/v1/goals/{private}", json={"title": "x"}, headers=svc.auth("bob")
        )
        assert response.status_code == 404


async def test_requests_without_a_valid_token_are_refused(start_goals: StartGoals) -> None:
    async with start_goals() as svc:
        assert (await svc.client.get("/v1/goals")).status_code == 401
        bad = {"Authorization": "Bearer not-a-token"}
        assert (await svc.client.get("/v1/goals", headers=bad)).status_code == 401
