"""Timed jobs: each tick runs one round of the dispatcher, the webhook sender, the digest
composer (use_cases/sending.py) or the history housekeeping."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rhythm_notifications.adapters.retention import history_rules
from rhythm_notifications.adapters.unit_of_work import SqlNotificationsUnitOfWork
from rhythm_notifications.settings import Settings
from rhythm_notifications.use_cases.sending import (
    Channels,
    DigestComposer,
    Dispatcher,
    WebhookDispatcher,
)
from rhythm_shared.kit.housekeeping import Housekeeper
from rhythm_shared.kit.jobs import JobSpec
from rhythm_shared.kit.runtime import Runtime


@dataclass(frozen=True)
class Resources:
    """What notifications starts beside the kit's runtime (``runtime.resources``)."""

    channels: Channels
    dispatcher: Dispatcher
    webhook_dispatcher: WebhookDispatcher
    digests: DigestComposer


#: Between two dispatcher rounds (each already waits for work: Dispatcher.run_when_due).
DISPATCH_PAUSE_S = 0.005

NotificationsRuntime = Runtime[Settings, SqlNotificationsUnitOfWork, Resources]


def jobs(runtime: NotificationsRuntime) -> Sequence[JobSpec]:
    settings = runtime.settings
    resources = runtime.resources
    history = Housekeeper(runtime.uow, history_rules(settings.history_keep_days))
    return [
        # The dispatcher waits for its wake-up itself (Dispatcher.run_when_due): the job's own
        # pause between rounds is only a breather (and the start of its back-off on errors).
        JobSpec(
            "dispatch_notifications",
            DISPATCH_PAUSE_S,
            resources.dispatcher.run_when_due,
            full_round=1,
        ),
        JobSpec(
            "dispatch_webhooks",
            settings.dispatch_interval_s,
            resources.webhook_dispatcher.run_once,
            full_round=settings.dispatch_batch_size,
        ),
        JobSpec(
            "compose_digests",
            settings.digest_interval_s,
            resources.digests.run_once,
            full_round=500,
        ),
        JobSpec(
            "prune_history",
            settings.housekeeping_interval_s,
            history.run_once,
            full_round=history.batch,
        ),
    ]
