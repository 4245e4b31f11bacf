"""HTTP -> database -> CloudEvent on the goals topic, on SQLite and PostgreSQL with real Kafka."""

from __future__ import annotations

from datetime import timedelta

import pytest
from goals_harness import StartGoals, decode
from sqlalchemy import func, select

from rhythm_goals.adapters.db import goal_revisions, goals
from rhythm_shared.contracts.v1 import (
    GoalCreated,
    GoalProgressRecorded,
    GoalStatusChanged,
    GoalUpdated,
)

pytestmark = pytest.mark.kafka


async def test_creating_a_goal_gives_exactly_one_created_cloudevent_keyed_by_the_goal(
    start_goals: StartGoals,
) -> None:
    async with start_goals() as svc:
        response = await svc.create("ann")
        assert response.status_code == 201, response.text
        goal = response.json()
        goal_id = goal["goal_id"]
        assert goal["owner_id"] == "ann"
        assert goal["status"] == "on_track"
        assert goal["key_results"][0]["current"] == 840

        async with svc.runtime.uow() as uow:
            row = (await uow.session.execute(select(goals).where(goals.c.goal_id == goal_id))).one()
            revisions = await uow.session.scalar(
                select(func.count()).where(goal_revisions.c.goal_id == goal_id)
            )
        assert row.tenant_id == svc.tenant
        assert row.next_stale_check_at is not None
        assert revisions == 1

        records = await svc.records("rhythm.goal.created.v1")
        assert len(records) == 1
        record = records[0]
        assert record.key == f"{svc.tenant}/{goal_id}".encode()
        headers = dict(record.headers)
        assert headers["ce_source"] == b"/rhythm/goals"
        assert headers["ce_subject"] == f"goal/{goal_id}".encode()
        assert headers["ce_tenantid"] == svc.tenant.encode()
        envelope = decode(record)
        event = envelope.event
        assert isinstance(event, GoalCreated)
        assert event.goal_id == goal_id
        assert event.title == "Cut checkout latency in half"
        assert event.key_results[0].key_result_id == "kr-1"
        assert event.occurred_at == svc.clock.now()


async def test_a_private_goals_title_stays_out_of_its_created_event(
    start_goals: StartGoals,
) -> None:
    async with start_goals() as svc:
        response = await svc.create("ann", visibility="private", title="Find a new job")
        assert response.status_code == 201, response.text
        (record,) = await svc.records("rhythm.goal.created.v1")
        event = decode(record).event
        assert isinstance(event, GoalCreated)
        assert event.title is None
        assert b"Find a new job" not in record.value


async def test_recording_progress_gives_progress_recorded_and_a_suggested_status_change(
    start_goals: StartGoals,
) -> None:
    async with start_goals() as svc:
        goal_id = (await svc.create("ann")).json()["goal_id"]
        # 2026-03-02 09:00 of a March goal: barely started, so 630 ms (half-way) is on track.
        response = await svc.client.post(
            f"/v1/goals/{goal_id}/key-results/kr-1/progress",
            json={"value": 630, "confidence": 0.8, "comment": "CDN is live in EU"},
            headers=svc.auth("ann"),
        )
        assert response.status_code == 201, response.text
        assert response.json()["progress"] == pytest.approx(0.5)
        assert response.json()["key_results"][0]["current"] == 630

        (record,) = await svc.records("rhythm.goal.progress_recorded.v1")
        event = decode(record).event
        assert isinstance(event, GoalProgressRecorded)
        assert record.key == f"{svc.tenant}/{goal_id}".encode()
        assert (event.key_result_id, event.value, event.recorded_by) == ("kr-1", 630, "ann")
        assert event.goal_progress == pytest.approx(0.5)
        assert event.confidence == 0.8
        assert b"CDN" not in record.value  # progress comments never leave the service

        # Three weeks on with no further progress, a new low value suggests off track.
        svc.clock.advance(timedelta(days=21))
        response = await svc.client.post(
            f"/v1/goals/{goal_id}/key-results/kr-1/progress",
            json={"value": 800, "confidence": 0.5},
            headers=svc.auth("ann"),
        )
        assert response.json()["status"] == "off_track"
        (changed,) = await svc.records("rhythm.goal.status_changed.v1")
        status_event = decode(changed).event
        assert isinstance(status_event, GoalStatusChanged)
        assert status_event.suggested
        assert status_event.changed_by is None
        assert (status_event.from_status, status_event.to_status) == ("on_track", "off_track")


