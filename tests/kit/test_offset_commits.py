"""A consumer's offsets are committed behind its batches (kit.commits): never ahead of what was
applied, never going back, one commit in flight at a time, the batches applied meanwhile
together in the next one, and a consumer that has caught up waits for its own; a failed commit
is retried for the partitions still assigned; a clean stop leaves the group committed at the
end of what it applied.

The properties run against a stand-in for aiokafka's consumer whose commits finish at
generated moments; the last test runs the kit's sample service on the real broker."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from aiokafka import ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaConnectionError
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import create_async_engine

from rhythm_shared.contracts import topics
from rhythm_shared.kit.app import running
from rhythm_shared.kit.commits import OffsetCommitter
from rhythm_shared.testing import wait_for
from tests.kit import sample
from tests.kit.test_kit import auth
from tests.kit.test_kit import settings as sample_settings

TOPIC = "t"


def _record(partition: int, offset: int) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(TOPIC, partition, offset, 0, 0, None, b"", None, 0, 0, ())


class _Consumer:
    """What the committer uses of aiokafka's consumer; each commit takes ``delays.pop()``
    turns of the event loop, and fails while ``failures`` lasts."""

    def __init__(self, partitions: int, delays: list[int], failures: int = 0) -> None:
        self.assigned = {TopicPartition(TOPIC, p) for p in range(partitions)}
        self.delays = delays
        self.failures = failures
        self.committed: dict[TopicPartition, int] = {}
        self.commits: list[dict[TopicPartition, int]] = []
        self.in_flight = 0
        self.most_in_flight = 0
        #: The offsets applied so far (after each record), which no commit may pass.
        self.applied: dict[TopicPartition, int] = {}

    def assignment(self) -> set[TopicPartition]:
        return set(self.assigned)

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            for _ in range(self.delays.pop() if self.delays else 0):
                await asyncio.sleep(0)
            if self.failures:
                self.failures -= 1
                raise KafkaConnectionError("broker away")
            for tp, offset in offsets.items():
                assert offset <= self.applied[tp], "committed past what was applied"
                assert offset >= self.committed.get(tp, 0), "a commit went back"
                self.committed[tp] = offset
            self.commits.append(dict(offsets))
        finally:
            self.in_flight -= 1


batches = st.lists(
    st.tuples(
        st.lists(st.integers(0, 2), min_size=1, max_size=6), st.integers(0, 3), st.booleans()
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=200, deadline=None)
@given(batches=batches, delays=st.lists(st.integers(0, 4), max_size=12))
def test_commits_follow_the_applied_batches_one_at_a_time(
    batches: list[tuple[list[int], int, bool]], delays: list[int]
) -> None:
    async def run() -> None:
        consumer = _Consumer(3, delays)
        committer = OffsetCommitter("g")
        next_offset = [0, 0, 0]
        for partitions, pause, behind in batches:
            records = []
            for p in partitions:
                records.append(_record(p, next_offset[p]))
                next_offset[p] += 1
            for r in records:
                consumer.applied[TopicPartition(TOPIC, r.partition)] = r.offset + 1
            await committer.applied(consumer, records, behind=behind)
            if not behind:  # caught up: the batch's commit was answered before going on
                assert consumer.committed == consumer.applied
            for _ in range(pause):
                await asyncio.sleep(0)
        await committer.flush()
        assert consumer.most_in_flight == 1
        assert consumer.committed == consumer.applied
        # Batches applied while a commit was in flight went out together: never more commits
        # than batches.
        assert len(consumer.commits) <= len(batches)

    asyncio.run(run())


def test_a_failed_commit_is_retried_for_the_partitions_still_assigned() -> None:
    async def run() -> None:
        consumer = _Consumer(2, delays=[], failures=1)
        committed: list[set[TopicPartition]] = []
        committer = OffsetCommitter("g", on_committed=lambda tps: committed.append(set(tps)))
        committer.retry_s = 0.01
        for p in (0, 1):
            consumer.applied[TopicPartition(TOPIC, p)] = 5
        await committer.applied(consumer, [_record(0, 4), _record(1, 4)])
        consumer.assigned.discard(TopicPartition(TOPIC, 1))  # went to another member meanwhile
        await committer.flush()
        assert consumer.commits == [{TopicPartition(TOPIC, 0): 5}]
        assert committed == [{TopicPartition(TOPIC, 0)}]

    asyncio.run(run())


def test_while_stopping_each_batch_waits_for_its_commit() -> None:
    async def run() -> None:
        consumer = _Consumer(1, delays=[3, 3, 3])
        committer = OffsetCommitter("g")
        tp = TopicPartition(TOPIC, 0)
        consumer.applied[tp] = 1
        await committer.applied(consumer, [_record(0, 0)])
        assert consumer.committed == {}  # behind: in flight while the consumer goes on
        await committer.close()
        assert consumer.committed == {tp: 1}
        consumer.applied[tp] = 2
        await committer.applied(consumer, [_record(0, 1)])
        assert consumer.committed == {tp: 2}

    asyncio.run(run())


def test_a_stop_does_not_wait_on_a_broker_that_refuses_the_commit() -> None:
    async def run() -> None:
        consumer = _Consumer(1, delays=[], failures=100)
        committer = OffsetCommitter("g")
        consumer.applied[TopicPartition(TOPIC, 0)] = 1
        await committer.close()
        await asyncio.wait_for(
            committer.applied(consumer, [_record(0, 0)]),
            timeout=5,
        )
        assert consumer.committed == {}  # read again after the restart, harmlessly

    asyncio.run(run())


@pytest.mark.kafka
async def test_a_clean_stop_leaves_the_group_committed_at_the_end(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Any, tenant: str
) -> None:
    database = f"sqlite+aiosqlite:///{tmp_path / 'sample.db'}"
    app = sample.build(sample_settings(database, topic_prefix, kafka_bootstrap))
    transport = httpx.ASGITransport(app=app)
    sent = 40
    engine = create_async_engine(database)
    async with (
        running(app),
        httpx.AsyncClient(transport=transport, base_url="http://sample") as client,
    ):
        for i in range(sent):
            response = await client.post(
                "/v1/greetings",
                json={"greeting_id": f"g-{uuid.uuid4().hex[:8]}-{i}", "receiver_id": "e-2"},
                headers=auth(tenant),
            )
            assert response.status_code == 201

        async def applied() -> bool:
            async with engine.connect() as conn:
                count = await conn.execute(select(func.count()).select_from(sample.effects))
                return count.scalar_one() >= sent

        await wait_for(applied, timeout_s=60)
    await engine.dispose()
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        committed = await admin.list_consumer_group_offsets(f"{topic_prefix}sample")
    finally:
        await admin.close()
    topic = topic_prefix + topics.CHECKINS
    assert sum(m.offset for tp, m in committed.items() if tp.topic == topic) == sent
