"""Use cases of the notifications service: one function per command, each takes a unit of work.

Consuming an event only decides and records (pending deliveries, digest items, suppressions and
their events) in the consumer's transaction; the dispatcher job sends later. That split is what
makes a replayed event harmless: the decision is keyed, the send happens once per key.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlparse
from zoneinfo import ZoneInfo

from sqlalchemy import Row, delete, func, select, update

from rhythm_notifications.adapters import db
from rhythm_notifications.adapters.outbound import host_refusal
from rhythm_notifications.domain import access, routing
from rhythm_notifications.domain.delivery import (
    FINAL,
    Failed,
    Outcome,
    Retry,
    RetryPolicy,
    Sent,
    Status,
    has_lost_its_point,
)
from rhythm_notifications.domain.preferences import (
    CategoryPreference,
    Plan,
    after_unsubscribe,
    decide,
    is_capped,
)
from rhythm_notifications.domain.routing import Audience, Category, ChannelChoice, Trigger
from rhythm_notifications.domain.schedule import (
    DEFAULT_DIGEST_HOUR,
    DEFAULT_QUIET_END,
    DEFAULT_QUIET_START,
    DEFAULT_WORKING_DAYS,
    DeliveryMode,
    Schedule,
    format_hhmm,
    parse_hhmm,
)
from rhythm_shared.contracts.base import Event
from rhythm_shared.contracts.envelope import Envelope
from rhythm_shared.contracts.v1 import (
    Channel,
    CheckinCompleted,
    CheckinMissed,
    DeliveryFailure,
    EmployeeDeactivated,
    EmployeeUpserted,
    NotificationFailed,
    NotificationSent,
    NotificationSuppressed,
    OrgUnitUpserted,
    PersonKeyDestroyed,
    PersonKeyIssued,
    SuppressionReason,
)
from rhythm_shared.contracts.v2 import EmployeeUpsertedV2
from rhythm_shared.kit.access import relationships, require
from rhythm_shared.kit.auth import Principal
from rhythm_shared.kit.errors import InvalidInput, NotFound
from rhythm_shared.kit.housekeeping import Prune
from rhythm_shared.kit.people import DirectoryProjection, PeopleDirectory, PersonChange
from rhythm_shared.kit.people import Person as Person  # who a delivery is for (entrypoints)
from rhythm_shared.kit.uow import UnitOfWork

# ---------------------------------------------------------------------------------------------
# The people directory (rhythm_shared.kit.people) and who may do what (domain/access.py)
# ---------------------------------------------------------------------------------------------

_PROJECTION = DirectoryProjection(db.directory)


def directory(uow: UnitOfWork, tenant: str, kek: bytes | None = None) -> PeopleDirectory:
    """The tenant's directory; with the key-encryption key, sealed names and addresses open
    (only sending needs them: access decisions read ids and relationships)."""
    return PeopleDirectory(uow.session, db.directory, tenant, kek=kek)


async def apply_person(
    uow: UnitOfWork,
    event: EmployeeUpserted | EmployeeUpsertedV2 | EmployeeDeactivated,
    event_id: str,
) -> PersonChange:
    """A people event into the directory (its one rule: last writer wins by occurred_at).

    Nothing else reacts here: who is written to, and whether they are still active, is read
    from the directory when a notification is decided and again when it is sent.
    """
    return await _PROJECTION.apply_employee(uow.session, event, event_id)


async def apply_org_unit(uow: UnitOfWork, event: OrgUnitUpserted, event_id: str) -> None:
    await _PROJECTION.apply_org_unit(uow.session, event, event_id)


async def apply_key(uow: UnitOfWork, event: PersonKeyIssued | PersonKeyDestroyed) -> None:
    """A person's data key (rhythm.keys.v1): what opens their sealed name and address."""
    await _PROJECTION.keys.apply(uow.session, event)


async def load_people(
    uow: UnitOfWork, tenant: str, ids: Sequence[str], kek: bytes | None = None
) -> dict[str, Person]:
    """The known people among ``ids`` (one query), names and addresses opened with ``kek``."""
    return await directory(uow, tenant, kek).people(ids)


async def _require(
    uow: UnitOfWork, principal: Principal, operation: str, subject_id: str | None, message: str
) -> None:
    rels = await relationships(directory(uow, principal.tenant), principal, subject_id)
    require(access.POLICY, operation, rels, message)


async def record_checkin_held(uow: UnitOfWork, event: CheckinCompleted) -> None:
    """A held check-in is no longer overdue (the manager digest stops counting it), and its
    obligation is closed: reminders for it that are still waiting expire."""
    if event.obligation_id is None:
        return
    await uow.session.execute(
        uow.insert(db.closed_obligations)
        .values(
            tenant_id=event.tenant_id, obligation_id=event.obligation_id, closed_at=event.held_at
        )
        .on_conflict_do_nothing()
    )
    o = db.overdue_checkins
    await uow.session.execute(
        delete(o).where(o.c.tenant_id == event.tenant_id, o.c.obligation_id == event.obligation_id)
    )


async def _record_overdue(uow: UnitOfWork, event: CheckinMissed) -> None:
    stmt = (
        uow.insert(db.overdue_checkins)
        .values(
            tenant_id=event.tenant_id,
            obligation_id=event.obligation_id,
            employee_id=event.employee_id,
            manager_id=event.manager_id,
            due_at=event.due_at,
            missed_at=event.occurred_at,
        )
        .on_conflict_do_nothing()
    )
    await uow.session.execute(stmt)


# ---------------------------------------------------------------------------------------------
# Preferences
# ---------------------------------------------------------------------------------------------


def _schedule(zone: ZoneInfo, row: Row[Any]) -> Schedule:
    return Schedule(
        zone=zone,
        quiet_start=parse_hhmm(row.quiet_start),
        quiet_end=parse_hhmm(row.quiet_end),
        working_days=frozenset(int(d) for d in row.working_days.split(",") if d),
        digest_hour=row.digest_hour,
    )


async def load_category_preference(
    uow: UnitOfWork, tenant: str, employee: str, category: Category
) -> CategoryPreference | None:
    c = db.category_preferences
    row = (
        await uow.session.execute(
            select(c).where(
                c.c.tenant_id == tenant, c.c.employee_id == employee, c.c.category == category
            )
        )
    ).first()
    if row is None:
        return None
    return CategoryPreference(
        channel=ChannelChoice(row.channel),
        mode=DeliveryMode(row.mode),
        unsubscribed=row.unsubscribed_at is not None,
    )


@dataclass(frozen=True)
class CategorySetting:
    channel: ChannelChoice
    mode: DeliveryMode = DeliveryMode.IMMEDIATE


@dataclass(frozen=True)
class PreferencesView:
    employee_id: str
    quiet_hours_start: str | None
    quiet_hours_end: str | None
    working_days: list[int]
    digest_hour: int
    categories: dict[str, CategorySetting]
    unsubscribed: list[str] = field(default_factory=list)


