"""A relay killed with SIGKILL between publish and mark: a duplicate, never a loss."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func, select

from rhythm_shared.contracts import topics
from rhythm_shared.contracts.envelope import from_record
from rhythm_shared.kit.app import running
from rhythm_shared.kit.kafka import make_producer
from rhythm_shared.kit.outbox import OutboxRelay
from rhythm_shared.testing import read_records, wait_for
from tests.kit import sample
from tests.kit.test_kit import settings

pytestmark = pytest.mark.kafka
ROOT = Path(__file__).resolve().parents[2]


async def test_a_relay_killed_between_publish_and_mark_loses_nothing_and_doubles_nothing(
    database_url: str, topic_prefix: str, kafka_bootstrap: str, tenant: str
) -> None:
    n = 20
    writer = sample.build(
        settings(database_url, topic_prefix, kafka_bootstrap).model_copy(
            update={"run_relay": False, "run_consumers": False}
        )
    )
    async with running(writer) as runtime:
        for i in range(n):
            async with runtime.uow() as uow:
                await sample.greet(
                    uow, tenant, "e-0", sample.Greet(greeting_id=f"g-{i}", receiver_id=f"e-{i + 1}")
                )

    crashed = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.kit.relay_crash",
        database_url,
        kafka_bootstrap,
        topic_prefix,
        cwd=ROOT,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(crashed.communicate(), 120)
    assert crashed.returncode == -signal.SIGKILL, stderr.decode()[-2000:]
    topic = f"{topic_prefix}{topics.CHECKINS}"
    published_before_restart = await read_records(kafka_bootstrap, topic, min_count=n)
    assert len(published_before_restart) == n

    # Restart: the relay publishes the unmarked rows again; the consumer's inbox absorbs them.
    app = sample.build(settings(database_url, topic_prefix, kafka_bootstrap))
    async with running(app) as runtime:
        counts = await wait_for(lambda: _all_applied(runtime, n), timeout_s=60)
        async with runtime.engine.connect() as conn:
            unpublished = await conn.scalar(
                select(func.count())
                .select_from(sample.kit.outbox)
                .where(sample.kit.outbox.c.published_at.is_(None))
            )
    on_topic = await read_records(kafka_bootstrap, topic, min_count=2 * n, settle_s=0.5)
    ids = [from_record(r.headers, r.value).id for r in on_topic]
    assert len(ids) == 2 * n
    assert len(set(ids)) == n
    assert counts == {f"g-{i}": 1 for i in range(n)}  # ... and applied exactly once
    assert unpublished == 0


async def _all_applied(runtime: object, n: int) -> dict[str, int] | None:
    counts = await sample.effect_counts(runtime)  # type: ignore[arg-type]
    return counts if len(counts) == n else None


async def test_a_relay_round_takes_the_sqlite_writer_only_to_mark_what_it_published(
    database_url: str, topic_prefix: str, kafka_bootstrap: str, tenant: str
) -> None:
    """On SQLite the relay reads what is pending through the reader engine (no write lock), so
    a round with nothing to publish sends no statement to the writer, and a round with rows
    sends it only their mark. Every row is still published once, in order, and marked."""
    app = sample.build(
        settings(database_url, topic_prefix, kafka_bootstrap).model_copy(
            update={"run_relay": False, "run_consumers": False}
        )
    )
    async with running(app) as runtime:
        for i in range(3):
            async with runtime.uow() as uow:
                await sample.greet(
                    uow, tenant, "e-0", sample.Greet(greeting_id=f"g-{i}", receiver_id="e-1")
                )
        writes: list[str] = []

        def on_writer(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            writes.append(statement.split()[0].upper())

        event.listen(runtime.engine.sync_engine, "before_cursor_execute", on_writer)
        producer = make_producer(kafka_bootstrap)
        await producer.start()
        try:
            relay = OutboxRelay(
                runtime.engine,
                runtime.tables,
                producer,
                topic_prefix=topic_prefix,
                reader=runtime.reader,
            )
            assert await relay.publish_pending() == 3
            sqlite = runtime.engine.dialect.name == "sqlite"
            if sqlite:
                assert writes == ["BEGIN", "UPDATE"]
            writes.clear()
            assert await relay.publish_pending() == 0
            if sqlite:
                assert writes == []
        finally:
            await producer.stop()
            event.remove(runtime.engine.sync_engine, "before_cursor_execute", on_writer)
        outbox = runtime.tables.outbox
        async with runtime.engine.connect() as conn:
            unmarked = await conn.scalar(
                select(func.count()).where(outbox.c.published_at.is_(None))
            )
        assert unmarked == 0
    records = await read_records(kafka_bootstrap, f"{topic_prefix}{topics.CHECKINS}", min_count=3)
    ids = [from_record(r.headers, r.value).event.feedback_id for r in records]  # type: ignore[attr-defined]
    assert ids == ["g-0", "g-1", "g-2"]


async def test_a_commit_while_the_relay_publishes_starts_the_next_round_at_once(
    database_url: str, topic_prefix: str, kafka_bootstrap: str, tenant: str
) -> None:
    """An event committed while a round is publishing wakes the relay again: it goes out in
    the next round, not after the poll interval (an hour here)."""
    app = sample.build(
        settings(database_url, topic_prefix, kafka_bootstrap).model_copy(
            update={"run_relay": False, "run_consumers": False}
        )
    )

    async def greet(i: int) -> None:
        async with runtime.uow() as uow:
            await sample.greet(
                uow, tenant, "e-0", sample.Greet(greeting_id=f"g-{i}", receiver_id="e-1")
            )

    async with running(app) as runtime:
        producer = make_producer(kafka_bootstrap)
        await producer.start()
        relay = OutboxRelay(
            runtime.engine,
            runtime.tables,
            producer,
            topic_prefix=topic_prefix,
            poll_interval_s=3600,
            wakeup=runtime.uow.events_committed,
            reader=runtime.reader,
        )
        send = relay._send
        rounds: list[int] = []

        async def send_and_commit_another(rows: Any) -> None:
            rounds.append(len(rows))
            await send(rows)
            if len(rounds) == 1:
                await greet(1)  # committed while the first round publishes

        relay._send = send_and_commit_another  # type: ignore[method-assign]
        stop = asyncio.Event()
        await greet(0)
        task = asyncio.create_task(relay.run(stop))
        try:
            records = await asyncio.wait_for(
                read_records(kafka_bootstrap, f"{topic_prefix}{topics.CHECKINS}", min_count=2),
                timeout=60,
            )
        finally:
            stop.set()
            await task
            await producer.stop()
    ids = [from_record(r.headers, r.value).event.feedback_id for r in records]  # type: ignore[attr-defined]
    assert ids == ["g-0", "g-1"]
    assert rounds == [1, 1]
