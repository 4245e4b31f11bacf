"""Bad input is handled, not crashed on: unknown or inactive people, bad addresses, poison."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from notifications_harness import SmtpSink, StartService, employee
from test_email_delivery import missed

from rhythm_notifications.adapters import db
from rhythm_shared.contracts.envelope import from_record
from rhythm_shared.contracts.v1 import (
    EmployeeDeactivated,
    NotificationFailed,
    NotificationSent,
    NotificationSuppressed,
)
from rhythm_shared.testing import publish_raw, read_records

pytestmark = pytest.mark.kafka

D = db.deliveries


async def _outcomes(svc: object, count: int) -> list[object]:
    records = await read_records(
        svc.bootstrap,  # type: ignore[attr-defined]
        f"{svc.prefix}rhythm.notifications.v1",  # type: ignore[attr-defined]
        min_count=count,
        settle_s=0.3,
    )
    return [from_record(r.headers, r.value).event for r in records]


async def test_unknown_and_deactivated_recipients_are_suppressed_with_a_reason(
    start_service: StartService, smtp_sink: SmtpSink, tenant: str
) -> None:
    async with start_service() as svc:
        await svc.add_people(
            employee(tenant, "m-1"),
            employee(tenant, "e-2", manager_id="m-1"),
            employee(tenant, "e-3", manager_id="m-1"),
        )
        await svc.publish(
            [
                EmployeeDeactivated(  # sent after the upsert: older, it would change nothing
                    tenant_id=tenant,
                    occurred_at=datetime(2026, 3, 1, 9, 0, tzinfo=UTC),
                    employee_id="e-2",
                    effective_at=datetime(2026, 3, 1, 12, 0, tzinfo=UTC),
                ),
                EmployeeDeactivated(  # leaves at the end of the month: still hears until then
                    tenant_id=tenant,
                    occurred_at=datetime(2026, 3, 1, 9, 0, tzinfo=UTC),
                    employee_id="e-3",
                    effective_at=datetime(2026, 3, 31, 12, 0, tzinfo=UTC),
                ),
            ]
        )
        await svc.publish([missed(tenant, "e-1")])  # e-1 was never heard of
        await svc.wait_deliveries(2)
        await svc.publish([missed(tenant, "e-2"), missed(tenant, "e-3")])
        await svc.wait_deliveries(6)  # the manager's 2nd and 3rd miss today wait for a digest
        await svc.dispatch()

        suppressed = await svc.deliveries(D.c.status == "suppressed", D.c.recipient_id != "m-1")
        assert sorted((r.recipient_id, r.reason) for r in suppressed) == [
            ("e-1", "unknown_recipient"),
            ("e-2", "inactive"),
        ]
        assert [m.rcpt_tos for m in smtp_sink.handler.to("e-3@acme.example.com")] == [
            ["e-3@acme.example.com"]
        ]
        events = await _outcomes(svc, 6)
        reasons = sorted(
            (e.recipient_id, e.reason.value)
            for e in events
            if isinstance(e, NotificationSuppressed) and e.recipient_id != "m-1"
        )
        assert reasons == [("e-1", "unknown_recipient"), ("e-2", "inactive")]


async def test_an_address_the_server_refuses_fails_cleanly_into_notification_failed(
    start_service: StartService, smtp_sink: SmtpSink, tenant: str
) -> None:
    smtp_sink.handler.reject_rcpt.add("gone@acme.example.com")
    async with start_service() as svc:
        await svc.add_people(
            employee(tenant, "m-1"),
            employee(tenant, "e-1", manager_id="m-1", email_address="gone@acme.example.com"),
        )
        await svc.publish([missed(tenant)])
        await svc.wait_deliveries(2)
        await svc.dispatch()
        [failed] = await svc.deliveries(D.c.status == "failed")
        assert (failed.recipient_id, failed.reason, failed.attempts) == (
            "e-1",
            "invalid_address",
            1,
        )
        assert failed.detail.startswith("550")
        assert len(smtp_sink.handler.to("m-1@acme.example.com")) == 1
        events = await _outcomes(svc, 2)
        assert sorted(type(e).__name__ for e in events) == [
            "NotificationFailed",
            "NotificationSent",
        ]
        [nf] = [e for e in events if isinstance(e, NotificationFailed)]
        assert (nf.recipient_id, nf.reason.value, nf.channel.value) == (
            "e-1",
            "invalid_address",
            "email",
        )
        assert next(e for e in events if isinstance(e, NotificationSent)).recipient_id == "m-1"


async def test_a_malformed_record_goes_to_the_dead_letter_topic_and_the_rest_flows_on(
    start_service: StartService, smtp_sink: SmtpSink, tenant: str
) -> None:
    async with start_service() as svc:
        await svc.add_people(employee(tenant, "m-1"), employee(tenant, "e-1", manager_id="m-1"))
        await publish_raw(
            svc.bootstrap,
            f"{svc.prefix}rhythm.cadence.v1",
            b"{not json",
            key=f"{tenant}/e-1".encode(),
            headers=[("ce_type", b"rhythm.checkin.missed.v1"), ("ce_id", b"poison-1")],
        )
        await svc.publish([missed(tenant)])
        await svc.wait_deliveries(2)
        dead = await read_records(svc.bootstrap, f"{svc.prefix}rhythm.dlq.notifications")
        assert [r.value for r in dead] == [b"{not json"]
        headers = dict(dead[0].headers)
        assert headers["rhythm_dlq_reason"].startswith(b"unreadable")
        await svc.dispatch()
        assert smtp_sink.handler.count() == 2
