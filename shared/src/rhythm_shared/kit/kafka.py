"""Kafka plumbing shared by every service: the producer, topic creation, dead letters."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from datetime import UTC, datetime

from aiokafka import AIOKafkaProducer, ConsumerRecord
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from rhythm_shared.contracts.topics import DLQ_PREFIX, TopicSpec, dlq_topic

log = logging.getLogger("rhythm.kafka")

DLQ_REASON = "rhythm_dlq_reason"


def make_producer(bootstrap: str) -> AIOKafkaProducer:
    # Idempotent producer with acks=all: a retried send cannot duplicate or reorder a partition.
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        enable_idempotence=True,
        acks="all",
        linger_ms=5,
        max_batch_size=256 * 1024,
        request_timeout_ms=30_000,
    )


async def ensure_topics(
    bootstrap: str,
    specs: Iterable[TopicSpec],
    *,
    prefix: str = "",
    partitions: int | None = None,
    replication: int = 1,
) -> list[str]:
    """Create the topics that do not exist yet (never left to broker auto-creation)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30_000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = {f"{prefix}{s.name}": s for s in specs}
        missing = [
            NewTopic(
                name=name,
                # The override applies to the catalog topics, never to the small DLQ topics.
                num_partitions=(
                    partitions
                    if partitions and not spec.name.startswith(DLQ_PREFIX)
                    else spec.partitions
                ),
                replication_factor=replication,
                topic_configs={"retention.ms": str(spec.retention_ms)},
            )
            for name, spec in wanted.items()
            if name not in existing
        ]
        if missing:
            # Another replica may create them first.
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(missing)
            # Creation is asynchronous in the cluster: wait until the metadata shows them.
            for _ in range(100):
                if {t.name for t in missing} <= set(await admin.list_topics()):
                    break
                await asyncio.sleep(0.1)
        return [t.name for t in missing]
    finally:
        await admin.close()


async def broker_reachable(bootstrap: str, timeout_s: float = 3.0) -> bool:
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, request_timeout_ms=int(timeout_s * 1000)
    )
    try:
        await asyncio.wait_for(admin.start(), timeout_s)
        await asyncio.wait_for(admin.list_topics(), timeout_s)
        return True
    except (KafkaError, OSError, TimeoutError):
        return False
    finally:
        await admin.close()


async def send_to_dlq(
    producer: AIOKafkaProducer,
    record: ConsumerRecord[bytes, bytes],
    *,
    group: str,
    reason: str,
    prefix: str = "",
) -> None:
    """Park ``record`` on ``rhythm.dlq.<group>`` unchanged, with why and where it came from."""
    headers = [(k, v) for k, v in (record.headers or ()) if not k.startswith("rhythm_dlq_")]
    headers += [
        (DLQ_REASON, reason[:2000].encode()),
        ("rhythm_dlq_group", group.encode()),
        ("rhythm_dlq_topic", record.topic.encode()),
        ("rhythm_dlq_partition", str(record.partition).encode()),
        ("rhythm_dlq_offset", str(record.offset).encode()),
        ("rhythm_dlq_failed_at", datetime.now(UTC).isoformat().encode()),
    ]
    await producer.send_and_wait(
        f"{prefix}{dlq_topic(group)}", value=record.value, key=record.key, headers=headers
    )
    log.warning(
        "event_dead_lettered",
        extra={
            "group": group,
            "topic": record.topic,
            "partition": record.partition,
            "offset": record.offset,
            "reason": reason,
        },
    )
