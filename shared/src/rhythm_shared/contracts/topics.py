"""The one map of Rhythm's topics. Topic names appear nowhere else."""

from __future__ import annotations

from dataclasses import dataclass

PEOPLE = "rhythm.people.v1"
GOALS = "rhythm.goals.v1"
CHECKINS = "rhythm.checkins.v1"
CADENCE = "rhythm.cadence.v1"
NOTIFICATIONS = "rhythm.notifications.v1"
#: Individual workload pulse scores, for reporting's aggregates only: not part of what tenants'
#: integrators and webhooks receive (docs/privacy.md). Its ACLs admit checkins and reporting.
INTERNAL_PULSE = "rhythm.internal.pulse.v1"
#: Per-person data keys (crypto-shredding), compacted: the latest record per person is all it keeps.
KEYS = "rhythm.keys.v1"
#: Each service's report that it erased its part of a person (erasure progress).
PRIVACY = "rhythm.privacy.v1"

DLQ_PREFIX = "rhythm.dlq."

#: Enough partitions to scale a consumer group out to this many replicas.
DEFAULT_PARTITIONS = 12
DLQ_PARTITIONS = 3


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    #: ``retention.ms``: how long records stay readable (-1: forever); ``TOPIC_RETENTION_DAYS``
    #: overrides it per topic for the topics a service creates.
    retention_ms: int
    description: str
    #: ``cleanup.policy=compact``: only the latest record per key is kept (after compaction).
    compacted: bool = False


DAY_MS = 24 * 3600 * 1000
WEEK_MS = 7 * DAY_MS

TOPICS: dict[str, TopicSpec] = {
    spec.name: spec
    for spec in (
        TopicSpec(PEOPLE, DEFAULT_PARTITIONS, -1, "People and org units from the HR platform."),
        TopicSpec(GOALS, DEFAULT_PARTITIONS, -1, "Goals, key results and progress."),
        TopicSpec(CHECKINS, DEFAULT_PARTITIONS, -1, "Check-ins, reflections, feedback, reviews."),
        TopicSpec(CADENCE, DEFAULT_PARTITIONS, -1, "Cadence policies, due and missed check-ins."),
        TopicSpec(NOTIFICATIONS, DEFAULT_PARTITIONS, 13 * WEEK_MS, "Notification outcomes."),
        TopicSpec(
            INTERNAL_PULSE,
            DEFAULT_PARTITIONS,
            -1,
            "Internal: each person's workload pulse, for reporting's aggregates only.",
        ),
        TopicSpec(
            KEYS,
            DEFAULT_PARTITIONS,
            -1,
            "Per-person data keys, wrapped; a destroyed key replaces the issued one (compacted).",
            compacted=True,
        ),
        TopicSpec(PRIVACY, DEFAULT_PARTITIONS, 13 * WEEK_MS, "Erasure progress per service."),
    )
}


def dlq_topic(group: str) -> str:
    """The dead-letter topic of a consumer group: ``rhythm.dlq.<group>``."""
    return f"{DLQ_PREFIX}{group}"


def dlq_spec(group: str) -> TopicSpec:
    return TopicSpec(dlq_topic(group), DLQ_PARTITIONS, 4 * WEEK_MS, f"Dead letters of {group}.")
