"""The SQL unit of work on SQLite and PostgreSQL: what it remembers for a consumer's chunk of
events is forgotten when the rows change, and outcomes of one claim are recorded together."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, timedelta

import pytest

from rhythm_notifications.adapters import db
from rhythm_notifications.adapters.unit_of_work import SqlNotificationsUnitOfWork
from rhythm_notifications.domain.delivery import NewDelivery, Status
from rhythm_notifications.domain.preferences import (
    CategoryPreference,
    RecipientChoices,
    RecipientSettings,
)
from rhythm_notifications.domain.push import PushSubscription
from rhythm_notifications.domain.routing import Category, ChannelChoice
from rhythm_notifications.domain.schedule import DeliveryMode
from rhythm_notifications.domain.tenants import ChatChannel
from rhythm_notifications.domain.webhooks import WebhookEndpoint
from rhythm_notifications.main import MIGRATIONS
from rhythm_shared.contracts.v1 import Channel, EmployeeUpserted
from rhythm_shared.kit.clock import ManualClock
from rhythm_shared.kit.db import create_engine, session_factory
from rhythm_shared.kit.migrations import upgrade_to_head
from rhythm_shared.kit.uow import UnitOfWorkFactory

T = "acme"

Uows = UnitOfWorkFactory[SqlNotificationsUnitOfWork]


@pytest.fixture
async def uows(database_url: str, clock: ManualClock) -> AsyncIterator[Uows]:
    engine = create_engine(database_url)
    await upgrade_to_head(engine, MIGRATIONS)
    yield UnitOfWorkFactory(
        session_factory(engine), db.kit, clock, "/test", SqlNotificationsUnitOfWork
    )
    await engine.dispose()


def _upsert(clock: ManualClock, email: str) -> EmployeeUpserted:
    return EmployeeUpserted(
        tenant_id=T,
        occurred_at=clock.now(),
        employee_id="e-1",
        email=email,
        display_name="Ana",
        org_unit_id="ou-1",
        time_zone="Europe/Amsterdam",
        locale="en-GB",
        hired_on=date(2020, 1, 1),
    )


async def test_an_upsert_in_the_same_chunk_is_seen_by_the_next_decision(
    uows: Uows, clock: ManualClock
) -> None:
    async with uows() as uow:
        await uow.people.apply_employee(_upsert(clock, "old@acme.example"), "ev-1")
        before = await uow.people_opened_with(None).directory(T).person("e-1")
        clock.advance(timedelta(seconds=1))
        await uow.people.apply_employee(_upsert(clock, "new@acme.example"), "ev-2")
        after = await uow.people_opened_with(None).directory(T).person("e-1")

    assert before is not None
    assert after is not None
    assert (before.email, after.email) == ("old@acme.example", "new@acme.example")


async def test_endpoints_and_chat_channels_read_again_after_they_change(
    uows: Uows, clock: ManualClock
) -> None:
    endpoint = WebhookEndpoint("ep-1", T, "https://hooks.example", "s", None, None, clock.now())
    slack = ChatChannel(Channel.SLACK, "https://hooks.slack.example", ["goal_stale"], clock.now())
    async with uows() as uow:
        assert await uow.webhooks.active_endpoints(T) == []
        assert await uow.tenants.chat_channels(T) == []
        await uow.webhooks.add_endpoint(endpoint)
        await uow.tenants.save_chat_channel(T, slack)
        assert [e.id for e in await uow.webhooks.active_endpoints(T)] == ["ep-1"]
        assert await uow.tenants.chat_channels(T) == [slack]
        assert await uow.webhooks.deactivate(T, "ep-1")
        await uow.tenants.delete_chat_channel(T, Channel.SLACK)
        assert await uow.webhooks.active_endpoints(T) == []
        assert await uow.tenants.chat_channels(T) == []


async def test_outcomes_of_a_claim_are_finished_together_only_where_it_still_owns_them(
    uows: Uows, clock: ManualClock
) -> None:
    now = clock.now()
    async with uows() as uow:
        for name in ("a", "b", "c"):
            await uow.deliveries.add(
                NewDelivery(
                    id=name,
                    tenant_id=T,
                    idempotency_key=f"key:{name}",
                    recipient_id="e-1",
                    category="checkin_missed",
                    channel="email",
                    source_event_id=f"ev-{name}",
                    source_type="rhythm.checkin.missed.v1",
                    status=Status.PENDING,
                    payload={},
                    created_at=now,
                    next_attempt_at=now,
                )
            )
        lease = now + timedelta(minutes=2)
        claimed = await uow.deliveries.claim_pending(now, 2, token="tok", lease_until=lease)
    mine = sorted(d.id for d in claimed)
    assert len(mine) == 2

    async with uows() as uow:
        owned = await uow.deliveries.finish_claimed(
            ["a", "b", "c"], Status.SENT, now, token="tok", detail="250 ok"
        )
        again = await uow.deliveries.finish_claimed(mine, Status.SENT, now, token="tok")

    assert sorted(owned) == mine  # the unclaimed one is not this claim's to finish
    assert again == set()  # the claim is spent


async def test_a_daily_permit_is_taken_once_and_again_after_the_person_is_forgotten(
    uows: Uows, clock: ManualClock
) -> None:
    now, missed = clock.now(), Category.CHECKIN_MISSED
    async with uows() as uow:
        assert await uow.deliveries.take_daily_permit(T, "m-1", missed, "2026-03-02", now)
        assert not await uow.deliveries.take_daily_permit(T, "m-1", missed, "2026-03-02", now)
        assert await uow.deliveries.take_daily_permit(T, "m-1", missed, "2026-03-03", now)
        await uow.deliveries.forget(T, "m-1", set())
        assert await uow.deliveries.take_daily_permit(T, "m-1", missed, "2026-03-02", now)
    async with uows() as uow:  # another unit of work finds it in the table
        assert not await uow.deliveries.take_daily_permit(T, "m-1", missed, "2026-03-02", now)


async def test_what_each_recipient_chose_is_read_in_one_go(uows: Uows, clock: ManualClock) -> None:
    now = clock.now()
    quiet = RecipientSettings("21:00", "07:00", [0, 1, 2, 3], 8)
    weekly = CategoryPreference(ChannelChoice.EMAIL, DeliveryMode.WEEKLY)
    async with uows() as uow:
        for pid in ("e-1", "e-2", "e-3"):
            upsert = _upsert(clock, f"{pid}@acme.example").model_copy(update={"employee_id": pid})
            await uow.people.apply_employee(upsert, f"ev-{pid}")
        await uow.preferences.save_settings(T, "e-1", quiet, now)
        await uow.preferences.save_category(T, "e-1", "checkin_missed", weekly, now)
        await uow.preferences.save_category(T, "e-2", "goal_stale", weekly, now)
        await uow.preferences.add_push_subscription(
            PushSubscription("s-1", T, "e-2", "https://push.example/1", "h1", "k", "a", now)
        )
        await uow.preferences.add_push_subscription(
            PushSubscription("s-2", T, "e-2", "https://push.example/2", "h2", "k", "a", now)
        )
        choices = await uow.preferences.choices_of(
            T, ["e-1", "e-2", "e-3", "nobody"], Category.CHECKIN_MISSED
        )

    assert choices == {
        "e-1": RecipientChoices(settings=quiet, preference=weekly, has_push=False),
        "e-2": RecipientChoices(settings=None, preference=None, has_push=True),
        "e-3": RecipientChoices(),
        "nobody": RecipientChoices(),
    }


async def test_a_permit_read_ahead_as_free_but_taken_meanwhile_is_found_taken(
    uows: Uows, clock: ManualClock, database_url: str
) -> None:
    """Two replicas deciding for one manager on PostgreSQL: a permit the read-ahead found free
    is still taken with its own statement, so the one the other replica took is found taken."""
    if database_url.startswith("sqlite"):
        pytest.skip("SQLite lets one writer in at a time: nobody takes a permit meanwhile")
    now, missed, day = clock.now(), Category.CHECKIN_MISSED, "2026-03-02"
    async with uows() as first:
        await first.deliveries.read_ahead_permits(T, ["m-1"], day)
        async with uows() as other:  # the other replica takes it and commits first
            assert await other.deliveries.take_daily_permit(T, "m-1", missed, day, now)
        assert not await first.deliveries.take_daily_permit(T, "m-1", missed, day, now)