async def get_preferences(
    uow: UnitOfWork, principal: Principal, employee_id: str
) -> PreferencesView:
    await _require(
        uow, principal, "read_preferences", employee_id, "only the person or hr_admin may see this"
    )
    tenant = principal.tenant
    s, c = db.recipient_settings, db.category_preferences
    row = (
        await uow.session.execute(
            select(s).where(s.c.tenant_id == tenant, s.c.employee_id == employee_id)
        )
    ).first()
    categories = {
        category.value: CategorySetting(rule.default_channel)
        for category, rule in routing.RULES.items()
    }
    unsubscribed: list[str] = []
    rows = await uow.session.execute(
        select(c).where(c.c.tenant_id == tenant, c.c.employee_id == employee_id)
    )
    for r in rows:
        categories[r.category] = CategorySetting(ChannelChoice(r.channel), DeliveryMode(r.mode))
        if r.unsubscribed_at is not None:
            unsubscribed.append(r.category)
    if row is None:
        return PreferencesView(
            employee_id=employee_id,
            quiet_hours_start=format_hhmm(DEFAULT_QUIET_START),
            quiet_hours_end=format_hhmm(DEFAULT_QUIET_END),
            working_days=sorted(DEFAULT_WORKING_DAYS),
            digest_hour=DEFAULT_DIGEST_HOUR,
            categories=categories,
            unsubscribed=sorted(unsubscribed),
        )
    return PreferencesView(
        employee_id=employee_id,
        quiet_hours_start=row.quiet_start,
        quiet_hours_end=row.quiet_end,
        working_days=[int(d) for d in row.working_days.split(",") if d],
        digest_hour=row.digest_hour,
        categories=categories,
        unsubscribed=sorted(unsubscribed),
    )


@dataclass(frozen=True)
class SetPreferences:
    quiet_hours_start: str | None
    quiet_hours_end: str | None
    working_days: list[int]
    digest_hour: int
    categories: dict[str, CategorySetting]


async def set_preferences(
    uow: UnitOfWork, principal: Principal, employee_id: str, command: SetPreferences
) -> PreferencesView:
    """Replace the schedule; set the categories named (others keep what they had)."""
    await _require(
        uow, principal, "set_preferences", employee_id, "only the person or hr_admin may set this"
    )
    if (command.quiet_hours_start is None) != (command.quiet_hours_end is None):
        raise InvalidInput.field(
            "quiet_hours_end", msg="give both ends of the quiet hours, or none"
        )
    now = uow.clock.now()
    tenant = principal.tenant
    s = db.recipient_settings
    values = {
        "quiet_start": command.quiet_hours_start,
        "quiet_end": command.quiet_hours_end,
        "working_days": ",".join(str(d) for d in sorted(set(command.working_days))),
        "digest_hour": command.digest_hour,
        "updated_at": now,
    }
    await uow.session.execute(
        uow.insert(s)
        .values(tenant_id=tenant, employee_id=employee_id, **values)
        .on_conflict_do_update(index_elements=[s.c.tenant_id, s.c.employee_id], set_=values)
    )
    c = db.category_preferences
    for category, setting in command.categories.items():
        row = {
            "channel": setting.channel.value,
            "mode": setting.mode.value,
            # Choosing again is a fresh, explicit choice: it lifts an earlier unsubscribe.
            "unsubscribed_at": None,
            "updated_at": now,
        }
        await uow.session.execute(
            uow.insert(c)
            .values(tenant_id=tenant, employee_id=employee_id, category=category, **row)
            .on_conflict_do_update(
                index_elements=[c.c.tenant_id, c.c.employee_id, c.c.category], set_=row
            )
        )
    return await get_preferences(uow, principal, employee_id)


async def unsubscribe(uow: UnitOfWork, tenant: str, employee_id: str, category: str) -> None:
    """RFC 8058 one-click: stop email for this person and category (idempotent)."""
    try:
        cat = Category(category)
    except ValueError as exc:
        raise NotFound("unknown category") from exc
    now = uow.clock.now()
    current = await load_category_preference(uow, tenant, employee_id, cat)
    channel = after_unsubscribe(current.channel if current else routing.RULES[cat].default_channel)
    mode = current.mode if current else DeliveryMode.IMMEDIATE
    c = db.category_preferences
    row = {"channel": channel.value, "mode": mode.value, "unsubscribed_at": now, "updated_at": now}
    await uow.session.execute(
        uow.insert(c)
        .values(tenant_id=tenant, employee_id=employee_id, category=cat.value, **row)
        .on_conflict_do_update(
            index_elements=[c.c.tenant_id, c.c.employee_id, c.c.category], set_=row
        )
    )


# ---------------------------------------------------------------------------------------------
# Push subscriptions
# ---------------------------------------------------------------------------------------------


_PUSH_IS_PERSONAL = "push subscriptions belong to the person signed in on the device"


@dataclass(frozen=True)
class Subscribe:
    endpoint: str
    p256dh: str
    auth: str


