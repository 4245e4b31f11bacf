"""What the service's housekeeping deletes, and after how long."""

from __future__ import annotations

from rhythm_notifications.adapters import db
from rhythm_notifications.domain.delivery import FINAL
from rhythm_shared.kit.housekeeping import Prune

#: A daily permit matters for one local day; a few days cover every zone.
DAILY_CAP_KEEP_DAYS = 3


def history_rules(keep_days: float) -> list[Prune]:
    """Finished deliveries and digest items after ``keep_days`` (their idempotency keys guard
    against replays far shorter than that: the inbox keeps event ids 30 days), daily permits
    after a few days. Nothing unfinished goes."""
    final = [status.value for status in FINAL]
    d, w, i, c = db.deliveries, db.webhook_deliveries, db.digest_items, db.daily_caps
    o = db.closed_obligations
    return [
        Prune(o, o.c.closed_at, keep_days),
        Prune(d, d.c.updated_at, keep_days, (d.c.status.in_(final),)),
        Prune(w, w.c.updated_at, keep_days, (w.c.status.in_(final),)),
        Prune(i, i.c.created_at, keep_days, (i.c.digest_id.is_not(None),)),
        Prune(c, c.c.created_at, DAILY_CAP_KEEP_DAYS),
    ]
