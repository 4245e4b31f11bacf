"""Individual pulse scores never reach tenant webhooks unless the tenant opts in (docs/privacy.md):
webhooks forward the public events, which carry ``pulse: null`` then, and never the internal
pulse topic, whatever an endpoint asks for. Real Kafka, a real local HTTP endpoint."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from notifications_harness import HttpSink, StartService

from rhythm_notifications.adapters import db
from rhythm_notifications.domain.routing import webhook_event_types
from rhythm_shared.contracts.v1 import (
    CheckinCompleted,
    CheckinKind,
    Initiator,
    PulseRecorded,
    PulseSource,
)
from rhythm_shared.testing import wait_for

pytestmark = pytest.mark.kafka

AT = datetime(2026, 3, 2, 8, 30, tzinfo=UTC)


def test_the_internal_pulse_event_is_no_webhook_event_type() -> None:
    assert CheckinCompleted.type in webhook_event_types()
    assert PulseRecorded.type not in webhook_event_types()


async def test_a_webhook_receives_the_checkin_without_its_pulse_and_never_the_internal_score(
    start_service: StartService, http_sink: HttpSink, tenant: str
) -> None:
    async with start_service() as svc:
        hr = svc.token("admin", "hr_admin")
        asking = await svc.client.post(
            "/v1/webhook-endpoints",
            json={"url": http_sink.base_url + "/hooks/x", "event_types": [PulseRecorded.type]},
            headers=hr,
        )
        assert asking.status_code == 422, asking.text
        # Every type there is: still not the internal one.
        everything = await svc.client.post(
            "/v1/webhook-endpoints", json={"url": http_sink.base_url + "/hooks/hr"}, headers=hr
        )
        assert everything.status_code == 201, everything.text

        # What checkins publishes for a tenant that did not opt in.
        await svc.publish(
            [
                PulseRecorded(
                    tenant_id=tenant,
                    occurred_at=AT,
                    employee_id="e-1",
                    checkin_id="c-1",
                    pulse=5,
                    source=PulseSource.CHECKIN,
                ),
                CheckinCompleted(
                    tenant_id=tenant,
                    occurred_at=AT,
                    checkin_id="c-1",
                    kind=CheckinKind.MONTHLY,
                    employee_id="e-1",
                    manager_id="m-1",
                    held_at=AT,
                    initiated_by=Initiator.EMPLOYEE,
                ),
            ]
        )

        async def queued() -> bool:
            return bool(await svc.rows(db.webhook_deliveries))

        await wait_for(queued)
        while await svc.dispatch_webhooks():
            pass
        [delivery] = await svc.rows(db.webhook_deliveries)
        assert delivery.event_type == CheckinCompleted.type
        [request] = http_sink.to("/hooks/hr")
        body = json.loads(request.body)
        assert body["type"] == CheckinCompleted.type
        assert body["data"]["pulse"] is None
        assert b"rhythm.pulse.recorded" not in request.body
