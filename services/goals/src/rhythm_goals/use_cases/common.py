"""What the goal use cases share: access to a goal, revisions, archiving, rule violations.

A use case checks access and rules, changes state, writes a revision and queues its events in the
outbox, all in the one transaction the entrypoint opened; it never commits. Rule violations are
raised as kit errors (404/403/409/422) before anything is written, so nothing is half-written.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from rhythm_goals.domain import access, model
from rhythm_goals.domain.access import Access
from rhythm_goals.domain.model import Goal, Revision
from rhythm_goals.domain.ports import GoalsUnitOfWork
from rhythm_shared.contracts.v1 import ArchiveReason, GoalArchived
from rhythm_shared.kit.access import require
from rhythm_shared.kit.auth import Principal
from rhythm_shared.kit.errors import Conflict, FieldError, InvalidInput, NotFound
from rhythm_shared.kit.ports import Directory


def directory(uow: GoalsUnitOfWork, tenant_id: str) -> Directory:
    """The people directory of one tenant."""
    return uow.people.directory(tenant_id)


def access_for(uow: GoalsUnitOfWork, principal: Principal) -> Access:
    return Access(principal, directory(uow, principal.tenant), uow.audit)


def _invalid(problems: Sequence[model.Problem], prefix: tuple[str | int, ...] = ()) -> InvalidInput:
    return InvalidInput([FieldError(loc=("body", *prefix, *p.loc), msg=p.msg) for p in problems])


def raise_if(problems: Sequence[model.Problem], prefix: tuple[str | int, ...] = ()) -> None:
    if problems:
        raise _invalid(problems, prefix)


def jsonable(value: Any) -> Any:
    value = getattr(value, "value", value)  # an enum as what the API says
    return value.isoformat() if isinstance(value, date | datetime) else value


async def goal_for_write(
    uow: GoalsUnitOfWork,
    principal: Principal,
    goal_id: str,
    operation: str,
    *,
    allow_archived: bool = False,
) -> tuple[Goal, Access]:
    """The goal, locked for this transaction, if the principal may perform ``operation`` on it.

    Not in the tenant or not visible: 404 (existence is not confirmed). Visible but not the
    principal's to change: 403. Archived: 409.
    """
    goal = await uow.goals.get(principal.tenant, goal_id, for_update=True)
    if goal is None:
        raise NotFound(f"goal {goal_id} not found")
    acc = access_for(uow, principal)
    if not await acc.may_read(goal):
        await acc.read(goal, asked=True)  # the refusal, on the audit trail if private
        raise NotFound(f"goal {goal_id} not found")
    require(
        access.POLICY,
        access.write_operation(operation, goal.owner_type),
        await acc.to_goal(goal),
        "only the owner, their managers or hr_admin may change this goal",
    )
    if goal.archived_at is not None and not allow_archived:
        raise Conflict(f"goal {goal_id} is archived")
    return goal, acc


async def revise(
    uow: GoalsUnitOfWork,
    goal: Goal,
    revision: int,
    action: str,
    changes: dict[str, Any],
    by: str | None,
) -> None:
    await uow.goals.add_revision(
        Revision(
            tenant_id=goal.tenant_id,
            goal_id=goal.goal_id,
            revision=revision,
            action=action,
            changes=changes,
            changed_by=by,
            changed_at=uow.clock.now(),
        )
    )


async def archive(uow: GoalsUnitOfWork, goal: Goal, reason: ArchiveReason, by: str | None) -> None:
    now = uow.clock.now()
    revision = goal.revision + 1
    await uow.goals.change(
        goal.goal_id,
        archived_at=now,
        archive_reason=reason,
        next_stale_check_at=None,
        revision=revision,
        updated_at=now,
    )
    await revise(uow, goal, revision, "archived", {"reason": reason.value}, by)
    await uow.publish(
        GoalArchived(tenant_id=goal.tenant_id, occurred_at=now, goal_id=goal.goal_id, reason=reason)
    )
