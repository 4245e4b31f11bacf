"""The read side of the goals service: what the API answers (the views), one goal, filtered
pages, the alignment tree, the history.

Every read is scoped by the caller's tenant and filtered by the access policy
(:mod:`rhythm_goals.domain.access`): tenant-visible goals for everyone in the tenant, private
goals for their owner, manager chain, the heads of units above and hr_admin. A goal the caller
may not see is a 404, the same answer as an id that does not exist. Reads of private goals and
of progress comments are on the audit trail.

Reads run on the kit's read-only session (:func:`reading`), which takes no write lock; the audit
entries they make are written after it, in a short transaction of their own.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Select, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from rhythm_goals.adapters.db import goal_revisions, goals, people_tables
from rhythm_goals.adapters.repository import SqlGoalRepository, goal_from_row
from rhythm_goals.adapters.unit_of_work import GoalsRuntime
from rhythm_goals.domain import model
from rhythm_goals.domain.access import Access
from rhythm_goals.domain.model import Goal, KeyResult
from rhythm_goals.domain.ports import GoalRepository
from rhythm_shared.contracts.v1 import (
    ArchiveReason,
    Direction,
    GoalKind,
    GoalStatus,
    OwnerType,
    Visibility,
)
from rhythm_shared.kit.audit import AuditAction, AuditEntry
from rhythm_shared.kit.auth import Principal
from rhythm_shared.kit.clock import Clock
from rhythm_shared.kit.errors import FieldError, InvalidInput, NotFound
from rhythm_shared.kit.people import PeopleDirectory

# --- views ------------------------------------------------------------------------------------


class KeyResultView(BaseModel):
    key_result_id: str
    title: str | None
    unit: str
    start: float
    target: float
    current: float
    direction: Direction
    weight: float
    progress: float = Field(description="Share of the way from start to target, 0 to 1.")
    confidence: float | None


class GoalView(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "goal_id": "6b0f7c1e-4d0a-4c3e-9a55-2f4f3f7b9d10",
                    "owner_type": "person",
                    "owner_id": "e-1042",
                    "parent_goal_id": None,
                    "kind": "okr",
                    "title": "Cut checkout latency in half",
                    "description": "Customers abandon slow checkouts.",
                    "visibility": "tenant",
                    "period_start": "2026-01-01",
                    "period_end": "2026-03-31",
                    "update_interval_days": 14,
                    "status": "on_track",
                    "status_overridden": False,
                    "suggested_status": "on_track",
                    "progress": 0.42,
                    "confidence": 0.7,
                    "revision": 3,
                    "created_at": "2026-01-05T09:30:00Z",
                    "created_by": "e-1042",
                    "updated_at": "2026-02-12T15:45:00Z",
                    "last_progress_at": "2026-02-12T15:45:00Z",
                    "stale": False,
                    "stale_since": None,
                    "archived_at": None,
                    "archive_reason": None,
                    "key_results": [
                        {
                            "key_result_id": "kr-1",
                            "title": "p95 checkout latency",
                            "unit": "ms",
                            "start": 840,
                            "target": 420,
                            "current": 610,
                            "direction": "decrease",
                            "weight": 2,
                            "progress": 0.55,
                            "confidence": 0.7,
                        }
                    ],
                }
            ]
        }
    )

    goal_id: str
    owner_type: OwnerType
    owner_id: str
    parent_goal_id: str | None
    kind: GoalKind
    title: str
    description: str | None
    visibility: Visibility
    period_start: date
    period_end: date
    update_interval_days: int
    status: GoalStatus
    status_overridden: bool = Field(description="True while a person's status stands.")
    suggested_status: GoalStatus = Field(description="What Rhythm suggests from progress now.")
    progress: float
    confidence: float | None
    revision: int
    created_at: datetime
    created_by: str
    updated_at: datetime
    last_progress_at: datetime | None
    stale: bool = Field(description="No progress for the update interval (reported as GoalStale).")
    stale_since: datetime | None
    archived_at: datetime | None
    archive_reason: ArchiveReason | None
    key_results: list[KeyResultView]


class GoalPage(BaseModel):
    items: list[GoalView]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null: done.")


class RevisionView(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "revision": 2,
                    "action": "updated",
                    "changes": {"title": {"from": "Old", "to": "New"}},
                    "changed_by": "e-1042",
                    "changed_at": "2026-02-10T14:00:00Z",
                }
            ]
        }
    )

    revision: int
    action: str = Field(
        description="created, updated, realigned, progress_recorded, status_changed, archived."
    )
    changes: dict[str, Any]
    changed_by: str | None = Field(description="Who changed it; null when Rhythm did.")
    changed_at: datetime


class HistoryPage(BaseModel):
    items: list[RevisionView]
    next_cursor: str | None


class TreeNode(BaseModel):
    """A goal in the alignment tree; a goal the caller may not see shows only that it exists."""

    goal_id: str
    hidden: bool = False
    owner_type: OwnerType | None = None
    owner_id: str | None = None
    title: str | None = None
    status: GoalStatus | None = None
    progress: float | None = None
    archived: bool = False
    children: list[TreeNode] = Field(default_factory=list)


class AlignmentTree(BaseModel):
    ancestors: list[TreeNode] = Field(description="From the root down to the node's parent.")
    node: TreeNode = Field(description="The goal asked for, with its descendants.")
    truncated: bool = Field(description="True when depth or size limits cut the tree short.")


class BulkCreated(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"count": 2, "goal_ids": ["6b0f7c1e-...", "9a1d2e3f-..."]}]}
    )

    count: int
    goal_ids: list[str]


def key_result_view(kr: KeyResult) -> KeyResultView:
    return KeyResultView(
        key_result_id=kr.key_result_id,
        title=kr.title,
        unit=kr.unit,
        start=kr.start,
        target=kr.target,
        current=kr.current,
        direction=kr.direction,
        weight=kr.weight,
        progress=model.key_result_progress(kr.start, kr.target, kr.current),
        confidence=kr.confidence,
    )


def goal_view(goal: Goal, krs: Sequence[KeyResult], now: datetime) -> GoalView:
    elapsed = model.elapsed_fraction(goal.period_start, goal.period_end, now)
    return GoalView(
        goal_id=goal.goal_id,
        owner_type=goal.owner_type,
        owner_id=goal.owner_id,
        parent_goal_id=goal.parent_goal_id,
        kind=goal.kind,
        title=goal.title,
        description=goal.description,
        visibility=goal.visibility,
        period_start=goal.period_start,
        period_end=goal.period_end,
        update_interval_days=goal.update_interval_days,
        status=goal.status,
        status_overridden=goal.status_overridden,
        suggested_status=model.suggest_status(goal.progress, elapsed, goal.confidence),
        progress=goal.progress,
        confidence=goal.confidence,
        revision=goal.revision,
        created_at=goal.created_at,
        created_by=goal.created_by,
        updated_at=goal.updated_at,
        last_progress_at=goal.last_progress_at,
        stale=goal.stale_since is not None,
        stale_since=goal.stale_since,
        archived_at=goal.archived_at,
        archive_reason=goal.archive_reason,
        key_results=[key_result_view(kr) for kr in krs],
    )


def tree_node(goal: Goal, visible: bool) -> TreeNode:
    if not visible:
        return TreeNode(goal_id=goal.goal_id, hidden=True, archived=goal.archived_at is not None)
    return TreeNode(
        goal_id=goal.goal_id,
        owner_type=goal.owner_type,
        owner_id=goal.owner_id,
        title=goal.title,
        status=goal.status,
        progress=goal.progress,
        archived=goal.archived_at is not None,
    )


@dataclass
class Reader:
    """What a read needs: the goals on a read-only session, the clock, the directory of the
    caller's tenant, and where the audit entries of the read go."""

    session: AsyncSession
    clock: Clock
    entries: list[AuditEntry] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.goals = SqlGoalRepository(self.session)

    def access(self, principal: Principal) -> Access:
        people = PeopleDirectory(self.session, people_tables, principal.tenant)
        return Access(principal, people, self.entries.append)


