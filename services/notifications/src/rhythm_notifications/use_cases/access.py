"""Who may do what (domain/access.py), asked of the tenant's people directory."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from rhythm_notifications.domain import access
from rhythm_notifications.domain.ports import NotificationsUnitOfWork
from rhythm_shared.kit.access import relationships, require
from rhythm_shared.kit.auth import Principal

if TYPE_CHECKING:
    from rhythm_shared.kit.people import PeopleDirectory


async def require_access(
    uow: NotificationsUnitOfWork,
    principal: Principal,
    operation: str,
    subject_id: str | None,
    message: str,
) -> None:
    # The kit's relationships() is typed by its SQL directory; it reads only the Directory
    # Protocol (and the tenant), which the in-memory directory of the unit tests has too.
    directory = cast("PeopleDirectory", uow.people.directory(principal.tenant))
    rels = await relationships(directory, principal, subject_id)
    require(access.POLICY, operation, rels, message)
