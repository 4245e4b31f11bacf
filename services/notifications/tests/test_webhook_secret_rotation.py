"""A webhook endpoint's secret rotates in place without an outage: for the overlap each delivery
carries a signature by the new and by the previous secret (Standard Webhooks allows several),
after it only the new one's. Checked with the reference receiver library, ``standardwebhooks``,
on deliveries over real HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from notifications_harness import HttpRequest, HttpSink, Service, StartService
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from test_email_delivery import missed

from rhythm_notifications.adapters import db
from rhythm_shared.testing import wait_for

pytestmark = pytest.mark.kafka

HOOK = "/hooks/hr"


async def deliver(svc: Service, http_sink: HttpSink, employee_id: str) -> HttpRequest:
    """Publish a missed check-in, send the webhook it queues, return the request received."""
    before = len(http_sink.to(HOOK))
    await svc.publish([missed(svc.tenant, employee_id)])
    wd = db.webhook_deliveries

    async def queued() -> bool:
        return bool(await svc.rows(wd, wd.c.status == "pending"))

    await wait_for(queued)
    assert await svc.dispatch_webhooks() == 1
    requests = http_sink.to(HOOK)
    assert len(requests) == before + 1
    return requests[-1]


def verifies(secret: str, request: HttpRequest) -> bool:
    try:
        Webhook(secret).verify(request.body, request.headers)
    except WebhookVerificationError:
        return False
    return True


async def endpoints(svc: Service) -> list[dict[str, Any]]:
    listed = await svc.client.get("/v1/webhook-endpoints", headers=svc.token("i", "integration"))
    assert listed.status_code == 200
    result: list[dict[str, Any]] = listed.json()
    return result


async def test_both_secrets_verify_during_the_overlap_and_only_the_new_one_after(
    start_service: StartService, http_sink: HttpSink
) -> None:
    async with start_service() as svc:
        # The receiver library checks webhook-timestamp against its own clock (5 minutes).
        svc.clock.travel_to(datetime.now(UTC))
        admin = svc.token("admin", "hr_admin")
        created = await svc.client.post(
            "/v1/webhook-endpoints", json={"url": http_sink.base_url + HOOK}, headers=admin
        )
        assert created.status_code == 201, created.text
        endpoint_id, old = created.json()["id"], created.json()["secret"]

        rotated = await svc.client.post(
            f"/v1/webhook-endpoints/{endpoint_id}/rotate-secret",
            json={"overlap_hours": 0.05},  # 3 minutes
            headers=admin,
        )
        assert rotated.status_code == 200, rotated.text
        new = rotated.json()["secret"]
        assert new.startswith("whsec_")
        assert new != old
        until = datetime.fromisoformat(rotated.json()["previous_secret_expires_at"])
        assert until == svc.clock.now() + timedelta(minutes=3)
        [listed] = await endpoints(svc)
        assert listed["secret"] is None  # shown once, in the rotation's answer
        assert datetime.fromisoformat(listed["previous_secret_expires_at"]) == until

        during = await deliver(svc, http_sink, "e-1")
        assert len(during.headers["webhook-signature"].split(" ")) == 2
        assert verifies(new, during)
        assert verifies(old, during)  # a receiver that has not switched yet

        svc.later(minutes=4)
        after = await deliver(svc, http_sink, "e-2")
        assert len(after.headers["webhook-signature"].split(" ")) == 1
        assert verifies(new, after)
        assert not verifies(old, after)
        [listed] = await endpoints(svc)
        assert listed["previous_secret_expires_at"] is None


async def test_a_rotation_without_overlap_retires_the_secret_at_once(
    start_service: StartService, http_sink: HttpSink
) -> None:
    async with start_service() as svc:
        svc.clock.travel_to(datetime.now(UTC))
        admin = svc.token("i", "integration")
        created = await svc.client.post(
            "/v1/webhook-endpoints", json={"url": http_sink.base_url + HOOK}, headers=admin
        )
        endpoint_id, leaked = created.json()["id"], created.json()["secret"]
        path = f"/v1/webhook-endpoints/{endpoint_id}/rotate-secret"
        first = (await svc.client.post(path, headers=admin)).json()  # default: 24 hours
        assert datetime.fromisoformat(first["previous_secret_expires_at"]) == (
            svc.clock.now() + timedelta(hours=24)
        )
        # Rotating again during an overlap: the secret before the current one ends at once.
        second = await svc.client.post(path, json={"overlap_hours": 0}, headers=admin)
        assert second.status_code == 200, second.text
        assert second.json()["previous_secret_expires_at"] is None

        request = await deliver(svc, http_sink, "e-1")
        assert verifies(second.json()["secret"], request)
        assert not verifies(first["secret"], request)
        assert not verifies(leaked, request)


async def test_only_the_tenants_hr_admin_or_integration_rotates_and_bad_input_is_422(
    start_service: StartService, http_sink: HttpSink
) -> None:
    async with start_service(consumers=False) as svc:
        created = await svc.client.post(
            "/v1/webhook-endpoints",
            json={"url": http_sink.base_url + HOOK},
            headers=svc.token("admin", "hr_admin"),
        )
        path = f"/v1/webhook-endpoints/{created.json()['id']}/rotate-secret"
        employee = await svc.client.post(path, headers=svc.token("e-1", "employee"))
        assert employee.status_code == 403
        other = await svc.client.post(path, headers=svc.token("admin", "hr_admin", tenant="x"))
        assert other.status_code == 404
        unknown = await svc.client.post(
            "/v1/webhook-endpoints/nope/rotate-secret", headers=svc.token("admin", "hr_admin")
        )
        assert unknown.status_code == 404
        for overlap in (-1, 169, "long"):
            bad = await svc.client.post(
                path, json={"overlap_hours": overlap}, headers=svc.token("admin", "hr_admin")
            )
            assert bad.status_code == 422
            assert bad.json()["detail"][0]["loc"] == ["body", "overlap_hours"]
        [row] = await svc.rows(db.webhook_endpoints)
        assert (row.secret, row.previous_secret) == (created.json()["secret"], None)
