"""The HTTP API: preferences, delivery history, access rules and field-level errors."""

from __future__ import annotations

import pytest
from notifications_harness import SmtpSink, StartService, employee
from test_email_delivery import missed

pytestmark = pytest.mark.kafka


async def test_preferences_default_sensibly_and_are_validated_field_by_field(
    start_service: StartService, tenant: str
) -> None:
    async with start_service(consumers=False) as svc:
        me = svc.token("e-1")
        defaults = (await svc.client.get("/v1/preferences", headers=me)).json()
        assert defaults["quiet_hours_start"] == "20:00"
        assert defaults["quiet_hours_end"] == "08:00"
        assert defaults["working_days"] == [1, 2, 3, 4, 5]
        assert defaults["categories"]["checkin_missed"] == {"channel": "email", "mode": "immediate"}
        assert defaults["categories"]["feedback_received"]["channel"] == "both"

        bad = await svc.client.put(
            "/v1/preferences",
            json={
                "quiet_hours_start": "25:00",
                "working_days": [0],
                "categories": {"gossip": {"channel": "email"}},
            },
            headers=me,
        )
        assert bad.status_code == 422
        locs = {tuple(e["loc"]) for e in bad.json()["detail"]}
        assert ("body", "quiet_hours_start") in locs
        assert ("body", "working_days", 0) in locs
        assert any(loc[:2] == ("body", "categories") for loc in locs)
        half = await svc.client.put(
            "/v1/preferences", json={"quiet_hours_start": "22:00"}, headers=me
        )
        assert half.status_code == 422
        assert half.json()["detail"][0]["loc"] == ["body", "quiet_hours_end"]

        headers = {**me, "Idempotency-Key": "prefs-1"}
        body = {
            "quiet_hours_start": None,
            "quiet_hours_end": None,
            "working_days": [1, 2, 3, 4, 5, 6, 7],
            "digest_hour": 7,
            "categories": {"goal_stale": {"channel": "push", "mode": "weekly"}},
        }
        first = await svc.client.put("/v1/preferences", json=body, headers=headers)
        again = await svc.client.put("/v1/preferences", json=body, headers=headers)
        assert first.status_code == again.status_code == 200
        assert again.headers.get("Idempotent-Replayed") == "true"
        saved = first.json()
        assert saved["quiet_hours_start"] is None
        assert saved["working_days"] == [1, 2, 3, 4, 5, 6, 7]
        assert saved["categories"]["goal_stale"] == {"channel": "push", "mode": "weekly"}

        others = await svc.client.get("/v1/preferences?employee_id=e-2", headers=me)
        assert others.status_code == 403
        admin = await svc.client.get(
            "/v1/preferences?employee_id=e-1", headers=svc.token("a", "hr_admin")
        )
        assert admin.json()["digest_hour"] == 7
        other_tenant = await svc.client.get(
            "/v1/preferences?employee_id=e-1", headers=svc.token("a", "hr_admin", tenant="x")
        )
        assert other_tenant.json()["digest_hour"] == 9  # nothing of tenant A leaks
        assert (await svc.client.get("/v1/preferences")).status_code == 401


async def test_delivery_history_is_queryable_per_recipient_and_per_source_event(
    start_service: StartService, smtp_sink: SmtpSink, tenant: str
) -> None:
    async with start_service() as svc:
        await svc.add_people(employee(tenant, "m-1"), employee(tenant, "e-1", manager_id="m-1"))
        [event_id] = await svc.publish([missed(tenant)])
        await svc.wait_deliveries(2)
        await svc.dispatch()

        mine = (await svc.client.get("/v1/deliveries", headers=svc.token("e-1"))).json()
        assert [(d["recipient_id"], d["status"], d["channel"]) for d in mine] == [
            ("e-1", "sent", "email")
        ]
        assert mine[0]["source_event_id"] == event_id
        assert mine[0]["idempotency_key"] == "missed:e-1:ob-e-1-monthly-2026-02:e-1:email"
        peek = await svc.client.get("/v1/deliveries?recipient_id=m-1", headers=svc.token("e-1"))
        assert peek.status_code == 403

        admin = svc.token("a", "hr_admin")
        by_event = await svc.client.get(f"/v1/deliveries?source_event_id={event_id}", headers=admin)
        assert sorted(d["recipient_id"] for d in by_event.json()) == ["e-1", "m-1"]
        elsewhere = await svc.client.get(
            f"/v1/deliveries?source_event_id={event_id}",
            headers=svc.token("a", "hr_admin", tenant="other"),
        )
        assert elsewhere.json() == []
