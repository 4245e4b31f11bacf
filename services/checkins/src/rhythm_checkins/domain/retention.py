"""Retention after leaving: when a person counts as gone, and when their texts fall due. Pure.

A person has left from the deactivation the directory holds (which may lie ahead), or, when the
HR platform marked them inactive without a date, from that upsert. A newer upsert that makes
them active again (a rehire) clears it: nothing of theirs is due any more.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from rhythm_shared.kit.ports import Person


def left_at(person: Person) -> datetime | None:
    """When ``person`` left, or None while they are (or are again) with the organisation."""
    if person.deactivated_at is not None:
        return person.deactivated_at
    if person.known and not person.active:
        assert person.profile_version is not None
        return person.profile_version[0]
    return None


def left_before(now: datetime, keep_days: int) -> datetime:
    """Texts of people who left before this instant are due for removal: kept ``keep_days``."""
    return now - timedelta(days=keep_days)
