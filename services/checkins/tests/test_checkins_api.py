"""The HTTP API: conversations, privacy, idempotent retries, field-level 422s, permissions."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from checkins_harness import MONTHLY_POLICY, StartCheckins, employee
from sqlalchemy import func, select

from rhythm_checkins.adapters.db import kit
from rhythm_shared.contracts import topics
from rhythm_shared.contracts.v1 import (
    CheckinCompleted,
    CheckinScheduled,
    FeedbackGiven,
    GoalArchived,
    GoalCreated,
    GoalProgressRecorded,
    ReflectionSubmitted,
    ReviewCompleted,
)
from rhythm_shared.contracts.v1.values import ArchiveReason, GoalKind, OwnerType, Visibility

pytestmark = pytest.mark.kafka

SECRET_WORDS = ("burnout", "reorg", "promotion", "thank")


def goal(tenant: str, goal_id: str, owner: str) -> GoalCreated:
    return GoalCreated(
        tenant_id=tenant,
        occurred_at=datetime(2026, 1, 5, tzinfo=UTC),
        goal_id=goal_id,
        owner_type=OwnerType.PERSON,
        owner_id=owner,
        kind=GoalKind.OKR,
        title=f"Goal {goal_id}",
        visibility=Visibility.TENANT,
        period_start=date(2026, 1, 1),
        period_end=date(2026, 3, 31),
        update_interval_days=14,
        key_results=[],
    )


async def test_a_checkin_is_prepared_held_and_completed_and_its_events_carry_no_text(
    start_checkins: StartCheckins,
) -> None:
    async with start_checkins() as svc:
        t = svc.tenant
        await svc.set_policy()
        await svc.team()
        await svc.apply(goal(t, "g-ana", "ana"), goal(t, "g-mia", "mia"), goal(t, "g-old", "ana"))
        await svc.apply(
            GoalProgressRecorded(
                tenant_id=t,
                occurred_at=datetime(2026, 3, 1, tzinfo=UTC),
                goal_id="g-ana",
                key_result_id="kr-1",
                value=1,
                goal_progress=0.25,
                confidence=0.8,
                recorded_by="ana",
            ),
            GoalArchived(
                tenant_id=t,
                occurred_at=datetime(2026, 3, 1, tzinfo=UTC),
                goal_id="g-old",
                reason=ArchiveReason.WITHDRAWN,
            ),
        )
        ana, mia = svc.auth("ana"), svc.auth("mia", "manager")
        created = await svc.client.post(
            "/v1/checkins",
            json={"employee_id": "ana", "scheduled_for": "2026-03-05T10:00:00"},  # ana's zone
            headers=ana,
        )
        assert created.status_code == 201, created.text
        checkin = created.json()
        cid = checkin["checkin_id"]
        assert (checkin["manager_id"], checkin["initiated_by"]) == ("mia", "employee")
        assert checkin["scheduled_for"].startswith("2026-03-05T09:00:00")

        reflection = await svc.client.put(
            f"/v1/checkins/{cid}/reflection",
            json={"wins": "shipped", "challenges": "burnout risk", "pulse": 5},
            headers=ana,
        )
        assert reflection.status_code == 200, reflection.text
        prep = (await svc.client.get(f"/v1/checkins/{cid}/preparation", headers=mia)).json()
        assert {g["goal_id"]: g["progress"] for g in prep["goals"]} == {
            "g-ana": 0.25,
            "g-mia": 0.0,
        }
        notes = await svc.client.put(
            f"/v1/checkins/{cid}/notes",
            json={
                "reality": "reorg coming",
                "will": "talk promotion",
                "goals_discussed": ["g-ana"],
            },
            headers=mia,
        )
        assert notes.status_code == 200, notes.text
        item = await svc.client.post(
            f"/v1/checkins/{cid}/action-items",
            json={"owner_id": "ana", "text": "write the reorg memo", "due_on": "2026-03-20"},
            headers=mia,
        )
        assert item.status_code == 201, item.text
        svc.clock.travel_to(datetime(2026, 3, 5, 10, tzinfo=UTC))
        done = await svc.client.post(f"/v1/checkins/{cid}/complete", json={}, headers=mia)
        assert done.status_code == 200, done.text
        assert done.json()["state"] == "completed"

        # The open action item carries over to the next check-in until it is done.
        svc.clock.travel_to(datetime(2026, 3, 25, 8, tzinfo=UTC))
        progress_later = GoalProgressRecorded(
            tenant_id=t,
            occurred_at=datetime(2026, 3, 20, tzinfo=UTC),
            goal_id="g-ana",
            key_result_id="kr-1",
            value=2,
            goal_progress=0.5,
            confidence=0.8,
            recorded_by="ana",
        )
        await svc.apply(progress_later)
        nxt = await svc.client.post(
            "/v1/checkins",
            json={"employee_id": "ana", "scheduled_for": "2026-04-02T10:00:00+02:00"},
            headers=mia,
        )
        nxt_id = nxt.json()["checkin_id"]
        carried = nxt.json()["action_items"]
        assert [(i["text"], i["done"]) for i in carried] == [("write the reorg memo", False)]
        prep = (await svc.client.get(f"/v1/checkins/{nxt_id}/preparation", headers=ana)).json()
        g_ana = next(g for g in prep["goals"] if g["goal_id"] == "g-ana")
        assert (g_ana["progress_at_last_checkin"], g_ana["progress_since_last_checkin"]) == (
            0.25,
            0.25,
        )
        marked = await svc.client.put(
            f"/v1/checkins/action-items/{carried[0]['action_item_id']}",
            json={"done": True},
            headers=ana,
        )
        assert marked.json()["done"] is True
        again = (await svc.client.get(f"/v1/checkins/{nxt_id}", headers=ana)).json()
        assert again["action_items"] == []

        kinds = (
            CheckinScheduled.type,
            ReflectionSubmitted.type,
            CheckinCompleted.type,
        )
        events = await svc.events(topics.CHECKINS, types=kinds, min_count=4)
        assert [e.type for e in events if e.event.employee_id == "ana"] == [
            CheckinScheduled.type,
            ReflectionSubmitted.type,
            CheckinCompleted.type,
            CheckinScheduled.type,
        ]
        completed = next(e.event for e in events if isinstance(e.event, CheckinCompleted))
        assert completed.goals_discussed == ["g-ana"]
        # The reflection's pulse stays off the public topic (the tenant did not opt in).
        assert (completed.open_action_items, completed.pulse) == (1, None)
        assert completed.initiated_by.value == "employee"
        for e in events:
            body = e.event.model_dump_json().lower()
            assert not any(word in body for word in SECRET_WORDS)


async def test_a_review_is_concluded_and_its_notes_reach_the_chain_only_when_enabled(
    start_checkins: StartCheckins,
) -> None:
    async with start_checkins() as svc:
        await svc.team()
        created = await svc.client.post(
            "/v1/checkins",
            json={
                "employee_id": "ana",
                "kind": "quarterly_review",
                "scheduled_for": "2026-03-30T10:00:00+02:00",
            },
            headers=svc.auth("mia"),
        )
        cid = created.json()["checkin_id"]
        await svc.client.put(
            f"/v1/checkins/{cid}/notes", json={"notes": "promotion case"}, headers=svc.auth("mia")
        )
        svc.clock.travel_to(datetime(2026, 3, 30, 9, tzinfo=UTC))
        await svc.client.post(f"/v1/checkins/{cid}/complete", json={}, headers=svc.auth("ana"))

        boss = svc.auth("boss", "manager")
        hidden = (await svc.client.get(f"/v1/checkins/{cid}", headers=boss)).json()
        assert (hidden["state"], hidden["notes"], hidden["grow"]) == ("completed", None, None)
        setting = await svc.client.put(
            "/v1/checkins/settings",
            json={"reviews_visible_to_manager_chain": True},
            headers=svc.auth("hr-1", "hr_admin"),
        )
        assert setting.status_code == 200
        shown = (await svc.client.get(f"/v1/checkins/{cid}", headers=boss)).json()
        assert shown["notes"] == "promotion case"
        # Not for a colleague, and not for HR: the chain only.
        assert (
            await svc.client.get(f"/v1/checkins/{cid}", headers=svc.auth("ben"))
        ).status_code == 404
        hr = (
            await svc.client.get(f"/v1/checkins/{cid}", headers=svc.auth("hr-1", "hr_admin"))
        ).json()
        assert hr["notes"] is None

        [review] = await svc.events(topics.CHECKINS, types=(ReviewCompleted.type,))
        assert isinstance(review.event, ReviewCompleted)
        assert (review.event.period_start, review.event.period_end) == (
            date(2026, 1, 1),
            date(2026, 3, 31),
        )


async def test_feedback_can_be_asked_for_and_only_its_two_people_read_it(
    start_checkins: StartCheckins,
) -> None:
    async with start_checkins() as svc:
        await svc.team()
        asked = await svc.client.post(
            "/v1/feedback/requests",
            json={"from_id": "ben", "prompt": "How was my demo?"},
            headers=svc.auth("ana"),
        )
        assert asked.status_code == 201, asked.text
        inbox = (await svc.client.get("/v1/feedback/requests", headers=svc.auth("ben"))).json()
        assert [r["requester_id"] for r in inbox] == ["ana"]
        given = await svc.client.post(
            "/v1/feedback",
            json={
                "receiver_id": "ana",
                "kind": "praise",
                "text": "thank you for the clear demo",
                "request_id": asked.json()["request_id"],
            },
            headers=svc.auth("ben"),
        )
        assert given.status_code == 201, given.text
        fid = given.json()["feedback_id"]
        unasked = await svc.client.post(
            "/v1/feedback",
            json={"receiver_id": "ben", "kind": "constructive", "text": "shorter slides"},
            headers=svc.auth("mia"),
        )
        assert unasked.status_code == 201

        received = (await svc.client.get("/v1/feedback", headers=svc.auth("ana"))).json()
        assert [f["text"] for f in received] == ["thank you for the clear demo"]
        assert (
            await svc.client.get(f"/v1/feedback/{fid}", headers=svc.auth("mia"))
        ).status_code == 404
        events = await svc.events(topics.CHECKINS, types=(FeedbackGiven.type,), min_count=2)
        assert sorted((e.event.receiver_id, e.event.requested) for e in events) == [
            ("ana", True),
            ("ben", False),
        ]
        assert events[0].subject.startswith("employee/")
        assert all("thank" not in e.event.model_dump_json() for e in events)


async def test_a_retried_request_with_the_same_idempotency_key_has_no_second_effect(
    start_checkins: StartCheckins,
) -> None:
    async with start_checkins() as svc:
        await svc.team()
        body = {"employee_id": "ana", "scheduled_for": "2026-03-05T10:00:00+01:00"}
        headers = {**svc.auth("ana"), "Idempotency-Key": "k-1"}
        first = await svc.client.post("/v1/checkins", json=body, headers=headers)
        second = await svc.client.post("/v1/checkins", json=body, headers=headers)
        assert first.status_code == second.status_code == 201
        assert first.json() == second.json()
        assert second.headers.get("Idempotent-Replayed") == "true"
        other = await svc.client.post(
            "/v1/checkins", json={**body, "kind": "quarterly_review"}, headers=headers
        )
        assert other.status_code == 422
        fb = {"receiver_id": "ben", "kind": "praise", "text": "nice"}
        fb_headers = {**svc.auth("ana"), "Idempotency-Key": "k-2"}
        for _ in range(2):
            assert (
                await svc.client.post("/v1/feedback", json=fb, headers=fb_headers)
            ).status_code == 201
        async with svc.runtime.uow() as uow:
            counts = dict(
                (
                    await uow.session.execute(
                        select(kit.outbox.c.event_type, func.count()).group_by(
                            kit.outbox.c.event_type
                        )
                    )
                ).all()
            )
        assert counts[CheckinScheduled.type] == 1
        assert counts[FeedbackGiven.type] == 1
        listed = (await svc.client.get("/v1/checkins", headers=svc.auth("ana"))).json()
        assert len(listed) == 1


def locs(response: object) -> list[list[object]]:
    return [e["loc"] for e in response.json()["detail"]]  # type: ignore[attr-defined]


async def test_bad_input_gets_field_level_messages(start_checkins: StartCheckins) -> None:
    async with start_checkins() as svc:
        await svc.team()
        await svc.apply(employee("other-tenant", "zed", None))
        ana = svc.auth("ana")

        stranger = await svc.client.post(
            "/v1/checkins",
            json={
                "employee_id": "ana",
                "manager_id": "zed",
                "scheduled_for": "2026-03-05T10:00:00Z",
            },
            headers=ana,
        )
        assert stranger.status_code == 422
        assert locs(stranger) == [["body", "manager_id"]]
        zone = await svc.client.post(
            "/v1/checkins",
            json={
                "employee_id": "ana",
                "scheduled_for": "2026-03-05T10:00:00",
                "time_zone": "Mars/Base",
            },
            headers=ana,
        )
        assert (zone.status_code, locs(zone)) == (422, [["body", "time_zone"]])

        cid = (
            await svc.client.post(
                "/v1/checkins",
                json={"employee_id": "ana", "scheduled_for": "2026-03-05T10:00:00+01:00"},
                headers=ana,
            )
        ).json()["checkin_id"]
        pulse = await svc.client.put(
            f"/v1/checkins/{cid}/reflection", json={"pulse": 6}, headers=ana
        )
        assert (pulse.status_code, locs(pulse)) == (422, [["body", "pulse"]])
        svc.clock.travel_to(datetime(2026, 3, 6, 9, tzinfo=UTC))
        early = await svc.client.post(
            f"/v1/checkins/{cid}/complete",
            json={"held_at": "2026-03-04T16:00:00+01:00"},
            headers=ana,
        )
        assert (early.status_code, locs(early)) == (422, [["body", "held_at"]])
        assert "scheduled day" in early.json()["detail"][0]["msg"]
        unknown_goal = await svc.client.post(
            f"/v1/checkins/{cid}/complete", json={"goals_discussed": ["g-nope"]}, headers=ana
        )
        assert locs(unknown_goal) == [["body", "goals_discussed", 0]]

        hr = svc.auth("hr-1", "hr_admin")
        zero = {**MONTHLY_POLICY, "rules": [{"kind": "monthly", "frequency": 0}]}
        bad = await svc.client.put(
            f"/v1/cadence/policies/tenant/{svc.tenant}", json=zero, headers=hr
        )
        assert bad.status_code == 422
        assert ["body", "rules", 0, "frequency"] in locs(bad)
        lead = {
            **MONTHLY_POLICY,
            "escalate_after": 0,
            "rules": [{"kind": "monthly", "frequency": "weekly", "lead_time_days": 9}],
        }
        bad = await svc.client.put(
            f"/v1/cadence/policies/tenant/{svc.tenant}", json=lead, headers=hr
        )
        assert sorted(map(str, locs(bad))) == sorted(
            map(str, [["body", "rules", 0, "lead_time_days"], ["body", "escalate_after"]])
        )
        fb = await svc.client.post(
            "/v1/feedback", json={"receiver_id": "zed", "kind": "praise", "text": "hi"}, headers=ana
        )
        assert (fb.status_code, locs(fb)) == (422, [["body", "receiver_id"]])
        assert "Traceback" not in fb.text


async def test_permissions_follow_roles_participants_and_tenants(
    start_checkins: StartCheckins,
) -> None:
    async with start_checkins() as svc:
        await svc.team()
        assert (await svc.set_policy()).status_code == 200
        employee_policy = await svc.client.put(
            f"/v1/cadence/policies/tenant/{svc.tenant}",
            json=MONTHLY_POLICY,
            headers=svc.auth("mia", "manager"),
        )
        assert employee_policy.status_code == 403
        assert (
            await svc.client.get("/v1/cadence/policies", headers=svc.auth("ana"))
        ).status_code == 403
        assert (
            await svc.client.get("/v1/cadence/policies", headers=svc.auth("mia", "manager"))
        ).status_code == 200

        # Obligations: oneself, the manager chain and hr_admin; not a peer.
        url = "/v1/cadence/obligations?employee_id=ana"
        assert (await svc.client.get(url, headers=svc.auth("ana"))).status_code == 200
        assert (await svc.client.get(url, headers=svc.auth("boss"))).status_code == 200
        assert (await svc.client.get(url, headers=svc.auth("ben"))).status_code == 403
        assert (
            await svc.client.get(url, headers=svc.auth("x", "hr_admin", tenant="t2"))
        ).status_code == 404

        # Scheduling: the employee or their manager, nobody else.
        body = {"employee_id": "ana", "scheduled_for": "2026-03-05T10:00:00+01:00"}
        assert (
            await svc.client.post("/v1/checkins", json=body, headers=svc.auth("ben"))
        ).status_code == 403
        cid = (await svc.client.post("/v1/checkins", json=body, headers=svc.auth("ana"))).json()[
            "checkin_id"
        ]
        # Only the employee reflects; a colleague and another tenant don't even see it.
        assert (
            await svc.client.put(
                f"/v1/checkins/{cid}/reflection", json={"pulse": 3}, headers=svc.auth("mia")
            )
        ).status_code == 403
        assert (
            await svc.client.get(f"/v1/checkins/{cid}", headers=svc.auth("ben"))
        ).status_code == 404
        other_tenant = svc.auth("ana", tenant="someone-else")
        assert (
            await svc.client.get(f"/v1/checkins/{cid}", headers=other_tenant)
        ).status_code == 404
        assert (
            await svc.client.post(f"/v1/checkins/{cid}/complete", json={}, headers=other_tenant)
        ).status_code == 404
        # The skip-level sees that it happened, not what was said.
        seen = (await svc.client.get(f"/v1/checkins/{cid}", headers=svc.auth("boss"))).json()
        assert seen["reflection"] is None
        assert (await svc.client.get("/v1/checkins")).status_code == 401
        # Completing twice conflicts.
        svc.clock.travel_to(datetime(2026, 3, 5, 10, tzinfo=UTC))
        assert (
            await svc.client.post(f"/v1/checkins/{cid}/complete", json={}, headers=svc.auth("ana"))
        ).status_code == 200
        assert (
            await svc.client.post(f"/v1/checkins/{cid}/complete", json={}, headers=svc.auth("ana"))
        ).status_code == 409


async def test_the_openapi_document_has_examples(start_checkins: StartCheckins) -> None:
    async with start_checkins() as svc:
        spec = (await svc.client.get("/openapi.json")).json()
        paths = spec["paths"]
        for path in ("/v1/checkins", "/v1/feedback", "/v1/cadence/policies/{scope}/{scope_id}"):
            assert path in paths
        schemas = spec["components"]["schemas"]
        assert schemas["ScheduleCheckinRequest"]["examples"]
        assert schemas["PolicyRequest"]["examples"]
