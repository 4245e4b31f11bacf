"""Consumer lag and last success, per consumer group and partition, on ``/metrics``.

Lag is read from the broker (each group's committed offsets against the partitions' end
offsets), not from the consumer itself: a consumer that is stuck, or lost its partitions, stops
reporting on itself, while the broker still knows how far behind the group is. Every replica of a
service reads its own groups, so the series are the same on each replica (alert rules take
``max``). The last success is set by the consumer each time it has applied, and committed, a
batch from a partition (the kit's consumer and reporting's ingest).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.protocol.metadata import MetadataRequest
from prometheus_client import Gauge

log = logging.getLogger("rhythm.lag")

LAG = Gauge(
    "rhythm_consumer_lag",
    "Records on a partition after the group's committed offset (from the broker)",
    ["group", "topic", "partition"],
)
LAST_SUCCESS = Gauge(
    "rhythm_consumer_last_success_timestamp_seconds",
    "When the group last applied and committed a batch from the partition (Unix time)",
    ["group", "topic", "partition"],
)


def record_success(group: str, partitions: Iterable[TopicPartition], prefix: str) -> None:
    """Batches from these partitions have been applied and their offsets committed."""
    now = time.time()
    for topic, partition in {(tp.topic, tp.partition) for tp in partitions}:
        LAST_SUCCESS.labels(group, topic.removeprefix(prefix), str(partition)).set(now)


class LagMonitor:
    """Reads the lag of consumer groups from the broker, every ``interval_s``.

    ``groups`` maps a group's name (as in the metrics: without the topic prefix) to the topics it
    reads (without the prefix); the broker knows both with the prefix.
    """

    def __init__(
        self,
        bootstrap: str,
        groups: Mapping[str, Sequence[str]],
        *,
        prefix: str = "",
        interval_s: float = 30.0,
        security: Mapping[str, Any] | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        self.groups = {group: list(topics) for group, topics in groups.items()}
        self.prefix = prefix
        self.interval_s = interval_s
        self.security = dict(security or {})

    async def sample_once(self) -> dict[tuple[str, str, int], int]:
        """Each group's lag per (group, topic, partition), also set on the gauge."""
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, **self.security)
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, **self.security)
        await admin.start()
        try:
            await consumer.start()
            try:
                return await self._sample(admin, consumer)
            finally:
                await consumer.stop()
        finally:
            await admin.close()

    async def _sample(
        self, admin: AIOKafkaAdminClient, consumer: AIOKafkaConsumer
    ) -> dict[tuple[str, str, int], int]:
        # The partitions of the groups' topics alone: a cluster can hold thousands of topics,
        # and decoding the metadata of all of them held the event loop for most of a second.
        # The request says not to create a topic it names (describe_topics would let the
        # broker auto-create it); one that does not exist comes back with an error code.
        named = sorted({f"{self.prefix}{t}" for topics in self.groups.values() for t in topics})
        metadata = await admin._send_request(
            MetadataRequest(named, allow_auto_topic_creation=False)
        )
        existing = {
            str(t["topic"]): sorted(int(p["partition"]) for p in t["partitions"])
            for t in metadata.to_object()["topics"]
            if t["error_code"] == 0
        }
        lags: dict[tuple[str, str, int], int] = {}
        for group, topics in self.groups.items():
            partitions = [
                TopicPartition(f"{self.prefix}{topic}", p)
                for topic in topics
                for p in existing.get(f"{self.prefix}{topic}", ())
            ]
            if not partitions:
                continue
            committed = await admin.list_consumer_group_offsets(
                f"{self.prefix}{group}", partitions=partitions
            )
            ends = await consumer.end_offsets(partitions)
            starts = await consumer.beginning_offsets(partitions)
            for tp in partitions:
                meta = committed.get(tp)
                # Nothing committed yet: the group starts at the earliest record still kept.
                position = meta.offset if meta is not None and meta.offset >= 0 else starts[tp]
                lag = max(0, ends[tp] - position)
                topic = tp.topic.removeprefix(self.prefix)
                lags[(group, topic, tp.partition)] = lag
                LAG.labels(group, topic, str(tp.partition)).set(lag)
        return lags

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.sample_once()
            except Exception as exc:  # the broker may be away: the next round tries again
                log.warning("consumer_lag_unavailable", extra={"error": repr(exc)})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.interval_s)
