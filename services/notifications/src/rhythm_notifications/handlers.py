"""The explicit map: each command and each consumed event type to the one function handling it.

HTTP routes and the timed jobs send commands (``COMMAND_HANDLERS``); the consumer registers
``EVENT_HANDLERS``. Every handler is ``verb_noun(uow, message)``; the ones that open sealed
names (``kek``) or judge an event's age (``max_age``) take those as keywords, which the consumer
injects from the settings by name (cosmicpython's bootstrap).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rhythm_notifications import commands
from rhythm_notifications.domain.routing import webhook_event_types
from rhythm_notifications.use_cases import (
    digests,
    dispatching,
    people,
    preferences,
    tenants,
    webhooks,
)
from rhythm_notifications.use_cases.deciding import react_to_event
from rhythm_shared.contracts.base import EVENT_TYPES, Event
from rhythm_shared.contracts.v1 import (
    EmployeeDeactivated,
    EmployeeErased,
    EmployeeUpserted,
    OrgUnitUpserted,
    PersonKeyDestroyed,
    PersonKeyIssued,
)
from rhythm_shared.contracts.v2 import EmployeeUpsertedV2

COMMAND_HANDLERS: dict[type[commands.Command], Callable[..., Any]] = {
    commands.SetPreferences: preferences.set_preferences,
    commands.Unsubscribe: preferences.unsubscribe,
    commands.SubscribePush: preferences.subscribe_push,
    commands.UnsubscribePush: preferences.unsubscribe_push,
    commands.RemovePushSubscription: preferences.remove_push_subscription,
    commands.RegisterWebhook: webhooks.register_webhook,
    commands.RotateWebhookSecret: webhooks.rotate_webhook_secret,
    commands.DeleteWebhook: webhooks.delete_webhook,
    commands.ClaimWebhooks: webhooks.claim_webhooks,
    commands.RecordWebhookResult: webhooks.record_webhook_result,
    commands.SetTenantSettings: tenants.set_tenant_settings,
    commands.SetChatChannel: tenants.set_chat_channel,
    commands.DeleteChatChannel: tenants.delete_chat_channel,
    commands.RecoverExpiredDeliveries: dispatching.recover_expired_deliveries,
    commands.ClaimDueDeliveries: dispatching.claim_due_deliveries,
    commands.MarkSending: dispatching.mark_sending,
    commands.RecordOutcomes: dispatching.record_outcomes,
    commands.SuppressClaimed: dispatching.suppress_claimed,
    commands.ComposeDigests: digests.compose_digests,
}

EVENT_HANDLERS: dict[type[Event], Callable[..., Any]] = {
    EmployeeUpserted: people.apply_person,
    EmployeeUpsertedV2: people.apply_person,
    EmployeeDeactivated: people.apply_person,
    EmployeeErased: people.erase_person,
    OrgUnitUpserted: people.apply_org_unit,
    PersonKeyIssued: people.apply_key,
    PersonKeyDestroyed: people.destroy_key,
    # Every goals/check-ins/cadence event: forwarded, and notifying as the routing table says.
    **{EVENT_TYPES[event_type]: react_to_event for event_type in webhook_event_types()},
}