@contextlib.asynccontextmanager
async def reading(runtime: GoalsRuntime) -> AsyncIterator[Reader]:
    """A read on the read-only session; its audit entries are written once it is done (only
    the refusals when it fails, as a unit of work keeps them)."""
    entries: list[AuditEntry] = []
    try:
        async with runtime.uow.read() as session:
            yield Reader(session, runtime.clock, entries)
    except BaseException:
        entries[:] = [e for e in entries if not e.allowed]
        raise
    finally:
        if entries:
            async with runtime.uow() as uow:
                for entry in entries:
                    uow.audit(entry)


async def written_goal(
    goals_: GoalRepository, tenant_id: str, goal_id: str, now: datetime
) -> GoalView:
    """A goal a command has just written, as the command's answer (in its transaction)."""
    goal = await goals_.get(tenant_id, goal_id)
    if goal is None:
        raise NotFound(f"goal {goal_id} not found")
    krs = await goals_.key_results([goal_id])
    return goal_view(goal, krs[goal_id], now)


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
    reader: Reader,
    principal: Principal,
    where: list[ColumnElement[bool]],
    cursor: str | None,
    limit: int,
) -> GoalPage:
    """Keyset pagination over (created_at, goal_id), keeping only goals the caller may see."""
    acc = reader.access(principal)
    after: tuple[datetime, str] | None = None
    if cursor is not None:
        parts = _decode_cursor(cursor)
        try:
            after = (datetime.fromisoformat(parts[0]), str(parts[1]))
        except (IndexError, TypeError, ValueError) as exc:
            raise _bad_cursor() from exc
    visible: list[Goal] = []
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
            await reader.session.execute(
                stmt.order_by(goals.c.created_at, goals.c.goal_id).limit(_SCAN)
            )
        ).all()
        for row in rows:
            goal = goal_from_row(row)
            if await acc.may_read(goal):
                visible.append(goal)
                if len(visible) > limit:
                    break
            after = (goal.created_at, goal.goal_id)
        if len(visible) > limit:
            break
        if len(rows) < _SCAN:
            exhausted = True
            break
    page = visible[:limit]
    for goal in page:
        await acc.read(goal)  # what the caller is shown is what goes on the audit trail
    next_cursor: str | None = None
    if len(visible) > limit:
        next_cursor = _encode_cursor(page[-1].created_at, page[-1].goal_id)
    elif not exhausted and after is not None:
        # Many hidden goals in a row: hand back a short page and where to go on from.
        next_cursor = _encode_cursor(*after)
    krs = await reader.goals.key_results([r.goal_id for r in page])
    now = reader.clock.now()
    return GoalPage(
        items=[goal_view(r, krs[r.goal_id], now) for r in page], next_cursor=next_cursor
    )