async def test_update_status_archive_and_alignment_each_publish_their_event(
    start_goals: StartGoals,
) -> None:
    async with start_goals() as svc:
        parent = (await svc.create("ann", title="Team goal")).json()["goal_id"]
        goal_id = (await svc.create("ann")).json()["goal_id"]
        auth = svc.auth("ann")

        response = await svc.client.patch(
            f"/v1/goals/{goal_id}", json={"title": "Faster checkout"}, headers=auth
        )
        assert response.status_code == 200, response.text
        assert response.json()["revision"] == 2
        response = await svc.client.put(
            f"/v1/goals/{goal_id}/parent", json={"parent_goal_id": parent}, headers=auth
        )
        assert response.status_code == 200, response.text
        assert response.json()["parent_goal_id"] == parent
        response = await svc.client.post(
            f"/v1/goals/{goal_id}/status", json={"status": "at_risk"}, headers=auth
        )
        assert response.json()["status"] == "at_risk"
        assert response.json()["status_overridden"] is True
        response = await svc.client.post(
            f"/v1/goals/{goal_id}/archive", json={"reason": "superseded"}, headers=auth
        )
        assert response.status_code == 200, response.text
        assert response.json()["archive_reason"] == "superseded"
        again = await svc.client.patch(f"/v1/goals/{goal_id}", json={"title": "x"}, headers=auth)
        assert again.status_code == 409

        updated = await svc.records("rhythm.goal.updated.v1", min_count=2)
        events = sorted((decode(r).event for r in updated), key=lambda e: e.revision)
        assert [e.changed_fields for e in events if isinstance(e, GoalUpdated)] == [
            ["title"],
            ["parent_goal_id"],
        ]
        (status,) = await svc.records("rhythm.goal.status_changed.v1")
        status_event = decode(status).event
        assert isinstance(status_event, GoalStatusChanged)
        assert status_event.changed_by == "ann"
        assert not status_event.suggested
        (archived,) = await svc.records("rhythm.goal.archived.v1")
        assert decode(archived).event.reason == "superseded"

        history = (await svc.client.get(f"/v1/goals/{goal_id}/history", headers=auth)).json()
        assert [(r["revision"], r["action"]) for r in history["items"]] == [
            (1, "created"),
            (2, "updated"),
            (3, "realigned"),
            (4, "status_changed"),
            (5, "archived"),
        ]
        assert history["items"][1]["changes"]["title"] == {
            "from": "Cut checkout latency in half",
            "to": "Faster checkout",
        }
        assert all(r["changed_by"] == "ann" for r in history["items"])


async def test_a_retried_write_with_the_same_idempotency_key_has_no_second_effect(
    start_goals: StartGoals,
) -> None:
    async with start_goals() as svc:
        headers = {**svc.auth("ann"), "Idempotency-Key": "create-1"}
        body = {"title": "Once", "period_start": "2026-03-01", "period_end": "2026-03-31"}
        first = await svc.client.post("/v1/goals", json=body, headers=headers)
        second = await svc.client.post("/v1/goals", json=body, headers=headers)
        assert first.status_code == second.status_code == 201
        assert second.json() == first.json()
        assert second.headers.get("Idempotent-Replayed") == "true"
        assert await svc.goal_count() == 1

        goal_id = first.json()["goal_id"]
        progress = {**svc.auth("ann"), "Idempotency-Key": "progress-1"}
        await svc.create("ann")  # noise: another goal
        url = f"/v1/goals/{goal_id}/status"
        for _ in range(2):
            response = await svc.client.post(url, json={"status": "at_risk"}, headers=progress)
            assert response.status_code == 200
        reused = await svc.client.post(url, json={"status": "off_track"}, headers=progress)
        assert reused.status_code == 422
        assert reused.json()["detail"][0]["loc"] == ["body", "Idempotency-Key"]

        created = await svc.records("rhythm.goal.created.v1", min_count=2)
        assert len(created) == 2
        assert len(await svc.records("rhythm.goal.status_changed.v1")) == 1
        history = await svc.client.get(f"/v1/goals/{goal_id}/history", headers=svc.auth("ann"))
        assert len(history.json()["items"]) == 2


