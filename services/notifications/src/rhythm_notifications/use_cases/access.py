"""Who may do what (domain/access.py), asked of the tenant's people directory."""

from __future__ import annotations

from rhythm_notifications.domain import access
from rhythm_notifications.domain.ports import NotificationsUnitOfWork
from rhythm_shared.kit.access import relationships, require
from rhythm_shared.kit.auth import Principal


async def require_access(
    uow: NotificationsUnitOfWork,
    principal: Principal,
    operation: str,
    subject_id: str | None,
    message: str,
) -> None:
    rels = await relationships(uow.people.directory(principal.tenant), principal, subject_id)
    require(access.POLICY, operation, rels, message)
