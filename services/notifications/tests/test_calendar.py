"""The iCalendar invitations (adapters/calendar.py), each parsed back with ``icalendar``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import Any

import pytest
from icalendar import Calendar

from rhythm_notifications.adapters.calendar import (
    Invitation,
    Party,
    build_ics,
    invitation_from,
    invitation_uid,
    safe_text,
)
from rhythm_notifications.adapters.email import build_message
from rhythm_notifications.adapters.templates import Rendered

STAMP = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ANA = Party("ana@acme.example.com", "Ana de Vries")
MIA = Party("mia@acme.example.com", "Mia Jansen")
PEOPLE = {"e-ana": ANA, "e-mia": MIA}


def facts(**changes: Any) -> dict[str, Any]:
    return {
        "checkin_id": "c-5521",
        "kind": "monthly",
        "scheduled_for": "2026-03-05T09:00:00+00:00",
        "initiated_by": "employee",
        "employee_id": "e-ana",
        "manager_id": "e-mia",
        "method": "REQUEST",
        "sequence": 0,
        **changes,
    }


def invitation(zone: str = "Europe/Amsterdam", **changes: Any) -> Invitation:
    found = invitation_from(
        "acme", facts(**changes), PEOPLE, time_zone=zone, language="en", stamp=STAMP
    )
    assert found is not None
    return found


def parsed(ics: bytes) -> Any:
    calendar = Calendar.from_ical(ics)
    events = calendar.walk("VEVENT")
    assert len(events) == 1
    return calendar, events[0]


def test_a_request_has_every_part_a_calendar_needs() -> None:
    calendar, event = parsed(build_ics(invitation()))
    assert calendar["METHOD"] == "REQUEST"
    assert calendar["VERSION"] == "2.0"
    assert str(event["UID"]) == "checkin-c-5521@acme.rhythm"
    assert event["SEQUENCE"] == 0
    assert event.decoded("DTSTAMP") == STAMP
    starts, ends = event.decoded("DTSTART"), event.decoded("DTEND")
    # 09:00 UTC is 10:00 in Amsterdam, written with its TZID and the matching VTIMEZONE.
    assert event["DTSTART"].params["TZID"] == "Europe/Amsterdam"
    assert (starts.hour, starts.utcoffset()) == (10, timedelta(hours=1))
    assert starts == datetime(2026, 3, 5, 9, 0, tzinfo=UTC)
    assert ends - starts == timedelta(minutes=30)
    assert [str(tz["TZID"]) for tz in calendar.walk("VTIMEZONE")] == ["Europe/Amsterdam"]
    assert str(event["STATUS"]) == "CONFIRMED"
    assert str(event["SUMMARY"]) == "Monthly check-in: Ana de Vries / Mia Jansen"
    # The employee asked for it: they organise; both people attend.
    assert str(event["ORGANIZER"]) == "mailto:ana@acme.example.com"
    assert event["ORGANIZER"].params["CN"] == "Ana de Vries"
    attendees = {str(a): a.params for a in event["ATTENDEE"]}
    assert set(attendees) == {"mailto:ana@acme.example.com", "mailto:mia@acme.example.com"}
    assert all(p["RSVP"] == "TRUE" and p["PARTSTAT"] == "NEEDS-ACTION" for p in attendees.values())


def test_times_are_in_the_recipients_zone_and_a_review_blocks_an_hour() -> None:
    _, event = parsed(build_ics(invitation("America/New_York", kind="quarterly_review")))
    starts = event.decoded("DTSTART")
    assert event["DTSTART"].params["TZID"] == "America/New_York"
    assert (starts.hour, starts) == (4, datetime(2026, 3, 5, 9, tzinfo=UTC))
    assert event.decoded("DTEND") - starts == timedelta(hours=1)
    assert str(event["SUMMARY"]).startswith("Quarterly review:")


def test_an_update_keeps_the_uid_with_a_higher_sequence_and_a_cancel_says_so() -> None:
    first = parsed(build_ics(invitation()))[1]
    moved = parsed(build_ics(invitation(sequence=1, scheduled_for="2026-03-06T13:30:00+00:00")))[1]
    calendar, cancelled = parsed(
        build_ics(invitation(sequence=2, method="CANCEL", initiated_by="manager"))
    )
    assert str(first["UID"]) == str(moved["UID"]) == str(cancelled["UID"])
    assert (first["SEQUENCE"], moved["SEQUENCE"], cancelled["SEQUENCE"]) == (0, 1, 2)
    assert moved.decoded("DTSTART") == datetime(2026, 3, 6, 13, 30, tzinfo=UTC)
    assert calendar["METHOD"] == "CANCEL"
    assert str(cancelled["STATUS"]) == "CANCELLED"
    assert str(cancelled["ORGANIZER"]) == "mailto:mia@acme.example.com"
    assert len(cancelled["ATTENDEE"]) == 2


def test_uids_differ_between_checkins_and_tenants() -> None:
    uids = {invitation_uid(t, c) for t in ("acme", "globex") for c in ("c-1", "c-2")}
    assert len(uids) == 4


@pytest.mark.parametrize(
    "name", ["Eve\r\nATTENDEE:mailto:victim@elsewhere.example", 'Eve "E"; ROLE=CHAIR: x\x00\x1b']
)
def test_a_hostile_name_adds_no_property_nor_parameter(name: str) -> None:
    people = {"e-ana": Party(ANA.email, name), "e-mia": MIA}
    found = invitation_from("acme", facts(), people, time_zone="UTC", language="en", stamp=STAMP)
    assert found is not None
    ics = build_ics(found)
    unfolded = ics.replace(b"\r\n ", b"")
    assert all(
        not line.startswith((b"ATTENDEE:mailto:victim", b"ROLE"))
        for line in unfolded.split(b"\r\n")
    )
    _, event = parsed(ics)
    cn = event["ORGANIZER"].params["CN"]
    assert cn == safe_text(name)
    assert not any(ord(ch) < 0x20 for ch in cn)
    assert '"' not in cn
    assert len(event["ATTENDEE"]) == 2
    assert {str(a) for a in event["ATTENDEE"]} == {
        "mailto:ana@acme.example.com",
        "mailto:mia@acme.example.com",
    }


def test_without_its_facts_or_anyone_to_invite_there_is_no_invitation() -> None:
    old = {k: v for k, v in facts().items() if k not in ("method", "sequence")}
    assert invitation_from("acme", old, PEOPLE, time_zone="UTC", language="en", stamp=STAMP) is None
    assert invitation_from("acme", facts(), {}, time_zone="UTC", language="en", stamp=STAMP) is None
    only_mia = invitation_from(
        "acme", facts(), {"e-mia": MIA}, time_zone="UTC", language="nl", stamp=STAMP
    )
    assert only_mia is not None
    assert (only_mia.organizer, only_mia.attendees) == (MIA, (MIA,))
    assert only_mia.summary == "Maandelijkse check-in: e-ana / Mia Jansen"
    with pytest.raises(ValueError, match="method"):
        build_ics(Invitation(**{**only_mia.__dict__, "method": "PUBLISH"}))


def test_the_email_carries_a_text_calendar_alternative_and_an_ics_attachment() -> None:
    ics = build_ics(invitation())
    message = build_message(
        Rendered("Invitation: monthly check-in", "Hi Ana", "<p>Hi Ana</p>"),
        sender="Rhythm <rhythm@acme.example.com>",
        to_name="Ana de Vries",
        to_address=ANA.email,
        unsubscribe_url="https://rhythm.example.com/v1/unsubscribe?token=t",
        idempotency_key="invite:c-5521:x:e-ana:email",
        category="checkin_invitation",
        now=STAMP,
        calendar=("REQUEST", ics),
    )
    again = message_from_bytes(message, policy=default_policy)
    assert isinstance(again, EmailMessage)
    assert again.get_content_type() == "multipart/mixed"
    alternative = next(p for p in again.iter_parts() if p.is_multipart())
    kinds = [p.get_content_type() for p in alternative.iter_parts()]
    assert kinds == ["text/plain", "text/html", "text/calendar"]
    part = list(alternative.iter_parts())[2]
    assert part.get_param("method") == "REQUEST"
    assert parsed(part.get_content().encode())[1]["SEQUENCE"] == 0
    attachment = next(again.iter_attachments())
    assert (attachment.get_content_type(), attachment.get_filename()) == (
        "application/ics",
        "invite.ics",
    )
    assert Calendar.from_ical(attachment.get_content())["METHOD"] == "REQUEST"
