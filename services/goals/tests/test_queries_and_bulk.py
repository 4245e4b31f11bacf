"""Queries (mine, reports, org unit, filters, pages, the alignment tree) and bulk creation."""

from __future__ import annotations

from datetime import timedelta

import pytest
from goals_harness import StartGoals

pytestmark = pytest.mark.kafka


async def test_bulk_create_from_a_template_sets_one_goal_per_person_or_team(
    start_goals: StartGoals,
) -> None:
    async with start_goals() as svc:
        await svc.seed_org()
        unit_goal = (
            await svc.create("mia", owner_type="org_unit", owner_id="ou-platform", title="Platform")
        ).json()["goal_id"]
        template = {
            "title": "{name}: on-call handbook up to date",
            "period_start": "2026-04-01",
            "period_end": "2026-06-30",
            "parent_goal_id": unit_goal,
            "key_results": [{"unit": "%", "start": 0, "target": 100}],
        }
        headers = {**svc.auth("mia", "manager"), "Idempotency-Key": "bulk-q2"}
        body = {"org_unit_id": "ou-platform", "target": "people", "template": template}
        response = await svc.client.post("/v1/goals/bulk", json=body, headers=headers)
        assert response.status_code == 201, response.text
        assert response.json()["count"] == 3  # mia (its head and a member), ann and bob
        again = await svc.client.post("/v1/goals/bulk", json=body, headers=headers)
        assert again.json() == response.json()

        with_subunits = {**body, "include_subunits": True}
        response = await svc.client.post(
            "/v1/goals/bulk", json=with_subunits, headers=svc.auth("hal", "hr_admin")
        )
        assert response.json()["count"] == 4  # + ivy in ou-infra
        teams = {"org_unit_id": "ou-root", "target": "teams", "template": template}
        response = await svc.client.post(
            "/v1/goals/bulk", json=teams, headers=svc.auth("ceo", "manager")
        )
        assert response.json()["count"] == 2  # ou-platform and ou-sales

        listing = await svc.client.get(
            "/v1/goals", params={"owner_id": "ann"}, headers=svc.auth("ann")
        )
        titles = {g["title"] for g in listing.json()["items"]}
        assert titles == {"Ann: on-call handbook up to date"}

        # Only the unit's heads (and hr_admin) may do this; a bad template changes nothing.
        refused = await svc.client.post("/v1/goals/bulk", json=body, headers=svc.auth("ann"))
        assert refused.status_code == 403
        bad = {**body, "template": {**template, "period_end": "2026-01-01"}}
        response = await svc.client.post("/v1/goals/bulk", json=bad, headers=svc.auth("mia"))
        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"] == ["body", "template", "period_end"]
        unknown = {**body, "org_unit_id": "ou-nowhere"}
        response = await svc.client.post("/v1/goals/bulk", json=unknown, headers=svc.auth("mia"))
        assert response.json()["detail"][0]["loc"] == ["body", "org_unit_id"]


async def test_my_goals_my_reports_goals_and_an_org_units_goals(start_goals: StartGoals) -> None:
    async with start_goals() as svc:
        await svc.seed_org()
        mine = (await svc.create("mia", title="Mia's own")).json()["goal_id"]
        ann = (await svc.create("ann", title="Ann's")).json()["goal_id"]
        ivy = (await svc.create("ivy", title="Ivy's", visibility="private")).json()["goal_id"]
        carl = (await svc.create("carl", title="Carl's")).json()["goal_id"]
        unit = (
            await svc.create("mia", owner_type="org_unit", owner_id="ou-platform", title="Unit")
        ).json()["goal_id"]
        infra = (
            await svc.create("mia", owner_type="org_unit", owner_id="ou-infra", title="Infra")
        ).json()["goal_id"]

        async def ids(url: str, subject: str = "mia", **params: object) -> set[str]:
            response = await svc.client.get(url, params=params, headers=svc.auth(subject))
            assert response.status_code == 200, response.text
            return {g["goal_id"] for g in response.json()["items"]}

        assert await ids("/v1/goals/mine") == {mine}
        assert await ids("/v1/goals/reports") == {ann, ivy}
        assert await ids("/v1/goals/reports", "ceo") == {mine}
        assert await ids("/v1/goals/reports", "ceo", scope="all") == {mine, ann, ivy, carl}
        assert await ids("/v1/goals/org-units/ou-platform") == {unit}
        assert await ids("/v1/goals/org-units/ou-platform", include_subunits=True) == {unit, infra}
        assert await ids(
            "/v1/goals/org-units/ou-platform", include_subunits=True, include_members=True
        ) == {unit, infra, mine, ann, ivy}
        # bob is in the unit but may not see ivy's private goal.
        assert await ids(
            "/v1/goals/org-units/ou-platform", "bob", include_subunits=True, include_members=True
        ) == {unit, infra, mine, ann}
        assert await ids("/v1/goals", unit="ou-infra") == {infra}
        missing = await svc.client.get("/v1/goals/org-units/ou-nowhere", headers=svc.auth("mia"))
        assert missing.status_code == 404


