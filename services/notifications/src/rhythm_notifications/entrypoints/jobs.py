"""Timed jobs: each tick runs one round of the dispatcher, the webhook sender, the digest
composer (use_cases/sending.py) or the history housekeeping."""

from __future__ import annotations

from collections.abc import Sequence

from rhythm_notifications.adapters.retention import history_rules
from rhythm_notifications.settings import Settings
from rhythm_notifications.use_cases.sending import DigestComposer, Dispatcher, WebhookDispatcher
from rhythm_shared.kit.app import Runtime
from rhythm_shared.kit.housekeeping import Housekeeper
from rhythm_shared.kit.jobs import JobSpec


def jobs(runtime: Runtime) -> Sequence[JobSpec]:
    settings = runtime.settings
    assert isinstance(settings, Settings)
    dispatcher: Dispatcher = runtime.extras["dispatcher"]
    webhooks: WebhookDispatcher = runtime.extras["webhook_dispatcher"]
    digests: DigestComposer = runtime.extras["digests"]
    history = Housekeeper(runtime.uow, history_rules(settings.history_keep_days))
    return [
        JobSpec(
            "dispatch_notifications",
            settings.dispatch_interval_s,
            dispatcher.run_once,
            full_round=settings.dispatch_batch_size,
        ),
        JobSpec(
            "dispatch_webhooks",
            settings.dispatch_interval_s,
            webhooks.run_once,
            full_round=settings.dispatch_batch_size,
        ),
        JobSpec("compose_digests", settings.digest_interval_s, digests.run_once, full_round=500),
        JobSpec(
            "prune_history",
            settings.housekeeping_interval_s,
            history.run_once,
            full_round=history.batch,
        ),
    ]