def _b64url_len(value: str) -> int:
    import base64

    try:
        return len(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
    except ValueError:
        return -1


def _check_url(url: str, field_name: str, *, allow_http: bool) -> None:
    parsed = urlparse(url)
    schemes = ("https", "http") if allow_http else ("https",)
    if parsed.scheme not in schemes or not parsed.netloc:
        raise InvalidInput.field(field_name, msg=f"must be an absolute {' or '.join(schemes)} URL")


async def subscribe_push(
    uow: UnitOfWork, principal: Principal, command: Subscribe, *, allow_http: bool
) -> dict[str, Any]:
    await _require(uow, principal, "subscribe_push", principal.subject, _PUSH_IS_PERSONAL)
    _check_url(command.endpoint, "endpoint", allow_http=allow_http)
    # RFC 8291: p256dh is an uncompressed P-256 point (65 bytes), auth a 16-byte secret.
    if _b64url_len(command.p256dh) != 65:
        raise InvalidInput.field("keys", "p256dh", msg="must be a base64url P-256 public key")
    if _b64url_len(command.auth) != 16:
        raise InvalidInput.field("keys", "auth", msg="must be a base64url 16-byte secret")
    s = db.push_subscriptions
    endpoint_hash = hashlib.sha256(command.endpoint.encode()).hexdigest()
    existing = (
        await uow.session.execute(
            select(s).where(s.c.tenant_id == principal.tenant, s.c.endpoint_hash == endpoint_hash)
        )
    ).first()
    now = uow.clock.now()
    if existing is not None:
        # The browser re-subscribed (or the device changed hands): the latest holder owns it.
        await uow.session.execute(
            update(s)
            .where(s.c.id == existing.id)
            .values(
                employee_id=principal.subject,
                p256dh=command.p256dh,
                auth=command.auth,
                created_at=now,
            )
        )
        sub_id = existing.id
    else:
        sub_id = str(uuid.uuid4())
        await uow.session.execute(
            s.insert().values(
                id=sub_id,
                tenant_id=principal.tenant,
                employee_id=principal.subject,
                endpoint=command.endpoint,
                endpoint_hash=endpoint_hash,
                p256dh=command.p256dh,
                auth=command.auth,
                created_at=now,
            )
        )
    return {"id": sub_id, "endpoint": command.endpoint, "created_at": now}


async def list_push_subscriptions(uow: UnitOfWork, principal: Principal) -> list[dict[str, Any]]:
    await _require(uow, principal, "list_push_subscriptions", principal.subject, _PUSH_IS_PERSONAL)
    s = db.push_subscriptions
    rows = await uow.session.execute(
        select(s.c.id, s.c.endpoint, s.c.created_at)
        .where(s.c.tenant_id == principal.tenant, s.c.employee_id == principal.subject)
        .order_by(s.c.created_at)
    )
    return [dict(r._mapping) for r in rows]


async def unsubscribe_push(uow: UnitOfWork, principal: Principal, subscription_id: str) -> None:
    await _require(uow, principal, "unsubscribe_push", principal.subject, _PUSH_IS_PERSONAL)
    s = db.push_subscriptions
    result = await uow.session.execute(
        delete(s).where(
            s.c.id == subscription_id,
            s.c.tenant_id == principal.tenant,
            s.c.employee_id == principal.subject,
        )
    )
    if result.rowcount == 0:  # type: ignore[attr-defined]
        raise NotFound("no such push subscription")


async def remove_push_subscription(uow: UnitOfWork, subscription_id: str) -> None:
    """The push service answered 404/410: the subscription is gone for good."""
    s = db.push_subscriptions
    await uow.session.execute(delete(s).where(s.c.id == subscription_id))


# ---------------------------------------------------------------------------------------------
# Deciding: an event becomes pending deliveries, digest items or suppressions
# ---------------------------------------------------------------------------------------------


def _key_variants(natural_key: str, recipient: str) -> list[str]:
    channels = [c.value for c in Channel] + [routing.NO_CHANNEL]
    return [routing.idempotency_key(natural_key, recipient, c) for c in channels]


async def _decided(uow: UnitOfWork, natural_key: str, recipients: Sequence[str]) -> set[str]:
    """Recipients for whom this fact was already decided (under any event id)."""
    keys = {k: pid for pid in recipients for k in _key_variants(natural_key, pid)}
    if not keys:
        return set()
    d = db.deliveries
    rows = await uow.session.execute(
        select(d.c.idempotency_key).where(d.c.idempotency_key.in_(list(keys)))
    )
    return {keys[row.idempotency_key] for row in rows}


async def _preferences_for(
    uow: UnitOfWork, tenant: str, ids: Sequence[str], category: Category
) -> dict[str, CategoryPreference]:
    if not ids:
        return {}
    c = db.category_preferences
    rows = await uow.session.execute(
        select(c).where(
            c.c.tenant_id == tenant, c.c.employee_id.in_(list(ids)), c.c.category == category
        )
    )
    return {
        row.employee_id: CategoryPreference(
            channel=ChannelChoice(row.channel),
            mode=DeliveryMode(row.mode),
            unsubscribed=row.unsubscribed_at is not None,
        )
        for row in rows
    }


async def _push_holders(uow: UnitOfWork, tenant: str, ids: Sequence[str]) -> set[str]:
    if not ids:
        return set()
    s = db.push_subscriptions
    rows = await uow.session.execute(
        select(s.c.employee_id)
        .where(s.c.tenant_id == tenant, s.c.employee_id.in_(list(ids)))
        .distinct()
    )
    return {row.employee_id for row in rows}


async def _schedules_for(
    uow: UnitOfWork, tenant: str, people: Sequence[Person]
) -> dict[str, Schedule]:
    schedules = {p.employee_id: Schedule(zone=ZoneInfo(p.time_zone)) for p in people}
    if not people:
        return schedules
    s = db.recipient_settings
    rows = await uow.session.execute(
        select(s).where(s.c.tenant_id == tenant, s.c.employee_id.in_(list(schedules)))
    )
    for row in rows:
        schedules[row.employee_id] = _schedule(schedules[row.employee_id].zone, row)
    return schedules


async def _insert_delivery(
    uow: UnitOfWork,
    *,
    tenant: str,
    key: str,
    recipient: str,
    category: Category,
    channel: str | None,
    source_event_id: str,
    source_type: str,
    status: Status,
    payload: dict[str, Any],
    next_attempt_at: datetime | None = None,
    reason: str | None = None,
) -> str | None:
    """Insert one delivery under its idempotency key; None if the key was already used."""
    now = uow.clock.now()
    delivery_id = str(uuid.uuid4())
    result = await uow.session.execute(
        uow.insert(db.deliveries)
        .values(
            id=delivery_id,
            tenant_id=tenant,
            idempotency_key=key,
            recipient_id=recipient,
            category=category.value,
            channel=channel,
            source_event_id=source_event_id,
            source_type=source_type,
            status=status.value,
            reason=reason,
            attempts=0,
            next_attempt_at=next_attempt_at,
            payload=payload,
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=[db.deliveries.c.idempotency_key])
    )
    return delivery_id if result.rowcount == 1 else None  # type: ignore[attr-defined]


async def _suppress(
    uow: UnitOfWork,
    envelope: Envelope,
    trigger: Trigger,
    recipient: str,
    reason: SuppressionReason,
    payload: dict[str, Any],
) -> None:
    delivery_id = await _insert_delivery(
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
    if delivery_id is None:
        return
    await uow.publish(
        NotificationSuppressed(
            tenant_id=envelope.tenant_id,
            occurred_at=uow.clock.now(),
            notification_id=delivery_id,
            recipient_id=recipient,
            category=trigger.category,
            source_event_id=envelope.id,
            reason=reason,
        )
    )


async def _collect_in_digest(
    uow: UnitOfWork,
    envelope: Envelope,
    trigger: Trigger,
    recipient: str,
    channels: Sequence[Channel],
    due_at: datetime,
    payload: dict[str, Any],
) -> None:
    await uow.session.execute(
        uow.insert(db.digest_items)
        .values(
            tenant_id=envelope.tenant_id,
            recipient_id=recipient,
            category=trigger.category.value,
            source_event_id=envelope.id,
            due_at=due_at,
            channels=[c.value for c in channels],
            payload={**payload, "category": trigger.category.value},
            created_at=uow.clock.now(),
        )
        .on_conflict_do_nothing()
    )
    await _suppress(uow, envelope, trigger, recipient, SuppressionReason.DIGESTED, payload)


async def _take_daily_permit(
    uow: UnitOfWork, tenant: str, recipient: str, category: Category, day: str
) -> bool:
    result = await uow.session.execute(
        uow.insert(db.daily_caps)
        .values(
            tenant_id=tenant,
            recipient_id=recipient,
            category=category.value,
            day=day,
            created_at=uow.clock.now(),
        )
        .on_conflict_do_nothing()
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


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


async def _closed_obligations(
    uow: UnitOfWork, tenant: str, obligation_ids: Sequence[str]
) -> set[str]:
    wanted = sorted(set(obligation_ids))
    if not wanted:
        return set()
    c = db.closed_obligations
    rows = await uow.session.execute(
        select(c.c.obligation_id).where(c.c.tenant_id == tenant, c.c.obligation_id.in_(wanted))
    )
    return {row.obligation_id for row in rows}


def _reminded_obligation(category: str, facts: Any) -> str | None:
    """The obligation a reminder is about (a miss or an escalation stays true once held)."""
    if category != Category.CHECKIN_DUE or not isinstance(facts, dict):
        return None
    value = facts.get("obligation_id")
    return value if isinstance(value, str) else None


async def notify(
    uow: UnitOfWork,
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
        await _record_overdue(uow, event)
    trigger = routing.trigger_for(event)
    if trigger is None:
        return
    tenant = envelope.tenant_id
    ids = [*trigger.parties.values()]
    giver = trigger.facts.get("giver_id")
    if isinstance(giver, str):
        ids.append(giver)
    people = await load_people(uow, tenant, ids, kek)
    chosen = routing.recipients(
        trigger, lambda pid: people[pid].manager_id if pid in people else None
    )
    missing = [pid for pid, _ in chosen if pid not in people]
    if missing:
        people.update(await load_people(uow, tenant, missing, kek))
    names = _names(trigger, people)
    now = uow.clock.now()
    rule = trigger.rule
    obligation = _reminded_obligation(trigger.category, trigger.facts)
    expired = has_lost_its_point(
        trigger.facts,
        caused_at=event.occurred_at,
        now=now,
        max_age=max_age,
        obligation_closed=obligation is not None
        and bool(await _closed_obligations(uow, tenant, [obligation])),
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
    prefs = await _preferences_for(uow, tenant, live, trigger.category)
    pushers = await _push_holders(uow, tenant, live)
    chat = await _chat_channels_for(uow, tenant, trigger.category)
    schedules = await _schedules_for(uow, tenant, [people[pid] for pid in live])
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
        decision = decide(rule, prefs.get(recipient), has_push=recipient in pushers, chat=chat)
        if decision.plan is Plan.SUPPRESS:
            assert decision.reason is not None
            await _suppress(uow, envelope, trigger, recipient, decision.reason, payload)
            continue
        schedule = schedules[recipient]
        if decision.plan is Plan.DIGEST:
            due = schedule.next_digest(now, decision.mode)
            await _collect_in_digest(
                uow, envelope, trigger, recipient, decision.channels, due, payload
            )
            continue
        deliver_at = schedule.next_open(now)  # quiet hours and days off: wait, never drop
        if is_capped(trigger.category, immediate=rule.immediate):
            day = schedule.local_day(deliver_at).isoformat()
            if not await _take_daily_permit(uow, tenant, recipient, trigger.category, day):
                # Over today's one message for this category: it waits for the daily digest.
                due = schedule.next_digest(deliver_at, DeliveryMode.DAILY)
                await _collect_in_digest(
                    uow, envelope, trigger, recipient, decision.channels, due, payload
                )
                continue
        for channel in decision.channels:
            await _insert_delivery(
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


# ---------------------------------------------------------------------------------------------
# Digests
# ---------------------------------------------------------------------------------------------


async def manager_summary(uow: UnitOfWork, tenant: str, manager_id: str) -> dict[str, int] | None:
    """ "3 of your 8 reports have an overdue check-in", or None when nothing is overdue.

    Only the recipient's direct reports in the directory count (access: summarise_reports is
    for the manager), and only those still active now.
    """
    now = uow.clock.now()
    reports = [
        p.employee_id
        for p in await directory(uow, tenant).direct_reports(manager_id)
        if p.active_at(now)
    ]
    if not reports:
        return None
    o = db.overdue_checkins
    overdue = await uow.session.scalar(
        select(func.count(func.distinct(o.c.employee_id))).where(
            o.c.tenant_id == tenant, o.c.employee_id.in_(reports)
        )
    )
    if not overdue:
        return None
    return {"overdue": int(overdue), "reports": len(reports)}


async def compose_digests(uow: UnitOfWork, limit: int) -> int:
    """Turn due digest items into one digest delivery per recipient (and channel)."""
    i = db.digest_items
    rows = (
        await uow.session.execute(
            select(i)
            .where(i.c.digest_id.is_(None), i.c.due_at <= uow.clock.now())
            .order_by(i.c.due_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    ).all()
    groups: dict[tuple[str, str], list[Row[Any]]] = defaultdict(list)
    for row in rows:
        groups[(row.tenant_id, row.recipient_id)].append(row)
    for (tenant, recipient), items in groups.items():
        last_due = max(item.due_at for item in items)
        digest_key = f"digest:{recipient}:{last_due.isoformat()}"
        digest_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{tenant}/{digest_key}"))
        channels = sorted({c for item in items for c in item.channels}) or [Channel.EMAIL.value]
        payload = {
            "items": [item.payload for item in items],
            "summary": await manager_summary(uow, tenant, recipient),
        }
        for channel in channels:
            await _insert_delivery(
                uow,
                tenant=tenant,
                key=routing.idempotency_key(digest_key, recipient, channel),
                recipient=recipient,
                category=Category.DIGEST,
                channel=channel,
                source_event_id=digest_id,
                source_type="digest",
                status=Status.PENDING,
                payload=payload,
                next_attempt_at=uow.clock.now(),
            )
        await uow.session.execute(
            update(i).where(i.c.id.in_([item.id for item in items])).values(digest_id=digest_id)
        )
    return len(rows)


# ---------------------------------------------------------------------------------------------
# Dispatching: claim, hand over, record
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Claimed:
    """A delivery this dispatcher owns until its lease runs out, with who it is for."""

    id: str
    tenant_id: str
    idempotency_key: str
    recipient_id: str
    category: str
    channel: str
    source_event_id: str
    attempts: int
    payload: dict[str, Any]
    person: Person | None
    created_at: datetime
    app_base_url: str | None = None  # the tenant's override of APP_BASE_URL, if it has one


def _notification_fields(row: Row[Any] | Claimed) -> dict[str, Any]:
    return {
        "tenant_id": row.tenant_id,
        "notification_id": row.id,
        "recipient_id": row.recipient_id,
        "category": Category(row.category),
        "source_event_id": row.source_event_id,
    }


async def recover_expired(uow: UnitOfWork, limit: int, max_recoveries: int = 3) -> int:
    """Take back deliveries whose dispatcher died (its lease ran out).

    ``claimed``: nothing was handed to a channel yet, so it simply goes back to pending.
    ``sending``: the crash came after the hand-over began and before the outcome was recorded;
    the message may or may not have left. For email we choose at most once: it is recorded as
    failed (timeout, "ambiguous") and NOT resent, because a duplicate reminder is exactly the
    spam this service exists to prevent, while a rare lost one still shows up as
    NotificationFailed for reporting and can be resent by a person. The window is one SMTP DATA
    command, since ``sending`` is committed only right before it. Push is resent (at least
    once): its Topic header lets the push service replace an undelivered copy.

    A delivery taken back more than ``max_recoveries`` times fails instead: whatever stops its
    dispatcher (a crash it causes, say) must not come back with it round after round.
    """
    d = db.deliveries
    now = uow.clock.now()
    rows = (
        await uow.session.execute(
            select(d)
            .where(
                d.c.status.in_([Status.CLAIMED.value, Status.SENDING.value]),
                d.c.next_attempt_at <= now,
            )
            .order_by(d.c.next_attempt_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    ).all()
    for row in rows:
        ambiguous_email = row.status == Status.SENDING.value and row.channel == Channel.EMAIL.value
        if ambiguous_email:
            await _finish(
                uow,
                row,
                Status.FAILED,
                reason=DeliveryFailure.TIMEOUT.value,
                detail="ambiguous: the dispatcher stopped during the SMTP hand-over; "
                "not resent (at most once for email)",
            )
            await uow.publish(
                NotificationFailed(
                    **_notification_fields(row),
                    occurred_at=now,
                    channel=Channel(row.channel),
                    reason=DeliveryFailure.TIMEOUT,
                    attempts=max(row.attempts, 1),
                )
            )
        elif row.recoveries >= max_recoveries:
            await _finish(
                uow,
                row,
                Status.FAILED,
                reason=DeliveryFailure.PROVIDER_ERROR.value,
                detail=f"its dispatcher stopped {row.recoveries + 1} times while handling it; "
                "given up",
            )
            await uow.publish(
                NotificationFailed(
                    **_notification_fields(row),
                    occurred_at=now,
                    channel=Channel(row.channel),
                    reason=DeliveryFailure.PROVIDER_ERROR,
                    attempts=max(row.attempts, 1),
                )
            )
        else:
            await uow.session.execute(
                update(d)
                .where(d.c.id == row.id)
                .values(
                    status=Status.PENDING.value,
                    claim_token=None,
                    next_attempt_at=now,
                    updated_at=now,
                    recoveries=d.c.recoveries + 1,
                    detail="lease expired; retried",
                )
            )
    return len(rows)


async def expired_deliveries(
    uow: UnitOfWork, claimed: Sequence[Claimed], max_age: timedelta
) -> set[str]:
    """The claimed deliveries that have lost their point since they were decided."""
    now = uow.clock.now()
    closed: set[tuple[str, str]] = set()
    by_tenant: dict[str, list[str]] = defaultdict(list)
    for delivery in claimed:
        obligation = _reminded_obligation(delivery.category, delivery.payload.get("facts"))
        if obligation is not None:
            by_tenant[delivery.tenant_id].append(obligation)
    for tenant, obligations in by_tenant.items():
        closed |= {(tenant, o) for o in await _closed_obligations(uow, tenant, obligations)}
    expired = set()
    for delivery in claimed:
        facts = delivery.payload.get("facts")
        facts = facts if isinstance(facts, dict) else {}
        caused_at = delivery.created_at
        stamp = delivery.payload.get("caused_at")
        if isinstance(stamp, str):
            with contextlib.suppress(ValueError):  # a hand-edited row: fall back to created_at
                caused_at = min(caused_at, datetime.fromisoformat(stamp))
        obligation = _reminded_obligation(delivery.category, facts)
        if has_lost_its_point(
            facts,
            caused_at=caused_at,
            now=now,
            max_age=max_age,
            obligation_closed=(delivery.tenant_id, obligation or "") in closed,
        ):
            expired.add(delivery.id)
    return expired


async def claim_due(
    uow: UnitOfWork, *, limit: int, lease_s: float, token: str, kek: bytes | None = None
) -> list[Claimed]:
    """Claim up to ``limit`` due deliveries (SKIP LOCKED: replicas share the work)."""
    d = db.deliveries
    now = uow.clock.now()
    rows = (
        await uow.session.execute(
            select(d)
            .where(d.c.status == Status.PENDING.value, d.c.next_attempt_at <= now)
            .order_by(d.c.next_attempt_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    ).all()
    if not rows:
        return []
    ids = [row.id for row in rows]
    await uow.session.execute(
        update(d)
        .where(d.c.id.in_(ids))
        .values(
            status=Status.CLAIMED.value,
            claim_token=token,
            attempts=d.c.attempts + 1,
            next_attempt_at=now + timedelta(seconds=lease_s),
            updated_at=now,
        )
    )
    people: dict[tuple[str, str], Person] = {}
    by_tenant: dict[str, list[str]] = defaultdict(list)
    for row in rows:
        by_tenant[row.tenant_id].append(row.recipient_id)
    for tenant, recipients in by_tenant.items():
        for pid, person in (await load_people(uow, tenant, recipients, kek)).items():
            people[(tenant, pid)] = person
    bases = await app_base_urls(uow, list(by_tenant))
    return [
        Claimed(
            id=row.id,
            tenant_id=row.tenant_id,
            idempotency_key=row.idempotency_key,
            recipient_id=row.recipient_id,
            category=row.category,
            channel=row.channel,
            source_event_id=row.source_event_id,
            attempts=row.attempts + 1,
            payload=row.payload,
            person=people.get((row.tenant_id, row.recipient_id)),
            created_at=row.created_at,
            app_base_url=bases.get(row.tenant_id),
        )
        for row in rows
    ]


class LostClaim(Exception):
    """Another dispatcher took the delivery over (our lease ran out): do not send."""


async def mark_sending(uow: UnitOfWork, delivery_ids: Sequence[str], token: str) -> set[str]:
    """Mark claimed deliveries as being handed over; return the ids this claim still owns.

    Several sends share one commit (group commit), but each send still waits for its own mark
    to be committed before the hand-over starts.
    """
    d = db.deliveries
    ids = list(delivery_ids)
    result = await uow.session.execute(
        update(d)
        .where(d.c.id.in_(ids), d.c.claim_token == token, d.c.status == Status.CLAIMED.value)
        .values(status=Status.SENDING.value, updated_at=uow.clock.now())
    )
    if result.rowcount == len(ids):  # type: ignore[attr-defined]
        return set(ids)
    rows = await uow.session.execute(
        select(d.c.id).where(
            d.c.id.in_(ids), d.c.claim_token == token, d.c.status == Status.SENDING.value
        )
    )
    return {row.id for row in rows}


async def _finish(
    uow: UnitOfWork,
    row: Row[Any] | Claimed,
    status: Status,
    *,
    reason: str | None = None,
    detail: str | None = None,
    token: str | None = None,
) -> bool:
    d = db.deliveries
    now = uow.clock.now()
    where = [d.c.id == row.id]
    if token is not None:
        where.append(d.c.claim_token == token)
    result = await uow.session.execute(
        update(d)
        .where(*where)
        .values(
            status=status.value,
            reason=reason,
            detail=detail,
            claim_token=None,
            next_attempt_at=None,
            updated_at=now,
            sent_at=now if status is Status.SENT else None,
        )
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


async def record_outcome(
    uow: UnitOfWork, delivery: Claimed, token: str, outcome: Outcome, policy: RetryPolicy
) -> Status:
    """Record what the channel said: sent, failed for good, or pending again with backoff."""
    now = uow.clock.now()
    channel = Channel(delivery.channel)
    if isinstance(outcome, Sent):
        if await _finish(uow, delivery, Status.SENT, detail=outcome.detail, token=token):
            await uow.publish(
                NotificationSent(**_notification_fields(delivery), occurred_at=now, channel=channel)
            )
        return Status.SENT
    if isinstance(outcome, Retry) and not policy.exhausted(delivery.attempts):
        d = db.deliveries
        await uow.session.execute(
            update(d)
            .where(d.c.id == delivery.id, d.c.claim_token == token)
            .values(
                status=Status.PENDING.value,
                claim_token=None,
                reason=outcome.reason.value,
                detail=outcome.detail,
                next_attempt_at=now + timedelta(seconds=policy.delay_s(delivery.attempts)),
                updated_at=now,
            )
        )
        return Status.PENDING
    assert isinstance(outcome, Retry | Failed)
    if await _finish(
        uow,
        delivery,
        Status.FAILED,
        reason=outcome.reason.value,
        detail=outcome.detail,
        token=token,
    ):
        await uow.publish(
            NotificationFailed(
                **_notification_fields(delivery),
                occurred_at=now,
                channel=channel,
                reason=outcome.reason,
                attempts=delivery.attempts,
            )
        )
    return Status.FAILED


async def suppress_claimed(
    uow: UnitOfWork, delivery: Claimed, token: str, reason: SuppressionReason
) -> None:
    """The recipient left (or vanished) between the decision and the send."""
    if await _finish(uow, delivery, Status.SUPPRESSED, reason=reason.value, token=token):
        await uow.publish(
            NotificationSuppressed(
                **_notification_fields(delivery), occurred_at=uow.clock.now(), reason=reason
            )
        )


async def push_targets(uow: UnitOfWork, tenant: str, employee: str) -> list[Row[Any]]:
    s = db.push_subscriptions
    return list(
        (
            await uow.session.execute(
                select(s).where(s.c.tenant_id == tenant, s.c.employee_id == employee)
            )
        ).all()
    )


# ---------------------------------------------------------------------------------------------
# Delivery history
# ---------------------------------------------------------------------------------------------


async def list_deliveries(
    uow: UnitOfWork,
    principal: Principal,
    *,
    recipient_id: str | None,
    source_event_id: str | None,
    limit: int,
) -> list[dict[str, Any]]:
    """History per recipient and/or per source event. People see their own; hr_admin and
    integrations see the tenant's."""
    rels = await relationships(
        directory(uow, principal.tenant), principal, recipient_id or principal.subject
    )
    require(access.POLICY, "list_deliveries", rels, "you can only see your own notifications")
    if not rels & {access.HR_ADMIN, access.INTEGRATION}:
        recipient_id = principal.subject
    d = db.deliveries
    query = select(
        d.c.id,
        d.c.recipient_id,
        d.c.category,
        d.c.channel,
        d.c.status,
        d.c.reason,
        d.c.detail,
        d.c.attempts,
        d.c.source_event_id,
        d.c.source_type,
        d.c.idempotency_key,
        d.c.next_attempt_at,
        d.c.created_at,
        d.c.updated_at,
        d.c.sent_at,
    ).where(d.c.tenant_id == principal.tenant)
    if recipient_id is not None:
        query = query.where(d.c.recipient_id == recipient_id)
    if source_event_id is not None:
        query = query.where(d.c.source_event_id == source_event_id)
    rows = await uow.session.execute(query.order_by(d.c.created_at.desc(), d.c.id).limit(limit))
    return [dict(r._mapping) for r in rows]


# ---------------------------------------------------------------------------------------------
# Webhooks
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RegisterWebhook:
    url: str
    event_types: list[str] | None
    description: str | None


_WEBHOOKS_ARE_TENANT_WIDE = "webhook endpoints are managed by hr_admin or an integration"


async def register_webhook(
    uow: UnitOfWork,
    principal: Principal,
    command: RegisterWebhook,
    *,
    secret: str,
    allow_http: bool,
    known_types: Sequence[str],
) -> dict[str, Any]:
    await _require(uow, principal, "register_webhook", None, _WEBHOOKS_ARE_TENANT_WIDE)
    _check_url(command.url, "url", allow_http=allow_http)
    if command.event_types is not None:
        unknown = sorted(set(command.event_types) - set(known_types))
        if unknown:
            raise InvalidInput.field("event_types", msg=f"unknown event types: {unknown}")
    endpoint_id = str(uuid.uuid4())
    now = uow.clock.now()
    await uow.session.execute(
        db.webhook_endpoints.insert().values(
            id=endpoint_id,
            tenant_id=principal.tenant,
            url=command.url,
            secret=secret,
            event_types=command.event_types,
            description=command.description,
            active=True,
            created_at=now,
        )
    )
    return {
        "id": endpoint_id,
        "url": command.url,
        "event_types": command.event_types,
        "description": command.description,
        "secret": secret,
        "created_at": now,
    }


def _endpoint_view(row: Any, now: datetime) -> dict[str, Any]:
    until = row.previous_secret_until
    return {
        "id": row.id,
        "url": row.url,
        "event_types": row.event_types,
        "description": row.description,
        "created_at": row.created_at,
        "previous_secret_expires_at": until if until is not None and until > now else None,
    }


async def list_webhooks(uow: UnitOfWork, principal: Principal) -> list[dict[str, Any]]:
    await _require(uow, principal, "list_webhooks", None, _WEBHOOKS_ARE_TENANT_WIDE)
    w = db.webhook_endpoints
    rows = await uow.session.execute(
        select(w)
        .where(w.c.tenant_id == principal.tenant, w.c.active.is_(True))
        .order_by(w.c.created_at)
    )
    now = uow.clock.now()
    return [_endpoint_view(r, now) for r in rows]


async def rotate_webhook_secret(
    uow: UnitOfWork,
    principal: Principal,
    endpoint_id: str,
    *,
    secret: str,
    overlap: timedelta,
) -> dict[str, Any]:
    """The endpoint signs with ``secret`` from now on; its current secret also signs every
    delivery for ``overlap`` (both signatures in one header), so the receiver can switch at
    any moment of the window. A rotation during an overlap ends the older secret at once."""
    await _require(uow, principal, "rotate_webhook_secret", None, _WEBHOOKS_ARE_TENANT_WIDE)
    w = db.webhook_endpoints
    now = uow.clock.now()
    where = (w.c.id == endpoint_id, w.c.tenant_id == principal.tenant, w.c.active.is_(True))
    current = (await uow.session.execute(select(w.c.secret).where(*where))).scalar_one_or_none()
    if current is None:
        raise NotFound("no such webhook endpoint")
    keep = overlap > timedelta(0)
    await uow.session.execute(
        update(w)
        .where(*where)
        .values(
            secret=secret,
            previous_secret=current if keep else None,
            previous_secret_until=now + overlap if keep else None,
        )
    )
    row = (await uow.session.execute(select(w).where(*where))).one()
    return {**_endpoint_view(row, now), "secret": secret}


async def delete_webhook(uow: UnitOfWork, principal: Principal, endpoint_id: str) -> None:
    await _require(uow, principal, "delete_webhook", None, _WEBHOOKS_ARE_TENANT_WIDE)
    w = db.webhook_endpoints
    result = await uow.session.execute(
        update(w)
        .where(w.c.id == endpoint_id, w.c.tenant_id == principal.tenant, w.c.active.is_(True))
        .values(active=False)
    )
    if result.rowcount == 0:  # type: ignore[attr-defined]
        raise NotFound("no such webhook endpoint")


def webhook_body(envelope: Envelope) -> str:
    """Standard Webhooks payload shape: ``{"type", "timestamp", "data"}``."""
    event: Event = envelope.event
    return json.dumps(
        {
            "type": envelope.type,
            "timestamp": envelope.time.isoformat(),
            "data": {"id": envelope.id, **event.model_dump(mode="json")},
        },
        separators=(",", ":"),
        sort_keys=True,
    )


async def forward_to_webhooks(uow: UnitOfWork, envelope: Envelope) -> int:
    """Queue the event for every active endpoint of its tenant that wants its type."""
    w = db.webhook_endpoints
    endpoints = (
        await uow.session.execute(
            select(w.c.id, w.c.event_types).where(
                w.c.tenant_id == envelope.tenant_id, w.c.active.is_(True)
            )
        )
    ).all()
    now = uow.clock.now()
    body: str | None = None
    queued = 0
    for endpoint in endpoints:
        if endpoint.event_types is not None and envelope.type not in endpoint.event_types:
            continue
        body = body or webhook_body(envelope)
        msg_id = "msg_" + uuid.uuid5(uuid.NAMESPACE_URL, f"{endpoint.id}/{envelope.id}").hex
        result = await uow.session.execute(
            uow.insert(db.webhook_deliveries)
            .values(
                id=msg_id,
                tenant_id=envelope.tenant_id,
                endpoint_id=endpoint.id,
                event_id=envelope.id,
                event_type=envelope.type,
                body=body,
                status=Status.PENDING.value,
                attempts=0,
                next_attempt_at=now,
                created_at=now,
                updated_at=now,
            )
            .on_conflict_do_nothing()
        )
        queued += result.rowcount  # type: ignore[attr-defined]
    return queued


@dataclass(frozen=True)
class ClaimedWebhook:
    id: str
    endpoint_id: str
    url: str
    signing_secrets: tuple[str, ...]  # the current secret, then one in its overlap
    body: str
    attempts: int


async def claim_webhooks(
    uow: UnitOfWork,
    *,
    limit: int,
    lease_s: float,
    token: str,
    in_flight: Mapping[str, int] | None = None,
    per_endpoint: int | None = None,
) -> list[ClaimedWebhook]:
    """Claim due webhook deliveries; ones whose dispatcher died are simply retried (receivers
    de-duplicate on webhook-id, as the spec asks them to).

    With ``per_endpoint``, an endpoint gets at most that many in flight (counting
    ``in_flight``, what this dispatcher already sends to it): a slow endpoint's backlog waits
    in the table, not in front of other tenants' deliveries.
    """
    wd, w = db.webhook_deliveries, db.webhook_endpoints
    now = uow.clock.now()
    busy = dict(in_flight or {})
    query = (
        select(
            wd.c.id,
            wd.c.endpoint_id,
            wd.c.body,
            wd.c.attempts,
            w.c.url,
            w.c.secret,
            w.c.previous_secret,
            w.c.previous_secret_until,
            w.c.active,
        )
        .join(w, w.c.id == wd.c.endpoint_id)
        .where(
            wd.c.status.in_([Status.PENDING.value, Status.CLAIMED.value]),
            wd.c.next_attempt_at <= now,
        )
        .order_by(wd.c.next_attempt_at)
        .limit(limit)
        .with_for_update(skip_locked=True, of=wd)
    )
    if per_endpoint is not None:
        full = sorted(e for e, n in busy.items() if n >= per_endpoint)
        if full:
            query = query.where(wd.c.endpoint_id.not_in(full))
    rows = []
    for row in (await uow.session.execute(query)).all():
        if per_endpoint is not None and row.active:
            if busy.get(row.endpoint_id, 0) >= per_endpoint:
                continue  # left pending: its lock goes with this transaction
            busy[row.endpoint_id] = busy.get(row.endpoint_id, 0) + 1
        rows.append(row)
    gone = [r.id for r in rows if not r.active]
    if gone:
        await uow.session.execute(
            update(wd)
            .where(wd.c.id.in_(gone))
            .values(status=Status.SUPPRESSED.value, detail="endpoint removed", next_attempt_at=None)
        )
    live = [r for r in rows if r.active]
    if live:
        await uow.session.execute(
            update(wd)
            .where(wd.c.id.in_([r.id for r in live]))
            .values(
                status=Status.CLAIMED.value,
                claim_token=token,
                attempts=wd.c.attempts + 1,
                next_attempt_at=now + timedelta(seconds=lease_s),
                updated_at=now,
            )
        )
    return [
        ClaimedWebhook(r.id, r.endpoint_id, r.url, _signing_secrets(r, now), r.body, r.attempts + 1)
        for r in live
    ]


def _signing_secrets(row: Any, now: datetime) -> tuple[str, ...]:
    overlap = row.previous_secret is not None and row.previous_secret_until > now
    return (row.secret, row.previous_secret) if overlap else (row.secret,)


async def record_webhook_result(
    uow: UnitOfWork,
    delivery: ClaimedWebhook,
    token: str,
    *,
    status_code: int | None,
    detail: str,
    policy: RetryPolicy,
) -> Status:
    wd = db.webhook_deliveries
    now = uow.clock.now()
    ok = status_code is not None and 200 <= status_code < 300
    if ok:
        status, next_at, sent_at = Status.SENT, None, now
    elif policy.exhausted(delivery.attempts):
        status, next_at, sent_at = Status.FAILED, None, None
    else:
        status, sent_at = Status.PENDING, None
        next_at = now + timedelta(seconds=policy.delay_s(delivery.attempts))
    await uow.session.execute(
        update(wd)
        .where(wd.c.id == delivery.id, wd.c.claim_token == token)
        .values(
            status=status.value,
            claim_token=None,
            last_status_code=status_code,
            detail=None if ok else detail,
            next_attempt_at=next_at,
            updated_at=now,
            sent_at=sent_at,
        )
    )
    return status


# ---------------------------------------------------------------------------------------------
# Per-tenant configuration: the app's base URL (links) and chat channels
# ---------------------------------------------------------------------------------------------

_TENANT_CONFIGURATION = "the tenant's links and chat channels are configured by hr_admin"


def _check_base_url(url: str, *, allow_http: bool) -> None:
    _check_url(url, "app_base_url", allow_http=allow_http)
    parsed = urlparse(url)
    if parsed.query or parsed.fragment:
        raise InvalidInput.field("app_base_url", msg="a base URL takes no query or fragment")


async def get_tenant_settings(uow: UnitOfWork, principal: Principal) -> dict[str, Any]:
    await _require(uow, principal, "read_tenant_settings", None, _TENANT_CONFIGURATION)
    t = db.tenant_settings
    row = (await uow.session.execute(select(t).where(t.c.tenant_id == principal.tenant))).first()
    return {
        "app_base_url": row.app_base_url if row else None,
        "updated_at": row.updated_at if row else None,
    }


async def set_tenant_settings(
    uow: UnitOfWork, principal: Principal, app_base_url: str | None, *, allow_http: bool
) -> dict[str, Any]:
    """Set (or, with None, drop) the tenant's own app base URL."""
    await _require(uow, principal, "set_tenant_settings", None, _TENANT_CONFIGURATION)
    if app_base_url is not None:
        _check_base_url(app_base_url, allow_http=allow_http)
    t = db.tenant_settings
    values = {"app_base_url": app_base_url, "updated_at": uow.clock.now()}
    await uow.session.execute(
        uow.insert(t)
        .values(tenant_id=principal.tenant, **values)
        .on_conflict_do_update(index_elements=[t.c.tenant_id], set_=values)
    )
    return await get_tenant_settings(uow, principal)


async def app_base_urls(uow: UnitOfWork, tenants: Sequence[str]) -> dict[str, str]:
    """The tenants among ``tenants`` that override APP_BASE_URL, with their base URL."""
    if not tenants:
        return {}
    t = db.tenant_settings
    rows = await uow.session.execute(
        select(t.c.tenant_id, t.c.app_base_url).where(
            t.c.tenant_id.in_(sorted(set(tenants))), t.c.app_base_url.is_not(None)
        )
    )
    return {row.tenant_id: row.app_base_url for row in rows}


@dataclass(frozen=True)
class SetChatChannel:
    kind: Channel  # slack | teams
    url: str
    categories: list[str]


def _masked(url: str) -> str:
    """A chat webhook URL is its own credential: shown as its host and last characters."""
    parsed = urlparse(url)
    return f"{parsed.scheme}://{parsed.netloc}/…{url[-4:]}"


def _chat_view(row: Row[Any]) -> dict[str, Any]:
    return {
        "kind": row.kind,
        "url": _masked(row.url),
        "categories": list(row.categories),
        "updated_at": row.updated_at,
    }


async def set_chat_channel(
    uow: UnitOfWork,
    principal: Principal,
    command: SetChatChannel,
    *,
    allow_http: bool,
    allow_private: bool,
) -> dict[str, Any]:
    """Connect (or replace) the tenant's Slack or Teams channel and the categories it takes.

    The URL is checked now, not only when a message is posted: https outside development and
    tests, and a host whose addresses are public (the outbound client checks again on every
    request, since a name can change what it resolves to)."""
    await _require(uow, principal, "set_chat_channel", None, _TENANT_CONFIGURATION)
    _check_url(command.url, "url", allow_http=allow_http)
    if not allow_private:
        why = await host_refusal(command.url)
        if why is not None:
            raise InvalidInput.field("url", msg=why)
    c = db.chat_channels
    values = {
        "url": command.url,
        "categories": sorted(set(command.categories)),
        "updated_at": uow.clock.now(),
    }
    await uow.session.execute(
        uow.insert(c)
        .values(tenant_id=principal.tenant, kind=command.kind.value, **values)
        .on_conflict_do_update(index_elements=[c.c.tenant_id, c.c.kind], set_=values)
    )
    row = (
        await uow.session.execute(
            select(c).where(c.c.tenant_id == principal.tenant, c.c.kind == command.kind.value)
        )
    ).one()
    return _chat_view(row)


async def list_chat_channels(uow: UnitOfWork, principal: Principal) -> list[dict[str, Any]]:
    await _require(uow, principal, "list_chat_channels", None, _TENANT_CONFIGURATION)
    c = db.chat_channels
    rows = await uow.session.execute(
        select(c).where(c.c.tenant_id == principal.tenant).order_by(c.c.kind)
    )
    return [_chat_view(row) for row in rows]


async def delete_chat_channel(uow: UnitOfWork, principal: Principal, kind: Channel) -> None:
    """Disconnect a chat channel (idempotent: disconnected is the end state, whether or not it
    was connected); what was still owed to it fails when it is due."""
    await _require(uow, principal, "delete_chat_channel", None, _TENANT_CONFIGURATION)
    c = db.chat_channels
    await uow.session.execute(
        delete(c).where(c.c.tenant_id == principal.tenant, c.c.kind == kind.value)
    )


async def _chat_channels_for(
    uow: UnitOfWork, tenant: str, category: Category
) -> tuple[Channel, ...]:
    """The tenant's chat channels that take this category."""
    c = db.chat_channels
    rows = await uow.session.execute(
        select(c.c.kind, c.c.categories).where(c.c.tenant_id == tenant).order_by(c.c.kind)
    )
    return tuple(Channel(row.kind) for row in rows if category.value in row.categories)


async def chat_channel_url(uow: UnitOfWork, tenant: str, kind: str) -> str | None:
    c = db.chat_channels
    url = await uow.session.scalar(select(c.c.url).where(c.c.tenant_id == tenant, c.c.kind == kind))
    return str(url) if url is not None else None


# ---------------------------------------------------------------------------------------------
# Retention
# ---------------------------------------------------------------------------------------------

#: A daily permit matters for one local day; a few days cover every zone.
DAILY_CAP_KEEP_DAYS = 3


def history_rules(keep_days: float) -> list[Prune]:
    """What the service's housekeeping deletes: finished deliveries and digest items after
    ``keep_days`` (their idempotency keys guard against replays far shorter than that: the
    inbox keeps event ids 30 days), daily permits after a few days. Nothing unfinished goes."""
    final = [status.value for status in FINAL]
    d, w, i, c = db.deliveries, db.webhook_deliveries, db.digest_items, db.daily_caps
    o = db.closed_obligations
    return [
        Prune(o, o.c.closed_at, keep_days),
        Prune(d, d.c.updated_at, keep_days, (d.c.status.in_(final),)),
        Prune(w, w.c.updated_at, keep_days, (w.c.status.in_(final),)),
        Prune(i, i.c.created_at, keep_days, (i.c.digest_id.is_not(None),)),
        Prune(c, c.c.created_at, DAILY_CAP_KEEP_DAYS),
    ]
