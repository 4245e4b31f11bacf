"""Reads of the goals service: one goal, filtered pages, the alignment tree, the history.

Every read is scoped by the caller's tenant and filtered by the access policy
(:mod:`rhythm_goals.access`): tenant-visible goals for everyone in the tenant, private goals for
their owner, manager chain, the heads of units above and hr_admin. A goal the caller may not see
is a 404, the same answer as an id that does not exist. Reads of private goals and of progress
comments are on the audit trail.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Select, and_, or_, select
from sqlalchemy.sql.elements import ColumnElement

from rhythm_goals.adapters.db import (
    children_of,
    goal_revisions,
    goals,
    load_goal,
    load_key_results,
    people_tables,
)
from rhythm_goals.use_cases import Access, access_for
from rhythm_goals.views import (
    AlignmentTree,
    GoalPage,
    GoalView,
    HistoryPage,
    RevisionView,
    TreeNode,
    goal_view,
    tree_node,
)
from rhythm_shared.contracts.v1 import GoalStatus, OwnerType
from rhythm_shared.kit.audit import AuditAction
from rhythm_shared.kit.auth import Principal
from rhythm_shared.kit.errors import FieldError, InvalidInput, NotFound
from rhythm_shared.kit.uow import UnitOfWork

#: Rows examined per round while filling a page of visible goals.
_SCAN = 200
_MAX_ROUNDS = 20
MAX_TREE_NODES = 2000


class ReportScope(StrEnum):
    DIRECT = "direct"
    ALL = "all"


@dataclass(frozen=True)
class GoalFilter:
    """Filters of a goal listing; None means "any"."""

    status: GoalStatus | None = None
    owner_type: OwnerType | None = None
    owner_id: str | None = None
    org_unit_id: str | None = None
    active_on: date | None = None
    period_start: date | None = None
    period_end: date | None = None
    include_archived: bool = False


def _encode_cursor(*parts: Any) -> str:
    raw = json.dumps([p.isoformat() if isinstance(p, datetime) else p for p in parts])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _bad_cursor() -> InvalidInput:
    return InvalidInput(
        [FieldError(loc=("query", "cursor"), msg="not a cursor this API handed out")]
    )


def _decode_cursor(cursor: str) -> list[Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        parts = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, binascii.Error) as exc:
        raise _bad_cursor() from exc
    if not isinstance(parts, list) or not parts:
        raise _bad_cursor()
    return parts


def _conditions(tenant_id: str, f: GoalFilter) -> list[ColumnElement[bool]]:
    cond: list[ColumnElement[bool]] = [goals.c.tenant_id == tenant_id]
    if not f.include_archived:
        cond.append(goals.c.archived_at.is_(None))
    if f.status is not None:
        cond.append(goals.c.status == f.status.value)
    if f.owner_type is not None:
        cond.append(goals.c.owner_type == f.owner_type.value)
    if f.owner_id is not None:
        cond.append(goals.c.owner_id == f.owner_id)
    if f.org_unit_id is not None:
        cond.append(
            and_(goals.c.owner_type == OwnerType.ORG_UNIT.value, goals.c.owner_id == f.org_unit_id)
        )
    if f.active_on is not None:
        cond.append(and_(goals.c.period_start <= f.active_on, goals.c.period_end >= f.active_on))
    if f.period_start is not None:
        cond.append(goals.c.period_start >= f.period_start)
    if f.period_end is not None:
        cond.append(goals.c.period_end <= f.period_end)
    return cond


async def _page(
    uow: UnitOfWork,
    principal: Principal,
    where: list[ColumnElement[bool]],
    cursor: str | None,
    limit: int,
) -> GoalPage:
    """Keyset pagination over (created_at, goal_id), keeping only goals the caller may see."""
    acc = access_for(uow, principal)
    after: tuple[datetime, str] | None = None
    if cursor is not None:
        parts = _decode_cursor(cursor)
        try:
            after = (datetime.fromisoformat(parts[0]), str(parts[1]))
        except (IndexError, TypeError, ValueError) as exc:
            raise _bad_cursor() from exc
    visible: list[Any] = []
    exhausted = False
    for _ in range(_MAX_ROUNDS):
        stmt: Select[Any] = select(goals).where(*where)
        if after is not None:
            stmt = stmt.where(
                or_(
                    goals.c.created_at > after[0],
                    and_(goals.c.created_at == after[0], goals.c.goal_id > after[1]),
                )
            )
        rows = (
            await uow.session.execute(
                stmt.order_by(goals.c.created_at, goals.c.goal_id).limit(_SCAN)
            )
        ).all()
        for row in rows:
            if await acc.may_read(row):
                visible.append(row)
                if len(visible) > limit:
                    break
            after = (row.created_at, row.goal_id)
        if len(visible) > limit:
            break
        if len(rows) < _SCAN:
            exhausted = True
            break
    page = visible[:limit]
    for row in page:
        await acc.read(row)  # what the caller is shown is what goes on the audit trail
    next_cursor: str | None = None
    if len(visible) > limit:
        next_cursor = _encode_cursor(page[-1].created_at, page[-1].goal_id)
    elif not exhausted and after is not None:
        # Many hidden goals in a row: hand back a short page and where to go on from.
        next_cursor = _encode_cursor(*after)
    krs = await load_key_results(uow.session, [r.goal_id for r in page])
    now = uow.clock.now()
    return GoalPage(
        items=[goal_view(r, krs[r.goal_id], now) for r in page], next_cursor=next_cursor
    )


async def get_goal(uow: UnitOfWork, goal_id: str, principal: Principal) -> GoalView:
    row = await _readable(uow, access_for(uow, principal), goal_id)
    krs = await load_key_results(uow.session, [goal_id])
    return goal_view(row, krs[goal_id], uow.clock.now())


async def _readable(uow: UnitOfWork, acc: Access, goal_id: str) -> Any:
    row = await load_goal(uow.session, acc.principal.tenant, goal_id)
    if row is None or not await acc.read(row, asked=True):
        raise NotFound(f"goal {goal_id} not found")
    return row


async def list_goals(
    uow: UnitOfWork, principal: Principal, f: GoalFilter, cursor: str | None, limit: int
) -> GoalPage:
    return await _page(uow, principal, _conditions(principal.tenant, f), cursor, limit)


async def my_goals(
    uow: UnitOfWork, principal: Principal, f: GoalFilter, cursor: str | None, limit: int
) -> GoalPage:
    where = _conditions(principal.tenant, f)
    where += [
        goals.c.owner_type == OwnerType.PERSON.value,
        goals.c.owner_id == principal.subject,
    ]
    return await _page(uow, principal, where, cursor, limit)


async def reports_goals(
    uow: UnitOfWork,
    principal: Principal,
    scope: ReportScope,
    f: GoalFilter,
    cursor: str | None,
    limit: int,
) -> GoalPage:
    """Goals of the caller's reports: direct reports, or everyone below them (a recursive CTE,
    so a large organisation is one query, not one id list)."""
    tenant = principal.tenant
    e = people_tables.employees
    if scope == ReportScope.DIRECT:
        reports: Any = select(e.c.employee_id).where(
            e.c.tenant_id == tenant, e.c.manager_id == principal.subject
        )
    else:
        chain = (
            select(e.c.employee_id)
            .where(e.c.tenant_id == tenant, e.c.manager_id == principal.subject)
            .cte("report_chain", recursive=True)
        )
        below = select(e.c.employee_id).where(
            e.c.tenant_id == tenant, e.c.manager_id == chain.c.employee_id
        )
        chain = chain.union(below)
        reports = select(chain.c.employee_id)
    where = _conditions(tenant, f)
    where += [goals.c.owner_type == OwnerType.PERSON.value, goals.c.owner_id.in_(reports)]
    return await _page(uow, principal, where, cursor, limit)


async def org_unit_goals(
    uow: UnitOfWork,
    principal: Principal,
    org_unit_id: str,
    *,
    include_subunits: bool,
    include_members: bool,
    f: GoalFilter,
    cursor: str | None,
    limit: int,
) -> GoalPage:
    """Goals owned by an org unit (and the units below it), optionally with its members' goals."""
    tenant = principal.tenant
    acc = access_for(uow, principal)
    if await acc.people.org_unit(org_unit_id) is None:
        raise NotFound(f"org unit {org_unit_id} not found")
    u, e = people_tables.org_units, people_tables.employees
    if include_subunits:
        tree = (
            select(u.c.org_unit_id)
            .where(u.c.tenant_id == tenant, u.c.org_unit_id == org_unit_id)
            .cte("unit_tree", recursive=True)
        )
        tree = tree.union(
            select(u.c.org_unit_id).where(
                u.c.tenant_id == tenant, u.c.parent_id == tree.c.org_unit_id
            )
        )
        units: Any = select(tree.c.org_unit_id)
    else:
        units = select(u.c.org_unit_id).where(
            u.c.tenant_id == tenant, u.c.org_unit_id == org_unit_id
        )
    owned: ColumnElement[bool] = and_(
        goals.c.owner_type == OwnerType.ORG_UNIT.value, goals.c.owner_id.in_(units)
    )
    if include_members:
        members = select(e.c.employee_id).where(e.c.tenant_id == tenant, e.c.org_unit_id.in_(units))
        owned = or_(
            owned,
            and_(goals.c.owner_type == OwnerType.PERSON.value, goals.c.owner_id.in_(members)),
        )
    where = [*_conditions(tenant, f), owned]
    return await _page(uow, principal, where, cursor, limit)


