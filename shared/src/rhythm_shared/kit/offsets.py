"""Rewinding a consumer group to a point in time: after a service's database is restored from a
backup, its groups read again what was consumed after the backup (docs/operations-backup.md).

Kafka keeps each record's timestamp; ``offsets_for_times`` finds, per partition, the first
offset at or after a time. What the restored database already holds is skipped by its inbox, so
rewinding to a moment before the backup began is safe; rewinding to after it would lose what
came in between.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient


async def rewind_group(
    bootstrap: str,
    group_id: str,
    topics: Sequence[str],
    to: datetime,
    *,
    security: Mapping[str, Any] | None = None,
) -> dict[TopicPartition, int]:
    """Commit, as ``group_id``'s position on every partition of ``topics``, the first offset at
    or after ``to`` (the end of a partition with nothing that recent). The group must have no
    running members (stop its service first): the broker refuses the commit otherwise."""
    if to.tzinfo is None:
        raise ValueError("give the time with its time zone (UTC)")
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **dict(security or {}))
    await admin.start()
    try:
        described = {
            str(t["topic"]): t for t in await admin.describe_topics() if not t["error_code"]
        }
    finally:
        await admin.close()
    missing = [t for t in topics if t not in described]
    if missing:
        raise ValueError(f"no such topics: {', '.join(missing)}")
    partitions = [
        TopicPartition(topic, int(p["partition"]))
        for topic in topics
        for p in sorted(described[topic]["partitions"], key=lambda p: int(p["partition"]))
    ]
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=group_id,
        enable_auto_commit=False,
        **dict(security or {}),
    )
    await consumer.start()
    try:
        consumer.assign(partitions)
        at = int(to.timestamp() * 1000)
        found = await consumer.offsets_for_times({tp: at for tp in partitions})
        ends = await consumer.end_offsets(partitions)
        offsets = {tp: found[tp].offset if found.get(tp) else ends[tp] for tp in partitions}
        await consumer.commit(offsets)
        return offsets
    finally:
        await consumer.stop()
