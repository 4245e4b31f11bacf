"""The broker that ``rhythm infra up`` runs is real Kafka, configured as Rhythm expects.

Needs the local infrastructure (``make infra-up`` / ``rhythm infra up``); the bootstrap comes
from ``KAFKA_BOOTSTRAP_SERVERS`` (default 127.0.0.1:9092). Without a broker these tests skip
locally and fail in CI (``CI=true``), where a silent skip would hide a broken set-up.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import AsyncIterator

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from rhythm_cli import infra
from rhythm_shared.testing import wait_for

pytestmark = pytest.mark.kafka

BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip() or "127.0.0.1:9092"


@pytest.fixture(scope="module", autouse=True)
def broker() -> None:
    if infra.kafka_ready(BOOTSTRAP, timeout=10):
        return
    message = f"no Kafka broker answers at {BOOTSTRAP}; run `rhythm infra up` (make infra-up)"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
async def admin() -> AsyncIterator[AIOKafkaAdminClient]:
    client = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP, request_timeout_ms=15000)
    await client.start()
    try:
        yield client
    finally:
        await client.close()


def test_kafka_ready_reports_the_broker() -> None:
    assert infra.kafka_ready(BOOTSTRAP, timeout=5)


def test_kafka_ready_is_false_where_no_broker_listens() -> None:
    started = time.monotonic()
    assert not infra.kafka_ready("127.0.0.1:1", timeout=1)
    assert time.monotonic() - started < 10


async def test_cluster_is_a_single_kraft_node(admin: AIOKafkaAdminClient) -> None:
    cluster = await admin.describe_cluster()
    assert cluster["cluster_id"]
    assert [broker["node_id"] for broker in cluster["brokers"]] == [1]
    assert cluster["brokers"][0]["host"] == "127.0.0.1"
    assert cluster["controller_id"] == 1


async def test_broker_is_configured_as_rhythm_expects(admin: AIOKafkaAdminClient) -> None:
    wanted = {
        "auto.create.topics.enable": "false",
        "num.partitions": "12",
        "offsets.topic.replication.factor": "1",
        "group.initial.rebalance.delay.ms": "0",
    }
    [response] = await admin.describe_configs(
        [ConfigResource(ConfigResourceType.BROKER, "1", dict.fromkeys(wanted))]
    )
    [(error_code, _message, _type, _name, entries)] = response.resources
    assert error_code == 0
    actual = {entry[0]: entry[1] for entry in entries}
    assert actual == wanted


async def test_round_trip_through_a_throwaway_topic(admin: AIOKafkaAdminClient) -> None:
    topic = f"rhythm.test.infra.{uuid.uuid4().hex[:12]}"
    await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    try:
        # Creation reaches the metadata a moment later: poll instead of asserting at once.
        async def listed() -> bool:
            return topic in await admin.list_topics()

        assert await wait_for(listed, timeout_s=30)
        producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all")
        await producer.start()
        try:
            sent = await producer.send_and_wait(
                topic,
                key=b"tenant-1/employee-1",
                value=b'{"hello": "kafka"}',
                headers=[("ce_type", b"rhythm.test.sent.v1")],
            )
        finally:
            await producer.stop()

        consumer = AIOKafkaConsumer(bootstrap_servers=BOOTSTRAP, enable_auto_commit=False)
        await consumer.start()
        try:
            partition = TopicPartition(topic, sent.partition)
            consumer.assign([partition])
            await consumer.seek_to_beginning(partition)
            batches = await consumer.getmany(partition, timeout_ms=15000)
        finally:
            await consumer.stop()
        [record] = batches[partition]
        assert record.offset == sent.offset
        assert record.key == b"tenant-1/employee-1"
        assert record.value == b'{"hello": "kafka"}'
        assert list(record.headers) == [("ce_type", b"rhythm.test.sent.v1")]
    finally:
        await admin.delete_topics([topic])


def test_second_kafka_up_is_a_no_op() -> None:
    pid = infra.kafka_pid()
    if pid is None:
        pytest.skip(f"the broker at {BOOTSTRAP} was not started by `rhythm infra up`")
    started = time.monotonic()
    infra.kafka_up(BOOTSTRAP)
    assert time.monotonic() - started < 10
    assert infra.kafka_pid() == pid
    assert infra.kafka_ready(BOOTSTRAP, timeout=5)
