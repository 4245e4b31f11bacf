"""What the use cases need from storage: the repositories and the unit of work carrying them.

``adapters/repository.py`` implements these with SQL, ``tests/notifications_fakes.py`` in
memory; mypy checks both against the Protocols.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Protocol

from rhythm_notifications.domain.delivery import DigestItem, NewDelivery, Status, StoredDelivery
from rhythm_notifications.domain.preferences import (
    CategoryPreference,
    RecipientChoices,
    RecipientSettings,
)
from rhythm_notifications.domain.push import PushSubscription
from rhythm_notifications.domain.routing import Category
from rhythm_notifications.domain.tenants import ChatChannel
from rhythm_notifications.domain.webhooks import DueWebhook, WebhookDelivery, WebhookEndpoint
from rhythm_shared.contracts.base import Event
from rhythm_shared.contracts.v1 import Channel, CheckinMissed
from rhythm_shared.kit.ports import People, UnitOfWorkPort


class DeliveryRepository(Protocol):
    async def used_keys(self, keys: Sequence[str]) -> set[str]: ...
    async def add(self, delivery: NewDelivery, *, announce: Event | None = None) -> bool:
        """Add a delivery under its idempotency key (False if the key was used, earlier in this
        unit of work too); ``announce`` is published only once the row is really written."""
        ...

    async def collect(self, item: DigestItem, now: datetime) -> None: ...
    async def take_daily_permit(
        self, tenant: str, recipient: str, category: Category, day: str, now: datetime
    ) -> bool: ...
    async def record_overdue(self, event: CheckinMissed) -> None: ...
    async def close_obligation(
        self, tenant: str, obligation_id: str, closed_at: datetime
    ) -> None: ...
    async def closed_obligations(self, tenant: str, obligation_ids: Sequence[str]) -> set[str]: ...
    async def count_overdue(self, tenant: str, employee_ids: Sequence[str]) -> int: ...
    async def due_digest_items(self, now: datetime, limit: int) -> list[DigestItem]: ...
    async def mark_digested(self, item_ids: Sequence[int], digest_id: str) -> None: ...
    async def claim_pending(
        self, now: datetime, limit: int, *, token: str, lease_until: datetime
    ) -> list[StoredDelivery]: ...
    async def expired_leases(self, now: datetime, limit: int) -> list[StoredDelivery]: ...
    async def release(self, delivery_id: str, now: datetime, detail: str) -> None: ...
    async def mark_sending(
        self, delivery_ids: Sequence[str], token: str, now: datetime
    ) -> set[str]: ...
    async def finish(
        self,
        delivery_id: str,
        status: Status,
        now: datetime,
        *,
        reason: str | None = None,
        detail: str | None = None,
        token: str | None = None,
    ) -> bool: ...
    async def finish_claimed(
        self,
        delivery_ids: Sequence[str],
        status: Status,
        now: datetime,
        *,
        token: str,
        detail: str | None = None,
    ) -> set[str]: ...
    async def retry_later(
        self,
        delivery_id: str,
        token: str,
        now: datetime,
        *,
        reason: str,
        detail: str,
        next_attempt_at: datetime,
    ) -> None: ...
    async def payloads_for(self, tenant: str, recipient: str) -> list[Any]: ...
    async def overdue_obligations_of(self, tenant: str, employee: str) -> set[str]: ...
    async def rewrite_payloads(
        self, tenant: str, forms: set[str], rewrite: Callable[[Any], Any]
    ) -> None: ...
    async def forget(self, tenant: str, person: str, obligations: set[str]) -> None: ...


class PreferenceRepository(Protocol):
    async def settings(self, tenant: str, employee: str) -> RecipientSettings | None: ...
    async def save_settings(
        self, tenant: str, employee: str, settings: RecipientSettings, now: datetime
    ) -> None: ...
    async def categories(self, tenant: str, employee: str) -> dict[str, CategoryPreference]: ...
    async def for_category(
        self, tenant: str, employee_ids: Sequence[str], category: Category
    ) -> dict[str, CategoryPreference]: ...
    async def save_category(
        self,
        tenant: str,
        employee: str,
        category: str,
        preference: CategoryPreference,
        now: datetime,
    ) -> None: ...
    async def push_subscription_id(self, tenant: str, endpoint_hash: str) -> str | None: ...
    async def add_push_subscription(self, subscription: PushSubscription) -> None: ...
    async def hand_push_subscription(
        self, subscription_id: str, employee: str, p256dh: str, auth: str, now: datetime
    ) -> None: ...
    async def push_subscriptions(self, tenant: str, employee: str) -> list[PushSubscription]: ...
    async def remove_push_subscription(
        self, subscription_id: str, *, tenant: str | None = None, employee: str | None = None
    ) -> bool: ...
    async def choices_of(
        self, tenant: str, employee_ids: Sequence[str], category: Category
    ) -> dict[str, RecipientChoices]: ...
    async def forget(self, tenant: str, person: str) -> None: ...


class WebhookRepository(Protocol):
    async def add_endpoint(self, endpoint: WebhookEndpoint) -> None: ...
    async def active_endpoints(self, tenant: str) -> list[WebhookEndpoint]: ...
    async def active_endpoint(self, tenant: str, endpoint_id: str) -> WebhookEndpoint | None: ...
    async def set_secrets(
        self,
        endpoint_id: str,
        secret: str,
        previous_secret: str | None,
        previous_secret_until: datetime | None,
    ) -> None: ...
    async def deactivate(self, tenant: str, endpoint_id: str) -> bool: ...
    async def queue(self, delivery: WebhookDelivery) -> bool: ...
    async def due(self, now: datetime, limit: int, *, skip: Sequence[str]) -> list[DueWebhook]: ...
    async def any_due(self, now: datetime, *, skip: Sequence[str]) -> bool:
        """Whether :meth:`due` would find a delivery, asked without locking any (a read)."""
        ...

    async def suppress(self, delivery_ids: Sequence[str], detail: str) -> None: ...
    async def claim(
        self, delivery_ids: Sequence[str], token: str, now: datetime, lease_until: datetime
    ) -> None: ...
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
    ) -> None: ...
    async def forget_mentions(self, tenant: str, person: str) -> None: ...


class TenantRepository(Protocol):
    async def app_base_url(self, tenant: str) -> tuple[str | None, datetime] | None: ...
    async def set_app_base_url(self, tenant: str, url: str | None, now: datetime) -> None: ...
    async def app_base_urls(self, tenants: Sequence[str]) -> dict[str, str]: ...
    async def save_chat_channel(self, tenant: str, channel: ChatChannel) -> None: ...
    async def chat_channels(self, tenant: str) -> list[ChatChannel]: ...
    async def chat_channel_url(self, tenant: str, kind: str) -> str | None: ...
    async def delete_chat_channel(self, tenant: str, kind: Channel) -> None: ...


class NotificationsReader(Protocol):
    """The repositories on a read-only session: what a job asks before it opens a write
    transaction (on SQLite, the one writer slot that every unit of work waits for)."""

    @property
    def webhooks(self) -> WebhookRepository: ...


class NotificationsUnitOfWork(UnitOfWorkPort, Protocol):
    """What a use case gets: one transaction, its outbox and the service's repositories."""

    @property
    def deliveries(self) -> DeliveryRepository: ...
    @property
    def preferences(self) -> PreferenceRepository: ...
    @property
    def webhooks(self) -> WebhookRepository: ...
    @property
    def tenants(self) -> TenantRepository: ...
    @property
    def people(self) -> People:
        """The people directory: its projection, and reads of ids and relationships."""
        ...

    def people_opened_with(self, kek: bytes | None) -> People:
        """The directory whose sealed names and addresses open with the key-encryption key
        (only sending and erasing need them)."""
        ...
