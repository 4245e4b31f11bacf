"""What the notifications service consumes, and which use case each event goes to."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import timedelta

from rhythm_notifications import erasure, use_cases
from rhythm_notifications.domain.routing import NOTIFYING_EVENTS
from rhythm_notifications.settings import Settings
from rhythm_shared.contracts import topics
from rhythm_shared.contracts.base import EVENT_TYPES, Event
from rhythm_shared.contracts.envelope import Envelope
from rhythm_shared.contracts.v1 import (
    CheckinCompleted,
    EmployeeDeactivated,
    EmployeeErased,
    EmployeeUpserted,
    OrgUnitUpserted,
    PersonKeyDestroyed,
    PersonKeyIssued,
)
from rhythm_shared.contracts.v2 import EmployeeUpsertedV2
from rhythm_shared.kit import crypto
from rhythm_shared.kit.app import Runtime
from rhythm_shared.kit.consumer import ConsumerSpec, Handler
from rhythm_shared.kit.uow import UnitOfWork

GROUP = "notifications"

#: Domain events HR platforms may receive over webhooks: everything on these topics.
WEBHOOK_TOPICS = (topics.GOALS, topics.CHECKINS, topics.CADENCE)


def webhook_event_types() -> list[str]:
    return sorted(t for t, model in EVENT_TYPES.items() if model.topic in WEBHOOK_TOPICS)


async def on_person_event(uow: UnitOfWork, envelope: Envelope) -> None:
    assert isinstance(envelope.event, EmployeeUpserted | EmployeeUpsertedV2 | EmployeeDeactivated)
    await use_cases.apply_person(uow, envelope.event, envelope.id)


async def on_person_key(uow: UnitOfWork, envelope: Envelope) -> None:
    assert isinstance(envelope.event, PersonKeyIssued)
    await use_cases.apply_key(uow, envelope.event)


async def on_org_unit_upserted(uow: UnitOfWork, envelope: Envelope) -> None:
    assert isinstance(envelope.event, OrgUnitUpserted)
    await use_cases.apply_org_unit(uow, envelope.event, envelope.id)


async def on_domain_event(
    uow: UnitOfWork,
    envelope: Envelope,
    *,
    max_age: timedelta = timedelta(hours=96),
    kek: bytes | None = None,
) -> None:
    """Every goals/check-ins/cadence event: forward to webhooks; notify if the table says so."""
    await use_cases.forward_to_webhooks(uow, envelope)
    if isinstance(envelope.event, CheckinCompleted):
        await use_cases.record_checkin_held(uow, envelope.event)
    if isinstance(envelope.event, NOTIFYING_EVENTS):
        await use_cases.notify(uow, envelope, max_age=max_age, kek=kek)


def consumers(runtime: Runtime) -> Sequence[ConsumerSpec]:
    settings = runtime.settings
    assert isinstance(settings, Settings)
    # Opens the names the people service seals (EmployeeUpserted v2) with each person's key.
    kek = crypto.load_kek(settings.data_key_encryption_key.get_secret_value())
    handlers: dict[type[Event], Handler] = {
        EmployeeUpserted: on_person_event,
        EmployeeUpsertedV2: on_person_event,
        EmployeeDeactivated: on_person_event,
        EmployeeErased: functools.partial(erasure.erase_person, kek=kek),
        OrgUnitUpserted: on_org_unit_upserted,
        PersonKeyIssued: on_person_key,
        PersonKeyDestroyed: functools.partial(erasure.destroy_key, kek=kek),
    }
    max_age = timedelta(hours=settings.notification_max_age_hours)
    for event_type in webhook_event_types():
        handlers[EVENT_TYPES[event_type]] = functools.partial(
            on_domain_event, max_age=max_age, kek=kek
        )
    return [
        ConsumerSpec(
            group=GROUP,
            topics=(topics.PEOPLE, topics.KEYS, *WEBHOOK_TOPICS),
            handlers=handlers,
        )
    ]
