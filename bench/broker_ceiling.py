"""The raw broker ceiling: aiokafka produce and consume of 1 KB records on this machine.

Every service's ingest is compared against this ceiling (the best a Python consumer can do here).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from common import Figure, bootstrap, median, report

from rhythm_shared.kit.kafka import client_security


async def produce(topic: str, n: int, payload: bytes) -> float:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap(),
        **client_security(),
        enable_idempotence=True,
        acks="all",
        linger_ms=5,
        max_batch_size=256 * 1024,
    )
    await producer.start()
    try:
        started = time.perf_counter()
        futures = [await producer.send(topic, payload, key=str(i % 512).encode()) for i in range(n)]
        await asyncio.gather(*futures)
        return n / (time.perf_counter() - started)
    finally:
        await producer.stop()


async def consume(topic: str, n: int, partitions: int) -> float:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap(), **client_security(), enable_auto_commit=False
    )
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        seen = 0
        started = time.perf_counter()
        while seen < n:
            batch = await consumer.getmany(timeout_ms=1000, max_records=5000)
            seen += sum(len(records) for records in batch.values())
        return n / (time.perf_counter() - started)
    finally:
        await consumer.stop()


async def main(n: int, rounds: int) -> None:
    partitions = 12
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap(), **client_security())
    await admin.start()
    topics = [f"bench.ceiling.{uuid.uuid4().hex[:8]}.{r}" for r in range(rounds)]
    await admin.create_topics([NewTopic(t, partitions, 1) for t in topics])
    payload = os.urandom(1024)
    produced, consumed = [], []
    try:
        for topic in topics:
            produced.append(await produce(topic, n, payload))
            consumed.append(await consume(topic, n, partitions))
    finally:
        await admin.delete_topics(topics)
        await admin.close()
    report(
        "broker_ceiling",
        [
            Figure("aiokafka produce 1KB (idempotent, acks=all)", median(produced), "records/s"),
            Figure("aiokafka consume 1KB", median(consumed), "records/s"),
        ],
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="smaller sizes")
    args = parser.parse_args()
    n = 50_000 if args.quick else args.records
    asyncio.run(main(n, args.rounds))
