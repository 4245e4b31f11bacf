"""The delivery state machine and its retry policy.

pending -> claimed -> sending -> sent | failed, or pending again after a transient failure;
suppressed is decided before anything is claimed. ``claimed`` means "owned by a dispatcher, not
handed to any channel yet" (safe to take back when the lease runs out); ``sending`` means "handed
to the channel, outcome not recorded yet" (see ``recover_expired`` in use_cases for what a crash
there means).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from rhythm_shared.contracts.v1 import DeliveryFailure


class Status(StrEnum):
    PENDING = "pending"
    CLAIMED = "claimed"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    SUPPRESSED = "suppressed"


FINAL = frozenset({Status.SENT, Status.FAILED, Status.SUPPRESSED})


@dataclass(frozen=True)
class Sent:
    detail: str | None = None


@dataclass(frozen=True)
class Retry:
    """A transient failure: try again later (until the attempts run out)."""

    reason: DeliveryFailure
    detail: str


@dataclass(frozen=True)
class Failed:
    """A permanent failure: retrying cannot help."""

    reason: DeliveryFailure
    detail: str


Outcome = Sent | Retry | Failed


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int
    base_s: float
    max_s: float

    def delay_s(self, attempts: int, rng: random.Random | None = None) -> float:
        """Exponential backoff with equal jitter: half fixed, half random, capped."""
        ceiling = min(self.base_s * 2.0 ** max(attempts - 1, 0), self.max_s)
        jitter = float((rng or random).uniform(0, ceiling / 2))
        return ceiling / 2 + jitter

    def exhausted(self, attempts: int) -> bool:
        return attempts >= self.max_attempts


def has_lost_its_point(
    facts: Mapping[str, Any],
    *,
    caused_at: datetime,
    now: datetime,
    max_age: timedelta,
    obligation_closed: bool,
) -> bool:
    """Whether a notification would arrive too late to mean anything (suppressed as expired).

    Too old (a replay, an offset reset, a long outage), an invitation to a check-in that has
    begun, or a reminder for an obligation a check-in has already closed.
    """
    if now - caused_at > max_age:
        return True
    if obligation_closed:
        return True
    scheduled_for = facts.get("scheduled_for")
    if isinstance(scheduled_for, str):
        try:
            starts = datetime.fromisoformat(scheduled_for)
        except ValueError:
            return False
        if starts.tzinfo is not None and starts <= now:
            return True
    return False
