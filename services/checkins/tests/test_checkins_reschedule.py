"""Rescheduling and cancelling a check-in: who may, the invitation's sequence, the events, and a
cancelled check-in that fulfils nothing (real Kafka, SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from checkins_harness import StartCheckins

from rhythm_shared.contracts import topics
from rhythm_shared.contracts.v1 import (
    CheckinCancelled,
    CheckinMissed,
    CheckinRescheduled,
    CheckinScheduled,
    Initiator,
)

pytestmark = pytest.mark.kafka

KINDS = (CheckinScheduled.type, CheckinRescheduled.type, CheckinCancelled.type)


async def test_either_participant_moves_then_cancels_a_checkin_and_each_change_is_one_event(
    start_checkins: StartCheckins,
) -> None:
    async with start_checkins() as svc:
        await svc.team()
        ana, mia = svc.auth("ana"), svc.auth("mia", "manager")
        created = await svc.client.post(
            "/v1/checkins",
            json={"employee_id": "ana", "scheduled_for": "2026-03-05T10:00:00+01:00"},
            headers=ana,
        )
        assert created.status_code == 201, created.text
        assert created.json()["invite_sequence"] == 0
        cid = created.json()["checkin_id"]

        moved = await svc.client.patch(
            f"/v1/checkins/{cid}", json={"scheduled_for": "2026-03-06T15:30:00"}, headers=mia
        )
        assert moved.status_code == 200, moved.text
        body = moved.json()
        assert body["invite_sequence"] == 1
        assert body["state"] == "scheduled"
        # Without an offset: read in the check-in's zone (ana's, Amsterdam: UTC+1 in March).
        assert datetime.fromisoformat(body["scheduled_for"]) == datetime(
            2026, 3, 6, 14, 30, tzinfo=UTC
        )
        same = await svc.client.patch(
            f"/v1/checkins/{cid}", json={"scheduled_for": "2026-03-06T14:30:00Z"}, headers=ana
        )
        assert (same.status_code, same.json()["invite_sequence"]) == (200, 1)  # no change

        cancelled = await svc.client.post(f"/v1/checkins/{cid}/cancel", headers=ana)
        assert cancelled.status_code == 200, cancelled.text
        assert (cancelled.json()["state"], cancelled.json()["invite_sequence"]) == (
            "cancelled",
            2,
        )
        again = await svc.client.post(f"/v1/checkins/{cid}/cancel", headers=mia)
        assert (again.status_code, again.json()["invite_sequence"]) == (200, 2)  # idempotent
        late = await svc.client.patch(
            f"/v1/checkins/{cid}", json={"scheduled_for": "2026-03-09T10:00:00Z"}, headers=mia
        )
        assert late.status_code == 409, late.text
        assert "cancelled" in late.text

        events = await svc.events(topics.CHECKINS, types=KINDS, min_count=3)
        assert [e.type for e in events] == list(KINDS)
        rescheduled, gone = events[1].event, events[2].event
        assert isinstance(rescheduled, CheckinRescheduled)
        assert isinstance(gone, CheckinCancelled)
        assert rescheduled.sequence == 1
        assert rescheduled.scheduled_for == datetime(2026, 3, 6, 14, 30, tzinfo=UTC)
        assert rescheduled.previous_scheduled_for == datetime(2026, 3, 5, 9, tzinfo=UTC)
        assert (rescheduled.initiated_by, rescheduled.changed_by) == (
            Initiator.EMPLOYEE,
            Initiator.MANAGER,
        )
        assert (gone.sequence, gone.changed_by, gone.manager_id) == (2, Initiator.EMPLOYEE, "mia")
        assert gone.scheduled_for == rescheduled.scheduled_for
        assert {e.event.employee_id for e in events} == {"ana"}  # keyed like the others


async def test_only_the_participants_move_or_cancel_and_a_held_checkin_stays_as_it_was(
    start_checkins: StartCheckins,
) -> None:
    async with start_checkins() as svc:
        await svc.team()
        created = await svc.client.post(
            "/v1/checkins",
            json={"employee_id": "ana", "scheduled_for": "2026-03-05T10:00:00+01:00"},
            headers=svc.auth("mia"),
        )
        cid = created.json()["checkin_id"]
        move = {"scheduled_for": "2026-03-06T10:00:00+01:00"}
        # The manager's manager sees that it exists but is not in it; a peer does not see it.
        for headers, status in (
            (svc.auth("boss", "manager"), 403),
            (svc.auth("hr-1", "hr_admin"), 403),
            (svc.auth("ben"), 404),
            (svc.auth("ana", tenant="other-tenant"), 404),
        ):
            patched = await svc.client.patch(f"/v1/checkins/{cid}", json=move, headers=headers)
            assert patched.status_code == status, patched.text
            posted = await svc.client.post(f"/v1/checkins/{cid}/cancel", headers=headers)
            assert posted.status_code == status, posted.text
        unknown = await svc.client.post("/v1/checkins/c-nope/cancel", headers=svc.auth("ana"))
        assert unknown.status_code == 404
        bad_zone = await svc.client.patch(
            f"/v1/checkins/{cid}",
            json={"scheduled_for": "2026-03-06T10:00:00", "time_zone": "Mars/Base"},
            headers=svc.auth("ana"),
        )
        assert bad_zone.status_code == 422
        assert "time_zone" in bad_zone.text
        missing = await svc.client.patch(f"/v1/checkins/{cid}", json={}, headers=svc.auth("ana"))
        assert missing.status_code == 422
        assert "scheduled_for" in missing.text

        svc.clock.travel_to(datetime(2026, 3, 5, 10, tzinfo=UTC))
        done = await svc.client.post(
            f"/v1/checkins/{cid}/complete", json={}, headers=svc.auth("ana")
        )
        assert done.status_code == 200, done.text
        for response in (
            await svc.client.patch(f"/v1/checkins/{cid}", json=move, headers=svc.auth("ana")),
            await svc.client.post(f"/v1/checkins/{cid}/cancel", headers=svc.auth("mia")),
        ):
            assert response.status_code == 409, response.text
            assert "completed" in response.text
        view = (await svc.client.get(f"/v1/checkins/{cid}", headers=svc.auth("ana"))).json()
        assert (view["state"], view["invite_sequence"]) == ("completed", 0)


async def test_a_cancelled_checkin_fulfils_no_obligation(start_checkins: StartCheckins) -> None:
    async with start_checkins() as svc:
        assert (await svc.set_policy()).status_code == 200
        await svc.team()
        march = (await svc.obligations("ana"))[0]
        created = await svc.client.post(
            "/v1/checkins",
            json={"employee_id": "ana", "scheduled_for": "2026-03-20T10:00:00+01:00"},
            headers=svc.auth("ana"),
        )
        cid = created.json()["checkin_id"]
        cancelled = await svc.client.post(f"/v1/checkins/{cid}/cancel", headers=svc.auth("mia"))
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["obligation_id"] is None

        await svc.sweep(datetime(2026, 3, 29, 12, tzinfo=UTC))
        await svc.sweep(datetime(2026, 4, 7, 12, tzinfo=UTC))
        assert (await svc.obligations("ana"))[0].state in ("missed", "escalated")
        missed = await svc.cadence_events(CheckinMissed.type)
        assert march.id in {e.event.obligation_id for e in missed if e.event.employee_id == "ana"}
