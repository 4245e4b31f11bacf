"""``rhythm reporting rebuild``: replay every topic from the start of retention into a fresh
read-model generation, then swap it in; the live generation keeps answering until the swap.

The swap happens in one transaction under the live writers' lock, and only once the new
generation has applied at least as far as the live one on every partition. The live consumer
then finds its next batch (partly) below the new positions and skips what is already counted,
so nothing is lost or counted twice across the swap.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rhythm_reporting.adapters.db import kit
from rhythm_reporting.adapters.store import (
    ReadModelStore,
    activate_generation,
    active_generation,
    drop_generations,
    ensure_active_generation,
    retired_generations,
    start_generation,
)
from rhythm_reporting.adapters.unit_of_work import SqlReportingUnitOfWork
from rhythm_reporting.domain.erasure import SERVICE
from rhythm_reporting.entrypoints.consumers import spec
from rhythm_reporting.settings import Settings
from rhythm_shared.kit.clock import Clock, SystemClock
from rhythm_shared.kit.consumer import EventConsumer
from rhythm_shared.kit.crypto import load_kek
from rhythm_shared.kit.db import create_engine, session_factory
from rhythm_shared.kit.kafka import client_security, make_producer
from rhythm_shared.kit.migrations import upgrade_to_head

log = logging.getLogger("rhythm.reporting.rebuild")
MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


@dataclass(frozen=True)
class RebuildResult:
    generation: int
    replaced: int
    records: int
    seconds: float


class RebuildTimeout(RuntimeError):
    pass


async def rebuild_read_model(
    settings: Settings,
    *,
    clock: Clock | None = None,
    keep_old: bool = False,
    grace_s: float = 5.0,
    timeout_s: float = 6 * 3600,
) -> RebuildResult:
    clock = clock or SystemClock()
    started = time.monotonic()
    engine = create_engine(settings.effective_database_url)
    await upgrade_to_head(engine, MIGRATIONS)
    sessions = session_factory(engine)
    security = client_security(settings)
    producer = make_producer(settings.kafka_bootstrap_servers, security)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        **security,
        enable_auto_commit=False,
        max_poll_records=settings.consumer_batch_size,
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    try:
        async with sessions() as session, session.begin():
            replaced = await ensure_active_generation(session, clock.now())
            generation = await start_generation(session, clock.now())
        log.info("rebuild_started", extra={"generation": generation, "replacing": replaced})
        await producer.start()
        await consumer.start()
        kek = load_kek(settings.data_key_encryption_key.get_secret_value())
        # The live consumer's own batch path, on the new generation: the same projection,
        # positions and dead letters, read from the start of every partition.
        applier = EventConsumer(
            spec(),
            lambda: SqlReportingUnitOfWork(
                sessions, kit, clock, SERVICE, generation=generation, kek=kek
            ),
            producer,
            max_attempts=settings.consumer_max_attempts,
            topic_prefix=settings.kafka_topic_prefix,
            max_record_bytes=settings.consumer_max_record_bytes,
        )
        partitions = await _all_partitions(
            settings.kafka_bootstrap_servers,
            [settings.topic(t) for t in spec().topics],
            security,
        )
        end: dict[TopicPartition, int] = {}
        if partitions:
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            end = await consumer.end_offsets(partitions)
        records = 0
        deadline = time.monotonic() + timeout_s
        while True:
            if time.monotonic() > deadline:
                raise RebuildTimeout(f"rebuild of generation {generation} did not catch up")
            batch = (
                await consumer.getmany(timeout_ms=200, max_records=settings.consumer_batch_size)
                if partitions
                else {}
            )
            flat = [r for rs in batch.values() for r in rs]
            if flat:
                await applier.handle_batch(flat)
                records += len(flat)
                continue
            positions = [await consumer.position(tp) for tp in partitions]
            caught_up = all(p >= end[tp] for p, tp in zip(positions, partitions, strict=True))
            if caught_up and await _swap(sessions, generation, clock):
                break
        if not keep_old:
            await asyncio.sleep(grace_s)  # reads that began on the old generation finish
            await drop_retired(sessions)
        seconds = time.monotonic() - started
        log.info("rebuild_swapped", extra={"generation": generation, "records": records})
        return RebuildResult(generation, replaced, records, seconds)
    finally:
        await consumer.stop()
        await producer.stop()
        await engine.dispose()


async def _all_partitions(
    bootstrap: str, topics: Sequence[str], security: dict[str, Any]
) -> list[TopicPartition]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **security)
    await admin.start()
    try:
        described = await admin.describe_topics(list(topics))
    finally:
        await admin.close()
    return sorted(
        TopicPartition(topic["topic"], partition["partition"])
        for topic in described
        if not topic.get("error_code")
        for partition in topic["partitions"]
    )


async def _swap(sessions: async_sessionmaker[AsyncSession], generation: int, clock: Clock) -> bool:
    """Activate ``generation`` if it is at least as far as the live one everywhere."""
    async with sessions() as session, session.begin():
        mine = ReadModelStore(session, generation)
        await mine.lock_live_writers()
        live = await active_generation(session)
        if live is None:
            await activate_generation(session, generation, clock.now())
            return True
        live_positions = await ReadModelStore(session, live).positions()
        my_positions = await mine.positions()
        if any(my_positions.get(tp, 0) < offset for tp, offset in live_positions.items()):
            return False
        await activate_generation(session, generation, clock.now())
        return True


async def drop_retired(sessions: async_sessionmaker[AsyncSession]) -> list[int]:
    """Delete the rows of retired generations (the record of each generation stays)."""
    async with sessions() as session, session.begin():
        retired = await retired_generations(session)
        if retired:
            await drop_generations(session, retired)
    return retired
