"""Dispatching, one transaction at a time: claim what is due, mark the hand-over, record it."""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from rhythm_notifications.commands import (
    ClaimDueDeliveries,
    MarkSending,
    RecordOutcomes,
    RecoverExpiredDeliveries,
    SuppressClaimed,
)
from rhythm_notifications.domain.delivery import (
    Claimed,
    Failed,
    Retry,
    RetryPolicy,
    Sent,
    Status,
    StoredDelivery,
    caused_at,
    has_lost_its_point,
    reminded_obligation,
)
from rhythm_notifications.domain.ports import NotificationsUnitOfWork
from rhythm_notifications.domain.routing import Category
from rhythm_shared.contracts.v1 import (
    Channel,
    DeliveryFailure,
    NotificationFailed,
    NotificationSent,
    NotificationSuppressed,
)

if TYPE_CHECKING:
    from rhythm_shared.kit.ports import Person


def _notification_fields(delivery: StoredDelivery | Claimed) -> dict[str, Any]:
    return {
        "tenant_id": delivery.tenant_id,
        "notification_id": delivery.id,
        "recipient_id": delivery.recipient_id,
        "category": Category(delivery.category),
        "source_event_id": delivery.source_event_id,
    }


async def recover_expired_deliveries(
    uow: NotificationsUnitOfWork, cmd: RecoverExpiredDeliveries
) -> int:
    """Take back deliveries whose dispatcher died (its lease ran out).

    ``claimed``: nothing was handed to a channel yet, so it simply goes back to pending.
    ``sending``: the crash came after the hand-over began and before the outcome was recorded;
    the message may or may not have left. For email we choose at most once: it is recorded as
    failed (timeout, "ambiguous") and NOT resent, because a duplicate reminder is exactly the
    spam this service exists to prevent, while a rare lost one still shows up as
    NotificationFailed for reporting and can be resent by a person. The window is one message's
    MAIL, RCPT and DATA, since ``sending`` is committed while MAIL and RCPT are answered and DATA
    waits for it. Push is resent (at least once): its Topic header lets the push service
    replace an undelivered copy.

    A delivery taken back more than ``max_recoveries`` times fails instead: whatever stops its
    dispatcher (a crash it causes, say) must not come back with it round after round.
    """
    now = uow.clock.now()
    expired = await uow.deliveries.expired_leases(now, cmd.limit)
    for delivery in expired:
        ambiguous_email = (
            delivery.status is Status.SENDING and delivery.channel == Channel.EMAIL.value
        )
        if ambiguous_email:
            reason = DeliveryFailure.TIMEOUT
            detail = (
                "ambiguous: the dispatcher stopped during the SMTP hand-over; "
                "not resent (at most once for email)"
            )
        elif delivery.recoveries >= cmd.max_recoveries:
            reason = DeliveryFailure.PROVIDER_ERROR
            detail = (
                f"its dispatcher stopped {delivery.recoveries + 1} times while handling it; "
                "given up"
            )
        else:
            await uow.deliveries.release(delivery.id, now, "lease expired; retried")
            continue
        await uow.deliveries.finish(
            delivery.id, Status.FAILED, now, reason=reason.value, detail=detail
        )
        await uow.publish(
            NotificationFailed(
                **_notification_fields(delivery),
                occurred_at=now,
                channel=Channel(delivery.channel),
                reason=reason,
                attempts=max(delivery.attempts, 1),
            )
        )
    return len(expired)


async def claim_due_deliveries(
    uow: NotificationsUnitOfWork, cmd: ClaimDueDeliveries
) -> list[Claimed]:
    """Claim up to ``limit`` due deliveries (SKIP LOCKED: replicas share the work), each with
    who it is for (names and addresses opened with ``kek``) and whether it has lost its point
    since it was decided."""
    now = uow.clock.now()
    stored = await uow.deliveries.claim_pending(
        now, cmd.limit, token=cmd.token, lease_until=now + timedelta(seconds=cmd.lease_s)
    )
    if not stored:
        return []
    by_tenant: dict[str, list[str]] = defaultdict(list)
    for delivery in stored:
        by_tenant[delivery.tenant_id].append(delivery.recipient_id)
    people: dict[tuple[str, str], Person] = {}
    opened = uow.people_opened_with(cmd.kek)
    for tenant, recipients in by_tenant.items():
        for pid, person in (await opened.directory(tenant).people(recipients)).items():
            people[(tenant, pid)] = person
    bases = await uow.tenants.app_base_urls(list(by_tenant))
    claimed = [
        Claimed(
            id=d.id,
            tenant_id=d.tenant_id,
            idempotency_key=d.idempotency_key,
            recipient_id=d.recipient_id,
            category=d.category,
            channel=d.channel,
            source_event_id=d.source_event_id,
            attempts=d.attempts,
            payload=d.payload,
            person=people.get((d.tenant_id, d.recipient_id)),
            created_at=d.created_at,
            app_base_url=bases.get(d.tenant_id),
        )
        for d in stored
    ]
    expired = await _expired(uow, claimed, cmd.max_age)
    return [dataclasses.replace(d, expired=True) if d.id in expired else d for d in claimed]


