"""Who may do what: employees, managers, unit heads, hr_admin, and other tenants."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from goals_harness import GoalsService, StartGoals

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


async def test_a_body_naming_someone_as_owner_never_widens_what_the_caller_may_do(
    start_goals: StartGoals,
) -> None:
    async with start_goals() as svc:
        await svc.seed_org()
        before = await svc.goal_count()
        refused = [
            # A colleague, and a "manager" token of someone who manages nobody.
            ("ann", ("employee",), {"owner_id": "bob"}),
            ("bob", ("manager",), {"owner_id": "ann"}),
            # A manager of another branch, for someone they do not manage.
            ("sam", ("manager",), {"owner_id": "ivy"}),
            # Organisation-wide tokens do not act as a person: not for themselves either.
            ("hris", ("integration",), {}),
            ("hris", ("integration",), {"owner_id": "ann"}),
            ("exe", ("executive",), {"owner_id": "ann"}),
            # An executive-only token of a unit head is not that head.
            ("mia", ("executive",), {"owner_type": "org_unit", "owner_id": "ou-platform"}),
            # A unit someone else heads.
            ("sam", ("manager",), {"owner_type": "org_unit", "owner_id": "ou-platform"}),
        ]
        for subject, roles, body in refused:
            response = await svc.create(subject, *roles, **body)
            assert response.status_code == 403, (subject, roles, body, response.text)
        assert await svc.goal_count() == before

        # Whom the directory does not know is a field error, not a new person.
        unknown = await svc.create("mia", "manager", owner_id="nobody")
        assert unknown.status_code == 422
        assert unknown.json()["detail"][0]["loc"] == ["body", "owner_id"]

        # The same requests from those the directory relates to the owner are accepted.
        for subject, roles, body in (
            ("mia", ("manager",), {"owner_id": "ivy"}),
            ("ceo", ("employee",), {"owner_id": "carl"}),  # up the chain; roles do not widen
            ("hal", ("hr_admin",), {"owner_id": "ann"}),
            ("mia", ("employee",), {"owner_type": "org_unit", "owner_id": "ou-platform"}),
        ):
            response = await svc.create(subject, *roles, **body)
            assert response.status_code == 201, (subject, roles, body, response.text)

        # Bulk creation for a unit: its heads and hr_admin, not a "manager" token elsewhere.
        bulk = {
            "org_unit_id": "ou-platform",
            "template": {
                "title": "{name}: onboarding",
                "period_start": "2026-03-01",
                "period_end": "2026-03-31",
            },
        }
        for subject, roles, expected in (("bob", ("manager",), 403), ("mia", ("employee",), 201)):
            response = await svc.client.post(
                "/v1/goals/bulk", json=bulk, headers=svc.auth(subject, *roles)
            )
            assert response.status_code == expected, (subject, response.text)


async def test_a_manager_token_that_manages_nobody_changes_no_one_elses_goal(
    start_goals: StartGoals,
) -> None:
    async with start_goals() as svc:
        await svc.seed_org()
        goal_id = (await svc.create("ann")).json()["goal_id"]
        as_bob = svc.auth("bob", "manager")
        writes = [
            svc.client.patch(f"/v1/goals/{goal_id}", json={"title": "x"}, headers=as_bob),
            svc.client.post(
                f"/v1/goals/{goal_id}/key-results/kr-1/progress",
                json={"value": 500, "confidence": 0.5},
                headers=as_bob,
            ),
            svc.client.post(
                f"/v1/goals/{goal_id}/status", json={"status": "at_risk"}, headers=as_bob
            ),
            svc.client.post(f"/v1/goals/{goal_id}/archive", headers=as_bob),
            svc.client.put(
                f"/v1/goals/{goal_id}/parent", json={"parent_goal_id": None}, headers=as_bob
            ),
        ]
        for call in writes:
            response = await call
            assert response.status_code == 403, response.text
        goal = (await svc.client.get(f"/v1/goals/{goal_id}", headers=svc.auth("ann"))).json()
        assert goal["revision"] == 1


async def _audit(svc: GoalsService, subject_id: str) -> list[dict[str, object]]:
    response = await svc.client.get(
        "/v1/audit", params={"subject_id": subject_id}, headers=svc.auth("hal", "hr_admin")
    )
    assert response.status_code == 200, response.text
    entries: list[dict[str, object]] = response.json()
    return entries


def _entries(entries: list[dict[str, object]]) -> set[tuple[object, ...]]:
    return {(e["actor_id"], e["action"], e["target"], e["allowed"]) for e in entries}


async def test_reads_of_a_private_goal_and_changes_of_its_visibility_are_on_the_audit_trail(
    start_goals: StartGoals,
) -> None:
    async with start_goals() as svc:
        await svc.seed_org()
        secret = "Leave for the competitor in May"
        goal_id = (await svc.create("ann", visibility="private", title=secret)).json()["goal_id"]
        target = f"goal/{goal_id}"
        assert (
            await svc.client.get(f"/v1/goals/{goal_id}", headers=svc.auth("mia", "manager"))
        ).status_code == 200
        assert (
            await svc.client.get(f"/v1/goals/{goal_id}", headers=svc.auth("bob"))
        ).status_code == 404
        listing = await svc.client.get("/v1/goals/reports", headers=svc.auth("mia", "manager"))
        assert goal_id in {g["goal_id"] for g in listing.json()["items"]}
        # A colleague's listing skips the goal: skipping is not a refused read.
        await svc.client.get("/v1/goals", headers=svc.auth("bob"))
        changed = await svc.client.patch(
            f"/v1/goals/{goal_id}", json={"visibility": "tenant"}, headers=svc.auth("ann")
        )
        assert changed.status_code == 200
        # Tenant-visible now: reading it is not a read of private data any more.
        await svc.client.get(f"/v1/goals/{goal_id}", headers=svc.auth("bob"))

        entries = await _audit(svc, "ann")
        assert sorted(
            (e["actor_id"], e["action"], e["target"], e["allowed"]) for e in entries
        ) == sorted(
            [
                ("mia", "read", target, True),
                ("bob", "read", target, False),
                ("mia", "read", target, True),  # the listing showed it
                ("ann", "change_access", f"{target}:visibility", True),
            ]
        )
        # Who, whom, what and when; never the text itself.
        assert secret not in json.dumps(entries)
        # The trail is hr_admin's to read.
        response = await svc.client.get(
            "/v1/audit", params={"subject_id": "ann"}, headers=svc.auth("mia", "manager")
        )
        assert response.status_code == 403


async def test_progress_comments_are_shown_and_audited_only_for_those_above_the_owner(
    start_goals: StartGoals,
) -> None:
    async with start_goals() as svc:
        await svc.seed_org()
        comment = "Blocked by my manager's reorg"
        goal_id = (await svc.create("ann")).json()["goal_id"]
        recorded = await svc.client.post(
            f"/v1/goals/{goal_id}/key-results/kr-1/progress",
            json={"value": 700, "confidence": 0.6, "comment": comment},
            headers=svc.auth("ann"),
        )
        assert recorded.status_code == 201
        url = f"/v1/goals/{goal_id}/history"
        peer = await svc.client.get(url, headers=svc.auth("bob"))
        assert peer.status_code == 200
        assert comment not in peer.text
        assert [r["action"] for r in peer.json()["items"]] == ["created", "progress_recorded"]
        manager = await svc.client.get(url, headers=svc.auth("ceo", "manager"))
        assert comment in manager.text
        assert _entries(await _audit(svc, "ann")) == {
            ("ceo", "read", f"goal/{goal_id}:progress_comments", True)
        }


async def test_a_manager_move_is_on_the_trail_of_each_private_goal_it_opens_to_new_eyes(
    start_goals: StartGoals,
) -> None:
    async with start_goals() as svc:
        await svc.seed_org()
        private = (await svc.create("ann", visibility="private")).json()["goal_id"]
        await svc.create("ann")  # tenant-visible: everyone reads it anyway
        await svc.create("bob", visibility="private")  # bob stays where he is
        svc.clock.advance(timedelta(minutes=1))
        await svc.seed_people(
            svc.employee("ann", manager_id="sam", org_unit_id="ou-sales"),
            svc.employee("bob", manager_id="mia", org_unit_id="ou-platform"),  # no move
        )
        assert _entries(await _audit(svc, "ann")) == {
            ("/rhythm/tests", "change_access", f"goal/{private}:viewers", True)
        }
        assert await _audit(svc, "bob") == []
        # And the new manager reads it now; the old one no longer does.
        for subject, expected in (("sam", 200), ("mia", 404)):
            response = await svc.client.get(f"/v1/goals/{private}", headers=svc.auth(subject))
            assert response.status_code == expected, subject
