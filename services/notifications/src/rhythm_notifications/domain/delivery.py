"""The delivery state machine and its retry policy.

pending -> claimed -> sending -> sent | failed, or pending again after a transient failure;
suppressed is decided before anything is claimed. ``claimed`` means "owned by a dispatcher, not
handed to any channel yet" (safe to take back when the lease runs out); ``sending`` means "handed
to the channel, outcome not recorded yet" (see ``recover_expired_deliveries`` in
use_cases/dispatching.py for what a crash there means).
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from rhythm_notifications.domain.routing import Category
from rhythm_shared.contracts.v1 import DeliveryFailure, SuppressionReason

if TYPE_CHECKING:
    from rhythm_shared.kit.ports import Person


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


@dataclass(frozen=True)
class NewDelivery:
    """One decided notification (or suppression), written once under its idempotency key."""

    id: str
    tenant_id: str
    idempotency_key: str
    recipient_id: str
    category: str
    channel: str | None
    source_event_id: str
    source_type: str
    status: Status
    payload: dict[str, Any]
    created_at: datetime
    next_attempt_at: datetime | None = None
    reason: str | None = None


@dataclass(frozen=True)
class StoredDelivery:
    """A delivery as the dispatcher reads it back (claimed, or with an expired lease)."""

    id: str
    tenant_id: str
    idempotency_key: str
    recipient_id: str
    category: str
    channel: str
    source_event_id: str
    status: Status
    attempts: int
    recoveries: int
    payload: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True)
class Claimed:
    """A delivery this dispatcher owns until its lease runs out, with who it is for."""

    id: str
    tenant_id: str
    idempotency_key: str
    recipient_id: str
    category: str
    channel: str
    source_event_id: str
    attempts: int
    payload: dict[str, Any]
    person: Person | None
    created_at: datetime
    app_base_url: str | None = None  # the tenant's override of APP_BASE_URL, if it has one
    #: Lost its point since it was decided (``has_lost_its_point``): suppressed, not sent.
    expired: bool = False


class LostClaim(Exception):
    """Another dispatcher took the delivery over (our lease ran out): do not send."""


@dataclass(frozen=True)
class DigestItem:
    """A notification waiting for its recipient's next digest."""

    tenant_id: str
    recipient_id: str
    category: str
    source_event_id: str
    due_at: datetime
    channels: list[str]
    payload: dict[str, Any]
    id: int | None = None  # given by the store


def reminded_obligation(category: str, facts: Any) -> str | None:
    """The obligation a reminder is about (a miss or an escalation stays true once held)."""
    if category != Category.CHECKIN_DUE or not isinstance(facts, dict):
        return None
    value = facts.get("obligation_id")
    return value if isinstance(value, str) else None


def caused_at(delivery: Claimed) -> datetime:
    """When the fact behind a delivery happened (its payload says; else when it was decided)."""
    at = delivery.created_at
    stamp = delivery.payload.get("caused_at")
    if isinstance(stamp, str):
        with contextlib.suppress(ValueError):  # a hand-edited row: fall back to created_at
            at = min(at, datetime.fromisoformat(stamp))
    return at


def undeliverable(person: Person | None, now: datetime) -> SuppressionReason | None:
    """Why a claimed delivery is not sent at all: its recipient vanished or left."""
    if person is None:
        return SuppressionReason.UNKNOWN_RECIPIENT
    if not person.active_at(now):
        return SuppressionReason.INACTIVE
    return None


def combine_push(outcomes: Sequence[Outcome], gone: int) -> Outcome:
    """One push notification reaches a person if any of their subscriptions took it."""
    if any(isinstance(o, Sent) for o in outcomes):
        return Sent()
    retries = [o for o in outcomes if isinstance(o, Retry)]
    if retries:
        return retries[0]
    failures = [o for o in outcomes if isinstance(o, Failed)]
    if failures:
        return failures[0]
    return Failed(DeliveryFailure.UNREACHABLE, f"all {gone} push subscriptions have expired")