async def goal_history(
    uow: UnitOfWork, goal_id: str, principal: Principal, cursor: str | None, limit: int
) -> HistoryPage:
    acc = access_for(uow, principal)
    goal = await _readable(uow, acc, goal_id)
    comments = await acc.may_read_comments(goal)
    after = 0
    if cursor is not None:
        parts = _decode_cursor(cursor)
        if not parts or not isinstance(parts[0], int):
            raise _bad_cursor()
        after = parts[0]
    rows = (
        await uow.session.execute(
            select(goal_revisions)
            .where(
                goal_revisions.c.tenant_id == principal.tenant,
                goal_revisions.c.goal_id == goal_id,
                goal_revisions.c.revision > after,
            )
            .order_by(goal_revisions.c.revision)
            .limit(limit + 1)
        )
    ).all()
    page = rows[:limit]
    if comments and any(r.changes.get("comment") for r in page):
        acc.audit(goal, AuditAction.READ, f"goal/{goal_id}:progress_comments", True)
    return HistoryPage(
        items=[
            RevisionView(
                revision=r.revision,
                action=r.action,
                changes=r.changes if comments else _without_comment(r.changes),
                changed_by=r.changed_by,
                changed_at=r.changed_at,
            )
            for r in page
        ],
        next_cursor=_encode_cursor(page[-1].revision) if len(rows) > limit else None,
    )


