"""Deciding: a consumed event becomes pending deliveries, digest items or suppressions."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from rhythm_notifications.domain import routing
from rhythm_notifications.domain.delivery import (
    DigestItem,
    NewDelivery,
    Status,
    has_lost_its_point,
    reminded_obligation,
)
from rhythm_notifications.domain.ports import NotificationsUnitOfWork
from rhythm_notifications.domain.preferences import Plan, decide, is_capped
from rhythm_notifications.domain.routing import Audience, Trigger
from rhythm_notifications.domain.schedule import DeliveryMode, Schedule
from rhythm_notifications.use_cases.webhooks import forward_to_webhooks
from rhythm_shared.contracts.envelope import Envelope
from rhythm_shared.contracts.v1 import (
    Channel,
    CheckinMissed,
    NotificationSuppressed,
    SuppressionReason,
)

if TYPE_CHECKING:
    from rhythm_shared.kit.ports import Person


async def react_to_event(
    uow: NotificationsUnitOfWork,
    envelope: Envelope,
    *,
    max_age: timedelta = timedelta(hours=96),
    kek: bytes | None = None,
) -> None:
    """Every goals/check-ins/cadence event: forwarded to webhooks; an obligation it closes is
    closed; whoever the routing table names is notified."""
    await forward_to_webhooks(uow, envelope)
    closed = routing.obligation_closed_by(envelope.event)
    if closed is not None:
        await close_obligation(uow, envelope.tenant_id, *closed)
    await notify(uow, envelope, max_age=max_age, kek=kek)


async def close_obligation(
    uow: NotificationsUnitOfWork, tenant: str, obligation_id: str, held_at: datetime
) -> None:
    """A held check-in is no longer overdue (the manager digest stops counting it), and its
    obligation is closed: reminders for it that are still waiting expire."""
    await uow.deliveries.close_obligation(tenant, obligation_id, held_at)


def _key_variants(natural_key: str, recipient: str) -> list[str]:
    channels = [c.value for c in Channel] + [routing.NO_CHANNEL]
    return [routing.idempotency_key(natural_key, recipient, c) for c in channels]


async def _decided(
    uow: NotificationsUnitOfWork, natural_key: str, recipients: Sequence[str]
) -> set[str]:
    """Recipients for whom this fact was already decided (under any event id)."""
    keys = {k: pid for pid in recipients for k in _key_variants(natural_key, pid)}
    return {keys[k] for k in await uow.deliveries.used_keys(list(keys))}


async def _chat_channels_for(
    uow: NotificationsUnitOfWork, tenant: str, category: routing.Category
) -> tuple[Channel, ...]:
    """The tenant's chat channels that take this category."""
    return tuple(
        c.kind for c in await uow.tenants.chat_channels(tenant) if category.value in c.categories
    )


async def add_delivery(uow: NotificationsUnitOfWork, **fields: Any) -> str | None:
    """Add one delivery under its idempotency key; None if the key was already used."""
    delivery = _delivery(uow, **fields)
    return delivery.id if await uow.deliveries.add(delivery) else None


def _delivery(
    uow: NotificationsUnitOfWork,
    *,
    tenant: str,
    key: str,
    recipient: str,
    category: routing.Category,
    channel: str | None,
    source_event_id: str,
    source_type: str,
    status: Status,
    payload: dict[str, Any],
    next_attempt_at: datetime | None = None,
    reason: str | None = None,
) -> NewDelivery:
    return NewDelivery(
        id=str(uuid.uuid4()),
        tenant_id=tenant,
        idempotency_key=key,
        recipient_id=recipient,
        category=category.value,
        channel=channel,
        source_event_id=source_event_id,
        source_type=source_type,
        status=status,
        payload=payload,
        created_at=uow.clock.now(),
        next_attempt_at=next_attempt_at,
        reason=reason,
    )


async def _suppress(
    uow: NotificationsUnitOfWork,
    envelope: Envelope,
    trigger: Trigger,
    recipient: str,
    reason: SuppressionReason,
    payload: dict[str, Any],
) -> None:
    """A suppressed delivery, and its NotificationSuppressed once its row is written (never
    for a key already used)."""
    delivery = _delivery(
        uow,
        tenant=envelope.tenant_id,
        key=routing.idempotency_key(trigger.natural_key, recipient, routing.NO_CHANNEL),
        recipient=recipient,
        category=trigger.category,
        channel=None,
        source_event_id=envelope.id,
        source_type=envelope.type,
        status=Status.SUPPRESSED,
        payload=payload,
        reason=reason.value,
    )
    announce = NotificationSuppressed(
        tenant_id=envelope.tenant_id,
        occurred_at=uow.clock.now(),
        notification_id=delivery.id,
        recipient_id=recipient,
        category=trigger.category,
        source_event_id=envelope.id,
        reason=reason,
    )
    await uow.deliveries.add(delivery, announce=announce)


async def _collect_in_digest(
    uow: NotificationsUnitOfWork,
    envelope: Envelope,
    trigger: Trigger,
    recipient: str,
    channels: Sequence[Channel],
    due_at: datetime,
    payload: dict[str, Any],
) -> None:
    item = DigestItem(
        tenant_id=envelope.tenant_id,
        recipient_id=recipient,
        category=trigger.category.value,
        source_event_id=envelope.id,
        due_at=due_at,
        channels=[c.value for c in channels],
        payload={**payload, "category": trigger.category.value},
    )
    await uow.deliveries.collect(item, uow.clock.now())
    await _suppress(uow, envelope, trigger, recipient, SuppressionReason.DIGESTED, payload)


