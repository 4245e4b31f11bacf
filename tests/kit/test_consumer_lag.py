"""Consumer lag per group and partition comes from the broker (so a stuck consumer still shows
its lag), and each consumer stamps its last success per partition; both are on /metrics."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.protocol.metadata import MetadataRequest
from prometheus_client import REGISTRY

from rhythm_shared.contracts import topics
from rhythm_shared.contracts.topics import TOPICS
from rhythm_shared.kit.app import running
from rhythm_shared.kit.kafka import ensure_topics
from rhythm_shared.kit.lag import LagMonitor
from rhythm_shared.testing import wait_for
from tests.kit import sample
from tests.kit.test_kit import auth, settings

pytestmark = pytest.mark.kafka


async def _produce(bootstrap: str, topic: str, count: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for i in range(count):
            await producer.send_and_wait(topic, f"r{i}".encode(), partition=0)
    finally:
        await producer.stop()


async def _commit(bootstrap: str, group_id: str, tp: TopicPartition, offset: int) -> None:
    # No auto-commit: on stop it would commit the consumer's own position, which it may
    # already have reset to the end of the partition, over the offset committed here.
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group_id, enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign([tp])
        await consumer.commit({tp: offset})
    finally:
        await consumer.stop()


async def test_lag_is_the_broker_s_end_offset_after_the_group_s_committed_one(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    await ensure_topics(
        kafka_bootstrap, [TOPICS[topics.CHECKINS]], prefix=topic_prefix, partitions=3
    )
    topic = f"{topic_prefix}{topics.CHECKINS}"
    await _produce(kafka_bootstrap, topic, 5)
    await _commit(kafka_bootstrap, f"{topic_prefix}behind", TopicPartition(topic, 0), 2)
    monitor = LagMonitor(
        kafka_bootstrap,
        {"behind": [topics.CHECKINS], "never-ran": [topics.CHECKINS], "absent": ["no.such"]},
        prefix=topic_prefix,
    )

    lags = await monitor.sample_once()

    assert lags == {
        ("behind", topics.CHECKINS, 0): 3,
        ("behind", topics.CHECKINS, 1): 0,
        ("behind", topics.CHECKINS, 2): 0,
        # A group that never committed is behind by everything the topic still keeps.
        ("never-ran", topics.CHECKINS, 0): 5,
        ("never-ran", topics.CHECKINS, 1): 0,
        ("never-ran", topics.CHECKINS, 2): 0,
    }
    labels = {"group": "behind", "topic": topics.CHECKINS, "partition": "0"}
    assert REGISTRY.get_sample_value("rhythm_consumer_lag", labels) == 3


async def test_a_sample_asks_the_broker_about_the_groups_topics_alone(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    """The broker holds many topics (every test makes its own): a sample's metadata request
    names the groups' topics and lets the broker create none of them."""
    await ensure_topics(kafka_bootstrap, [TOPICS[topics.CHECKINS]], prefix=topic_prefix)
    monitor = LagMonitor(
        kafka_bootstrap, {"g": [topics.CHECKINS], "h": [topics.CHECKINS, "no.such"]},
        prefix=topic_prefix,
    )  # fmt: skip
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    await consumer.start()
    asked: list[Any] = []
    send = admin._send_request

    async def recorded(request: Any, *args: Any, **kwargs: Any) -> Any:
        asked.append(request)
        return await send(request, *args, **kwargs)

    admin._send_request = recorded
    try:
        lags = await monitor._sample(admin, consumer)
    finally:
        await consumer.stop()
        await admin.close()
    assert {(g, t) for g, t, _ in lags} == {("g", topics.CHECKINS), ("h", topics.CHECKINS)}
    metadata = [r for r in asked if isinstance(r, MetadataRequest)]
    assert [r._topics for r in metadata] == [
        sorted([f"{topic_prefix}{topics.CHECKINS}", f"{topic_prefix}no.such"])
    ]
    assert [r._allow_auto_topic_creation for r in metadata] == [False]


def _series(name: str, group: str) -> dict[str, float]:
    return {
        f"{s.labels['topic']}/{s.labels['partition']}": s.value
        for metric in REGISTRY.collect()
        for s in metric.samples
        if s.name == name and s.labels.get("group") == group
    }


async def test_a_running_service_exposes_its_groups_lag_and_last_success(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Any, tenant: str
) -> None:
    # The group's name in the metrics has no prefix; this test's own prefix keeps it apart.
    group = "sample"
    config = settings(
        f"sqlite+aiosqlite:///{tmp_path / 'sample.db'}", topic_prefix, kafka_bootstrap
    )
    app = sample.build(config.model_copy(update={"consumer_lag_interval_s": 0.2}))
    transport = httpx.ASGITransport(app=app)
    async with (
        running(app),
        httpx.AsyncClient(transport=transport, base_url="http://sample") as client,
    ):
        started = _series("rhythm_consumer_last_success_timestamp_seconds", group)
        for i in range(3):
            response = await client.post(
                "/v1/greetings",
                json={"greeting_id": f"g-{uuid.uuid4().hex[:8]}-{i}", "receiver_id": "e-2"},
                headers=auth(tenant),
            )
            assert response.status_code == 201

        async def applied_and_caught_up() -> bool:
            stamps = _series("rhythm_consumer_last_success_timestamp_seconds", group)
            lags = _series("rhythm_consumer_lag", group)
            fresh = any(stamps[k] > started.get(k, 0) for k in stamps)
            return fresh and len(lags) == 3 and sum(lags.values()) == 0

        await wait_for(applied_and_caught_up, timeout_s=60)
        text = (await client.get("/metrics")).text
        assert (
            'rhythm_consumer_lag{group="sample",partition="0",topic="rhythm.checkins.v1"}' in text
        )


async def test_the_monitor_survives_a_broker_it_cannot_reach() -> None:
    monitor = LagMonitor("127.0.0.1:9", {"g": [topics.CHECKINS]}, interval_s=0.05)
    stop = asyncio.Event()
    task = asyncio.create_task(monitor.run(stop))
    await asyncio.sleep(0.3)
    assert not task.done()
    stop.set()
    await asyncio.wait_for(task, 30)
