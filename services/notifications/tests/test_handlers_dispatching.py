"""Unit tests of the dispatching handlers on the fake unit of work: claiming due deliveries,
marking the hand-over, recording outcomes, taking back expired leases."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from notifications_fakes import FakeNotificationsUnitOfWork, consume, handle
from test_email_delivery import missed
from test_preferences import due

from rhythm_notifications.commands import (
    ClaimDueDeliveries,
    MarkSending,
    RecordOutcomes,
    RecoverExpiredDeliveries,
    SuppressClaimed,
)
from rhythm_notifications.domain.delivery import Claimed, Failed, Retry, RetryPolicy, Sent, Status
from rhythm_shared.contracts.v1 import (
    Channel,
    DeliveryFailure,
    NotificationFailed,
    NotificationSent,
    NotificationSuppressed,
    SuppressionReason,
)
from rhythm_shared.kit.clock import ManualClock

T = "t-1"
NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
POLICY = RetryPolicy(max_attempts=2, base_s=60, max_s=600)


@pytest.fixture
async def uow() -> FakeNotificationsUnitOfWork:
    """Two pending emails (employee and manager) for one missed check-in."""
    fake = FakeNotificationsUnitOfWork(ManualClock(NOW))
    fake.people.add_person(T, "e-1", manager_id="m-1", email="e-1@acme.example")
    fake.people.add_person(T, "m-1", email="m-1@acme.example")
    await fake.tenants.set_app_base_url(T, "https://rhythm.acme.example", NOW)
    await consume(fake, missed(T))
    return fake


async def claim(uow: FakeNotificationsUnitOfWork, claim: str = "tok") -> list[Claimed]:
    """Claim what is due under the claim token ``claim``."""
    claimed: list[Claimed] = await handle(
        uow, ClaimDueDeliveries(limit=10, lease_s=120, token=claim)
    )
    return claimed


async def test_claiming_takes_what_is_due_once_with_who_it_is_for(
    uow: FakeNotificationsUnitOfWork,
) -> None:
    claimed = await claim(uow)

    assert sorted(c.recipient_id for c in claimed) == ["e-1", "m-1"]
    first = claimed[0]
    assert first.person is not None
    assert first.person.email == f"{first.recipient_id}@acme.example"
    assert (first.attempts, first.app_base_url, first.expired) == (
        1,
        "https://rhythm.acme.example",
        False,
    )
    row = uow.deliveries.rows[first.id]
    assert (row["status"], row["next_attempt_at"]) == (Status.CLAIMED, NOW + timedelta(minutes=2))
    assert await claim(uow, "other") == []  # leased: another dispatcher gets nothing


async def test_a_reminder_whose_obligation_closed_since_is_claimed_as_expired(
    uow: FakeNotificationsUnitOfWork,
) -> None:
    reminder = due(T, "e-1")
    await consume(uow, reminder)
    await uow.deliveries.close_obligation(T, reminder.obligation_id, NOW)

    claimed = await claim(uow)

    expired = {c.category for c in claimed if c.expired}
    assert expired == {"checkin_due"}
    assert {c.category for c in claimed if not c.expired} == {"checkin_missed"}


async def test_only_the_claim_that_owns_a_delivery_marks_it_sending(
    uow: FakeNotificationsUnitOfWork,
) -> None:
    claimed = await claim(uow)
    ids = [c.id for c in claimed]

    assert await handle(uow, MarkSending(delivery_ids=ids, token="stale")) == set()
    assert await handle(uow, MarkSending(delivery_ids=ids, token="tok")) == set(ids)
    assert await handle(uow, MarkSending(delivery_ids=ids, token="tok")) == set(ids)  # again
    assert {uow.deliveries.rows[i]["status"] for i in ids} == {Status.SENDING}


async def test_a_sent_outcome_is_recorded_and_reported_once(
    uow: FakeNotificationsUnitOfWork,
) -> None:
    delivery = (await claim(uow))[0]
    record = RecordOutcomes(outcomes=[(delivery, Sent("250 ok"))], token="tok", policy=POLICY)

    assert await handle(uow, record) == [Status.SENT]
    assert await handle(uow, record) == [Status.SENT]  # the claim is spent: nothing twice

    row = uow.deliveries.rows[delivery.id]
    assert (row["status"], row["sent_at"], row["detail"]) == (Status.SENT, NOW, "250 ok")
    (sent,) = uow.published(NotificationSent)
    assert isinstance(sent, NotificationSent)
    assert (sent.notification_id, sent.channel) == (delivery.id, Channel.EMAIL)


async def test_outcomes_are_recorded_together_and_only_those_the_claim_still_owns_reported(
    uow: FakeNotificationsUnitOfWork,
) -> None:
    first, taken_back = await claim(uow)
    uow.deliveries.rows[taken_back.id]["claim_token"] = "another dispatcher"
    bad = Failed(DeliveryFailure.INVALID_ADDRESS, "550 no such user")

    recorded = await handle(
        uow,
        RecordOutcomes(
            outcomes=[(first, Sent()), (taken_back, Sent())], token="tok", policy=POLICY
        ),
    )
    assert recorded == [Status.SENT, Status.SENT]
    assert [e.notification_id for e in uow.published(NotificationSent)] == [first.id]
    assert uow.deliveries.rows[taken_back.id]["status"] is Status.CLAIMED
    await handle(uow, RecordOutcomes(outcomes=[(taken_back, bad)], token="tok", policy=POLICY))
    assert uow.published(NotificationFailed) == []


async def test_a_transient_failure_waits_with_backoff_then_fails_when_attempts_run_out(
    uow: FakeNotificationsUnitOfWork,
) -> None:
    delivery = (await claim(uow))[0]
    busy = Retry(DeliveryFailure.PROVIDER_ERROR, "451 try later")

    (status,) = await handle(
        uow, RecordOutcomes(outcomes=[(delivery, busy)], token="tok", policy=POLICY)
    )

    row = uow.deliveries.rows[delivery.id]
    assert status is Status.PENDING
    assert (row["status"], row["reason"], row["claim_token"]) == (
        Status.PENDING,
        "provider_error",
        None,
    )
    assert NOW + timedelta(seconds=30) <= row["next_attempt_at"] <= NOW + timedelta(seconds=60)
    assert uow.events == []

    uow.clock.advance(timedelta(minutes=2))
    again = next(c for c in await claim(uow, "tok2") if c.id == delivery.id)
    (status,) = await handle(
        uow, RecordOutcomes(outcomes=[(again, busy)], token="tok2", policy=POLICY)
    )
    assert status is Status.FAILED
    (failed,) = uow.published(NotificationFailed)
    assert isinstance(failed, NotificationFailed)
    assert (failed.notification_id, failed.attempts) == (delivery.id, 2)


async def test_a_permanent_failure_fails_at_once(uow: FakeNotificationsUnitOfWork) -> None:
    delivery = (await claim(uow))[0]
    bad = Failed(DeliveryFailure.INVALID_ADDRESS, "550 no such user")
    (status,) = await handle(
        uow, RecordOutcomes(outcomes=[(delivery, bad)], token="tok", policy=POLICY)
    )
    assert status is Status.FAILED
    assert uow.deliveries.rows[delivery.id]["detail"] == "550 no such user"
    assert len(uow.published(NotificationFailed)) == 1


async def test_a_recipient_who_left_before_the_send_is_suppressed(
    uow: FakeNotificationsUnitOfWork,
) -> None:
    delivery = (await claim(uow))[0]
    reason = SuppressionReason.INACTIVE
    await handle(uow, SuppressClaimed(delivery=delivery, token="tok", reason=reason))
    await handle(uow, SuppressClaimed(delivery=delivery, token="tok", reason=reason))

    row = uow.deliveries.rows[delivery.id]
    assert (row["status"], row["reason"]) == (Status.SUPPRESSED, "inactive")
    (suppressed,) = uow.published(NotificationSuppressed)
    assert isinstance(suppressed, NotificationSuppressed)
    assert suppressed.reason is SuppressionReason.INACTIVE


async def test_an_expired_lease_goes_back_to_pending_but_an_email_mid_hand_over_fails(
    uow: FakeNotificationsUnitOfWork,
) -> None:
    claimed = await claim(uow)
    handed_over, not_yet = claimed
    await handle(uow, MarkSending(delivery_ids=[handed_over.id], token="tok"))
    uow.clock.advance(timedelta(minutes=3))

    assert await handle(uow, RecoverExpiredDeliveries(limit=10)) == 2

    rows = uow.deliveries.rows
    assert (rows[not_yet.id]["status"], rows[not_yet.id]["recoveries"]) == (Status.PENDING, 1)
    assert (rows[handed_over.id]["status"], rows[handed_over.id]["reason"]) == (
        Status.FAILED,
        "timeout",
    )
    assert "ambiguous" in rows[handed_over.id]["detail"]
    (failed,) = uow.published(NotificationFailed)
    assert isinstance(failed, NotificationFailed)
    assert failed.notification_id == handed_over.id


async def test_a_delivery_taken_back_too_often_fails_instead(
    uow: FakeNotificationsUnitOfWork,
) -> None:
    for round_ in range(3):
        assert len(await claim(uow, f"tok-{round_}")) == 2
        uow.clock.advance(timedelta(minutes=3))
        await handle(uow, RecoverExpiredDeliveries(limit=10, max_recoveries=2))

    statuses = [(r["status"], r["recoveries"]) for r in uow.deliveries.rows.values()]
    assert statuses == [(Status.FAILED, 2), (Status.FAILED, 2)]
    assert all("given up" in r["detail"] for r in uow.deliveries.rows.values())
    assert len(uow.published(NotificationFailed)) == 2


def test_a_claimed_delivery_knows_when_its_fact_happened() -> None:
    from rhythm_notifications.domain.delivery import caused_at

    claimed = Claimed(
        id="d-1",
        tenant_id=T,
        idempotency_key="k",
        recipient_id="e-1",
        category="checkin_missed",
        channel="email",
        source_event_id="ev-1",
        attempts=1,
        payload={"caused_at": "2026-03-01T08:00:00+00:00"},
        person=None,
        created_at=NOW,
    )
    assert caused_at(claimed) == datetime(2026, 3, 1, 8, tzinfo=UTC)
    hand_edited = dataclasses.replace(claimed, payload={"caused_at": "yesterday"})
    assert caused_at(hand_edited) == NOW
