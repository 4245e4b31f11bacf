"""Reporting's ingest throughput through real Kafka, beside a ceiling and a floor, in one run.

    .venv/bin/python bench/reporting_ingest.py            # 1,000,000 mixed events
    .venv/bin/python bench/reporting_ingest.py --quick    # 50,000

1. Publishes N mixed events (people, cadence, check-ins, feedback, goals, notifications; see
   bench/reporting_data.py) to fresh topics.
2. Ceiling: a raw aiokafka consumer that only reads and decodes (``from_record``) every record.
3. Reporting's ingest: the service itself, its consumer group in the kit consumer's positions
   mode (one transaction per batch with bulk upserts and the stored positions), into a fresh
   read model (SQLite by default, ``--database-url`` for PostgreSQL), until every record is
   applied.
4. Floor: a naive consumer that applies one event per transaction (the same projection, its
   position stored with it), time-boxed by ``--naive-seconds`` (its rate is steady).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from common import Figure, report
from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).parent))

from reporting_data import stream

from rhythm_reporting.adapters.db import consumer_positions, kit
from rhythm_reporting.adapters.store import (
    ensure_active_generation,
)
from rhythm_reporting.adapters.unit_of_work import SqlReportingUnitOfWork
from rhythm_reporting.commands import ProjectEvents
from rhythm_reporting.handlers import project_events
from rhythm_reporting.main import Settings, build
from rhythm_shared.contracts.envelope import from_record, to_record
from rhythm_shared.contracts.topics import TOPICS
from rhythm_shared.kit.app import running
from rhythm_shared.kit.clock import SystemClock
from rhythm_shared.kit.db import create_engine, session_factory
from rhythm_shared.kit.kafka import client_security, ensure_topics
from rhythm_shared.kit.migrations import upgrade_to_head

MIGRATIONS = Path(__file__).resolve().parent.parent / (
    "services/reporting/src/rhythm_reporting/migrations"
)


async def publish(bootstrap: str, prefix: str, count: int) -> int:
    employees = max(1000, count // 20)  # ~2.6 events per employee-month, 8 months
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        **client_security(),
        linger_ms=20,
        max_batch_size=512 * 1024,
        acks=1,
    )
    await producer.start()
    sent = 0
    try:
        pending = []
        for event in islice(stream("bench", employees, 8), count):
            record = to_record(event, source="/rhythm/bench", event_id=str(uuid.uuid4()))
            pending.append(
                await producer.send(
                    f"{prefix}{record.topic}", record.value, key=record.key, headers=record.headers
                )
            )
            sent += 1
            if len(pending) >= 20_000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return sent


async def _partitions(consumer: AIOKafkaConsumer, topics: list[str]) -> list[TopicPartition]:
    await consumer.topics()
    out = []
    for topic in topics:
        for _ in range(50):
            parts = consumer.partitions_for_topic(topic)
            if parts:
                out += [TopicPartition(topic, p) for p in sorted(parts)]
                break
            await consumer._client.force_metadata_update()
    return out


async def ceiling(bootstrap: str, prefix: str, total: int) -> float:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        **client_security(),
        enable_auto_commit=False,
        max_partition_fetch_bytes=4 << 20,
    )
    await consumer.start()
    try:
        parts = await _partitions(consumer, [f"{prefix}{t}" for t in TOPICS])
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        seen = 0
        started = time.perf_counter()
        while seen < total:
            batch = await consumer.getmany(timeout_ms=500, max_records=2000)
            for records in batch.values():
                for record in records:
                    from_record(record.headers or (), record.value)
                    seen += 1
        return seen / (time.perf_counter() - started)
    finally:
        await consumer.stop()


async def _fresh_model(url: str) -> tuple[object, object]:
    engine = create_engine(url)
    await upgrade_to_head(engine, MIGRATIONS)
    sessions = session_factory(engine)
    async with sessions() as session, session.begin():
        await ensure_active_generation(session, datetime.now(UTC))
    return engine, sessions


async def ours(bootstrap: str, prefix: str, total: int, url: str, batch: int) -> float:
    """The reporting service itself (the kit's consumer in its positions mode), no HTTP."""
    settings = Settings(
        database_url=url,
        kafka_bootstrap_servers=bootstrap,
        kafka_topic_prefix=prefix,
        consumer_batch_size=batch,
        consumer_session_timeout_ms=6000,
        consumer_heartbeat_interval_ms=500,
        run_jobs=False,
        log_level="WARNING",
        environment="development",  # the bench's own throwaway keys
    )
    app = build(settings)
    async with running(app) as runtime:

        async def applied() -> int:
            async with runtime.sessions() as session:
                value = await session.execute(
                    select(func.coalesce(func.sum(consumer_positions.c.next_offset), 0))
                )
                return int(value.scalar() or 0)

        started: float | None = None
        while True:
            done = await applied()
            if started is None and done > 0:
                started = time.perf_counter()  # from the first committed batch: no group join
                first = done
            if done >= total:
                break
            await asyncio.sleep(0.2)
        assert started is not None
        return (total - first) / (time.perf_counter() - started)


async def floor(bootstrap: str, prefix: str, url: str, seconds: float) -> tuple[float, int]:
    engine, sessions = await _fresh_model(url)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, **client_security(), enable_auto_commit=False
    )
    await consumer.start()
    try:
        parts = await _partitions(consumer, [f"{prefix}{t}" for t in TOPICS])
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        done = 0
        started = time.perf_counter()
        now = datetime.now(UTC)
        while time.perf_counter() - started < seconds:
            batch = await consumer.getmany(timeout_ms=500, max_records=500)
            for records in batch.values():
                for record in records:
                    envelope = from_record(record.headers or (), record.value)
                    async with SqlReportingUnitOfWork(
                        sessions,  # type: ignore[arg-type]
                        kit,
                        SystemClock(),
                        "reporting",
                        generation=1,
                    ) as uow:
                        tp = (record.topic, record.partition)
                        stored = await uow.read_model.positions([record.topic])
                        if record.offset >= stored.get(tp, 0):
                            await project_events(uow, ProjectEvents(events=(envelope,)))
                            await uow.read_model.save_positions({tp: record.offset + 1}, now)
                    done += 1
                    if time.perf_counter() - started >= seconds:
                        break
        return done / (time.perf_counter() - started), done
    finally:
        await consumer.stop()
        await engine.dispose()  # type: ignore[attr-defined]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="50,000 events")
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--batch", type=int, default=2000, help="records per ingest batch")
    parser.add_argument("--database-url", default=None, help="default: fresh SQLite files")
    parser.add_argument("--naive-seconds", type=float, default=60.0)
    args = parser.parse_args()
    total = 50_000 if args.quick else args.events
    prefix = f"bench{uuid.uuid4().hex[:8]}."
    workdir = Path(tempfile.mkdtemp(prefix="rhythm-ingest-"))
    ours_url = args.database_url or f"sqlite+aiosqlite:///{workdir / 'ours.db'}"
    floor_url = f"sqlite+aiosqlite:///{workdir / 'naive.db'}"
    await ensure_topics(args.bootstrap, TOPICS.values(), prefix=prefix, partitions=args.partitions)
    started = time.perf_counter()
    sent = await publish(args.bootstrap, prefix, total)
    print(f"published {sent:,} events in {time.perf_counter() - started:.0f} s (topics {prefix}*)")
    raw = await ceiling(args.bootstrap, prefix, sent)
    print(f"ceiling  raw read + decode            {raw:>10,.0f} events/s")
    mine = await ours(args.bootstrap, prefix, sent, ours_url, args.batch)
    print(f"reporting batch ingest ({ours_url.split(':')[0]})  {mine:>10,.0f} events/s")
    naive, naive_count = await floor(args.bootstrap, prefix, floor_url, args.naive_seconds)
    print(
        f"floor    one event per transaction    {naive:>10,.0f} events/s ({naive_count:,} events)"
    )
    print(
        f"\nreporting ingest = {mine / raw:.2f} x the ceiling, {mine / naive:.1f} x the floor "
        f"({sent:,} events, {args.partitions} partitions, batch {args.batch})"
    )
    report(
        "reporting_ingest",
        [
            Figure(
                f"reporting ingest, {sent:,} mixed events",
                mine,
                "events/s",
                "raw aiokafka read + decode (ceiling)",
                raw,
            ),
            Figure(
                f"reporting ingest, {sent:,} mixed events",
                mine,
                "events/s",
                "one event per transaction (floor)",
                naive,
            ),
        ],
    )


if __name__ == "__main__":
    asyncio.run(main())
