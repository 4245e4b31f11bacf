"""The notifications unit of work: the kit's transaction and outbox, with the repositories."""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import delete, or_
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from rhythm_notifications.adapters import db
from rhythm_notifications.adapters.repository import (
    SqlDeliveryRepository,
    SqlPreferenceRepository,
    SqlTenantRepository,
    SqlWebhookRepository,
    escape_like,
)
from rhythm_shared.contracts.v1 import (
    EmployeeDeactivated,
    EmployeeErased,
    EmployeeUpserted,
    OrgUnitUpserted,
    PersonKeyDestroyed,
    PersonKeyIssued,
)
from rhythm_shared.contracts.v2 import EmployeeUpsertedV2
from rhythm_shared.kit.db import write_gate
from rhythm_shared.kit.people import DirectoryProjection, PeopleDirectory
from rhythm_shared.kit.uow import UnitOfWork, UnitOfWorkFactory

log = logging.getLogger("rhythm.notifications.uow")

_PROJECTION = DirectoryProjection(db.directory)


class SqlDirectoryWriter:
    """The kit's directory projection, on the unit of work's session."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def apply_employee(
        self,
        event: EmployeeUpserted | EmployeeUpsertedV2 | EmployeeDeactivated | EmployeeErased,
        event_id: str,
    ) -> None:
        await _PROJECTION.apply_employee(self.session, event, event_id)

    async def apply_org_unit(self, event: OrgUnitUpserted, event_id: str) -> None:
        await _PROJECTION.apply_org_unit(self.session, event, event_id)

    async def apply_key(self, event: PersonKeyIssued | PersonKeyDestroyed) -> None:
        await _PROJECTION.keys.apply(self.session, event)


class SqlNotificationsUnitOfWork(UnitOfWork):
    deliveries: SqlDeliveryRepository
    preferences: SqlPreferenceRepository
    webhooks: SqlWebhookRepository
    tenants: SqlTenantRepository
    projection: SqlDirectoryWriter

    def bind(self, session: AsyncSession) -> None:
        self.deliveries = SqlDeliveryRepository(session, self.insert)
        self.preferences = SqlPreferenceRepository(session, self.insert)
        self.webhooks = SqlWebhookRepository(session, self.insert)
        self.tenants = SqlTenantRepository(session, self.insert)
        self.projection = SqlDirectoryWriter(session)

    def directory(self, tenant: str, kek: bytes | None = None) -> PeopleDirectory:
        """The tenant's directory; with the key-encryption key, sealed names and addresses
        open (only sending needs them: access decisions read ids and relationships)."""
        return PeopleDirectory(self.session, db.directory, tenant, kek=kek)

    async def __aenter__(self) -> SqlNotificationsUnitOfWork:
        await super().__aenter__()
        self.bind(self.session)
        return self

    async def forget_person(self, tenant_id: str, employee_id: str) -> None:
        """Published events and stored answers that name the person (a LIKE on the id is
        broad — ``e-1`` also matches ``e-10`` — which only deletes a published row or a
        replay early)."""
        like = f"%{escape_like(employee_id)}%"
        o, i = db.kit.outbox, db.kit.idempotency
        await self.session.execute(
            delete(o).where(
                o.c.published_at.is_not(None),
                or_(o.c.payload.like(like, escape="\\"), o.c.key.like(like, escape="\\")),
            )
        )
        await self.session.execute(
            delete(i).where(
                i.c.tenant_id == tenant_id,
                or_(i.c.principal == employee_id, i.c.response.like(like, escape="\\")),
            )
        )

    def compact_after_commit(self) -> None:
        """On SQLite, truncate the write-ahead log once this unit of work has committed.

        The checkpoint cannot run inside the transaction; it queues for the engine's writer
        slot, which the unit of work holds until it has committed (or rolled back: then it is
        harmless)."""
        engine = self.session.bind
        if self.dialect != "sqlite" or not isinstance(engine, AsyncEngine):
            return
        task = asyncio.get_running_loop().create_task(_checkpoint(engine))
        _checkpoints.add(task)
        task.add_done_callback(_checkpoints.discard)


_checkpoints: set[asyncio.Task[None]] = set()


async def _checkpoint(engine: AsyncEngine) -> None:
    try:
        async with write_gate(engine), engine.connect() as conn:
            # On the driver's connection, outside any transaction (a checkpoint cannot run in
            # one, and the engine begins every transaction of its own with BEGIN IMMEDIATE).
            driver = (await conn.get_raw_connection()).driver_connection
            assert driver is not None
            cursor = await driver.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            busy = (await cursor.fetchone() or (0,))[0]
            if busy:
                log.warning("wal_checkpoint_busy")
    except Exception:  # the next checkpoint (SQLite's own, or the next erasure) will do
        log.exception("wal_checkpoint_failed")


class SqlNotificationsUnitOfWorkFactory(UnitOfWorkFactory):
    """Makes :class:`SqlNotificationsUnitOfWork` (with the kit's factory's settings)."""

    @classmethod
    def around(cls, factory: UnitOfWorkFactory) -> SqlNotificationsUnitOfWorkFactory:
        made = cls(factory.sessions, factory.tables, factory.clock, factory.source)
        made.events_committed = factory.events_committed
        return made

    def __call__(self) -> SqlNotificationsUnitOfWork:
        return SqlNotificationsUnitOfWork(
            self.sessions, self.tables, self.clock, self.source, self.events_committed.set
        )