def _without_comment(changes: dict[str, Any]) -> dict[str, Any]:
    """A revision as shown to those who may read the goal but not its progress comments."""
    return {k: v for k, v in changes.items() if k != "comment"}


async def alignment_tree(
    uow: UnitOfWork,
    goal_id: str,
    principal: Principal,
    *,
    depth: int,
    include_archived: bool,
) -> AlignmentTree:
    """The goal's ancestors up to the root and its descendants down to ``depth`` levels."""
    acc = access_for(uow, principal)
    row = await _readable(uow, acc, goal_id)
    ancestors: list[TreeNode] = []
    seen = {row.goal_id}
    parent_id = row.parent_goal_id
    while parent_id is not None and parent_id not in seen and len(ancestors) < 64:
        seen.add(parent_id)
        parent = await load_goal(uow.session, principal.tenant, parent_id)
        if parent is None:
            break
        ancestors.append(tree_node(parent, await acc.read(parent)))
        parent_id = parent.parent_goal_id
    ancestors.reverse()

    root = tree_node(row, True)
    level: dict[str, TreeNode] = {row.goal_id: root}
    count = 1
    truncated = False
    for _ in range(depth):
        if not level:
            break
        children = await children_of(uow.session, principal.tenant, list(level))
        next_level: dict[str, TreeNode] = {}
        for child in children:
            if child.goal_id in seen or (child.archived_at is not None and not include_archived):
                continue
            if count >= MAX_TREE_NODES:
                truncated = True
                break
            seen.add(child.goal_id)
            node = tree_node(child, await acc.read(child))
            level[child.parent_goal_id].children.append(node)
            next_level[child.goal_id] = node
            count += 1
        level = next_level
    else:
        if level and await children_of(uow.session, principal.tenant, list(level)):
            truncated = True
    return AlignmentTree(ancestors=ancestors, node=root, truncated=truncated)
