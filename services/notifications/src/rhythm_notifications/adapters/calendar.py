"""iCalendar invitations (RFC 5545) sent by email as iMIP (RFC 6047), built with ``icalendar``.

One check-in is one calendar event: its ``UID`` (``checkin-<id>@<tenant>.rhythm``) never
changes, its ``SEQUENCE`` is the check-in's invitation revision (0 when scheduled, one more on
each reschedule or cancel), so a calendar that gets the messages out of order keeps the latest.
``METHOD:REQUEST`` puts it in (or moves it), ``METHOD:CANCEL`` with ``STATUS:CANCELLED`` takes it
out. Times are given in the recipient's zone with its ``VTIMEZONE``.

Check-ins have no length of their own: an invitation blocks ``DURATIONS`` of the kind.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from icalendar import Calendar, Event, vCalAddress

PRODID = "-//Rhythm//Check-ins//EN"
METHODS = ("REQUEST", "CANCEL")

#: How long an invitation blocks, by check-in kind.
DURATIONS: Mapping[str, timedelta] = {
    "monthly": timedelta(minutes=30),
    "quarterly_review": timedelta(minutes=60),
}
DEFAULT_DURATION = timedelta(minutes=30)

_KINDS = {
    "en": {"monthly": "Monthly check-in", "quarterly_review": "Quarterly review"},
    "nl": {"monthly": "Maandelijkse check-in", "quarterly_review": "Kwartaalgesprek"},
}


@dataclass(frozen=True)
class Party:
    """One of the two people: their address and name (from the directory)."""

    email: str
    name: str


@dataclass(frozen=True)
class Invitation:
    method: str  # REQUEST | CANCEL
    uid: str
    sequence: int
    starts: datetime
    duration: timedelta
    time_zone: str
    summary: str
    organizer: Party
    attendees: tuple[Party, ...]
    stamp: datetime


def invitation_uid(tenant_id: str, checkin_id: str) -> str:
    """Stable per check-in and unique across tenants."""
    return f"checkin-{checkin_id}@{tenant_id}.rhythm"


def safe_text(value: str) -> str:
    """One line of text: line breaks and other control characters go (a name from the HR
    platform must not add properties or parameters); double quotes, which would end a quoted
    parameter in clients that do not read RFC 6868, become single ones."""
    cleaned = "".join(" " if unicodedata.category(ch) == "Cc" else ch for ch in value)
    return " ".join(cleaned.replace('"', "'").split())


def summary_of(kind: str, employee: str, manager: str, language: str) -> str:
    labels = _KINDS.get(language, _KINDS["en"])
    return f"{labels.get(kind, kind)}: {employee} / {manager}"


def _address(party: Party, **params: str) -> vCalAddress:
    address = vCalAddress(f"mailto:{party.email}")
    if name := safe_text(party.name):
        address.params["CN"] = name
    for key, value in params.items():
        address.params[key] = value
    return address


def build_ics(invitation: Invitation) -> bytes:
    """The iCalendar object of one invitation (``text/calendar``)."""
    if invitation.method not in METHODS:
        raise ValueError(f"an invitation's method is one of {', '.join(METHODS)}")
    zone = ZoneInfo(invitation.time_zone)
    starts = invitation.starts.astimezone(zone)
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("method", invitation.method)
    event = Event()
    event.add("uid", invitation.uid)
    event.add("sequence", invitation.sequence)
    event.add("dtstamp", invitation.stamp)
    event.add("dtstart", starts)
    event.add("dtend", starts + invitation.duration)
    event.add("summary", safe_text(invitation.summary))
    event.add("organizer", _address(invitation.organizer))
    for party in invitation.attendees:
        event.add(
            "attendee",
            _address(
                party,
                CUTYPE="INDIVIDUAL",
                ROLE="REQ-PARTICIPANT",
                PARTSTAT="NEEDS-ACTION",
                RSVP="TRUE",
            ),
        )
    cancelled = invitation.method == "CANCEL"
    event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    event.add("transp", "TRANSPARENT" if cancelled else "OPAQUE")
    calendar.add_component(event)
    # The zone's rules around the event (a year either side), not its whole history.
    day = starts.date()
    calendar.add_missing_timezones(
        first_date=date(day.year - 1, 1, 1), last_date=date(day.year + 1, 12, 31)
    )
    return bytes(calendar.to_ical())


def invitation_from(
    tenant_id: str,
    facts: Mapping[str, Any],
    people: Mapping[str, Party],
    *,
    time_zone: str,
    language: str,
    stamp: datetime,
) -> Invitation | None:
    """The invitation a ``checkin_invitation`` delivery carries, from its facts and the two
    people; None where it cannot be built (a delivery decided before invitations carried
    their facts, or no readable address for either person)."""
    needed = ("checkin_id", "employee_id", "manager_id", "method", "sequence", "scheduled_for")
    if any(facts.get(name) is None for name in needed) or facts["method"] not in METHODS:
        return None
    employee, manager = people.get(facts["employee_id"]), people.get(facts["manager_id"])
    attendees = tuple(p for p in (employee, manager) if p is not None)
    if not attendees:
        return None
    organizer = manager if facts.get("initiated_by") == "manager" else employee
    kind = str(facts.get("kind", ""))
    return Invitation(
        method=facts["method"],
        uid=invitation_uid(tenant_id, facts["checkin_id"]),
        sequence=int(facts["sequence"]),
        starts=datetime.fromisoformat(facts["scheduled_for"]),
        duration=DURATIONS.get(kind, DEFAULT_DURATION),
        time_zone=time_zone,
        summary=summary_of(
            kind,
            employee.name if employee else facts["employee_id"],
            manager.name if manager else facts["manager_id"],
            language,
        ),
        organizer=organizer or attendees[0],
        attendees=attendees,
        stamp=stamp,
    )
