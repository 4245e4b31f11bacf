"""Calendar invitations end to end: check-in events on real Kafka -> the dispatcher -> a real
SMTP server; every invitation received is parsed with ``icalendar``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from icalendar import Calendar
from notifications_harness import Received, Service, SmtpSink, StartService, employee

from rhythm_shared.contracts.v1 import (
    CheckinCancelled,
    CheckinKind,
    CheckinRescheduled,
    CheckinScheduled,
    Initiator,
)

pytestmark = pytest.mark.kafka

FIRST = datetime(2026, 3, 5, 9, 0, tzinfo=UTC)
MOVED = datetime(2026, 3, 6, 14, 30, tzinfo=UTC)
ANA, MIA = "e-ana@acme.example.com", "m-mia@acme.example.com"


def invite(received: Received) -> tuple[str, Any, Any, bytes]:
    """(method parameter, the calendar, its one event, the attachment's bytes)."""
    message = received.message
    parts = list(message.walk())
    [calendar_part] = [p for p in parts if p.get_content_type() == "text/calendar"]
    [attachment] = list(message.iter_attachments())
    assert (attachment.get_content_type(), attachment.get_filename()) == (
        "application/ics",
        "invite.ics",
    )
    calendar = Calendar.from_ical(calendar_part.get_content())
    [event] = calendar.walk("VEVENT")
    return str(calendar_part.get_param("method")), calendar, event, attachment.get_content()


async def _send(svc: Service, smtp_sink: SmtpSink, event: Any, total: int) -> list[Received]:
    await svc.publish([event])
    await svc.wait_deliveries(total)
    await svc.dispatch()
    return [m for m in smtp_sink.handler.messages][total - 2 :]


async def test_schedule_reschedule_and_cancel_each_reach_both_calendars_in_their_own_zone(
    start_service: StartService, smtp_sink: SmtpSink, tenant: str
) -> None:
    async with start_service() as svc:
        await svc.add_people(
            employee(tenant, "m-mia", name="Mia Jansen", time_zone="America/New_York"),
            employee(tenant, "e-ana", manager_id="m-mia", name="Ana de Vries", locale="nl"),
        )
        svc.later(hours=4, minutes=5)  # 13:05 UTC: past quiet hours in New York too
        common: dict[str, Any] = {
            "tenant_id": tenant,
            "checkin_id": "c-5521",
            "kind": CheckinKind.MONTHLY,
            "employee_id": "e-ana",
            "manager_id": "m-mia",
            "initiated_by": Initiator.EMPLOYEE,
        }
        now = svc.clock.now
        rounds = [
            await _send(
                svc,
                smtp_sink,
                CheckinScheduled(occurred_at=now(), scheduled_for=FIRST, **common),
                2,
            ),
            await _send(
                svc,
                smtp_sink,
                CheckinRescheduled(
                    occurred_at=now(),
                    scheduled_for=MOVED,
                    previous_scheduled_for=FIRST,
                    changed_by=Initiator.MANAGER,
                    sequence=1,
                    **common,
                ),
                4,
            ),
            await _send(
                svc,
                smtp_sink,
                CheckinCancelled(
                    occurred_at=now(),
                    scheduled_for=MOVED,
                    changed_by=Initiator.EMPLOYEE,
                    sequence=2,
                    **common,
                ),
                6,
            ),
        ]
        # All on one day for both people: no daily cap, no digest for calendar messages.
        assert smtp_sink.handler.count() == 6
        expected = [("REQUEST", 0, FIRST), ("REQUEST", 1, MOVED), ("CANCEL", 2, MOVED)]
        uids = set()
        for (method, sequence, starts), received in zip(expected, rounds, strict=True):
            assert sorted(r.rcpt_tos[0] for r in received) == [ANA, MIA]
            for r in received:
                part_method, calendar, event, attached = invite(r)
                assert part_method == calendar["METHOD"] == method
                assert Calendar.from_ical(attached).walk("VEVENT")[0]["SEQUENCE"] == sequence
                assert event["SEQUENCE"] == sequence
                assert event.decoded("DTSTART") == starts
                zone = "Europe/Amsterdam" if r.rcpt_tos == [ANA] else "America/New_York"
                assert event["DTSTART"].params["TZID"] == zone
                assert [str(tz["TZID"]) for tz in calendar.walk("VTIMEZONE")] == [zone]
                assert event.decoded("DTEND") - event.decoded("DTSTART") == timedelta(minutes=30)
                assert str(event["ORGANIZER"]) == f"mailto:{ANA}"  # ana asked for it
                assert {str(a) for a in event["ATTENDEE"]} == {f"mailto:{ANA}", f"mailto:{MIA}"}
                names = {a.params["CN"] for a in event["ATTENDEE"]}
                assert names == {"Ana de Vries", "Mia Jansen"}
                assert str(event["STATUS"]) == ("CANCELLED" if method == "CANCEL" else "CONFIRMED")
                uids.add(str(event["UID"]))
        assert uids == {f"checkin-c-5521@{tenant}.rhythm"}

        subjects = {
            r.rcpt_tos[0]: [m.message["Subject"] for m in smtp_sink.handler.to(r.rcpt_tos[0])]
            for r in rounds[0]
        }
        assert [s.split(":")[0].strip() for s in subjects[MIA]] == [
            "Invitation",
            "Updated invitation",
            "Cancelled",
        ]
        assert [s.split(":")[0].strip() for s in subjects[ANA]] == [
            "Uitnodiging",
            "Gewijzigde uitnodiging",
            "Gaat niet door",
        ]
        moved_text = smtp_sink.handler.to(MIA)[1].message.get_body(("plain",))
        assert moved_text is not None
        assert "moved from Thursday 5 March 2026, 04:00 to Friday 6 March 2026, 09:30" in str(
            moved_text.get_content()
        )
