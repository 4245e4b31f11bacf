"""The read side: what the HTTP GETs answer, on a read-only session (no write lock taken).

Each query checks the caller's access first (domain/access.py), then reads through the
repositories or with its own SELECT.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from rhythm_notifications.adapters import db
from rhythm_notifications.adapters.repository import (
    SqlPreferenceRepository,
    SqlTenantRepository,
    SqlWebhookRepository,
    read_only,
)
from rhythm_notifications.domain import access
from rhythm_notifications.domain.access import (
    PUSH_IS_PERSONAL,
    TENANT_CONFIGURATION,
    WEBHOOKS_ARE_TENANT_WIDE,
)
from rhythm_notifications.domain.preferences import PreferencesView, preferences_view
from rhythm_shared.kit.access import relationships, require
from rhythm_shared.kit.auth import Principal
from rhythm_shared.kit.clock import Clock
from rhythm_shared.kit.people import PeopleDirectory


async def _rels(session: AsyncSession, principal: Principal, subject_id: str | None) -> Any:
    directory = PeopleDirectory(session, db.directory, principal.tenant)
    return await relationships(directory, principal, subject_id)


async def _require(
    session: AsyncSession,
    principal: Principal,
    operation: str,
    subject_id: str | None,
    message: str,
) -> None:
    require(access.POLICY, operation, await _rels(session, principal, subject_id), message)


async def preferences(
    session: AsyncSession, principal: Principal, employee_id: str
) -> PreferencesView:
    await _require(
        session,
        principal,
        "read_preferences",
        employee_id,
        "only the person or hr_admin may see this",
    )
    repository = SqlPreferenceRepository(session, read_only)
    return preferences_view(
        employee_id,
        await repository.settings(principal.tenant, employee_id),
        await repository.categories(principal.tenant, employee_id),
    )


async def push_subscriptions(session: AsyncSession, principal: Principal) -> list[dict[str, Any]]:
    await _require(
        session, principal, "list_push_subscriptions", principal.subject, PUSH_IS_PERSONAL
    )
    s = db.push_subscriptions
    rows = await session.execute(
        select(s.c.id, s.c.endpoint, s.c.created_at)
        .where(s.c.tenant_id == principal.tenant, s.c.employee_id == principal.subject)
        .order_by(s.c.created_at)
    )
    return [dict(r._mapping) for r in rows]


async def deliveries(
    session: AsyncSession,
    principal: Principal,
    *,
    recipient_id: str | None,
    source_event_id: str | None,
    limit: int,
) -> list[dict[str, Any]]:
    """History per recipient and/or per source event. People see their own; hr_admin and
    integrations see the tenant's."""
    rels = await _rels(session, principal, recipient_id or principal.subject)
    require(access.POLICY, "list_deliveries", rels, "you can only see your own notifications")
    if not rels & {access.HR_ADMIN, access.INTEGRATION}:
        recipient_id = principal.subject
    d = db.deliveries
    query = select(
        d.c.id,
        d.c.recipient_id,
        d.c.category,
        d.c.channel,
        d.c.status,
        d.c.reason,
        d.c.detail,
        d.c.attempts,
        d.c.source_event_id,
        d.c.source_type,
        d.c.idempotency_key,
        d.c.next_attempt_at,
        d.c.created_at,
        d.c.updated_at,
        d.c.sent_at,
    ).where(d.c.tenant_id == principal.tenant)
    if recipient_id is not None:
        query = query.where(d.c.recipient_id == recipient_id)
    if source_event_id is not None:
        query = query.where(d.c.source_event_id == source_event_id)
    rows = await session.execute(query.order_by(d.c.created_at.desc(), d.c.id).limit(limit))
    return [dict(r._mapping) for r in rows]


async def webhook_endpoints(
    session: AsyncSession, principal: Principal, clock: Clock
) -> list[dict[str, Any]]:
    await _require(session, principal, "list_webhooks", None, WEBHOOKS_ARE_TENANT_WIDE)
    now = clock.now()
    endpoints = await SqlWebhookRepository(session, read_only).active_endpoints(principal.tenant)
    return [endpoint.view(now) for endpoint in endpoints]


async def tenant_settings(session: AsyncSession, principal: Principal) -> dict[str, Any]:
    await _require(session, principal, "read_tenant_settings", None, TENANT_CONFIGURATION)
    found = await SqlTenantRepository(session, read_only).app_base_url(principal.tenant)
    url, updated_at = found if found is not None else (None, None)
    return {"app_base_url": url, "updated_at": updated_at}


async def chat_channels(session: AsyncSession, principal: Principal) -> list[dict[str, Any]]:
    await _require(session, principal, "list_chat_channels", None, TENANT_CONFIGURATION)
    channels = await SqlTenantRepository(session, read_only).chat_channels(principal.tenant)
    return [channel.view() for channel in channels]
