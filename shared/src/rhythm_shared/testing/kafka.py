"""Reading what really reached the broker."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition

from rhythm_shared.contracts.base import Event
from rhythm_shared.contracts.envelope import new_event_id, to_record
from rhythm_shared.kit.kafka import client_security


async def read_records(
    bootstrap: str,
    topic: str,
    *,
    min_count: int = 1,
    timeout_s: float = 30.0,
    settle_s: float = 0.0,
    predicate: Callable[[ConsumerRecord[bytes, bytes]], bool] = lambda _: True,
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record of ``topic`` from the beginning that matches ``predicate``.

    Waits until at least ``min_count`` match (or the timeout), then ``settle_s`` longer so a
    test that asserts "exactly one" also sees a second record that arrives late.
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, **client_security(), enable_auto_commit=False
    )
    await consumer.start()
    try:
        partitions = None
        deadline = time.monotonic() + timeout_s
        while not partitions and time.monotonic() < deadline:
            partitions = consumer.partitions_for_topic(topic)
            if not partitions:
                await consumer._client.force_metadata_update()
                await asyncio.sleep(0.2)
        if not partitions:
            return []
        assigned = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        found: list[ConsumerRecord[bytes, bytes]] = []
        settle_until: float | None = None
        while True:
            now = time.monotonic()
            if settle_until is None and len(found) >= min_count:
                settle_until = now + settle_s
            if settle_until is not None and now >= settle_until:
                break
            if now >= deadline:
                break
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                found.extend(r for r in records if predicate(r))
        return found
    finally:
        await consumer.stop()


async def wait_for(
    check: Callable[[], Awaitable[Any]], *, timeout_s: float = 30.0, interval_s: float = 0.1
) -> Any:
    """Poll ``check`` until it returns something truthy; fail with the last value otherwise."""
    deadline = time.monotonic() + timeout_s
    value: Any = None
    while time.monotonic() < deadline:
        value = await check()
        if value:
            return value
        await asyncio.sleep(interval_s)
    raise AssertionError(f"condition not met within {timeout_s}s (last value: {value!r})")


async def publish_events(
    bootstrap: str,
    events: Iterable[Event],
    *,
    topic_prefix: str = "",
    source: str = "/rhythm/tests",
    event_ids: Iterable[str] | None = None,
) -> list[str]:
    """Publish contract events as real CloudEvents records (what another service would send).

    Returns the CloudEvents ids, so a test can publish the same id again (a duplicate).
    """
    ids = iter(event_ids) if event_ids is not None else None
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, **client_security(), enable_idempotence=True, acks="all"
    )
    await producer.start()
    sent: list[str] = []
    try:
        for event in events:
            eid = next(ids) if ids is not None else new_event_id()
            record = to_record(event, source=source, event_id=eid)
            await producer.send_and_wait(
                f"{topic_prefix}{record.topic}",
                record.value,
                key=record.key,
                headers=record.headers,
            )
            sent.append(eid)
    finally:
        await producer.stop()
    return sent


async def publish_raw(
    bootstrap: str,
    topic: str,
    value: bytes,
    *,
    key: bytes | None = None,
    headers: list[tuple[str, bytes]] | None = None,
) -> None:
    """Publish arbitrary bytes (a poison record, for example)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, **client_security())
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=key, headers=headers or [])
    finally:
        await producer.stop()
