"""Ingest: a restart mid-batch changes nothing; a rebuild equals the live model."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from reporting_harness import Reporting, StartReporting, publish_fast
from reporting_stream import Expected, assert_numbers_match, generate
from sqlalchemy import select

from rhythm_reporting.adapters.db import (
    GENERATIONAL_TABLES,
    ROLLUP_TABLES,
    read_model_generations,
    value_columns,
)
from rhythm_reporting.adapters.store import ReadModelStore
from rhythm_reporting.entrypoints.rebuild import drop_retired, rebuild_read_model
from rhythm_shared.contracts.topics import TOPICS
from rhythm_shared.kit.consumer import EventConsumer
from rhythm_shared.kit.kafka import ensure_topics
from rhythm_shared.kit.offsets import rewind_group
from rhythm_shared.testing import wait_for

pytestmark = pytest.mark.kafka


async def test_a_restart_in_the_middle_of_a_batch_neither_loses_nor_double_counts(
    start_reporting: StartReporting,
    kafka_bootstrap: str,
    topic_prefix: str,
    tenant: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stream = generate(tenant)
    await ensure_topics(kafka_bootstrap, TOPICS.values(), prefix=topic_prefix, partitions=3)
    count = await publish_fast(kafka_bootstrap, stream.by_time(), topic_prefix=topic_prefix)
    calls = 0
    save_positions = ReadModelStore.save_positions

    async def crash_in_the_fourth_batch(self: ReadModelStore, *args: Any) -> None:
        # The batch's facts and rollups are written by now; the transaction dies before commit.
        nonlocal calls
        calls += 1
        if calls == 4:
            raise OSError("connection lost in the middle of a batch")
        await save_positions(self, *args)

    monkeypatch.setattr(ReadModelStore, "save_positions", crash_in_the_fourth_batch)
    async with start_reporting(consumer_batch_size=50) as svc:
        await svc.wait_consumed(count // 2)
        assert calls >= 4
    # The process stopped half-way. The restarted one is made to read every topic from the very
    # beginning (as after lost Kafka offsets): the stored positions must make the replay harmless.
    monkeypatch.setattr(ReadModelStore, "save_positions", save_positions)

    async def from_the_beginning(
        self: EventConsumer, consumer: AIOKafkaConsumer, partitions: Iterable[TopicPartition]
    ) -> None:
        await consumer.seek_to_beginning(*partitions)

    monkeypatch.setattr(EventConsumer, "resume_from_stored", from_the_beginning)
    async with start_reporting(consumer_batch_size=50) as svc:
        await svc.wait_consumed(count)
        await assert_numbers_match(svc, Expected(stream.events))


async def _table_rows(svc: Reporting, generation: int) -> dict[str, list[tuple[Any, ...]]]:
    out = {}
    async with svc.runtime.sessions() as session:
        for table in GENERATIONAL_TABLES:
            columns = [c for c in table.columns if c.name != "generation"]
            rows = (
                await session.execute(select(*columns).where(table.c.generation == generation))
            ).all()
            if table.name in ROLLUP_TABLES:
                # A rollup row whose counts all went back to zero is the same number as no row.
                counts = value_columns(table)
                rows = [r for r in rows if any(getattr(r, c) for c in counts)]
            out[table.name] = sorted((tuple(r) for r in rows), key=repr)
    return out


async def _generations(svc: Reporting) -> dict[int, str]:
    async with svc.runtime.sessions() as session:
        rows = await session.execute(select(read_model_generations))
        return {r.generation: r.status for r in rows.all()}


async def test_a_rebuild_equals_the_live_model_and_swaps_in_while_reads_keep_working(
    start_reporting: StartReporting, kafka_bootstrap: str, topic_prefix: str, tenant: str
) -> None:
    stream = generate(tenant)
    events = stream.by_time()
    first, later = events[: len(events) - 300], events[len(events) - 300 :]
    async with start_reporting() as svc:
        count = await publish_fast(kafka_bootstrap, first, topic_prefix=topic_prefix)
        await svc.wait_consumed(count)
        live = await svc.get("cadence-adherence", unit="*", period="2026-Q1")
        reads = 0
        done = asyncio.Event()

        async def keep_reading() -> None:
            nonlocal reads
            while not done.is_set():
                answer = await svc.get("cadence-adherence", unit="*", period="2026-Q1")
                assert answer["summary"] == live["summary"]
                reads += 1
                await asyncio.sleep(0.01)

        reader = asyncio.create_task(keep_reading())
        result = await rebuild_read_model(svc.settings, clock=svc.clock, keep_old=True, grace_s=0)
        done.set()
        await reader
        assert reads > 0
        assert (result.generation, result.replaced) == (2, 1)
        assert await _generations(svc) == {1: "retired", 2: "active"}
        old, new = await _table_rows(svc, 1), await _table_rows(svc, 2)
        for table in old:
            assert new[table] == old[table], table
        assert sum(len(rows) for rows in new.values()) > 500
        await assert_numbers_match(svc, Expected(first))
        assert await drop_retired(svc.runtime.sessions) == [1]
        assert all(not rows for rows in (await _table_rows(svc, 1)).values())

        # A second rebuild while events keep arriving: nothing is lost or counted twice across
        # the swap, and the live consumer carries on in the new generation.
        rebuild = asyncio.create_task(rebuild_read_model(svc.settings, clock=svc.clock, grace_s=0))
        for i in range(0, len(later), 50):
            count += await publish_fast(
                kafka_bootstrap, later[i : i + 50], topic_prefix=topic_prefix
            )
            await asyncio.sleep(0.05)
        assert (await rebuild).generation == 3
        await svc.wait_consumed(count)
        await assert_numbers_match(svc, Expected(events))


async def _group_lag(bootstrap: str, group: str, topic_names: list[str]) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await admin.start()
    await consumer.start()
    try:
        parts = [
            TopicPartition(t["topic"], p["partition"])
            for t in await admin.describe_topics(topic_names)
            for p in t["partitions"]
        ]
        ends = await consumer.end_offsets(parts)
        committed = await admin.list_consumer_group_offsets(group)
        return sum(
            ends[tp] - max(committed[tp].offset if tp in committed else 0, 0) for tp in parts
        )
    finally:
        await consumer.stop()
        await admin.close()


async def test_positions_stored_but_never_committed_to_the_group_show_no_lag_after_a_restart(
    start_reporting: StartReporting, kafka_bootstrap: str, topic_prefix: str, tenant: str
) -> None:
    stream = generate(tenant)
    names = [f"{topic_prefix}{t}" for t in TOPICS]
    group = f"{topic_prefix}reporting"
    async with start_reporting() as svc:
        count = await publish_fast(kafka_bootstrap, stream.by_time(), topic_prefix=topic_prefix)
        await svc.wait_consumed(count)
    # As after a crash between a batch's commit and the group's: the database holds every
    # position, the group none. Nothing new arrives, so no batch would commit them.
    await rewind_group(kafka_bootstrap, group, names, datetime(2000, 1, 1, tzinfo=UTC))
    assert await _group_lag(kafka_bootstrap, group, names) == count
    async with start_reporting() as svc:

        async def no_lag() -> bool:
            return await _group_lag(kafka_bootstrap, group, names) == 0

        await wait_for(no_lag, timeout_s=60, interval_s=0.5)
        await assert_numbers_match(svc, Expected(stream.events))