async def get_goal(reader: Reader, goal_id: str, principal: Principal) -> GoalView:
    row = await _readable(reader, reader.access(principal), goal_id)
    krs = await reader.goals.key_results([goal_id])
    return goal_view(row, krs[goal_id], reader.clock.now())


async def _readable(reader: Reader, acc: Access, goal_id: str) -> Goal:
    goal = await reader.goals.get(acc.principal.tenant, goal_id)
    if goal is None or not await acc.read(goal, asked=True):
        raise NotFound(f"goal {goal_id} not found")
    return goal


async def list_goals(
    reader: Reader, principal: Principal, f: GoalFilter, cursor: str | None, limit: int
) -> GoalPage:
    return await _page(reader, principal, _conditions(principal.tenant, f), cursor, limit)


async def my_goals(
    reader: Reader, principal: Principal, f: GoalFilter, cursor: str | None, limit: int
) -> GoalPage:
    where = _conditions(principal.tenant, f)
    where += [
        goals.c.owner_type == OwnerType.PERSON.value,
        goals.c.owner_id == principal.subject,
    ]
    return await _page(reader, principal, where, cursor, limit)


async def reports_goals(
    reader: Reader,
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
    return await _page(reader, principal, where, cursor, limit)


async def org_unit_goals(
    reader: Reader,
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
    acc = reader.access(principal)
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
    return await _page(reader, principal, where, cursor, limit)


async def goal_history(
    reader: Reader, goal_id: str, principal: Principal, cursor: str | None, limit: int
) -> HistoryPage:
    acc = reader.access(principal)
    goal = await _readable(reader, acc, goal_id)
    comments = await acc.may_read_comments(goal)
    after = 0
    if cursor is not None:
        parts = _decode_cursor(cursor)
        if not parts or not isinstance(parts[0], int):
            raise _bad_cursor()
        after = parts[0]
    rows = (
        await reader.session.execute(
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
    reader: Reader,
    goal_id: str,
    principal: Principal,
    *,
    depth: int,
    include_archived: bool,
) -> AlignmentTree:
    """The goal's ancestors up to the root and its descendants down to ``depth`` levels."""
    acc = reader.access(principal)
    row = await _readable(reader, acc, goal_id)
    ancestors: list[TreeNode] = []
    seen = {row.goal_id}
    parent_id = row.parent_goal_id
    while parent_id is not None and parent_id not in seen and len(ancestors) < 64:
        seen.add(parent_id)
        parent = await reader.goals.get(principal.tenant, parent_id)
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
        children = await reader.goals.children_of(principal.tenant, list(level))
        next_level: dict[str, TreeNode] = {}
        for child in children:
            if child.goal_id in seen or (child.archived_at is not None and not include_archived):
                continue
            if count >= MAX_TREE_NODES:
                truncated = True
                break
            parent_node = level.get(child.parent_goal_id or "")
            if parent_node is None:
                continue
            seen.add(child.goal_id)
            node = tree_node(child, await acc.read(child))
            parent_node.children.append(node)
            next_level[child.goal_id] = node
            count += 1
        level = next_level
    else:
        if level and await reader.goals.children_of(principal.tenant, list(level)):
            truncated = True
    return AlignmentTree(ancestors=ancestors, node=root, truncated=truncated)
