"""Where a message takes its reader: one URL pattern per category, into the tenant's app.

``{base}`` is the tenant's app base URL (its override, else ``APP_BASE_URL``). Without a base,
or without the id a pattern needs (a message decided before the id was kept), there is no link
at all: never a broken one. Ids are percent-encoded, so an id cannot change the path.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from rhythm_notifications.domain.routing import Category

#: category -> (path pattern, the fact that fills it); the documented URL patterns.
PATTERNS: Mapping[Category, tuple[str, str | None]] = {
    Category.CHECKIN_DUE: ("/checkins/due/{}", "obligation_id"),
    Category.CHECKIN_MISSED: ("/checkins/due/{}", "obligation_id"),
    Category.CADENCE_ESCALATED: ("/checkins/due/{}", "obligation_id"),
    Category.CHECKIN_INVITATION: ("/checkins/{}", "checkin_id"),
    Category.GOAL_STALE: ("/goals/{}", "goal_id"),
    Category.GOAL_AT_RISK: ("/goals/{}", "goal_id"),
    Category.FEEDBACK_RECEIVED: ("/feedback/{}", "feedback_id"),
    Category.DIGEST: ("/", None),
}


def link(base: str | None, category: str, facts: Mapping[str, Any] | None) -> str | None:
    """The link a message of ``category`` about ``facts`` carries, or None."""
    if not base:
        return None
    try:
        pattern, fact = PATTERNS[Category(category)]
    except (ValueError, KeyError):
        return None
    if fact is None:
        return base.rstrip("/") + pattern
    value = facts.get(fact) if isinstance(facts, Mapping) else None
    if not isinstance(value, str) or not value:
        return None
    return base.rstrip("/") + pattern.format(quote(value, safe=""))
