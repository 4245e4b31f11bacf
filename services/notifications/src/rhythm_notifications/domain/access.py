"""Who may do what in notifications: one table, from the caller's relationship to the person.

Relationships come from the people directory and the token (``rhythm_shared.kit.access``),
never from the request. A request that names nobody (a push subscription, the caller's own
history) is about the caller: person tokens are ``self`` to it, organisation-wide tokens are
only their roles.
"""

from __future__ import annotations

from collections.abc import Mapping

from rhythm_shared.kit.access import Policy, Relationship

SELF = Relationship.SELF
HR_ADMIN = Relationship.HR_ADMIN
INTEGRATION = Relationship.INTEGRATION

POLICY: Policy = {
    # Quiet hours, digest hour, channels: the person's own choice; HR may set them for someone
    # (say, on behalf of a person without a login). A manager may not.
    "read_preferences": frozenset({SELF, HR_ADMIN}),
    "set_preferences": frozenset({SELF, HR_ADMIN}),
    # A browser subscribes for the person signed in on it; nobody else sees or removes it.
    "subscribe_push": frozenset({SELF}),
    "list_push_subscriptions": frozenset({SELF}),
    "unsubscribe_push": frozenset({SELF}),
    # Delivery history: one's own; HR and integrations the tenant's (support, audits).
    "list_deliveries": frozenset({SELF, HR_ADMIN, INTEGRATION}),
    # RFC 8058 one-click: the signed link is the authority (it names tenant, person and
    # category); no bearer token is read, so every caller is the same to it.
    "unsubscribe_by_link": frozenset(Relationship),
    # Tenant-wide: endpoints that receive the tenant's domain events.
    "register_webhook": frozenset({HR_ADMIN, INTEGRATION}),
    "list_webhooks": frozenset({HR_ADMIN, INTEGRATION}),
    "delete_webhook": frozenset({HR_ADMIN, INTEGRATION}),
    "rotate_webhook_secret": frozenset({HR_ADMIN, INTEGRATION}),
    # Tenant-wide configuration: the app's base URL for links, chat channels (whose webhook
    # URLs post into the tenant's workspace): hr_admin's.
    "read_tenant_settings": frozenset({HR_ADMIN}),
    "set_tenant_settings": frozenset({HR_ADMIN}),
    "list_chat_channels": frozenset({HR_ADMIN}),
    "set_chat_channel": frozenset({HR_ADMIN}),
    "delete_chat_channel": frozenset({HR_ADMIN}),
    # Not an HTTP route: a digest's "3 of your 8 reports are overdue" counts only the
    # recipient's direct reports in the directory (see use_cases/digests.py).
    "summarise_reports": frozenset({Relationship.MANAGER}),
}

#: What a refused caller reads.
PUSH_IS_PERSONAL = "push subscriptions belong to the person signed in on the device"
WEBHOOKS_ARE_TENANT_WIDE = "webhook endpoints are managed by hr_admin or an integration"
TENANT_CONFIGURATION = "the tenant's links and chat channels are configured by hr_admin"

#: Every HTTP route -> the operation it performs; the matrix test fails for a route missing here.
ROUTES: Mapping[tuple[str, str], str] = {
    ("GET", "/v1/preferences"): "read_preferences",
    ("PUT", "/v1/preferences"): "set_preferences",
    ("POST", "/v1/push-subscriptions"): "subscribe_push",
    ("GET", "/v1/push-subscriptions"): "list_push_subscriptions",
    ("DELETE", "/v1/push-subscriptions/{subscription_id}"): "unsubscribe_push",
    ("GET", "/v1/deliveries"): "list_deliveries",
    ("POST", "/v1/unsubscribe"): "unsubscribe_by_link",
    ("GET", "/v1/unsubscribe"): "unsubscribe_by_link",
    ("POST", "/v1/webhook-endpoints"): "register_webhook",
    ("GET", "/v1/webhook-endpoints"): "list_webhooks",
    ("DELETE", "/v1/webhook-endpoints/{endpoint_id}"): "delete_webhook",
    ("POST", "/v1/webhook-endpoints/{endpoint_id}/rotate-secret"): "rotate_webhook_secret",
    ("GET", "/v1/tenant-settings"): "read_tenant_settings",
    ("PUT", "/v1/tenant-settings"): "set_tenant_settings",
    ("GET", "/v1/chat-channels"): "list_chat_channels",
    ("PUT", "/v1/chat-channels/{kind}"): "set_chat_channel",
    ("DELETE", "/v1/chat-channels/{kind}"): "delete_chat_channel",
}
