"""Rhythm's public event contract: the base, the envelope, the topics and every catalog version.

Importing this package registers every event type, so :func:`from_record` can decode any of them.
Event models are imported from their version, e.g. ``from rhythm_shared.contracts.v1 import
GoalCreated``, so a ``v2`` can sit beside ``v1`` without ambiguity.
"""

from rhythm_shared.contracts import v1, v2
from rhythm_shared.contracts.base import EVENT_TYPES, Event, Identifier, Instant
from rhythm_shared.contracts.envelope import (
    CONTENT_TYPE,
    SPEC_VERSION,
    Envelope,
    EnvelopeError,
    Record,
    from_record,
    new_event_id,
    to_record,
)
from rhythm_shared.contracts.topics import (
    CADENCE,
    CHECKINS,
    GOALS,
    INTERNAL_PULSE,
    KEYS,
    NOTIFICATIONS,
    PEOPLE,
    PRIVACY,
    TOPICS,
    TopicSpec,
    dlq_spec,
    dlq_topic,
)

__all__ = [
    "CADENCE",
    "CHECKINS",
    "CONTENT_TYPE",
    "EVENT_TYPES",
    "GOALS",
    "INTERNAL_PULSE",
    "KEYS",
    "NOTIFICATIONS",
    "PEOPLE",
    "PRIVACY",
    "SPEC_VERSION",
    "TOPICS",
    "Envelope",
    "EnvelopeError",
    "Event",
    "Identifier",
    "Instant",
    "Record",
    "TopicSpec",
    "dlq_spec",
    "dlq_topic",
    "from_record",
    "new_event_id",
    "to_record",
    "v1",
    "v2",
]
