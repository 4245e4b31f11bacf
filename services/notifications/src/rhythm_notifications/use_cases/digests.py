"""Digests: due digest items become one digest delivery per recipient and channel."""

from __future__ import annotations

import uuid
from collections import defaultdict

from rhythm_notifications.commands import ComposeDigests
from rhythm_notifications.domain import routing
from rhythm_notifications.domain.delivery import DigestItem, Status
from rhythm_notifications.domain.ports import NotificationsUnitOfWork
from rhythm_notifications.domain.routing import Category
from rhythm_notifications.use_cases.deciding import add_delivery
from rhythm_shared.contracts.v1 import Channel


async def manager_summary(
    uow: NotificationsUnitOfWork, tenant: str, manager_id: str
) -> dict[str, int] | None:
    """ "3 of your 8 reports have an overdue check-in", or None when nothing is overdue.

    Only the recipient's direct reports in the directory count (access: summarise_reports is
    for the manager), and only those still active now.
    """
    now = uow.clock.now()
    reports = [
        p.employee_id
        for p in await uow.people.directory(tenant).direct_reports(manager_id)
        if p.active_at(now)
    ]
    if not reports:
        return None
    overdue = await uow.deliveries.count_overdue(tenant, reports)
    if not overdue:
        return None
    return {"overdue": overdue, "reports": len(reports)}


async def compose_digests(uow: NotificationsUnitOfWork, cmd: ComposeDigests) -> int:
    """Turn due digest items into one digest delivery per recipient (and channel)."""
    items = await uow.deliveries.due_digest_items(uow.clock.now(), cmd.limit)
    groups: dict[tuple[str, str], list[DigestItem]] = defaultdict(list)
    for item in items:
        groups[(item.tenant_id, item.recipient_id)].append(item)
    for (tenant, recipient), due in groups.items():
        last_due = max(item.due_at for item in due)
        digest_key = f"digest:{recipient}:{last_due.isoformat()}"
        digest_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{tenant}/{digest_key}"))
        channels = sorted({c for item in due for c in item.channels}) or [Channel.EMAIL.value]
        payload = {
            "items": [item.payload for item in due],
            "summary": await manager_summary(uow, tenant, recipient),
        }
        for channel in channels:
            await add_delivery(
                uow,
                tenant=tenant,
                key=routing.idempotency_key(digest_key, recipient, channel),
                recipient=recipient,
                category=Category.DIGEST,
                channel=channel,
                source_event_id=digest_id,
                source_type="digest",
                status=Status.PENDING,
                payload=payload,
                next_attempt_at=uow.clock.now(),
            )
        await uow.deliveries.mark_digested([i.id for i in due if i.id is not None], digest_id)
    return len(items)
