"""What the notifications service consumes: every event type of handlers.EVENT_HANDLERS."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from rhythm_notifications.domain.routing import WEBHOOK_TOPICS
from rhythm_notifications.entrypoints.jobs import NotificationsRuntime
from rhythm_notifications.handlers import EVENT_HANDLERS
from rhythm_shared.contracts import topics
from rhythm_shared.contracts.base import Event
from rhythm_shared.kit import crypto
from rhythm_shared.kit.consumer import ConsumerSpec, Handler

GROUP = "notifications"


def _inject(handler: Callable[..., Any], dependencies: dict[str, Any]) -> Handler:
    """The handler with the dependencies it names bound (cosmicpython's bootstrap)."""
    wanted = {
        n: dependencies[n] for n in inspect.signature(handler).parameters if n in dependencies
    }
    return functools.partial(handler, **wanted) if wanted else handler


def consumers(runtime: NotificationsRuntime) -> Sequence[ConsumerSpec]:
    settings = runtime.settings
    dependencies = {
        # Opens the names the people service seals (EmployeeUpserted v2) with each person's key.
        "kek": crypto.load_kek(settings.data_key_encryption_key.get_secret_value()),
        "max_age": timedelta(hours=settings.notification_max_age_hours),
    }
    handlers: dict[type[Event], Handler] = {
        event_type: _inject(handler, dependencies) for event_type, handler in EVENT_HANDLERS.items()
    }
    return [
        ConsumerSpec(
            group=GROUP,
            topics=(topics.PEOPLE, topics.KEYS, *WEBHOOK_TOPICS),
            handlers=handlers,
        )
    ]
