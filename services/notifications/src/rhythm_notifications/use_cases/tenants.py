"""Per-tenant configuration: the app's base URL (links) and chat channels (hr_admin's)."""

from __future__ import annotations

from typing import Any

from rhythm_notifications.adapters.outbound import host_refusal
from rhythm_notifications.commands import DeleteChatChannel, SetChatChannel, SetTenantSettings
from rhythm_notifications.domain.access import TENANT_CONFIGURATION
from rhythm_notifications.domain.ports import NotificationsUnitOfWork
from rhythm_notifications.domain.tenants import ChatChannel
from rhythm_notifications.domain.validation import check_base_url, check_url
from rhythm_notifications.use_cases.access import require_access
from rhythm_shared.kit.errors import InvalidInput


async def set_tenant_settings(
    uow: NotificationsUnitOfWork, cmd: SetTenantSettings
) -> dict[str, Any]:
    """Set (or, with None, drop) the tenant's own app base URL."""
    await require_access(uow, cmd.principal, "set_tenant_settings", None, TENANT_CONFIGURATION)
    if cmd.app_base_url is not None:
        check_base_url(cmd.app_base_url, allow_http=cmd.allow_http)
    now = uow.clock.now()
    await uow.tenants.set_app_base_url(cmd.principal.tenant, cmd.app_base_url, now)
    return {"app_base_url": cmd.app_base_url, "updated_at": now}


async def set_chat_channel(uow: NotificationsUnitOfWork, cmd: SetChatChannel) -> dict[str, Any]:
    """Connect (or replace) the tenant's Slack or Teams channel and the categories it takes.

    The URL is checked now, not only when a message is posted: https outside development and
    tests, and a host whose addresses are public (the outbound client checks again on every
    request, since a name can change what it resolves to)."""
    await require_access(uow, cmd.principal, "set_chat_channel", None, TENANT_CONFIGURATION)
    check_url(cmd.url, "url", allow_http=cmd.allow_http)
    if not cmd.allow_private:
        why = await host_refusal(cmd.url)
        if why is not None:
            raise InvalidInput.field("url", msg=why)
    channel = ChatChannel(cmd.kind, cmd.url, sorted(set(cmd.categories)), uow.clock.now())
    await uow.tenants.save_chat_channel(cmd.principal.tenant, channel)
    return channel.view()


async def delete_chat_channel(uow: NotificationsUnitOfWork, cmd: DeleteChatChannel) -> None:
    """Disconnect a chat channel (idempotent: disconnected is the end state, whether or not it
    was connected); what was still owed to it fails when it is due."""
    await require_access(uow, cmd.principal, "delete_chat_channel", None, TENANT_CONFIGURATION)
    await uow.tenants.delete_chat_channel(cmd.principal.tenant, cmd.kind)
