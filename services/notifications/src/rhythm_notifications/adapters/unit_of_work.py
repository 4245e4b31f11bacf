"""The notifications unit of work: the kit's transaction and outbox, with the repositories."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from rhythm_notifications.adapters import db
from rhythm_notifications.adapters.repository import (
    SqlDeliveryRepository,
    SqlPreferenceRepository,
    SqlTenantRepository,
    SqlWebhookRepository,
)
from rhythm_shared.contracts.envelope import Envelope
from rhythm_shared.kit.people import SqlPeople
from rhythm_shared.kit.uow import UnitOfWork


class SqlNotificationsUnitOfWork(UnitOfWork):
    """Satisfies domain/ports.py's NotificationsUnitOfWork; its repositories open with it."""

    deliveries: SqlDeliveryRepository
    preferences: SqlPreferenceRepository
    webhooks: SqlWebhookRepository
    tenants: SqlTenantRepository
    people: SqlPeople

    def bind(self, session: AsyncSession) -> None:
        self.deliveries = SqlDeliveryRepository(session, self.insert)
        self.preferences = SqlPreferenceRepository(session, self.insert)
        self.webhooks = SqlWebhookRepository(session, self.insert)
        self.tenants = SqlTenantRepository(session, self.insert)
        self.people = SqlPeople(session, db.directory)

    async def prepare(self, envelopes: Sequence[Envelope]) -> None:
        await self.people.read_ahead(envelopes)

    def people_opened_with(self, kek: bytes | None) -> SqlPeople:
        return SqlPeople(self.session, db.directory, kek)
