"""A person's preferences, the one-click unsubscribe, push subscriptions."""

from __future__ import annotations

import uuid
from typing import Any

from rhythm_notifications.commands import (
    RemovePushSubscription,
    SetPreferences,
    SubscribePush,
    Unsubscribe,
    UnsubscribePush,
)
from rhythm_notifications.domain import routing
from rhythm_notifications.domain.access import PUSH_IS_PERSONAL
from rhythm_notifications.domain.ports import NotificationsUnitOfWork
from rhythm_notifications.domain.preferences import (
    CategoryPreference,
    PreferencesView,
    RecipientSettings,
    after_unsubscribe,
    preferences_view,
)
from rhythm_notifications.domain.push import PushSubscription, endpoint_hash
from rhythm_notifications.domain.routing import Category
from rhythm_notifications.domain.schedule import DeliveryMode
from rhythm_notifications.domain.validation import check_push_keys, check_url
from rhythm_notifications.use_cases.access import require_access
from rhythm_shared.kit.errors import InvalidInput, NotFound


async def set_preferences(uow: NotificationsUnitOfWork, cmd: SetPreferences) -> PreferencesView:
    """Replace the schedule; set the categories named (others keep what they had)."""
    principal, employee = cmd.principal, cmd.employee_id
    await require_access(
        uow, principal, "set_preferences", employee, "only the person or hr_admin may set this"
    )
    if (cmd.quiet_hours_start is None) != (cmd.quiet_hours_end is None):
        raise InvalidInput.field(
            "quiet_hours_end", msg="give both ends of the quiet hours, or none"
        )
    now = uow.clock.now()
    settings = RecipientSettings(
        quiet_start=cmd.quiet_hours_start,
        quiet_end=cmd.quiet_hours_end,
        working_days=sorted(set(cmd.working_days)),
        digest_hour=cmd.digest_hour,
    )
    await uow.preferences.save_settings(principal.tenant, employee, settings, now)
    for category, setting in cmd.categories.items():
        # Choosing again is a fresh, explicit choice: it lifts an earlier unsubscribe.
        chosen = CategoryPreference(setting.channel, setting.mode, unsubscribed=False)
        await uow.preferences.save_category(principal.tenant, employee, category, chosen, now)
    return preferences_view(
        employee,
        await uow.preferences.settings(principal.tenant, employee),
        await uow.preferences.categories(principal.tenant, employee),
    )


async def unsubscribe(uow: NotificationsUnitOfWork, cmd: Unsubscribe) -> None:
    """RFC 8058 one-click: stop email for this person and category (idempotent)."""
    try:
        category = Category(cmd.category)
    except ValueError as exc:
        raise NotFound("unknown category") from exc
    tenant, employee = cmd.tenant_id, cmd.employee_id
    current = (await uow.preferences.for_category(tenant, [employee], category)).get(employee)
    default = routing.RULES[category].default_channel
    stopped = CategoryPreference(
        channel=after_unsubscribe(current.channel if current else default),
        mode=current.mode if current else DeliveryMode.IMMEDIATE,
        unsubscribed=True,
    )
    await uow.preferences.save_category(tenant, employee, category.value, stopped, uow.clock.now())


async def subscribe_push(uow: NotificationsUnitOfWork, cmd: SubscribePush) -> dict[str, Any]:
    principal = cmd.principal
    await require_access(uow, principal, "subscribe_push", principal.subject, PUSH_IS_PERSONAL)
    check_url(cmd.endpoint, "endpoint", allow_http=cmd.allow_http)
    check_push_keys(cmd.p256dh, cmd.auth)
    hashed = endpoint_hash(cmd.endpoint)
    existing = await uow.preferences.push_subscription_id(principal.tenant, hashed)
    now = uow.clock.now()
    if existing is not None:
        # The browser re-subscribed (or the device changed hands): the latest holder owns it.
        await uow.preferences.hand_push_subscription(
            existing, principal.subject, cmd.p256dh, cmd.auth, now
        )
        subscription_id = existing
    else:
        subscription_id = str(uuid.uuid4())
        await uow.preferences.add_push_subscription(
            PushSubscription(
                id=subscription_id,
                tenant_id=principal.tenant,
                employee_id=principal.subject,
                endpoint=cmd.endpoint,
                endpoint_hash=hashed,
                p256dh=cmd.p256dh,
                auth=cmd.auth,
                created_at=now,
            )
        )
    return {"id": subscription_id, "endpoint": cmd.endpoint, "created_at": now}


async def unsubscribe_push(uow: NotificationsUnitOfWork, cmd: UnsubscribePush) -> None:
    principal = cmd.principal
    await require_access(uow, principal, "unsubscribe_push", principal.subject, PUSH_IS_PERSONAL)
    removed = await uow.preferences.remove_push_subscription(
        cmd.subscription_id, tenant=principal.tenant, employee=principal.subject
    )
    if not removed:
        raise NotFound("no such push subscription")


async def remove_push_subscription(
    uow: NotificationsUnitOfWork, cmd: RemovePushSubscription
) -> None:
    """The push service answered 404/410: the subscription is gone for good."""
    await uow.preferences.remove_push_subscription(cmd.subscription_id)