async def test_listings_filter_and_page_through_everything_once(start_goals: StartGoals) -> None:
    async with start_goals() as svc:
        created = []
        for i in range(7):
            period = ("2026-01-01", "2026-03-31") if i % 2 else ("2026-04-01", "2026-06-30")
            response = await svc.create(
                "ann", title=f"Goal {i}", period_start=period[0], period_end=period[1]
            )
            created.append(response.json()["goal_id"])
            svc.clock.advance(timedelta(seconds=1))
        await svc.create("ann", title="Hidden", visibility="private")  # ann sees it, bob not
        await svc.client.post(
            f"/v1/goals/{created[0]}/status", json={"status": "at_risk"}, headers=svc.auth("ann")
        )

        seen: list[str] = []
        cursor = None
        while True:
            params: dict[str, object] = {"limit": 3}
            if cursor:
                params["cursor"] = cursor
            page = (
                await svc.client.get("/v1/goals", params=params, headers=svc.auth("bob"))
            ).json()
            seen += [g["goal_id"] for g in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == created  # oldest first, each once, the private one left out

        async def count(**params: object) -> int:
            response = await svc.client.get("/v1/goals", params=params, headers=svc.auth("bob"))
            return len(response.json()["items"])

        assert await count(active_on="2026-02-15") == 3
        assert await count(period_start="2026-04-01") == 4
        assert await count(period_end="2026-03-31") == 3
        assert await count(status="at_risk") == 1
        assert await count(owner_type="org_unit") == 0
        bad = await svc.client.get("/v1/goals", params={"cursor": "###"}, headers=svc.auth("bob"))
        assert bad.status_code == 422
        assert bad.json()["detail"][0]["loc"] == ["query", "cursor"]
        bad = await svc.client.get("/v1/goals", params={"status": "sad"}, headers=svc.auth("bob"))
        assert bad.status_code == 422


async def test_the_alignment_tree_shows_ancestors_descendants_and_hides_what_you_may_not_see(
    start_goals: StartGoals,
) -> None:
    async with start_goals() as svc:
        await svc.seed_org()
        hr = svc.auth("hal", "hr_admin")
        company = (await svc.create("hal", "hr_admin", owner_type="company", title="Co")).json()
        unit = (
            await svc.create(
                "mia",
                owner_type="org_unit",
                owner_id="ou-platform",
                title="Platform",
                parent_goal_id=company["goal_id"],
            )
        ).json()
        ann = (await svc.create("ann", title="Ann's", parent_goal_id=unit["goal_id"])).json()
        ivy = (
            await svc.create(
                "ivy", title="Ivy's", parent_goal_id=unit["goal_id"], visibility="private"
            )
        ).json()

        tree = (await svc.client.get(f"/v1/goals/{ann['goal_id']}/tree", headers=hr)).json()
        assert [n["goal_id"] for n in tree["ancestors"]] == [company["goal_id"], unit["goal_id"]]
        assert tree["node"]["goal_id"] == ann["goal_id"]
        assert tree["node"]["children"] == []

        tree = (
            await svc.client.get(f"/v1/goals/{company['goal_id']}/tree", headers=svc.auth("bob"))
        ).json()
        assert tree["ancestors"] == []
        (platform,) = tree["node"]["children"]
        assert platform["title"] == "Platform"
        children = {c["goal_id"]: c for c in platform["children"]}
        assert children[ann["goal_id"]]["title"] == "Ann's"
        assert children[ivy["goal_id"]] == {
            "goal_id": ivy["goal_id"],
            "hidden": True,
            "owner_type": None,
            "owner_id": None,
            "title": None,
            "status": None,
            "progress": None,
            "archived": False,
            "children": [],
        }
        shallow = await svc.client.get(
            f"/v1/goals/{company['goal_id']}/tree", params={"depth": 1}, headers=hr
        )
        assert shallow.json()["truncated"] is True
        assert shallow.json()["node"]["children"][0]["children"] == []