async def test_the_openapi_document_lists_the_goal_endpoints_with_examples(
    start_goals: StartGoals,
) -> None:
    async with start_goals() as svc:
        spec = (await svc.client.get("/openapi.json")).json()
        assert "/v1/goals/{goal_id}/key-results/{key_result_id}/progress" in spec["paths"]
        for schema in ("CreateGoal", "RecordProgress", "BulkCreateGoals", "GoalView"):
            assert spec["components"]["schemas"][schema]["examples"], schema
        create = spec["paths"]["/v1/goals"]["post"]
        assert any(p["name"] == "Idempotency-Key" for p in create["parameters"])


async def test_revising_key_results_keeps_measured_values_and_recomputes_progress(
    start_goals: StartGoals,
) -> None:
    async with start_goals() as svc:
        auth = svc.auth("ann")
        goal_id = (await svc.create("ann")).json()["goal_id"]
        await svc.client.post(
            f"/v1/goals/{goal_id}/key-results/kr-1/progress",
            json={"value": 630, "confidence": 0.9},
            headers=auth,
        )
        revised = await svc.client.patch(
            f"/v1/goals/{goal_id}",
            json={
                "key_results": [
                    {
                        "key_result_id": "kr-1",
                        "unit": "ms",
                        "start": 840,
                        "target": 420,
                        "direction": "decrease",
                        "weight": 1,
                    },
                    {"unit": "%", "start": 0, "target": 100, "weight": 1},
                ]
            },
            headers=auth,
        )
        assert revised.status_code == 200, revised.text
        goal = revised.json()
        assert [(k["key_result_id"], k["current"]) for k in goal["key_results"]] == [
            ("kr-1", 630),
            ("kr-2", 0),
        ]
        assert goal["progress"] == pytest.approx(0.25)
        (updated,) = await svc.records("rhythm.goal.updated.v1")
        event = decode(updated).event
        assert isinstance(event, GoalUpdated)
        assert event.changed_fields == ["key_results"]
        assert event.revision == goal["revision"]

        # The same definition again is no change: no revision, no event.
        same = await svc.client.patch(
            f"/v1/goals/{goal_id}", json={"title": goal["title"]}, headers=auth
        )
        assert same.json()["revision"] == goal["revision"]


async def test_a_status_handed_back_follows_rhythms_suggestion_again(
    start_goals: StartGoals,
) -> None:
    async with start_goals() as svc:
        auth = svc.auth("ann")
        goal_id = (await svc.create("ann")).json()["goal_id"]
        url = f"/v1/goals/{goal_id}/status"
        assert (await svc.client.post(url, json={"status": "achieved"}, headers=auth)).json()[
            "status_overridden"
        ]
        # A person's status stands through new progress...
        svc.clock.advance(timedelta(days=20))
        progress = await svc.client.post(
            f"/v1/goals/{goal_id}/key-results/kr-1/progress",
            json={"value": 800, "confidence": 0.5},
            headers=auth,
        )
        assert progress.json()["status"] == "achieved"
        assert progress.json()["suggested_status"] == "off_track"
        # ...until it is handed back.
        handed_back = await svc.client.post(url, json={"status": None}, headers=auth)
        assert handed_back.json()["status"] == "off_track"
        assert handed_back.json()["status_overridden"] is False
        changes = await svc.records("rhythm.goal.status_changed.v1", min_count=2)
        events = [decode(r).event for r in changes]
        assert [(e.to_status, e.suggested) for e in events] == [
            ("achieved", False),
            ("off_track", True),
        ]
