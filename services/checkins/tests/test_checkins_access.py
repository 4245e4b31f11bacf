"""Access: who the caller is to the person comes from the people directory, never from the body.

The hole this guards: an employee scheduled a check-in about a colleague and named themselves
the manager; the check-in's preparation then showed the colleague's goals and the open action
items of the colleague's private 1:1, and completing it would have closed the colleague's
obligation.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from checkins_harness import StartCheckins, employee

from rhythm_checkins.domain.access import POLICY, ROUTES
from rhythm_shared.contracts.v1 import GoalCreated
from rhythm_shared.contracts.v1.values import GoalKind, OwnerType, Visibility
from rhythm_shared.kit.access import KIT_ROUTES

pytestmark = pytest.mark.kafka

LATER = datetime(2026, 3, 2, 8, tzinfo=UTC)
WHEN = "2026-03-05T10:00:00+01:00"


def locs(response: object) -> list[list[object]]:
    return [e["loc"] for e in response.json()["detail"]]  # type: ignore[attr-defined]


async def test_an_employee_cannot_schedule_a_checkin_about_a_colleague_naming_themselves_manager(
    start_checkins: StartCheckins,
) -> None:
    async with start_checkins() as svc:
        await svc.set_policy()
        await svc.team()  # boss <- mia <- ana, ben
        # ben's real 1:1 with mia has an open action item.
        mia = svc.auth("mia", "employee", "manager")
        real = await svc.client.post(
            "/v1/checkins", json={"employee_id": "ben", "scheduled_for": WHEN}, headers=mia
        )
        assert real.status_code == 201, real.text
        item = await svc.client.post(
            f"/v1/checkins/{real.json()['checkin_id']}/action-items",
            json={"owner_id": "ben", "text": "private: ask about the burnout"},
            headers=mia,
        )
        assert item.status_code == 201, item.text

        for roles in (("employee",), ("employee", "manager")):
            forged = await svc.client.post(
                "/v1/checkins",
                json={"employee_id": "ben", "manager_id": "ana", "scheduled_for": WHEN},
                headers=svc.auth("ana", *roles),
            )
            assert forged.status_code == 422, forged.text
            assert locs(forged) == [["body", "manager_id"]]
            assert "burnout" not in forged.text
        # Without naming a manager, ana is neither ben nor his manager.
        unnamed = await svc.client.post(
            "/v1/checkins",
            json={"employee_id": "ben", "scheduled_for": WHEN},
            headers=svc.auth("ana", "employee", "manager"),
        )
        assert unnamed.status_code == 403, unnamed.text
        # The manager cannot name someone else as the manager either (the skip-level, say).
        other = await svc.client.post(
            "/v1/checkins",
            json={"employee_id": "ana", "manager_id": "boss", "scheduled_for": WHEN},
            headers=mia,
        )
        assert (other.status_code, locs(other)) == (422, [["body", "manager_id"]])
        # Nor can the skip-level schedule in the manager's name.
        skip = await svc.client.post(
            "/v1/checkins",
            json={"employee_id": "ana", "manager_id": "mia", "scheduled_for": WHEN},
            headers=svc.auth("boss", "employee", "manager"),
        )
        assert skip.status_code == 403, skip.text
        # Nothing was scheduled about ben but mia's own check-in, and nobody but him and mia
        # sees its action items.
        listed = (
            await svc.client.get("/v1/checkins?employee_id=ben", headers=svc.auth("ben"))
        ).json()
        assert [(c["manager_id"], c["initiated_by_id"]) for c in listed] == [("mia", "mia")]
        assert "burnout" not in (await svc.client.get("/v1/checkins", headers=svc.auth("ana"))).text


async def test_naming_the_directory_manager_is_accepted_and_the_initiator_is_the_caller(
    start_checkins: StartCheckins,
) -> None:
    async with start_checkins() as svc:
        await svc.team()
        named = await svc.client.post(
            "/v1/checkins",
            json={"employee_id": "ana", "manager_id": "mia", "scheduled_for": WHEN},
            headers=svc.auth("ana"),
        )
        assert named.status_code == 201, named.text
        assert (named.json()["initiated_by"], named.json()["initiated_by_id"]) == (
            "employee",
            "ana",
        )
        by_manager = await svc.client.post(
            "/v1/checkins",
            json={"employee_id": "ana", "scheduled_for": WHEN},
            headers=svc.auth("mia", "manager"),
        )
        assert (by_manager.json()["initiated_by"], by_manager.json()["initiated_by_id"]) == (
            "manager",
            "mia",
        )
        # An employee without a manager in the directory has nobody to hold it with.
        top = await svc.client.post(
            "/v1/checkins",
            json={"employee_id": "boss", "manager_id": "mia", "scheduled_for": WHEN},
            headers=svc.auth("boss"),
        )
        assert (top.status_code, locs(top)) == (422, [["body", "manager_id"]])


async def test_a_manager_who_lost_the_report_no_longer_completes_their_open_checkin(
    start_checkins: StartCheckins,
) -> None:
    async with start_checkins() as svc:
        await svc.set_policy()
        await svc.team()
        cid = (
            await svc.client.post(
                "/v1/checkins",
                json={"employee_id": "ana", "scheduled_for": WHEN},
                headers=svc.auth("mia"),
            )
        ).json()["checkin_id"]
        await svc.apply(employee(svc.tenant, "max", "boss"))
        await svc.apply(employee(svc.tenant, "ana", "max", at=LATER))
        # The open check-in moves to ana's new manager with the rest of what is owed.
        moved = (await svc.client.get(f"/v1/checkins/{cid}", headers=svc.auth("ana"))).json()
        assert moved["manager_id"] == "max"
        svc.clock.travel_to(datetime(2026, 3, 5, 10, tzinfo=UTC))
        gone = await svc.client.post(
            f"/v1/checkins/{cid}/complete", json={}, headers=svc.auth("mia")
        )
        assert gone.status_code == 404, gone.text
        done = await svc.client.post(
            f"/v1/checkins/{cid}/complete", json={}, headers=svc.auth("max")
        )
        assert done.status_code == 200, done.text


async def test_a_role_in_the_token_never_widens_what_a_person_may_do(
    start_checkins: StartCheckins,
) -> None:
    async with start_checkins() as svc:
        await svc.set_policy()
        await svc.team()
        obligations = "/v1/cadence/obligations?employee_id=ana"
        # ben claims to be a manager: he manages nobody, so he sees nobody's obligations.
        ben_manager = svc.auth("ben", "employee", "manager")
        assert (await svc.client.get(obligations, headers=ben_manager)).status_code == 403
        assert (
            await svc.client.get("/v1/cadence/policies", headers=ben_manager)
        ).status_code == 403
        # mia manages ana in the directory, whatever her token says.
        assert (await svc.client.get(obligations, headers=svc.auth("mia"))).status_code == 200
        assert (
            await svc.client.get("/v1/cadence/policies", headers=svc.auth("mia"))
        ).status_code == 200
        # Organisation-wide roles do not act as a person.
        for role in ("integration", "executive"):
            token = svc.auth("ana", role)
            assert (await svc.client.get(obligations, headers=token)).status_code == 403
            gave = await svc.client.post(
                "/v1/feedback",
                json={"receiver_id": "ben", "kind": "praise", "text": "forged"},
                headers=token,
            )
            assert gave.status_code == 403, gave.text
        cid = (
            await svc.client.post(
                "/v1/checkins",
                json={"employee_id": "ana", "scheduled_for": WHEN},
                headers=svc.auth("ana"),
            )
        ).json()["checkin_id"]
        # Executives see aggregates, not one person's check-in.
        assert (
            await svc.client.get(f"/v1/checkins/{cid}", headers=svc.auth("exec-1", "executive"))
        ).status_code == 404


async def test_reads_of_private_texts_and_changes_of_who_may_read_them_are_on_record(
    start_checkins: StartCheckins,
) -> None:
    async with start_checkins() as svc:
        await svc.team()
        hr = svc.auth("hr-1", "hr_admin")
        cid = (
            await svc.client.post(
                "/v1/checkins",
                json={"employee_id": "ana", "kind": "quarterly_review", "scheduled_for": WHEN},
                headers=svc.auth("mia"),
            )
        ).json()["checkin_id"]
        await svc.client.put(
            f"/v1/checkins/{cid}/notes", json={"notes": "secret words"}, headers=svc.auth("mia")
        )
        assert (
            await svc.client.get(f"/v1/checkins/{cid}", headers=svc.auth("ana"))
        ).status_code == 200
        hidden = await svc.client.get(f"/v1/checkins/{cid}", headers=svc.auth("boss"))
        assert hidden.json()["notes"] is None
        assert (
            await svc.client.get(f"/v1/checkins/{cid}", headers=svc.auth("ben"))
        ).status_code == 404
        setting = await svc.client.put(
            "/v1/checkins/settings", json={"reviews_visible_to_manager_chain": True}, headers=hr
        )
        assert setting.status_code == 200
        shown = await svc.client.get(f"/v1/checkins/{cid}", headers=svc.auth("boss"))
        assert shown.json()["notes"] == "secret words"
        fid = (
            await svc.client.post(
                "/v1/feedback",
                json={"receiver_id": "ana", "kind": "praise", "text": "secret praise"},
                headers=svc.auth("ben"),
            )
        ).json()["feedback_id"]
        assert (
            await svc.client.get(f"/v1/feedback/{fid}", headers=svc.auth("mia"))
        ).status_code == 404

        assert (
            await svc.client.get("/v1/audit?subject_id=ana", headers=svc.auth("ana"))
        ).status_code == 403
        trail = (await svc.client.get("/v1/audit?subject_id=ana", headers=hr)).json()
        seen = {(r["actor_id"], r["action"], r["target"], r["allowed"]) for r in trail}
        review = f"review/{cid}"
        assert {
            ("mia", "change_access", f"checkin/{cid}:participants", True),
            ("ana", "read", review, True),
            ("boss", "read", review, False),  # saw that it happened, not what was said
            ("ben", "read", review, False),  # a 404: the refusal is kept all the same
            ("boss", "read", review, True),
            ("mia", "read", f"feedback/{fid}", False),
        } <= seen
        tenant_trail = (
            await svc.client.get(f"/v1/audit?subject_id={svc.tenant}", headers=hr)
        ).json()
        assert [(r["actor_id"], r["action"]) for r in tenant_trail] == [("hr-1", "change_access")]
        assert "secret" not in str(trail) + str(tenant_trail)


async def test_a_manager_move_from_the_people_topic_is_on_record(
    start_checkins: StartCheckins,
) -> None:
    async with start_checkins() as svc:
        await svc.team()
        await svc.apply(employee(svc.tenant, "ana", "ben", at=LATER))
        trail = (
            await svc.client.get("/v1/audit?subject_id=ana", headers=svc.auth("hr-1", "hr_admin"))
        ).json()
        assert [(r["action"], r["target"]) for r in trail] == [
            ("change_access", "employee/ana:manager")
        ]


async def test_every_route_of_the_service_has_a_row_in_the_access_policy(
    start_checkins: StartCheckins,
) -> None:
    async with start_checkins() as svc:
        spec = (await svc.client.get("/openapi.json")).json()
    served = {
        (method.upper(), path)
        for path, operations in spec["paths"].items()
        for method in operations
        if method in {"get", "put", "post", "patch", "delete"}
    }
    assert served - KIT_ROUTES == set(ROUTES)
    assert set(ROUTES.values()) <= set(POLICY)


def private_goal(tenant: str, goal_id: str, owner: str) -> GoalCreated:
    return GoalCreated(
        tenant_id=tenant,
        occurred_at=datetime(2026, 1, 5, tzinfo=UTC),
        goal_id=goal_id,
        owner_type=OwnerType.PERSON,
        owner_id=owner,
        kind=GoalKind.OKR,
        visibility=Visibility.PRIVATE,
        period_start=date(2026, 1, 1),
        period_end=date(2026, 3, 31),
        update_interval_days=14,
        key_results=[],
    )


async def test_a_former_manager_sees_the_checkin_they_held_but_nothing_of_the_next_ones(
    start_checkins: StartCheckins,
) -> None:
    async with start_checkins() as svc:
        await svc.team()
        await svc.apply(private_goal(svc.tenant, "g-mia-own", "mia"))
        mia = svc.auth("mia")
        held = (
            await svc.client.post(
                "/v1/checkins", json={"employee_id": "ana", "scheduled_for": WHEN}, headers=mia
            )
        ).json()["checkin_id"]
        prep = (await svc.client.get(f"/v1/checkins/{held}/preparation", headers=mia)).json()
        assert [g["goal_id"] for g in prep["goals"]] == ["g-mia-own"]  # her own, to her
        ana_prep = await svc.client.get(f"/v1/checkins/{held}/preparation", headers=svc.auth("ana"))
        assert ana_prep.json()["goals"] == []  # not to her report
        await svc.client.put(f"/v1/checkins/{held}/notes", json={"notes": "held"}, headers=mia)
        svc.clock.travel_to(datetime(2026, 3, 5, 10, tzinfo=UTC))
        assert (
            await svc.client.post(f"/v1/checkins/{held}/complete", json={}, headers=mia)
        ).status_code == 200
        await svc.apply(employee(svc.tenant, "max", "boss"))
        await svc.apply(employee(svc.tenant, "ana", "max", at=LATER))
        max_ = svc.auth("max")
        nxt = (
            await svc.client.post(
                "/v1/checkins",
                json={"employee_id": "ana", "scheduled_for": "2026-03-20T10:00:00+01:00"},
                headers=max_,
            )
        ).json()["checkin_id"]
        await svc.client.post(
            f"/v1/checkins/{nxt}/action-items",
            json={"owner_id": "ana", "text": "new manager's private item"},
            headers=max_,
        )
        old = await svc.client.get(f"/v1/checkins/{held}", headers=mia)
        assert (old.status_code, old.json()["notes"]) == (200, "held")
        old_prep = await svc.client.get(f"/v1/checkins/{held}/preparation", headers=mia)
        for answer in (old, old_prep):
            assert "new manager" not in answer.text
        assert (await svc.client.get(f"/v1/checkins/{nxt}", headers=mia)).status_code == 404
        # The new manager sees that the old one happened, not what was said in it.
        assert (await svc.client.get(f"/v1/checkins/{held}", headers=max_)).json()["notes"] is None


async def test_an_employee_the_hr_platform_marks_inactive_owes_nothing(
    start_checkins: StartCheckins,
) -> None:
    async with start_checkins() as svc:
        await svc.set_policy()
        await svc.team()
        assert {o.state for o in await svc.obligations("ana")} == {"open"}
        await svc.apply(employee(svc.tenant, "ana", "mia", active=False, at=LATER))
        assert {o.state for o in await svc.obligations("ana")} == {"cancelled"}
        assert (await svc.planning_row("ana")).plan_at is None