async def _expired(
    uow: NotificationsUnitOfWork, claimed: list[Claimed], max_age: timedelta
) -> set[str]:
    """The claimed deliveries that have lost their point since they were decided."""
    now = uow.clock.now()
    by_tenant: dict[str, list[str]] = defaultdict(list)
    for delivery in claimed:
        obligation = reminded_obligation(delivery.category, delivery.payload.get("facts"))
        if obligation is not None:
            by_tenant[delivery.tenant_id].append(obligation)
    closed: set[tuple[str, str]] = set()
    for tenant, obligations in by_tenant.items():
        found = await uow.deliveries.closed_obligations(tenant, obligations)
        closed |= {(tenant, o) for o in found}
    expired = set()
    for delivery in claimed:
        facts = delivery.payload.get("facts")
        facts = facts if isinstance(facts, dict) else {}
        obligation = reminded_obligation(delivery.category, facts)
        if has_lost_its_point(
            facts,
            caused_at=caused_at(delivery),
            now=now,
            max_age=max_age,
            obligation_closed=(delivery.tenant_id, obligation or "") in closed,
        ):
            expired.add(delivery.id)
    return expired


async def mark_sending(uow: NotificationsUnitOfWork, cmd: MarkSending) -> set[str]:
    """Mark claimed deliveries as being handed over; return the ids this claim still owns.

    Several sends share one commit (group commit), but each send still waits for its own mark
    to be committed before the hand-over starts.
    """
    return await uow.deliveries.mark_sending(cmd.delivery_ids, cmd.token, uow.clock.now())


async def record_outcomes(uow: NotificationsUnitOfWork, cmd: RecordOutcomes) -> list[Status]:
    """Record what the channels said, one status per outcome: sent, failed for good, or
    pending again with backoff. The sent ones (nearly all) are recorded in one statement per
    group; only outcomes the claim still owns are recorded and reported."""
    now = uow.clock.now()
    sent: dict[str | None, list[Claimed]] = defaultdict(list)
    for delivery, outcome in cmd.outcomes:
        if isinstance(outcome, Sent):
            sent[outcome.detail].append(delivery)
    for detail, deliveries in sent.items():
        owned = await uow.deliveries.finish_claimed(
            [d.id for d in deliveries], Status.SENT, now, token=cmd.token, detail=detail
        )
        for delivery in deliveries:
            if delivery.id in owned:
                await uow.publish(
                    NotificationSent(
                        **_notification_fields(delivery),
                        occurred_at=now,
                        channel=Channel(delivery.channel),
                    )
                )
    return [
        Status.SENT
        if isinstance(outcome, Sent)
        else await _record_unsent(uow, delivery, outcome, cmd.token, cmd.policy)
        for delivery, outcome in cmd.outcomes
    ]


async def _record_unsent(
    uow: NotificationsUnitOfWork,
    delivery: Claimed,
    outcome: Retry | Failed,
    token: str,
    policy: RetryPolicy,
) -> Status:
    now = uow.clock.now()
    if isinstance(outcome, Retry) and not policy.exhausted(delivery.attempts):
        await uow.deliveries.retry_later(
            delivery.id,
            token,
            now,
            reason=outcome.reason.value,
            detail=outcome.detail,
            next_attempt_at=now + timedelta(seconds=policy.delay_s(delivery.attempts)),
        )
        return Status.PENDING
    if await uow.deliveries.finish(
        delivery.id,
        Status.FAILED,
        now,
        reason=outcome.reason.value,
        detail=outcome.detail,
        token=token,
    ):
        await uow.publish(
            NotificationFailed(
                **_notification_fields(delivery),
                occurred_at=now,
                channel=Channel(delivery.channel),
                reason=outcome.reason,
                attempts=delivery.attempts,
            )
        )
    return Status.FAILED


async def suppress_claimed(uow: NotificationsUnitOfWork, cmd: SuppressClaimed) -> None:
    """The recipient left (or vanished), or the delivery lost its point, between the decision
    and the send."""
    now = uow.clock.now()
    if await uow.deliveries.finish(
        cmd.delivery.id, Status.SUPPRESSED, now, reason=cmd.reason.value, token=cmd.token
    ):
        await uow.publish(
            NotificationSuppressed(
                **_notification_fields(cmd.delivery), occurred_at=now, reason=cmd.reason
            )
        )
