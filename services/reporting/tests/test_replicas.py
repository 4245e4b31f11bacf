"""Replicas on PostgreSQL: two consumers of one group apply their own partitions side by side,
with the single-replica numbers; a replica that lost a partition cannot apply it twice."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from reporting_harness import Reporting, StartReporting, publish_fast
from reporting_stream import Expected, assert_numbers_match, generate
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rhythm_reporting.adapters.store import PositionsMoved, ReadModelStore
from rhythm_reporting.adapters.unit_of_work import SqlReportingUnitOfWork
from rhythm_reporting.commands import ProjectEvents
from rhythm_reporting.handlers import project_events
from rhythm_shared.contracts.topics import TOPICS
from rhythm_shared.kit.consumer import is_infrastructure, lost_a_conflict
from rhythm_shared.kit.kafka import ensure_topics
from rhythm_shared.testing import wait_for
from rhythm_shared.testing.plugin import postgres_databases

pytestmark = pytest.mark.kafka
TOPIC = "rhythm.checkins.v1"


@pytest.fixture
def database_url(postgres_url: str) -> str:
    """These tests are about PostgreSQL: SQLite lets one writer in at a time anyway."""
    return postgres_url


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    async with postgres_databases() as [url]:
        yield url


def _assigned(svc: Reporting) -> int:
    broker = svc.runtime.broker
    if broker is None:
        return 0
    return sum(len(s.consumer.assignment()) for s in broker.subscribers if s.consumer)


async def test_two_replicas_in_one_group_give_the_single_replica_numbers(
    start_reporting: StartReporting,
    kafka_bootstrap: str,
    topic_prefix: str,
    tenant: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stream = generate(tenant)
    await ensure_topics(kafka_bootstrap, TOPICS.values(), prefix=topic_prefix, partitions=3)
    applied_by: dict[int, int] = {}
    prepare = SqlReportingUnitOfWork.prepare

    async def counting(self: SqlReportingUnitOfWork, envelopes: Any) -> None:
        # Each replica has its own engine: count the batches each one applied.
        key = id(self._sessions)
        applied_by[key] = applied_by.get(key, 0) + 1
        await prepare(self, envelopes)

    monkeypatch.setattr(SqlReportingUnitOfWork, "prepare", counting)
    # Two replicas share this process's event loop: a roomy session timeout keeps a slow batch
    # on a busy machine from looking like a dead member (a rebalance is fenced, but costs time).
    roomy = {"consumer_session_timeout_ms": 20_000, "consumer_heartbeat_interval_ms": 1_000}
    async with (
        start_reporting(consumer_batch_size=40, **roomy) as one,
        start_reporting(**roomy) as two,
    ):
        total = 3 * len(TOPICS)

        async def balanced() -> bool:
            a, b = _assigned(one), _assigned(two)
            return a > 0 and b > 0 and a + b == total

        await wait_for(balanced, timeout_s=60, interval_s=0.2)
        count = await publish_fast(kafka_bootstrap, stream.by_time(), topic_prefix=topic_prefix)
        await one.wait_consumed(count, timeout_s=240)
        await assert_numbers_match(one, Expected(stream.events))
        await assert_numbers_match(two, Expected(stream.events))
    assert len([n for n in applied_by.values() if n > 0]) == 2, applied_by


async def _apply(uow: SqlReportingUnitOfWork, batch: ProjectEvents, next_offset: int) -> None:
    """What the consumer does in a batch's transaction: project it, store the position."""
    await uow.prepare(batch.events)
    await project_events(uow, batch)
    await uow.store_positions({(TOPIC, 0): next_offset})


async def _finish(uow: SqlReportingUnitOfWork, batch: ProjectEvents, next_offset: int) -> None:
    """:func:`_apply` in a unit of work opened earlier: commit it, or roll it back on an error."""
    try:
        await _apply(uow, batch, next_offset)
    except BaseException as exc:
        await uow.__aexit__(type(exc), exc, exc.__traceback__)
        raise
    await uow.__aexit__(None, None, None)


async def test_a_replica_that_lost_its_partition_cannot_apply_the_batch_again(
    start_reporting: StartReporting, tenant: str
) -> None:
    stream = generate(tenant)
    events = ProjectEvents.of((f"e-{i}", e) for i, e in enumerate(stream.by_time())).events
    half = len(events) // 2
    async with start_reporting() as svc:
        uows = svc.runtime.uow
        # First with no stored position (the zombie would insert it), then with one (update).
        for batch, next_offset in (
            (ProjectEvents(events=events[:half]), half),
            (ProjectEvents(events=events[half:]), len(events)),
        ):
            # The zombie read the partition's position, then stalled (a long GC pause, a lost
            # session) while the group gave the partition to another replica.
            zombie: SqlReportingUnitOfWork = uows()
            await zombie.__aenter__()
            read = await zombie.stored_positions([TOPIC])
            async with uows() as owner:
                assert await owner.stored_positions([TOPIC]) == read
                await _apply(owner, batch, next_offset)
            # The zombie wakes up and applies the same records: its batch is refused whole.
            with pytest.raises(PositionsMoved) as refused:
                await _finish(zombie, batch, next_offset)
            assert lost_a_conflict(refused.value)
        async with svc.runtime.sessions() as session:
            stored = await ReadModelStore(session, 1).positions([TOPIC])
        assert stored == {(TOPIC, 0): len(events)}
        # Every event counted once: the owner's numbers, none of the zombie's.
        await assert_numbers_match(svc, Expected(stream.events))


async def test_a_deadlock_between_replicas_is_retried_not_blamed_on_the_records(
    start_reporting: StartReporting,
) -> None:
    async with start_reporting() as svc:
        sessions: async_sessionmaker[AsyncSession] = svc.runtime.sessions
        first_locked, second_locked = asyncio.Event(), asyncio.Event()

        async def take(mine: int, theirs: int, locked: asyncio.Event, other: asyncio.Event) -> None:
            async with sessions() as session, session.begin():
                await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": mine})
                locked.set()
                await other.wait()
                await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": theirs})

        outcomes = await asyncio.gather(
            take(1, 2, first_locked, second_locked),
            take(2, 1, second_locked, first_locked),
            return_exceptions=True,
        )
        # PostgreSQL breaks the circle by failing one of them; the other gets both locks.
        failed = [o for o in outcomes if isinstance(o, BaseException)]
        assert len(failed) == 1, outcomes
        # The kit's consumer takes it for a lost race: the batch is retried at once, whole.
        assert lost_a_conflict(failed[0])
        assert is_infrastructure(failed[0])
