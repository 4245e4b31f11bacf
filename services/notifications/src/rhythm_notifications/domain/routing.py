"""Who hears what: the one routing table, and how an event becomes a trigger for it.

``RULES`` is the whole policy (category -> recipients -> default channel); ``trigger_for``
only reads the facts out of an event; ``WEBHOOK_TOPICS`` says which events are forwarded to
webhooks and ``obligation_closed_by`` which close an obligation. No routing decision is made
anywhere else.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from rhythm_shared.contracts import topics
from rhythm_shared.contracts.base import EVENT_TYPES, Event
from rhythm_shared.contracts.v1 import (
    CadenceEscalated,
    CheckinCancelled,
    CheckinCompleted,
    CheckinDue,
    CheckinMissed,
    CheckinRescheduled,
    CheckinScheduled,
    FeedbackGiven,
    GoalStale,
    GoalStatus,
    GoalStatusChanged,
    NotificationCategory,
)

Category = NotificationCategory


class Audience(StrEnum):
    """A party of an event, named by the role it plays in it."""

    EMPLOYEE = "employee"
    MANAGER = "manager"
    ESCALATED_TO = "escalated_to"
    GOAL_OWNER = "goal_owner"
    OWNERS_MANAGER = "owners_manager"  # looked up in the people slice
    RECEIVER = "receiver"


class ChannelChoice(StrEnum):
    """What a person (or the default) chose for a category."""

    EMAIL = "email"
    PUSH = "push"
    BOTH = "both"
    NONE = "none"


@dataclass(frozen=True)
class Rule:
    category: Category
    recipients: tuple[Audience, ...]
    default_channel: ChannelChoice
    #: Critical notices skip digests and the daily cap, but still respect a channel opt-out.
    critical: bool = False
    #: Calendar messages (iMIP) carry an invitation a calendar applies: each goes by itself,
    #: never in a digest nor held back by the daily cap (else the calendar shows a stale time).
    calendar: bool = False

    @property
    def immediate(self) -> bool:
        """Sent on its own (quiet hours still apply): no digest, no daily cap."""
        return self.critical or self.calendar


#: The routing table: category -> recipients -> default channel.
RULES: Mapping[Category, Rule] = {
    r.category: r
    for r in (
        Rule(Category.CHECKIN_DUE, (Audience.EMPLOYEE, Audience.MANAGER), ChannelChoice.EMAIL),
        Rule(Category.CHECKIN_MISSED, (Audience.EMPLOYEE, Audience.MANAGER), ChannelChoice.EMAIL),
        Rule(
            Category.CADENCE_ESCALATED,
            (Audience.ESCALATED_TO,),
            ChannelChoice.EMAIL,
            critical=True,
        ),
        Rule(Category.GOAL_STALE, (Audience.GOAL_OWNER,), ChannelChoice.EMAIL),
        Rule(Category.GOAL_AT_RISK, (Audience.OWNERS_MANAGER,), ChannelChoice.EMAIL),
        Rule(Category.FEEDBACK_RECEIVED, (Audience.RECEIVER,), ChannelChoice.BOTH),
        Rule(
            Category.CHECKIN_INVITATION,
            (Audience.EMPLOYEE, Audience.MANAGER),
            ChannelChoice.EMAIL,
            calendar=True,
        ),
        Rule(Category.DIGEST, (), ChannelChoice.EMAIL),
    )
}


@dataclass(frozen=True)
class Trigger:
    """What an event asks for: a category, the parties by role, a natural key, the facts."""

    category: Category
    natural_key: str
    parties: Mapping[Audience, str]
    facts: Mapping[str, Any] = field(default_factory=dict)

    @property
    def rule(self) -> Rule:
        return RULES[self.category]


def _iso(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


def _due(e: CheckinDue) -> Trigger:
    return Trigger(
        Category.CHECKIN_DUE,
        f"due:{e.employee_id}:{e.obligation_id}",
        {Audience.EMPLOYEE: e.employee_id, Audience.MANAGER: e.manager_id},
        {"kind": e.kind.value, "due_at": _iso(e.due_at), "obligation_id": e.obligation_id},
    )


def _missed(e: CheckinMissed) -> Trigger:
    return Trigger(
        Category.CHECKIN_MISSED,
        f"missed:{e.employee_id}:{e.obligation_id}",
        {Audience.EMPLOYEE: e.employee_id, Audience.MANAGER: e.manager_id},
        {
            "kind": e.kind.value,
            "due_at": _iso(e.due_at),
            "obligation_id": e.obligation_id,
            "consecutive_misses": e.consecutive_misses,
        },
    )


def _escalated(e: CadenceEscalated) -> Trigger:
    return Trigger(
        Category.CADENCE_ESCALATED,
        f"escalated:{e.employee_id}:{e.obligation_id}:{e.level.value}",
        {
            Audience.ESCALATED_TO: e.escalated_to_id,
            Audience.EMPLOYEE: e.employee_id,
            Audience.MANAGER: e.manager_id,
        },
        {
            "level": e.level.value,
            "obligation_id": e.obligation_id,
            "consecutive_misses": e.consecutive_misses,
        },
    )


def _stale(e: GoalStale) -> Trigger:
    return Trigger(
        Category.GOAL_STALE,
        f"stale:{e.goal_id}:{e.last_progress_at.isoformat()}",
        {Audience.GOAL_OWNER: e.owner_id},
        {
            "goal_id": e.goal_id,
            "last_progress_at": _iso(e.last_progress_at),
            "update_interval_days": e.update_interval_days,
        },
    )


_AT_RISK = {GoalStatus.AT_RISK, GoalStatus.OFF_TRACK}


def _status(e: GoalStatusChanged) -> Trigger | None:
    if e.to_status not in _AT_RISK:
        return None
    return Trigger(
        Category.GOAL_AT_RISK,
        f"at_risk:{e.goal_id}:{e.to_status.value}:{e.occurred_at.isoformat()}",
        {Audience.GOAL_OWNER: e.owner_id},
        {"goal_id": e.goal_id, "from_status": e.from_status.value, "to_status": e.to_status.value},
    )


def _feedback(e: FeedbackGiven) -> Trigger:
    return Trigger(
        Category.FEEDBACK_RECEIVED,
        f"feedback:{e.feedback_id}",
        {Audience.RECEIVER: e.receiver_id},
        {
            "giver_id": e.giver_id,
            "kind": e.kind.value,
            "requested": e.requested,
            "feedback_id": e.feedback_id,
        },
    )


def _invitation(
    e: CheckinScheduled | CheckinRescheduled | CheckinCancelled,
    natural_key: str,
    method: str,
    sequence: int,
    **more: Any,
) -> Trigger:
    """An invitation and its updates: facts enough to build the iCalendar part when it is sent
    (ids only; names and addresses are read from the directory then)."""
    return Trigger(
        Category.CHECKIN_INVITATION,
        natural_key,
        {Audience.EMPLOYEE: e.employee_id, Audience.MANAGER: e.manager_id},
        {
            "checkin_id": e.checkin_id,
            "kind": e.kind.value,
            "scheduled_for": _iso(e.scheduled_for),
            "initiated_by": e.initiated_by.value,
            "employee_id": e.employee_id,
            "manager_id": e.manager_id,
            "method": method,
            "sequence": sequence,
            **more,
        },
    )


def _scheduled(e: CheckinScheduled) -> Trigger:
    key = f"invite:{e.checkin_id}:{e.scheduled_for.isoformat()}"
    return _invitation(e, key, "REQUEST", 0)


def _rescheduled(e: CheckinRescheduled) -> Trigger:
    return _invitation(
        e,
        f"reschedule:{e.checkin_id}:{e.sequence}",
        "REQUEST",
        e.sequence,
        previous_scheduled_for=_iso(e.previous_scheduled_for),
        changed_by=e.changed_by.value,
    )


def _cancelled(e: CheckinCancelled) -> Trigger:
    key = f"cancel:{e.checkin_id}"
    return _invitation(e, key, "CANCEL", e.sequence, changed_by=e.changed_by.value)


_TRIGGERS: dict[type[Event], Callable[[Any], Trigger | None]] = {
    CheckinDue: _due,
    CheckinMissed: _missed,
    CadenceEscalated: _escalated,
    GoalStale: _stale,
    GoalStatusChanged: _status,
    FeedbackGiven: _feedback,
    CheckinScheduled: _scheduled,
    CheckinRescheduled: _rescheduled,
    CheckinCancelled: _cancelled,
}

#: Domain events HR platforms may receive over webhooks: everything on these topics. Each is
#: also decided on (``trigger_for``), and may close an obligation (``obligation_closed_by``).
WEBHOOK_TOPICS = (topics.GOALS, topics.CHECKINS, topics.CADENCE)


def webhook_event_types() -> list[str]:
    """The CloudEvents types forwarded to webhooks (of every registered contract version)."""
    return sorted(t for t, model in EVENT_TYPES.items() if model.topic in WEBHOOK_TOPICS)


#: Event types that can notify someone.
NOTIFYING_EVENTS: tuple[type[Event], ...] = tuple(_TRIGGERS)


def obligation_closed_by(event: Event) -> tuple[str, datetime] | None:
    """The obligation an event closes, and when: a held check-in that met one. Its reminders
    still waiting expire, and it no longer counts as overdue."""
    if isinstance(event, CheckinCompleted) and event.obligation_id is not None:
        return event.obligation_id, event.held_at
    return None


def trigger_for(event: Event) -> Trigger | None:
    """The trigger an event raises, or None when it notifies nobody (e.g. back on track)."""
    make = _TRIGGERS.get(type(event))
    return make(event) if make else None


def recipients(
    trigger: Trigger, manager_of: Callable[[str], str | None]
) -> list[tuple[str, Audience]]:
    """The people a trigger goes to, each once, with the role they play (for the wording)."""
    found: list[tuple[str, Audience]] = []
    for audience in trigger.rule.recipients:
        if audience is Audience.OWNERS_MANAGER:
            owner = trigger.parties.get(Audience.GOAL_OWNER)
            person = manager_of(owner) if owner else None
        else:
            person = trigger.parties.get(audience)
        if person and all(person != seen for seen, _ in found):
            found.append((person, audience))
    return found


#: The channel part of the key of a notification that was not sent (suppressed or digested).
NO_CHANNEL = "-"


def idempotency_key(natural_key: str, recipient: str, channel: str) -> str:
    """``missed:<employee>:<obligation>:<recipient>:<channel>``: one delivery, ever.

    Over-long keys keep a readable head and end in a hash, so they still fit the column.
    """
    key = f"{natural_key}:{recipient}:{channel}"
    if len(key) <= 400:
        return key
    digest = hashlib.sha256(key.encode()).hexdigest()
    return f"{key[:300]}~{digest}"
