"""In-memory repositories and unit of work for the handlers' unit tests (no database, no broker).

Each repository has the methods of its Protocol in domain/ports.py, with the same meaning as the
SQL one in adapters/repository.py; mypy checks the fakes against the Protocols (bottom).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

from rhythm_notifications.domain.delivery import DigestItem, NewDelivery, Status, StoredDelivery
from rhythm_notifications.domain.ports import (
    DeliveryRepository,
    NotificationsUnitOfWork,
    PreferenceRepository,
    TenantRepository,
    WebhookRepository,
)
from rhythm_notifications.domain.preferences import (
    CategoryPreference,
    RecipientChoices,
    RecipientSettings,
)
from rhythm_notifications.domain.push import PushSubscription
from rhythm_notifications.domain.routing import Category
from rhythm_notifications.domain.tenants import ChatChannel
from rhythm_notifications.domain.webhooks import DueWebhook, WebhookDelivery, WebhookEndpoint
from rhythm_notifications.handlers import COMMAND_HANDLERS, EVENT_HANDLERS
from rhythm_shared.contracts.base import Event
from rhythm_shared.contracts.envelope import Envelope, new_event_id
from rhythm_shared.contracts.v1 import Channel, CheckinMissed
from rhythm_shared.kit.clock import ManualClock
from rhythm_shared.testing.fakes import FakeUnitOfWork, InMemoryPeople


class InMemoryDeliveries:
    """The deliveries repository in memory: deliveries by id, digest items, daily permits,
    overdue and closed obligations."""

    def __init__(self, publish: Callable[[Event], Awaitable[str]] | None = None) -> None:
        self._publish = publish
        self.rows: dict[str, dict[str, Any]] = {}  # delivery id -> its columns
        self.items: list[DigestItem] = []
        self.digested: dict[int, str] = {}  # digest item id -> digest id
        self.permits: set[tuple[str, str, str, str]] = set()
        self.overdue: dict[tuple[str, str], CheckinMissed] = {}
        self.closed: dict[tuple[str, str], datetime] = {}

    def where(self, **wanted: Any) -> list[dict[str, Any]]:
        """The deliveries whose columns have these values (for the tests' assertions)."""
        return [r for r in self.rows.values() if all(r[k] == v for k, v in wanted.items())]

    async def used_keys(self, keys: Sequence[str]) -> set[str]:
        used = {r["idempotency_key"] for r in self.rows.values()}
        return used & set(keys)

    async def add(self, delivery: NewDelivery, *, announce: Event | None = None) -> bool:
        if delivery.idempotency_key in await self.used_keys([delivery.idempotency_key]):
            return False
        self.rows[delivery.id] = {
            **dataclasses.asdict(delivery),
            "attempts": 0,
            "recoveries": 0,
            "claim_token": None,
            "detail": None,
            "updated_at": delivery.created_at,
            "sent_at": None,
        }
        if announce is not None and self._publish is not None:
            await self._publish(announce)
        return True

    async def collect(self, item: DigestItem, now: datetime) -> None:
        key = (item.tenant_id, item.recipient_id, item.category, item.source_event_id)
        if any(
            (i.tenant_id, i.recipient_id, i.category, i.source_event_id) == key for i in self.items
        ):
            return
        self.items.append(dataclasses.replace(item, id=len(self.items) + 1))

    async def take_daily_permit(
        self, tenant: str, recipient: str, category: Category, day: str, now: datetime
    ) -> bool:
        permit = (tenant, recipient, category.value, day)
        if permit in self.permits:
            return False
        self.permits.add(permit)
        return True

    async def record_overdue(self, event: CheckinMissed) -> None:
        self.overdue.setdefault((event.tenant_id, event.obligation_id), event)

    async def close_obligation(self, tenant: str, obligation_id: str, closed_at: datetime) -> None:
        self.closed.setdefault((tenant, obligation_id), closed_at)
        self.overdue.pop((tenant, obligation_id), None)

    async def closed_obligations(self, tenant: str, obligation_ids: Sequence[str]) -> set[str]:
        return {o for o in obligation_ids if (tenant, o) in self.closed}

    async def count_overdue(self, tenant: str, employee_ids: Sequence[str]) -> int:
        return len(
            {e.employee_id for (t, _), e in self.overdue.items() if t == tenant} & set(employee_ids)
        )

    async def due_digest_items(self, now: datetime, limit: int) -> list[DigestItem]:
        due = [i for i in self.items if i.id not in self.digested and i.due_at <= now]
        return sorted(due, key=lambda i: i.due_at)[:limit]

    async def mark_digested(self, item_ids: Sequence[int], digest_id: str) -> None:
        self.digested.update({i: digest_id for i in item_ids})

    def _stored(self, row: dict[str, Any]) -> StoredDelivery:
        return StoredDelivery(
            id=row["id"],
            tenant_id=row["tenant_id"],
            idempotency_key=row["idempotency_key"],
            recipient_id=row["recipient_id"],
            category=row["category"],
            channel=row["channel"],
            source_event_id=row["source_event_id"],
            status=row["status"],
            attempts=row["attempts"],
            recoveries=row["recoveries"],
            payload=row["payload"],
            created_at=row["created_at"],
        )

    def _due(self, statuses: set[Status], now: datetime, limit: int) -> list[dict[str, Any]]:
        due = [
            r
            for r in self.rows.values()
            if r["status"] in statuses
            and r["next_attempt_at"] is not None
            and r["next_attempt_at"] <= now
        ]
        return sorted(due, key=lambda r: r["next_attempt_at"])[:limit]

    async def claim_pending(
        self, now: datetime, limit: int, *, token: str, lease_until: datetime
    ) -> list[StoredDelivery]:
        claimed = []
        for row in self._due({Status.PENDING}, now, limit):
            row.update(
                status=Status.CLAIMED,
                claim_token=token,
                attempts=row["attempts"] + 1,
                next_attempt_at=lease_until,
                updated_at=now,
            )
            claimed.append(self._stored(row))
        return claimed

    async def expired_leases(self, now: datetime, limit: int) -> list[StoredDelivery]:
        return [self._stored(r) for r in self._due({Status.CLAIMED, Status.SENDING}, now, limit)]

    async def release(self, delivery_id: str, now: datetime, detail: str) -> None:
        row = self.rows[delivery_id]
        row.update(
            status=Status.PENDING,
            claim_token=None,
            next_attempt_at=now,
            updated_at=now,
            recoveries=row["recoveries"] + 1,
            detail=detail,
        )

    async def mark_sending(
        self, delivery_ids: Sequence[str], token: str, now: datetime
    ) -> set[str]:
        owned = set()
        for delivery_id in delivery_ids:
            row = self.rows.get(delivery_id)
            if row is None or row["claim_token"] != token:
                continue
            if row["status"] is Status.CLAIMED:
                row.update(status=Status.SENDING, updated_at=now)
            if row["status"] is Status.SENDING:
                owned.add(delivery_id)
        return owned

    async def finish(
        self,
        delivery_id: str,
        status: Status,
        now: datetime,
        *,
        reason: str | None = None,
        detail: str | None = None,
        token: str | None = None,
    ) -> bool:
        row = self.rows.get(delivery_id)
        if row is None or (token is not None and row["claim_token"] != token):
            return False
        row.update(
            status=status,
            reason=reason,
            detail=detail,
            claim_token=None,
            next_attempt_at=None,
            updated_at=now,
            sent_at=now if status is Status.SENT else None,
        )
        return True

    async def finish_claimed(
        self,
        delivery_ids: Sequence[str],
        status: Status,
        now: datetime,
        *,
        token: str,
        detail: str | None = None,
    ) -> set[str]:
        return {
            i for i in delivery_ids if await self.finish(i, status, now, detail=detail, token=token)
        }

    async def retry_later(
        self,
        delivery_id: str,
        token: str,
        now: datetime,
        *,
        reason: str,
        detail: str,
        next_attempt_at: datetime,
    ) -> None:
        row = self.rows.get(delivery_id)
        if row is None or row["claim_token"] != token:
            return
        row.update(
            status=Status.PENDING,
            claim_token=None,
            reason=reason,
            detail=detail,
            next_attempt_at=next_attempt_at,
            updated_at=now,
        )

    async def payloads_for(self, tenant: str, recipient: str) -> list[Any]:
        return [r["payload"] for r in self.where(tenant_id=tenant, recipient_id=recipient)]

    async def overdue_obligations_of(self, tenant: str, employee: str) -> set[str]:
        return {
            o for (t, o), e in self.overdue.items() if t == tenant and e.employee_id == employee
        }

    async def rewrite_payloads(
        self, tenant: str, forms: set[str], rewrite: Callable[[Any], Any]
    ) -> None:
        for row in self.where(tenant_id=tenant):
            if any(form in json.dumps(row["payload"]) for form in forms):
                row["payload"] = rewrite(row["payload"])
        for n, item in enumerate(self.items):
            if item.tenant_id == tenant and any(f in json.dumps(item.payload) for f in forms):
                self.items[n] = dataclasses.replace(item, payload=rewrite(item.payload))

    async def forget(self, tenant: str, person: str, obligations: set[str]) -> None:
        for row in self.where(tenant_id=tenant, recipient_id=person):
            del self.rows[row["id"]]
        self.items = [i for i in self.items if (i.tenant_id, i.recipient_id) != (tenant, person)]
        self.permits = {p for p in self.permits if (p[0], p[1]) != (tenant, person)}
        self.overdue = {
            k: e for k, e in self.overdue.items() if (k[0], e.employee_id) != (tenant, person)
        }
        self.closed = {
            k: at for k, at in self.closed.items() if not (k[0] == tenant and k[1] in obligations)
        }


class InMemoryPreferences:
    """Schedules, category choices and push subscriptions in memory."""

    def __init__(self) -> None:
        self.schedules: dict[tuple[str, str], RecipientSettings] = {}
        self.chosen: dict[tuple[str, str, str], CategoryPreference] = {}
        self.subscriptions: dict[str, PushSubscription] = {}

    async def settings(self, tenant: str, employee: str) -> RecipientSettings | None:
        return self.schedules.get((tenant, employee))

    async def save_settings(
        self, tenant: str, employee: str, settings: RecipientSettings, now: datetime
    ) -> None:
        self.schedules[(tenant, employee)] = settings

    async def categories(self, tenant: str, employee: str) -> dict[str, CategoryPreference]:
        return {c: p for (t, e, c), p in self.chosen.items() if (t, e) == (tenant, employee)}

    async def for_category(
        self, tenant: str, employee_ids: Sequence[str], category: Category
    ) -> dict[str, CategoryPreference]:
        return {
            e: self.chosen[(tenant, e, category.value)]
            for e in employee_ids
            if (tenant, e, category.value) in self.chosen
        }

    async def save_category(
        self,
        tenant: str,
        employee: str,
        category: str,
        preference: CategoryPreference,
        now: datetime,
    ) -> None:
        self.chosen[(tenant, employee, category)] = preference

    async def push_subscription_id(self, tenant: str, endpoint_hash: str) -> str | None:
        for s in self.subscriptions.values():
            if (s.tenant_id, s.endpoint_hash) == (tenant, endpoint_hash):
                return s.id
        return None

    async def add_push_subscription(self, subscription: PushSubscription) -> None:
        self.subscriptions[subscription.id] = subscription

    async def hand_push_subscription(
        self, subscription_id: str, employee: str, p256dh: str, auth: str, now: datetime
    ) -> None:
        self.subscriptions[subscription_id] = dataclasses.replace(
            self.subscriptions[subscription_id],
            employee_id=employee,
            p256dh=p256dh,
            auth=auth,
            created_at=now,
        )

    async def push_subscriptions(self, tenant: str, employee: str) -> list[PushSubscription]:
        return [
            s
            for s in self.subscriptions.values()
            if (s.tenant_id, s.employee_id) == (tenant, employee)
        ]

    async def remove_push_subscription(
        self, subscription_id: str, *, tenant: str | None = None, employee: str | None = None
    ) -> bool:
        found = self.subscriptions.get(subscription_id)
        if found is None or tenant not in (None, found.tenant_id):
            return False
        if employee not in (None, found.employee_id):
            return False
        del self.subscriptions[subscription_id]
        return True

    async def choices_of(
        self, tenant: str, employee_ids: Sequence[str], category: Category
    ) -> dict[str, RecipientChoices]:
        pushable = {s.employee_id for s in self.subscriptions.values() if s.tenant_id == tenant}
        return {
            e: RecipientChoices(
                settings=self.schedules.get((tenant, e)),
                preference=self.chosen.get((tenant, e, category.value)),
                has_push=e in pushable,
            )
            for e in employee_ids
        }

    async def forget(self, tenant: str, person: str) -> None:
        self.schedules.pop((tenant, person), None)
        self.chosen = {k: p for k, p in self.chosen.items() if k[:2] != (tenant, person)}
        self.subscriptions = {
            i: s
            for i, s in self.subscriptions.items()
            if (s.tenant_id, s.employee_id) != (tenant, person)
        }


class InMemoryWebhooks:
    """Webhook endpoints and the deliveries owed to them, in memory."""

    def __init__(self) -> None:
        self.endpoints: dict[str, WebhookEndpoint] = {}
        self.deliveries: dict[str, dict[str, Any]] = {}  # webhook-id -> its columns

    async def add_endpoint(self, endpoint: WebhookEndpoint) -> None:
        self.endpoints[endpoint.id] = endpoint

    async def active_endpoints(self, tenant: str) -> list[WebhookEndpoint]:
        return sorted(
            (e for e in self.endpoints.values() if e.tenant_id == tenant and e.active),
            key=lambda e: e.created_at,
        )

    async def active_endpoint(self, tenant: str, endpoint_id: str) -> WebhookEndpoint | None:
        found = self.endpoints.get(endpoint_id)
        return found if found is not None and found.tenant_id == tenant and found.active else None

    async def set_secrets(
        self,
        endpoint_id: str,
        secret: str,
        previous_secret: str | None,
        previous_secret_until: datetime | None,
    ) -> None:
        self.endpoints[endpoint_id] = dataclasses.replace(
            self.endpoints[endpoint_id],
            secret=secret,
            previous_secret=previous_secret,
            previous_secret_until=previous_secret_until,
        )

    async def deactivate(self, tenant: str, endpoint_id: str) -> bool:
        found = await self.active_endpoint(tenant, endpoint_id)
        if found is None:
            return False
        self.endpoints[endpoint_id] = dataclasses.replace(found, active=False)
        return True

    async def queue(self, delivery: WebhookDelivery) -> bool:
        if delivery.id in self.deliveries:
            return False
        self.deliveries[delivery.id] = {
            **dataclasses.asdict(delivery),
            "status": Status.PENDING,
            "attempts": 0,
            "next_attempt_at": delivery.created_at,
            "claim_token": None,
            "last_status_code": None,
            "detail": None,
        }
        return True

    async def due(self, now: datetime, limit: int, *, skip: Sequence[str]) -> list[DueWebhook]:
        due = sorted(
            (
                d
                for d in self.deliveries.values()
                if d["status"] in (Status.PENDING, Status.CLAIMED)
                and d["next_attempt_at"] is not None
                and d["next_attempt_at"] <= now
                and d["endpoint_id"] not in skip
            ),
            key=lambda d: d["next_attempt_at"],
        )[:limit]
        return [
            DueWebhook(d["id"], self.endpoints[d["endpoint_id"]], d["body"], d["attempts"])
            for d in due
        ]

    async def any_due(self, now: datetime, *, skip: Sequence[str]) -> bool:
        return bool(await self.due(now, 1, skip=skip))

    async def suppress(self, delivery_ids: Sequence[str], detail: str) -> None:
        for delivery_id in delivery_ids:
            self.deliveries[delivery_id].update(
                status=Status.SUPPRESSED, detail=detail, next_attempt_at=None
            )

    async def claim(
        self, delivery_ids: Sequence[str], token: str, now: datetime, lease_until: datetime
    ) -> None:
        for delivery_id in delivery_ids:
            d = self.deliveries[delivery_id]
            d.update(
                status=Status.CLAIMED,
                claim_token=token,
                attempts=d["attempts"] + 1,
                next_attempt_at=lease_until,
            )

    async def record(
        self,
        delivery_id: str,
        token: str,
        now: datetime,
        *,
        status: Status,
        status_code: int | None,
        detail: str | None,
        next_attempt_at: datetime | None,
    ) -> None:
        d = self.deliveries[delivery_id]
        if d["claim_token"] != token:
            return
        d.update(
            status=status,
            claim_token=None,
            last_status_code=status_code,
            detail=detail,
            next_attempt_at=next_attempt_at,
        )

    async def forget_mentions(self, tenant: str, person: str) -> None:
        self.deliveries = {
            i: d
            for i, d in self.deliveries.items()
            if not (d["tenant_id"] == tenant and person in d["body"])
        }


class InMemoryTenants:
    """The tenants' app base URLs and chat channels, in memory."""

    def __init__(self) -> None:
        self.base_urls: dict[str, tuple[str | None, datetime]] = {}
        self.chat: dict[tuple[str, Channel], ChatChannel] = {}

    async def app_base_url(self, tenant: str) -> tuple[str | None, datetime] | None:
        return self.base_urls.get(tenant)

    async def set_app_base_url(self, tenant: str, url: str | None, now: datetime) -> None:
        self.base_urls[tenant] = (url, now)

    async def app_base_urls(self, tenants: Sequence[str]) -> dict[str, str]:
        return {
            t: url for t in tenants if (url := self.base_urls.get(t, (None, None))[0]) is not None
        }

    async def save_chat_channel(self, tenant: str, channel: ChatChannel) -> None:
        self.chat[(tenant, channel.kind)] = channel

    async def chat_channels(self, tenant: str) -> list[ChatChannel]:
        return sorted(
            (c for (t, _), c in self.chat.items() if t == tenant), key=lambda c: c.kind.value
        )

    async def chat_channel_url(self, tenant: str, kind: str) -> str | None:
        found = self.chat.get((tenant, Channel(kind)))
        return found.url if found is not None else None

    async def delete_chat_channel(self, tenant: str, kind: Channel) -> None:
        self.chat.pop((tenant, kind), None)


class FakeNotificationsUnitOfWork(FakeUnitOfWork):
    """The kit's in-memory unit of work with the service's repositories, all in memory."""

    def __init__(self, clock: ManualClock | None = None) -> None:
        super().__init__(clock)
        self.deliveries = InMemoryDeliveries(self.publish)
        self.preferences = InMemoryPreferences()
        self.webhooks = InMemoryWebhooks()
        self.tenants = InMemoryTenants()
        self.people = InMemoryPeople()

    def people_opened_with(self, kek: bytes | None) -> InMemoryPeople:
        return self.people  # nothing is sealed in memory


async def handle(uow: FakeNotificationsUnitOfWork, command: Any, **dependencies: Any) -> Any:
    """Run ``command`` through its handler in handlers.COMMAND_HANDLERS, in one unit of work."""
    async with uow:
        return await COMMAND_HANDLERS[type(command)](uow, command, **dependencies)


async def consume(
    uow: FakeNotificationsUnitOfWork, event: Event, event_id: str | None = None, **deps: Any
) -> Envelope:
    """Hand ``event`` to its handler in handlers.EVENT_HANDLERS, as the consumer does."""
    envelope = envelope_of(event, event_id)
    async with uow:
        await EVENT_HANDLERS[type(event)](uow, envelope, **deps)
    return envelope


def envelope_of(event: Event, event_id: str | None = None) -> Envelope:
    return Envelope(
        id=event_id or new_event_id(),
        source="/rhythm/test",
        type=event.type,
        time=event.occurred_at,
        subject="test",
        tenant_id=event.tenant_id,
        event=event,
    )


# What mypy checks: the fakes satisfy the Protocols the handlers are typed by.
_UOW: type[NotificationsUnitOfWork] = FakeNotificationsUnitOfWork
_DELIVERIES: type[DeliveryRepository] = InMemoryDeliveries
_PREFERENCES: type[PreferenceRepository] = InMemoryPreferences
_WEBHOOKS: type[WebhookRepository] = InMemoryWebhooks
_TENANTS: type[TenantRepository] = InMemoryTenants
