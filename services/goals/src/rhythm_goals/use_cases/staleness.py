"""Staleness: a goal nobody updated for its update interval is reported once per stale spell."""

from __future__ import annotations

import uuid
from datetime import datetime

from rhythm_goals.domain import model
from rhythm_goals.domain.ports import GoalsUnitOfWork
from rhythm_shared.contracts.v1 import GoalStale


async def mark_stale_goals(uow: GoalsUnitOfWork, limit: int) -> int:
    """Claim up to ``limit`` goals whose stale check is due and report each stale once.

    Only due goals are read, oldest first (an index on the due time; several replicas share the
    work without waiting). A reported goal leaves the index (next check None) until progress is
    recorded again, so a stale spell is reported exactly once. Returns how many due goals were
    handled.
    """
    now = uow.clock.now()
    due = await uow.goals.claim_stale_checks(now, limit)
    if not due:
        return 0
    stale: list[str] = []
    over: list[str] = []
    for goal in due:
        if not model.goes_stale(goal.period_end, now):
            over.append(goal.goal_id)
            continue
        stale.append(goal.goal_id)
        last_progress_at = goal.last_progress_at or goal.created_at
        await uow.publish(
            GoalStale(
                tenant_id=goal.tenant_id,
                occurred_at=now,
                goal_id=goal.goal_id,
                owner_id=goal.owner_id,
                last_progress_at=last_progress_at,
                update_interval_days=goal.update_interval_days,
            ),
            # The spell's natural key as the CloudEvents id: the outbox (unique event_id) and
            # every consumer's inbox see a second report of the same spell as a duplicate.
            event_id=stale_event_id(goal.tenant_id, goal.goal_id, last_progress_at),
        )
    await uow.goals.end_stale_checks(stale, stale_since=now)
    await uow.goals.end_stale_checks(over)
    return len(due)


def stale_event_id(tenant_id: str, goal_id: str, last_progress_at: datetime) -> str:
    """``stale:<tenant>:<goal>:<last progress>`` as a name-based UUID (RFC 9562, version 5)."""
    name = f"stale:{tenant_id}:{goal_id}:{last_progress_at.isoformat()}"
    return str(uuid.uuid5(_STALE_NAMESPACE, name))


_STALE_NAMESPACE = uuid.UUID("5b3c1f0e-7a42-4f7e-9d64-2f0c8b1e6a11")
