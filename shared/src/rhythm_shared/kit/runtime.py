"""What a service's composition root wires once and hands to entrypoints: the typed runtime.

``Runtime[S, U, R]`` is generic in the service's own settings class ``S``, its unit of work ``U``
(what ``runtime.uow()`` makes) and the resources ``R`` its ``on_start`` returns (None for a
service that needs none), so an entrypoint reads ``runtime.settings.reminder_interval_s`` or
``runtime.resources.dispatcher`` with its type, never a string-keyed lookup.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Generic

from aiokafka import AIOKafkaProducer
from faststream.kafka import KafkaBroker
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from typing_extensions import TypeVar

from rhythm_shared.kit.auth import Authenticator
from rhythm_shared.kit.clock import Clock
from rhythm_shared.kit.db import KitTables
from rhythm_shared.kit.settings import ServiceSettings
from rhythm_shared.kit.uow import UnitOfWork, UnitOfWorkFactory

if TYPE_CHECKING:
    from rhythm_shared.kit.consumer import EventConsumer
    from rhythm_shared.kit.kafka import BrokerMonitor
    from rhythm_shared.kit.migrations import SchemaState
    from rhythm_shared.kit.outbox import OutboxRelay

S = TypeVar("S", bound=ServiceSettings, default=ServiceSettings, covariant=True)
U = TypeVar("U", bound=UnitOfWork, default=UnitOfWork, covariant=True)
R = TypeVar("R", default=object, covariant=True)


class NotStarted(RuntimeError):
    """A service resource was asked for before the service started."""


@dataclass
class Runtime(Generic[S, U, R]):
    name: str
    settings: S
    clock: Clock
    engine: AsyncEngine
    #: The engine reads go through: on SQLite one that takes no write lock; else ``engine``.
    reader: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    tables: KitTables
    uow: UnitOfWorkFactory[U]
    authenticator: Authenticator
    producer: AIOKafkaProducer | None = None
    broker: KafkaBroker | None = None
    relay: OutboxRelay | None = None
    consumers: list[EventConsumer] = field(default_factory=list)
    broker_monitor: BrokerMonitor | None = None
    #: Set once topics, producer, relay and consumers are up (the broker may come later).
    kafka_connected: asyncio.Event = field(default_factory=asyncio.Event)
    kafka_error: str | None = None
    #: Where the database stands against the image's migrations (None: not looked at yet).
    schema: SchemaState | None = None
    #: Set once the schema is usable and everything has started (readiness waits for it).
    started: asyncio.Event = field(default_factory=asyncio.Event)
    _resources: R | None = None
    _has_resources: bool = False

    @property
    def resources(self) -> R:
        """What the service's ``on_start`` returned (its dispatcher, reader, …)."""
        if not self._has_resources:
            raise NotStarted(f"{self.name} has not started: its resources are not there yet")
        return self._resources  # type: ignore[return-value]

    def provide(self, resources: R) -> None:  # type: ignore[misc]  # the kit calls it once
        self._resources = resources
        self._has_resources = True
