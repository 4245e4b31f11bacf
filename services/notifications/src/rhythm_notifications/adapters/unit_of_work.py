"""The notifications unit of work: the kit's transaction and outbox, with the repositories."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import timedelta
from types import TracebackType
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from rhythm_notifications.adapters import db
from rhythm_notifications.adapters.repository import (
    SqlDeliveryRepository,
    SqlPreferenceRepository,
    SqlTenantRepository,
    SqlWebhookRepository,
    read_only,
)
from rhythm_notifications.domain import routing
from rhythm_notifications.domain.delivery import reminded_obligation
from rhythm_notifications.domain.routing import Trigger
from rhythm_shared.contracts.envelope import Envelope
from rhythm_shared.contracts.v1 import (
    Channel,
    OrgUnitUpserted,
    PersonKeyDestroyed,
    PersonKeyIssued,
)
from rhythm_shared.kit.people import EmployeeEvent, OrgUnitChange, PersonChange, SqlPeople
from rhythm_shared.kit.uow import UnitOfWork, UnitOfWorkFactory


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


class SqlNotificationsReader:
    """Satisfies domain/ports.py's NotificationsReader: the repositories on a read-only
    session (``runtime.uow.read()``), which neither waits for nor blocks the writer."""

    def __init__(self, session: AsyncSession) -> None:
        self.webhooks = SqlWebhookRepository(session, read_only)


@contextlib.asynccontextmanager
async def reading(uows: UnitOfWorkFactory[Any]) -> AsyncIterator[SqlNotificationsReader]:
    """``async with reading(runtime.uow) as reader``: a read-only session's repositories."""
    async with uows.read() as session:
        yield SqlNotificationsReader(session)


class SqlNotificationsUnitOfWork(UnitOfWork):
    """Satisfies domain/ports.py's NotificationsUnitOfWork; its repositories open with it.

    A consumer runs a chunk of events in one unit of work, so what its repositories read of
    tenant-wide rows (webhook endpoints, chat channels, the people directory) is read once per
    chunk; each repository forgets it when it writes those rows.

    Deciding a chunk costs a few statements per chunk, not per event: :meth:`prepare` reads
    ahead what the chunk's events will ask (the people they name and those people's managers,
    their choices, the idempotency keys they can use, the obligations they remind of, today's
    permits), and the deliveries repository holds what they write until :meth:`flush`, before
    commit (see :class:`SqlDeliveryRepository`). ``kek`` is the key the consumer opens sealed
    names with, so that the directory view it reads through is the one read ahead.

    ``wake`` is called once a transaction that added pending deliveries has committed (the
    dispatcher's in-process wake-up, so a decided email does not wait for its next poll)."""

    deliveries: SqlDeliveryRepository
    preferences: SqlPreferenceRepository
    webhooks: SqlWebhookRepository
    tenants: SqlTenantRepository
    people: SqlPeople

    def __init__(
        self,
        *args: Any,
        wake: Callable[[], None] | None = None,
        kek: bytes | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self._wake = wake
        self._kek = kek

    async def flush(self) -> None:
        """Write what the repositories hold (before commit; reads that need it flush too)."""
        await self.deliveries.flush()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            try:
                await self.flush()
            except BaseException as failed:  # rolls back, as a failing handler would
                await super().__aexit__(type(failed), failed, failed.__traceback__)
                raise
        await super().__aexit__(exc_type, exc, tb)
        if exc_type is None and self.deliveries.added_pending and self._wake is not None:
            self._wake()

    def bind(self, session: AsyncSession) -> None:
        self.deliveries = SqlDeliveryRepository(
            session, self.insert, self.publish, permits_in_memory=self.dialect == "sqlite"
        )
        self.preferences = SqlPreferenceRepository(session, self.insert)
        self.webhooks = SqlWebhookRepository(session, self.insert)
        self.tenants = SqlTenantRepository(session, self.insert)
        self._views: dict[bytes | None, SqlPeople] = {}
        self.people = _People(session, self._views)

    async def prepare(self, envelopes: Sequence[Envelope]) -> None:
        """Before a chunk's handlers run: the people events' directory rows, and what deciding
        its other events will ask, per tenant."""
        await self.people.read_ahead(envelopes)
        by_tenant: dict[str, list[Trigger]] = {}
        for envelope in envelopes:
            trigger = routing.trigger_for(envelope.event)
            if trigger is not None:
                by_tenant.setdefault(envelope.tenant_id, []).append(trigger)
        for tenant, triggers in by_tenant.items():
            await self._read_ahead_decisions(tenant, triggers)

    async def _read_ahead_decisions(self, tenant: str, triggers: list[Trigger]) -> None:
        """What deciding ``triggers`` asks, read in one statement per kind (and 500 rows);
        whatever it asks beyond (a manager changed by an event of the chunk) is read then."""
        directory = self.people_opened_with(self._kek).directory(tenant)
        named = {pid for t in triggers for pid in t.parties.values()}
        named |= {g for t in triggers if isinstance(g := t.facts.get("giver_id"), str)}
        people = await directory.people(named)
        chosen = [
            (t, routing.recipients(t, lambda pid: p.manager_id if (p := people.get(pid)) else None))
            for t in triggers
        ]
        recipients = {pid for _, found in chosen for pid, _ in found}
        people.update(await directory.people(recipients - set(people)))
        await self.deliveries.used_keys(
            [
                routing.idempotency_key(t.natural_key, pid, channel)
                for t, found in chosen
                for pid, _ in found
                for channel in (*(c.value for c in Channel), routing.NO_CHANNEL)
            ]
        )
        reminded = [reminded_obligation(t.category, t.facts) for t in triggers]
        await self.deliveries.read_ahead_closed(tenant, [o for o in reminded if o is not None])
        await self.preferences.read_ahead(tenant, sorted(recipients & set(people)))
        # A permit's day is the recipient's local day when it goes out: never before
        # yesterday in UTC.
        from_day = (self.clock.now().date() - timedelta(days=1)).isoformat()
        await self.deliveries.read_ahead_permits(tenant, sorted(recipients), from_day)
        await self.tenants.chat_channels(tenant)

    def people_opened_with(self, kek: bytes | None) -> SqlPeople:
        """The directory with sealed names opened with ``kek``, memoised like ``people``."""
        if kek not in self._views:
            self._views[kek] = SqlPeople(self.session, db.directory, kek)
        return self._views[kek]
