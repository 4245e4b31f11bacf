"""What the notifications service consumes, and which use case each event goes to."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import timedelta

from rhythm_notifications import use_cases
from rhythm_notifications.domain.routing import NOTIFYING_EVENTS
from rhythm_notifications.settings import Settings
from rhythm_shared.contracts import topics
from rhythm_shared.contracts.base import EVENT_TYPES, Event
from rhythm_shared.contracts.envelope import Envelope
from rhythm_shared.contracts.v1 import (
    CheckinCompleted,
    EmployeeDeactivated,
    EmployeeUpserted,
    OrgUnitUpserted,
)
from rhythm_shared.kit.app import Runtime
from rhythm_shared.kit.consumer import ConsumerSpec, Handler
from rhythm_shared.kit.uow import UnitOfWork

GROUP = "notifications"

#: Domain events HR platforms may receive over webhooks: everything on these topics.
WEBHOOK_TOPICS = (topics.GOALS, topics.CHECKINS, topics.CADENCE)


def webhook_event_types() -> list[str]:
    return sorted(t for t, model in EVENT_TYPES.items() if model.topic in WEBHOOK_TOPICS)


async def on_person_event(uow: UnitOfWork, envelope: Envelope) -> None:
    assert isinstance(envelope.event, EmployeeUpserted | EmployeeDeactivated)
    await use_cases.apply_person(uow, envelope.event, envelope.id)


async def on_org_unit_upserted(uow: UnitOfWork, envelope: Envelope) -> None:
    assert isinstance(envelope.event, OrgUnitUpserted)
    await use_cases.apply_org_unit(uow, envelope.event, envelope.id)


async def on_domain_event(
    uow: UnitOfWork, envelope: Envelope, *, max_age: timedelta = timedelta(hours=96)
) -> None:
    """Every goals/check-ins/cadence event: forward to webhooks; notify if the table says so."""
    await use_cases.forward_to_webhooks(uow, envelope)
    if isinstance(envelope.event, CheckinCompleted):
        await use_cases.record_checkin_held(uow, envelope.event)
    if isinstance(envelope.event, NOTIFYING_EVENTS):
        await use_cases.notify(uow, envelope, max_age=max_age)


def consumers(runtime: Runtime) -> Sequence[ConsumerSpec]:
    handlers: dict[type[Event], Handler] = {
        EmployeeUpserted: on_person_event,
        EmployeeDeactivated: on_person_event,
        OrgUnitUpserted: on_org_unit_upserted,
    }
    settings = runtime.settings
    assert isinstance(settings, Settings)
    max_age = timedelta(hours=settings.notification_max_age_hours)
    for event_type in webhook_event_types():
        handlers[EVENT_TYPES[event_type]] = functools.partial(on_domain_event, max_age=max_age)
    return [
        ConsumerSpec(
            group=GROUP,
            topics=(topics.PEOPLE, *WEBHOOK_TOPICS),
            handlers=handlers,
        )
    ]
