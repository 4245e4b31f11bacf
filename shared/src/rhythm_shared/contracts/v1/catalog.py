"""The v1 catalog as data: every event, who publishes each topic and who consumes it.

Services use this to know which topics they may publish on (and their ``ce_source``); the
AsyncAPI export uses it to describe the operations. It mirrors the services table in DESIGN.md.
"""

from __future__ import annotations

from rhythm_shared.contracts import topics
from rhythm_shared.contracts.base import Event
from rhythm_shared.contracts.v1.cadence import (
    CadenceEscalated,
    CadencePolicyChanged,
    CheckinDue,
    CheckinMissed,
)
from rhythm_shared.contracts.v1.checkins import (
    CheckinCancelled,
    CheckinCompleted,
    CheckinRescheduled,
    CheckinScheduled,
    FeedbackGiven,
    ReflectionSubmitted,
    ReviewCompleted,
)
from rhythm_shared.contracts.v1.goals import (
    GoalArchived,
    GoalCreated,
    GoalProgressRecorded,
    GoalStale,
    GoalStatusChanged,
    GoalUpdated,
)
from rhythm_shared.contracts.v1.notifications import (
    NotificationFailed,
    NotificationSent,
    NotificationSuppressed,
)
from rhythm_shared.contracts.v1.people import (
    EmployeeDeactivated,
    EmployeeErased,
    EmployeeUpserted,
    OrgUnitUpserted,
)
from rhythm_shared.contracts.v1.privacy import PersonDataErased, PersonKeyDestroyed, PersonKeyIssued
from rhythm_shared.contracts.v1.pulse import PulseRecorded
from rhythm_shared.contracts.v2.people import EmployeeUpsertedV2

#: Every event of the catalog, in catalog order (v1, and the v2 types beside them).
EVENTS: tuple[type[Event], ...] = (
    EmployeeUpserted,
    EmployeeDeactivated,
    OrgUnitUpserted,
    EmployeeErased,
    EmployeeUpsertedV2,
    GoalCreated,
    GoalUpdated,
    GoalProgressRecorded,
    GoalStatusChanged,
    GoalStale,
    GoalArchived,
    CheckinScheduled,
    CheckinRescheduled,
    CheckinCancelled,
    CheckinCompleted,
    ReflectionSubmitted,
    FeedbackGiven,
    ReviewCompleted,
    CadencePolicyChanged,
    CheckinDue,
    CheckinMissed,
    CadenceEscalated,
    NotificationSent,
    NotificationFailed,
    NotificationSuppressed,
    PulseRecorded,
    PersonKeyIssued,
    PersonKeyDestroyed,
    PersonDataErased,
)

#: The one service allowed to publish on each topic. ``people`` is the HR feed (the bulk import
#: command and the HR endpoint), not a service of its own.
PUBLISHERS: dict[str, str] = {
    topics.PEOPLE: "people",
    topics.GOALS: "goals",
    topics.CHECKINS: "checkins",
    topics.CADENCE: "checkins",
    topics.NOTIFICATIONS: "notifications",
    topics.INTERNAL_PULSE: "checkins",
    topics.KEYS: "people",
}

#: Topics every service publishes on (each its own part of an erasure), not one service alone.
SHARED_TOPICS: tuple[str, ...] = (topics.PRIVACY,)

#: Who consumes each topic (reporting reads everything).
CONSUMERS: dict[str, tuple[str, ...]] = {
    topics.PEOPLE: ("goals", "checkins", "notifications", "reporting"),
    topics.GOALS: ("checkins", "notifications", "reporting"),
    topics.CHECKINS: ("notifications", "reporting"),
    topics.CADENCE: ("notifications", "reporting"),
    topics.NOTIFICATIONS: ("reporting",),
    # Internal: individual scores for reporting's aggregates, never for webhooks or integrators.
    topics.INTERNAL_PULSE: ("reporting",),
    topics.KEYS: ("goals", "checkins", "notifications", "reporting"),
    topics.PRIVACY: ("people",),
}


def source_of(service: str) -> str:
    """The CloudEvents ``source`` a service publishes with: ``/rhythm/<service>``."""
    return f"/rhythm/{service}"


def publisher_of(topic: str) -> str:
    """The service that publishes ``topic``; KeyError for a topic outside the catalog."""
    return PUBLISHERS[topic]


def topics_published_by(service: str) -> tuple[str, ...]:
    """The topics ``service`` publishes on, e.g. ``checkins`` -> checkins and cadence topics."""
    return tuple(topic for topic, publisher in PUBLISHERS.items() if publisher == service)


def events_on(topic: str) -> tuple[type[Event], ...]:
    """The event types carried by ``topic``, in catalog order."""
    return tuple(event for event in EVENTS if event.topic == topic)


def events_published_by(service: str) -> tuple[type[Event], ...]:
    """The event types ``service`` may publish, in catalog order (the shared topics' included)."""
    own = set(topics_published_by(service)) | set(SHARED_TOPICS)
    return tuple(event for event in EVENTS if event.topic in own)
