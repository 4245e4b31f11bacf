"""Unit tests of what a consumed goals/check-ins/cadence event becomes (react_to_event) and of
digest composition, on the fake unit of work."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from notifications_fakes import FakeNotificationsUnitOfWork, consume, handle
from test_email_delivery import missed
from test_preferences import due, feedback

from rhythm_notifications.commands import ComposeDigests
from rhythm_notifications.domain.delivery import Status
from rhythm_notifications.domain.preferences import CategoryPreference, RecipientSettings
from rhythm_notifications.domain.push import PushSubscription
from rhythm_notifications.domain.routing import ChannelChoice
from rhythm_notifications.domain.schedule import DeliveryMode
from rhythm_notifications.domain.tenants import ChatChannel
from rhythm_shared.contracts.v1 import (
    Channel,
    CheckinCompleted,
    CheckinKind,
    Initiator,
    NotificationSuppressed,
    SuppressionReason,
)
from rhythm_shared.kit.clock import ManualClock

T = "t-1"
#: A Monday morning, an hour after the miss the events describe.
NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


@pytest.fixture
def uow() -> FakeNotificationsUnitOfWork:
    fake = FakeNotificationsUnitOfWork(ManualClock(NOW))
    fake.people.add_person(T, "e-1", manager_id="m-1", display_name="Eva de Vries")
    fake.people.add_person(T, "m-1", display_name="Mark Manager")
    return fake


def suppressions(uow: FakeNotificationsUnitOfWork) -> list[tuple[str, SuppressionReason]]:
    return sorted(
        (e.recipient_id, e.reason) for e in uow.events if isinstance(e, NotificationSuppressed)
    )


async def test_a_missed_checkin_is_an_email_for_employee_and_manager_and_counts_as_overdue(
    uow: FakeNotificationsUnitOfWork,
) -> None:
    await consume(uow, missed(T))

    pending = uow.deliveries.where(status=Status.PENDING)
    assert sorted((d["recipient_id"], d["channel"]) for d in pending) == [
        ("e-1", "email"),
        ("m-1", "email"),
    ]
    assert pending[0]["payload"]["names"]["employee"] == "Eva de Vries"
    assert pending[0]["next_attempt_at"] == NOW  # working hours: at once
    assert await uow.deliveries.count_overdue(T, ["e-1"]) == 1
    assert uow.events == []


async def test_the_same_fact_under_another_event_id_is_decided_once(
    uow: FakeNotificationsUnitOfWork,
) -> None:
    await consume(uow, missed(T), event_id="ev-1")
    await consume(uow, missed(T), event_id="ev-2")
    assert len(uow.deliveries.rows) == 2


async def test_unknown_inactive_and_opted_out_recipients_are_suppressed_with_an_event(
    uow: FakeNotificationsUnitOfWork,
) -> None:
    uow.people.add_person(T, "e-2", manager_id="m-2", active=False)
    uow.people.add_person(T, "e-3", manager_id="m-1")
    await uow.preferences.save_category(
        T, "e-3", "checkin_missed", CategoryPreference(ChannelChoice.NONE), NOW
    )

    await consume(uow, missed(T, "e-2", manager_id="m-2"))
    await consume(uow, missed(T, "e-3"))

    assert suppressions(uow) == [
        ("e-2", SuppressionReason.INACTIVE),
        ("e-3", SuppressionReason.OPTED_OUT),
        ("m-2", SuppressionReason.UNKNOWN_RECIPIENT),
    ]
    assert [d["recipient_id"] for d in uow.deliveries.where(status=Status.PENDING)] == ["m-1"]


async def test_an_event_that_has_lost_its_point_is_suppressed_as_expired_for_everyone(
    uow: FakeNotificationsUnitOfWork,
) -> None:
    uow.clock.advance(timedelta(hours=97))
    await consume(uow, missed(T), max_age=timedelta(hours=96))

    assert suppressions(uow) == [
        ("e-1", SuppressionReason.EXPIRED),
        ("m-1", SuppressionReason.EXPIRED),
    ]
    assert uow.deliveries.permits == set()


async def test_a_held_checkin_closes_its_obligation_and_its_reminders_expire(
    uow: FakeNotificationsUnitOfWork,
) -> None:
    reminder = due(T)
    held = CheckinCompleted(
        tenant_id=T,
        occurred_at=NOW,
        checkin_id="c-1",
        kind=CheckinKind.MONTHLY,
        employee_id="e-1",
        manager_id="m-1",
        held_at=NOW,
        initiated_by=Initiator.EMPLOYEE,
        obligation_id=reminder.obligation_id,
        goals_discussed=[],
        open_action_items=0,
    )
    await consume(uow, missed(T).model_copy(update={"obligation_id": reminder.obligation_id}))
    assert await uow.deliveries.count_overdue(T, ["e-1"]) == 1

    await consume(uow, held)
    await consume(uow, reminder)

    assert await uow.deliveries.closed_obligations(T, [reminder.obligation_id]) == {
        reminder.obligation_id
    }
    assert await uow.deliveries.count_overdue(T, ["e-1"]) == 0
    assert suppressions(uow) == [
        ("e-1", SuppressionReason.EXPIRED),
        ("m-1", SuppressionReason.EXPIRED),
    ]


async def test_a_digest_choice_collects_the_notification_for_the_digest_hour(
    uow: FakeNotificationsUnitOfWork,
) -> None:
    await uow.preferences.save_category(
        T, "m-1", "checkin_missed", CategoryPreference(ChannelChoice.EMAIL, DeliveryMode.DAILY), NOW
    )
    await uow.preferences.save_settings(T, "m-1", RecipientSettings(None, None, [1, 2], 17), NOW)

    await consume(uow, missed(T))

    (item,) = uow.deliveries.items
    assert (item.recipient_id, item.channels) == ("m-1", ["email"])
    assert item.due_at == datetime(2026, 3, 2, 17, 0, tzinfo=UTC)
    assert item.payload["category"] == "checkin_missed"
    assert ("m-1", SuppressionReason.DIGESTED) in suppressions(uow)


async def test_a_second_message_of_a_category_on_one_day_waits_for_the_daily_digest(
    uow: FakeNotificationsUnitOfWork,
) -> None:
    await consume(uow, feedback(T, 1))
    await consume(uow, feedback(T, 2))

    assert [d["recipient_id"] for d in uow.deliveries.where(status=Status.PENDING)] == ["e-1"]
    (waiting,) = uow.deliveries.items
    assert (waiting.recipient_id, waiting.due_at) == ("e-1", datetime(2026, 3, 3, 9, tzinfo=UTC))
    assert uow.deliveries.permits == {(T, "e-1", "feedback_received", "2026-03-02")}


async def test_push_holders_and_the_tenants_chat_channel_get_their_channels(
    uow: FakeNotificationsUnitOfWork,
) -> None:
    await uow.preferences.add_push_subscription(
        PushSubscription("s-1", T, "e-1", "https://push.example/a", "h", "k", "a", NOW)
    )
    await uow.tenants.save_chat_channel(
        T, ChatChannel(Channel.SLACK, "https://hooks.slack.com/x", ["feedback_received"], NOW)
    )

    await consume(uow, feedback(T, 1))

    channels = sorted(d["channel"] for d in uow.deliveries.where(recipient_id="e-1"))
    assert channels == ["email", "push", "slack"]


async def test_due_digest_items_become_one_digest_per_recipient_with_the_manager_summary(
    uow: FakeNotificationsUnitOfWork,
) -> None:
    daily = CategoryPreference(ChannelChoice.EMAIL, DeliveryMode.DAILY)
    await uow.preferences.save_category(T, "m-1", "checkin_missed", daily, NOW)
    uow.people.add_person(T, "e-2", manager_id="m-1")
    await consume(uow, missed(T, "e-1"))
    await consume(uow, missed(T, "e-2"))
    assert await handle(uow, ComposeDigests(limit=10)) == 0  # not due yet

    uow.clock.advance(timedelta(days=1))
    assert await handle(uow, ComposeDigests(limit=10)) == 2

    (digest,) = uow.deliveries.where(category="digest")
    assert (digest["recipient_id"], digest["channel"], digest["status"]) == (
        "m-1",
        "email",
        Status.PENDING,
    )
    assert len(digest["payload"]["items"]) == 2
    assert digest["payload"]["summary"] == {"overdue": 2, "reports": 2}
    assert await handle(uow, ComposeDigests(limit=10)) == 0  # each item once
