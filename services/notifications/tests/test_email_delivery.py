"""Email end to end: Kafka event -> pending deliveries -> dispatcher -> real SMTP server."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from notifications_harness import SmtpSink, StartService, employee

from rhythm_notifications.adapters import db
from rhythm_shared.contracts.envelope import from_record
from rhythm_shared.contracts.v1 import CheckinKind, CheckinMissed, NotificationSent
from rhythm_shared.testing import read_records

pytestmark = pytest.mark.kafka

D = db.deliveries


def missed(
    tenant: str, employee_id: str = "e-1", manager_id: str = "m-1", n: int = 1
) -> CheckinMissed:
    return CheckinMissed(
        tenant_id=tenant,
        occurred_at=datetime(2026, 3, 2, 8, 30, tzinfo=UTC),
        obligation_id=f"ob-{employee_id}-monthly-2026-02",
        employee_id=employee_id,
        manager_id=manager_id,
        kind=CheckinKind.MONTHLY,
        period_start=date(2026, 2, 1),
        period_end=date(2026, 2, 28),
        due_at=datetime(2026, 2, 27, 16, 0, tzinfo=UTC),
        consecutive_misses=n,
    )


async def test_a_missed_checkin_emails_employee_and_manager_once_even_when_delivered_twice(
    start_service: StartService, smtp_sink: SmtpSink, tenant: str
) -> None:
    async with start_service() as svc:
        await svc.add_people(
            employee(tenant, "m-1", name="Mark Manager"),
            employee(tenant, "e-1", manager_id="m-1", name="Eva de Vries", locale="nl"),
        )
        event = missed(tenant, n=2)
        [first] = await svc.publish([event])
        await svc.publish([event], event_ids=[first])  # the same record again (same ce_id)
        await svc.publish([event])  # the same fact under a new id (a re-run upstream)
        await svc.wait_deliveries(2)
        await svc.dispatch()

        assert smtp_sink.handler.count() == 2
        [to_employee] = smtp_sink.handler.to("e-1@acme.example.com")
        [to_manager] = smtp_sink.handler.to("m-1@acme.example.com")

        msg = to_employee.message
        assert to_employee.mail_from == "rhythm@acme.example.com"
        assert msg["From"] == "Rhythm <rhythm@acme.example.com>"
        assert msg["To"] == "Eva de Vries <e-1@acme.example.com>"
        assert msg["Subject"] == "Gemist: je maandelijkse check-in met Mark Manager"
        assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert msg["List-Unsubscribe"].startswith("<http://test/v1/unsubscribe?token=")
        assert msg["Auto-Submitted"] == "auto-generated"
        assert msg["Message-ID"].endswith("@acme.example.com>")
        assert msg.get_content_type() == "multipart/alternative"
        text = msg.get_body(("plain",)).get_content()
        html = msg.get_body(("html",)).get_content()
        assert text.startswith("Hoi Eva de Vries,\n\n")
        assert (
            "De maandelijkse check-in met Mark Manager van vrijdag 27 februari 2026 "
            "heeft niet plaatsgevonden." in text
        )
        assert "Dat is 2 keer op rij." in text
        assert '<html lang="nl">' in html
        assert "Afmelden voor deze e-mails" in html

        m = to_manager.message
        assert m["Subject"] == "Missed: your monthly check-in with Eva de Vries"
        body = m.get_body(("plain",)).get_content()
        assert (
            "The monthly check-in with Eva de Vries due Friday 27 February 2026 did not happen."
            in body
        )

        rows = await svc.deliveries()
        assert sorted((r.recipient_id, r.channel, r.status) for r in rows) == [
            ("e-1", "email", "sent"),
            ("m-1", "email", "sent"),
        ]
        assert {r.idempotency_key for r in rows} == {
            "missed:e-1:ob-e-1-monthly-2026-02:e-1:email",
            "missed:e-1:ob-e-1-monthly-2026-02:m-1:email",
        }
        sent = await read_records(
            svc.bootstrap,
            f"{svc.prefix}rhythm.notifications.v1",
            min_count=2,
            settle_s=0.5,
        )
        events = [from_record(r.headers, r.value).event for r in sent]
        assert all(isinstance(e, NotificationSent) for e in events)
        notices = [e for e in events if isinstance(e, NotificationSent)]
        assert sorted(e.recipient_id for e in notices) == ["e-1", "m-1"]
        assert {e.source_event_id for e in notices} == {first}

        # A later replay finds nothing due: still one email per recipient.
        await svc.publish([event], event_ids=[first])
        svc.later(hours=1)
        await svc.dispatch()
        assert smtp_sink.handler.count() == 2
