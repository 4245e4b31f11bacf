"""The obligation state machine and consecutive-miss counting.

    open ──remind──▶ due_notified ──miss──▶ missed ──escalate──▶ escalated
      │                  │
      └──complete────────┴──▶ closed          (open/due_notified ──cancel──▶ cancelled)

A reminder that would come after the miss time is skipped: an open obligation past due + grace
goes straight to missed.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from rhythm_shared.contracts.v1.values import CheckinKind, EscalationLevel, EscalationTarget


class ObligationState(StrEnum):
    OPEN = "open"
    DUE_NOTIFIED = "due_notified"
    CLOSED = "closed"
    MISSED = "missed"
    ESCALATED = "escalated"
    CANCELLED = "cancelled"


class Fact(StrEnum):
    """What the sweeper tells the world about an obligation, each at most once."""

    DUE = "due"
    MISSED = "missed"
    ESCALATED = "escalated"


OUTSTANDING = frozenset({ObligationState.OPEN, ObligationState.DUE_NOTIFIED})
MISSED_STATES = frozenset({ObligationState.MISSED, ObligationState.ESCALATED})

_TRANSITIONS: dict[ObligationState, frozenset[ObligationState]] = {
    ObligationState.OPEN: frozenset(
        {
            ObligationState.DUE_NOTIFIED,
            ObligationState.CLOSED,
            ObligationState.MISSED,
            ObligationState.CANCELLED,
        }
    ),
    ObligationState.DUE_NOTIFIED: frozenset(
        {ObligationState.CLOSED, ObligationState.MISSED, ObligationState.CANCELLED}
    ),
    ObligationState.MISSED: frozenset({ObligationState.ESCALATED}),
    ObligationState.ESCALATED: frozenset(),
    ObligationState.CLOSED: frozenset(),
    ObligationState.CANCELLED: frozenset(),
}


class IllegalTransition(ValueError):
    pass


def transition(current: ObligationState, target: ObligationState) -> ObligationState:
    if target not in _TRANSITIONS[current]:
        raise IllegalTransition(f"an obligation cannot go from {current} to {target}")
    return target


@dataclass(frozen=True)
class SweepStep:
    """What the sweeper does with an outstanding obligation at ``now``."""

    target: ObligationState
    fact: Fact
    next_action_at: datetime | None


def sweep_step(
    state: ObligationState, remind_at: datetime, miss_at: datetime, now: datetime
) -> SweepStep | None:
    if state not in OUTSTANDING:
        return None
    if now >= miss_at:
        return SweepStep(transition(state, ObligationState.MISSED), Fact.MISSED, None)
    if state == ObligationState.OPEN and now >= remind_at:
        return SweepStep(transition(state, ObligationState.DUE_NOTIFIED), Fact.DUE, miss_at)
    return None


def next_action_at(
    state: ObligationState, remind_at: datetime, miss_at: datetime
) -> datetime | None:
    """When the sweeper must look at an obligation in ``state`` next (None: never again)."""
    if state == ObligationState.OPEN:
        return remind_at
    if state == ObligationState.DUE_NOTIFIED:
        return miss_at
    return None


def consecutive_misses(previous_state: ObligationState | None, previous_count: int) -> int:
    """Misses in a row including this one; a kept or cancelled predecessor resets the count."""
    if previous_state is not None and previous_state in MISSED_STATES:
        return previous_count + 1
    return 1


def should_escalate(consecutive: int, escalate_after: int) -> bool:
    return consecutive >= escalate_after


@dataclass(frozen=True)
class Escalation:
    to_id: str
    level: EscalationLevel


def escalation_target(
    target: EscalationTarget,
    manager_id: str,
    skip_level_id: str | None,
    hr_contact_id: str | None,
) -> Escalation:
    """Who hears of repeated misses: skip-level or HR per policy, falling back to whoever exists
    (HR when there is no skip-level, the manager when nobody above is known)."""
    if target == EscalationTarget.SKIP_LEVEL and skip_level_id:
        return Escalation(skip_level_id, EscalationLevel.SKIP_LEVEL)
    if hr_contact_id:
        return Escalation(hr_contact_id, EscalationLevel.HR)
    if skip_level_id:
        return Escalation(skip_level_id, EscalationLevel.SKIP_LEVEL)
    return Escalation(manager_id, EscalationLevel.MANAGER)


def obligation_id(tenant_id: str, employee_id: str, kind: CheckinKind, period_start: date) -> str:
    """Deterministic: the same employee, kind and period always name the same obligation."""
    digest = hashlib.sha256(
        f"{tenant_id}\x1f{employee_id}\x1f{kind.value}\x1f{period_start.isoformat()}".encode()
    ).hexdigest()
    return f"ob-{digest[:32]}"


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:20]}"
