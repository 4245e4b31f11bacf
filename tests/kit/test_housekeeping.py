"""Housekeeping prunes the kit tables by age, never an unpublished outbox row."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, insert, select

from rhythm_shared.kit.app import running
from rhythm_shared.kit.clock import ManualClock
from rhythm_shared.kit.db import create_engine, session_factory
from rhythm_shared.kit.housekeeping import Housekeeper, Retention, kit_rules
from rhythm_shared.kit.migrations import upgrade_to_head
from rhythm_shared.kit.uow import UnitOfWorkFactory
from rhythm_shared.testing import wait_for
from tests.kit import sample

RULES = kit_rules(sample.kit, Retention(outbox_days=7, inbox_days=30, idempotency_days=7))


@pytest.fixture
async def uow_factory(database_url: str, clock: ManualClock) -> AsyncIterator[UnitOfWorkFactory]:
    engine = create_engine(database_url)
    await upgrade_to_head(engine, sample.MIGRATIONS)
    yield UnitOfWorkFactory(session_factory(engine), sample.kit, clock, source="/test")
    await engine.dispose()


async def _seed(uow_factory: UnitOfWorkFactory, clock: ManualClock) -> None:
    now = clock.now()

    def days_ago(days: float) -> datetime:
        return now - timedelta(days=days)

    kit = sample.kit
    outbox = [
        # (event id, created, published)
        ("old-published", days_ago(10), days_ago(10)),
        ("old-unpublished", days_ago(40), None),  # the broker was away: must survive
        ("recent-published", days_ago(1), days_ago(1)),
        ("just-over", days_ago(7.01), days_ago(7.01)),
    ]
    async with uow_factory() as uow:
        await uow.session.execute(
            insert(kit.outbox),
            [
                {
                    "event_id": eid,
                    "topic": "t",
                    "key": "k",
                    "event_type": "x",
                    "headers": [],
                    "payload": "{}",
                    "created_at": created,
                    "published_at": published,
                }
                for eid, created, published in outbox
            ],
        )
        await uow.session.execute(
            insert(kit.inbox),
            [
                {"consumer": "g", "event_id": "inbox-old", "processed_at": days_ago(31)},
                {"consumer": "g", "event_id": "inbox-recent", "processed_at": days_ago(29)},
                {"consumer": "h", "event_id": "inbox-old", "processed_at": days_ago(45)},
            ],
        )
        await uow.session.execute(
            insert(kit.idempotency),
            [
                {
                    "tenant_id": "t",
                    "principal": "p",
                    "key": key,
                    "request_hash": "h",
                    "status_code": 201,
                    "response": "{}",
                    "created_at": days_ago(age),
                }
                for key, age in [("key-old", 8), ("key-recent", 6)]
            ],
        )


async def _left(uow_factory: UnitOfWorkFactory) -> dict[str, set[str]]:
    kit = sample.kit
    async with uow_factory() as uow:
        outbox = set((await uow.session.execute(select(kit.outbox.c.event_id))).scalars())
        inbox = {
            f"{r.consumer}/{r.event_id}"
            for r in await uow.session.execute(select(kit.inbox.c.consumer, kit.inbox.c.event_id))
        }
        keys = set((await uow.session.execute(select(kit.idempotency.c.key))).scalars())
    return {"outbox": outbox, "inbox": inbox, "idempotency": keys}


async def test_rows_past_their_retention_go_and_everything_else_stays(
    uow_factory: UnitOfWorkFactory, clock: ManualClock
) -> None:
    await _seed(uow_factory, clock)
    deleted = await Housekeeper(uow_factory, RULES).run_once()
    assert deleted == 2  # the most from one table: two outbox rows and two inbox rows
    assert await _left(uow_factory) == {
        "outbox": {"old-unpublished", "recent-published"},
        "inbox": {"g/inbox-recent"},
        "idempotency": {"key-recent"},
    }
    assert await Housekeeper(uow_factory, RULES).run_once() == 0


async def test_a_round_deletes_at_most_a_batch_and_reports_a_full_one(
    uow_factory: UnitOfWorkFactory, clock: ManualClock
) -> None:
    await _seed(uow_factory, clock)
    keeper = Housekeeper(uow_factory, RULES, batch=1)
    assert await keeper.run_once() == 1  # full: the job runs again at once
    assert await keeper.run_once() == 1
    assert await keeper.run_once() == 0
    async with uow_factory() as uow:
        count = await uow.session.scalar(select(func.count()).select_from(sample.kit.outbox))
    assert count == 2


async def test_time_passing_makes_recent_rows_old(
    uow_factory: UnitOfWorkFactory, clock: ManualClock
) -> None:
    await _seed(uow_factory, clock)
    clock.advance(timedelta(days=60))
    await Housekeeper(uow_factory, RULES).run_once()
    assert await _left(uow_factory) == {
        "outbox": {"old-unpublished"},
        "inbox": set(),
        "idempotency": set(),
    }


@pytest.mark.kafka
async def test_a_running_service_prunes_what_it_published(
    database_url: str, topic_prefix: str, kafka_bootstrap: str, tenant: str
) -> None:
    app = sample.build(
        sample.Settings(
            database_url=database_url,
            kafka_bootstrap_servers=kafka_bootstrap,
            kafka_topic_prefix=topic_prefix,
            topic_partitions=1,
            environment="development",
            log_json=False,
            relay_poll_interval_s=0.05,
            outbox_keep_days=1 / 86_400,  # one second
            housekeeping_interval_s=0.1,
        )
    )
    async with running(app) as runtime:
        async with runtime.uow() as uow:
            await sample.greet(
                uow, tenant, "e-1", sample.Greet(greeting_id="g-1", receiver_id="e-2")
            )

        async def outbox_rows() -> int:
            async with runtime.uow() as uow:
                got = await uow.session.scalar(select(func.count()).select_from(sample.kit.outbox))
            return int(got or 0)

        assert await outbox_rows() == 1
        assert await wait_for(lambda: sample.effect_counts(runtime)) == {"g-1": 1}

        async def outbox_empty() -> bool:
            return await outbox_rows() == 0

        assert await wait_for(outbox_empty)
