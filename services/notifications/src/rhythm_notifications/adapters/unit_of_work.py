"""The notifications unit of work: the kit's transaction and outbox, with the repositories."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from rhythm_notifications.adapters import db
from rhythm_notifications.adapters.repository import (
    SqlDeliveryRepository,
    SqlPreferenceRepository,
    SqlTenantRepository,
    SqlWebhookRepository,
)
from rhythm_shared.contracts.envelope import Envelope
from rhythm_shared.contracts.v1 import OrgUnitUpserted, PersonKeyDestroyed, PersonKeyIssued
from rhythm_shared.kit.people import EmployeeEvent, OrgUnitChange, PersonChange, SqlPeople
from rhythm_shared.kit.uow import UnitOfWork


class _People(SqlPeople):
    """The kit's directory repository; whatever it applies also drops the unit of work's opened
    views (``people_opened_with``), which remember what they read of the same rows."""

    def __init__(self, session: AsyncSession, views: dict[bytes | None, SqlPeople]) -> None:
        super().__init__(session, db.directory)
        self._views = views

    async def apply_employee(self, event: EmployeeEvent, event_id: str) -> PersonChange:
        self._views.clear()
        return await super().apply_employee(event, event_id)

    async def apply_org_unit(self, event: OrgUnitUpserted, event_id: str) -> OrgUnitChange:
        self._views.clear()
        return await super().apply_org_unit(event, event_id)

    async def apply_key(self, event: PersonKeyIssued | PersonKeyDestroyed) -> None:
        self._views.clear()
        await super().apply_key(event)


class SqlNotificationsUnitOfWork(UnitOfWork):
    """Satisfies domain/ports.py's NotificationsUnitOfWork; its repositories open with it.

    A consumer runs a chunk of events in one unit of work, so what its repositories read of
    tenant-wide rows (webhook endpoints, chat channels, the people directory) is read once per
    chunk; each repository forgets it when it writes those rows.

    ``wake`` is called once a transaction that added pending deliveries has committed (the
    dispatcher's in-process wake-up, so a decided email does not wait for its next poll)."""

    deliveries: SqlDeliveryRepository
    preferences: SqlPreferenceRepository
    webhooks: SqlWebhookRepository
    tenants: SqlTenantRepository
    people: SqlPeople

    def __init__(self, *args: Any, wake: Callable[[], None] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._wake = wake

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await super().__aexit__(exc_type, exc, tb)
        if exc_type is None and self.deliveries.added_pending and self._wake is not None:
            self._wake()

    def bind(self, session: AsyncSession) -> None:
        self.deliveries = SqlDeliveryRepository(session, self.insert)
        self.preferences = SqlPreferenceRepository(session, self.insert)
        self.webhooks = SqlWebhookRepository(session, self.insert)
        self.tenants = SqlTenantRepository(session, self.insert)
        self._views: dict[bytes | None, SqlPeople] = {}
        self.people = _People(session, self._views)

    async def prepare(self, envelopes: Sequence[Envelope]) -> None:
        await self.people.read_ahead(envelopes)

    def people_opened_with(self, kek: bytes | None) -> SqlPeople:
        """The directory with sealed names opened with ``kek``, memoised like ``people``."""
        if kek not in self._views:
            self._views[kek] = SqlPeople(self.session, db.directory, kek)
        return self._views[kek]
