"""History pruning: finished deliveries, sent digest items and old daily permits go; nothing
unfinished does (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select

from rhythm_notifications.adapters import db
from rhythm_notifications.adapters.retention import history_rules
from rhythm_notifications.main import MIGRATIONS
from rhythm_shared.kit.clock import ManualClock
from rhythm_shared.kit.db import create_engine, session_factory
from rhythm_shared.kit.housekeeping import Housekeeper
from rhythm_shared.kit.migrations import upgrade_to_head
from rhythm_shared.kit.uow import UnitOfWorkFactory


@pytest.fixture
async def uow_factory(database_url: str, clock: ManualClock) -> AsyncIterator[UnitOfWorkFactory]:
    engine = create_engine(database_url)
    await upgrade_to_head(engine, MIGRATIONS)
    yield UnitOfWorkFactory(session_factory(engine), db.kit, clock, source="/test")
    await engine.dispose()


def _delivery(name: str, status: str, updated_at: datetime) -> dict[str, Any]:
    return {
        "id": name,
        "tenant_id": "t",
        "idempotency_key": f"key:{name}",
        "recipient_id": "e-1",
        "category": "checkin_missed",
        "channel": "email",
        "source_event_id": f"ev-{name}",
        "source_type": "rhythm.checkin.missed.v1",
        "status": status,
        "attempts": 1,
        "next_attempt_at": updated_at if status == "pending" else None,
        "payload": {},
        "created_at": updated_at,
        "updated_at": updated_at,
    }


def _webhook(name: str, status: str, updated_at: datetime) -> dict[str, Any]:
    return {
        "id": name,
        "tenant_id": "t",
        "endpoint_id": "ep-1",
        "event_id": f"ev-{name}",
        "event_type": "rhythm.goal.created.v1",
        "body": "{}",
        "status": status,
        "attempts": 1,
        "created_at": updated_at,
        "updated_at": updated_at,
    }


def _digest_item(source: str, digest_id: str | None, created_at: datetime) -> dict[str, Any]:
    return {
        "tenant_id": "t",
        "recipient_id": "e-1",
        "category": "goal_stale",
        "source_event_id": source,
        "due_at": created_at,
        "channels": ["email"],
        "payload": {},
        "digest_id": digest_id,
        "created_at": created_at,
    }


async def test_finished_history_past_its_retention_goes_and_unfinished_work_stays(
    uow_factory: UnitOfWorkFactory, clock: ManualClock
) -> None:
    now = clock.now()
    old, recent = now - timedelta(days=200), now - timedelta(days=10)
    async with uow_factory() as uow:
        await uow.session.execute(
            insert(db.deliveries),
            [
                _delivery("sent-old", "sent", old),
                _delivery("failed-old", "failed", old),
                _delivery("suppressed-old", "suppressed", old),
                _delivery("pending-old", "pending", old),  # deferred or retrying: must stay
                _delivery("sending-old", "sending", old),  # ambiguous until recovered: stays
                _delivery("sent-recent", "sent", recent),
            ],
        )
        await uow.session.execute(
            insert(db.webhook_deliveries),
            [
                _webhook("wh-sent-old", "sent", old),
                _webhook("wh-pending-old", "pending", old),
                _webhook("wh-sent-recent", "sent", recent),
            ],
        )
        await uow.session.execute(
            insert(db.digest_items),
            [
                _digest_item("in-a-digest-old", "dg-1", old),
                _digest_item("waiting-old", None, old),  # not yet in a digest: stays
                _digest_item("in-a-digest-recent", "dg-2", recent),
            ],
        )
        await uow.session.execute(
            insert(db.daily_caps),
            [
                {
                    "tenant_id": "t",
                    "recipient_id": "e-1",
                    "category": "checkin_missed",
                    "day": day.date().isoformat(),
                    "created_at": day,
                }
                for day in (now - timedelta(days=4), now - timedelta(days=1), now)
            ],
        )

    keeper = Housekeeper(uow_factory, history_rules(keep_days=180))
    assert await keeper.run_once() == 3  # the most from one table: three old deliveries
    assert await keeper.run_once() == 0

    async with uow_factory() as uow:
        deliveries = set((await uow.session.execute(select(db.deliveries.c.id))).scalars())
        webhooks = set((await uow.session.execute(select(db.webhook_deliveries.c.id))).scalars())
        items = set(
            (await uow.session.execute(select(db.digest_items.c.source_event_id))).scalars()
        )
        days = set((await uow.session.execute(select(db.daily_caps.c.day))).scalars())
    assert deliveries == {"pending-old", "sending-old", "sent-recent"}
    assert webhooks == {"wh-pending-old", "wh-sent-recent"}
    assert items == {"waiting-old", "in-a-digest-recent"}
    assert days == {(now - timedelta(days=1)).date().isoformat(), now.date().isoformat()}