def _names(trigger: Trigger, people: dict[str, Person]) -> dict[str, str]:
    def name(pid: str | None) -> str:
        if pid is None:
            return ""
        person = people.get(pid)
        return person.display_name if person and person.display_name else pid

    parties = trigger.parties
    return {
        "employee": name(parties.get(Audience.EMPLOYEE) or parties.get(Audience.RECEIVER)),
        "manager": name(parties.get(Audience.MANAGER)),
        "owner": name(parties.get(Audience.GOAL_OWNER)),
        "giver": name(trigger.facts.get("giver_id")),
    }


async def notify(
    uow: NotificationsUnitOfWork,
    envelope: Envelope,
    *,
    max_age: timedelta = timedelta(hours=96),
    kek: bytes | None = None,
) -> None:
    """Decide, for every recipient the routing table names, what becomes of this event.

    An event that has lost its point (older than ``max_age``, an invitation to a check-in that
    has begun, a reminder for an obligation already closed) is suppressed as expired for every
    recipient: a replayed quarter must not mail anyone, nor take today's daily permit.
    """
    event = envelope.event
    if isinstance(event, CheckinMissed):
        await uow.deliveries.record_overdue(event)
    trigger = routing.trigger_for(event)
    if trigger is None:
        return
    tenant = envelope.tenant_id
    directory = uow.people_opened_with(kek).directory(tenant)
    ids = [*trigger.parties.values()]
    giver = trigger.facts.get("giver_id")
    if isinstance(giver, str):
        ids.append(giver)
    people = await directory.people(ids)
    chosen = routing.recipients(
        trigger, lambda pid: people[pid].manager_id if pid in people else None
    )
    missing = [pid for pid, _ in chosen if pid not in people]
    if missing:
        people.update(await directory.people(missing))
    names = _names(trigger, people)
    now = uow.clock.now()
    rule = trigger.rule
    obligation = reminded_obligation(trigger.category, trigger.facts)
    expired = has_lost_its_point(
        trigger.facts,
        caused_at=event.occurred_at,
        now=now,
        max_age=max_age,
        obligation_closed=obligation is not None
        and bool(await uow.deliveries.closed_obligations(tenant, [obligation])),
    )
    # One query per kind of fact for all recipients, not one per recipient: this runs for
    # every consumed event, so its cost is the consumer's throughput.
    recipient_ids = [pid for pid, _ in chosen]
    decided = await _decided(uow, trigger.natural_key, recipient_ids)
    live = [
        pid
        for pid in recipient_ids
        if pid not in decided and pid in people and people[pid].active_at(now)
    ]
    choices = await uow.preferences.choices_of(tenant, live, trigger.category)
    chat = await _chat_channels_for(uow, tenant, trigger.category)
    for recipient, audience in chosen:
        if recipient in decided:
            continue  # the same fact arrived again under another event id
        payload: dict[str, Any] = {
            "facts": dict(trigger.facts),
            "names": names,
            "role": audience.value,
            "caused_at": event.occurred_at.isoformat(),  # how old it is when it is sent
        }
        if expired:
            await _suppress(uow, envelope, trigger, recipient, SuppressionReason.EXPIRED, payload)
            continue
        person = people.get(recipient)
        if person is None:
            await _suppress(
                uow, envelope, trigger, recipient, SuppressionReason.UNKNOWN_RECIPIENT, payload
            )
            continue
        if not person.active_at(now):
            await _suppress(uow, envelope, trigger, recipient, SuppressionReason.INACTIVE, payload)
            continue
        chose = choices[recipient]
        decision = decide(rule, chose.preference, has_push=chose.has_push, chat=chat)
        if decision.plan is Plan.SUPPRESS:
            assert decision.reason is not None
            await _suppress(uow, envelope, trigger, recipient, decision.reason, payload)
            continue
        zone = ZoneInfo(person.time_zone)
        schedule = chose.settings.schedule(zone) if chose.settings else Schedule(zone=zone)
        if decision.plan is Plan.DIGEST:
            due = schedule.next_digest(now, decision.mode)
            await _collect_in_digest(
                uow, envelope, trigger, recipient, decision.channels, due, payload
            )
            continue
        deliver_at = schedule.next_open(now)  # quiet hours and days off: wait, never drop
        if is_capped(trigger.category, immediate=rule.immediate):
            day = schedule.local_day(deliver_at).isoformat()
            if not await uow.deliveries.take_daily_permit(
                tenant, recipient, trigger.category, day, now
            ):
                # Over today's one message for this category: it waits for the daily digest.
                due = schedule.next_digest(deliver_at, DeliveryMode.DAILY)
                await _collect_in_digest(
                    uow, envelope, trigger, recipient, decision.channels, due, payload
                )
                continue
        for channel in decision.channels:
            await add_delivery(
                uow,
                tenant=tenant,
                key=routing.idempotency_key(trigger.natural_key, recipient, channel.value),
                recipient=recipient,
                category=trigger.category,
                channel=channel.value,
                source_event_id=envelope.id,
                source_type=envelope.type,
                status=Status.PENDING,
                payload=payload,
                next_attempt_at=deliver_at,
            )
