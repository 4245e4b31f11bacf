"""Who may do what with goals: the whole policy as one table (pure; no database).

The subject of a goal is its owner: a person, an org unit, or the company. The caller's
relationships to the owner come from the token and the people directory only
(:func:`rhythm_shared.kit.access.relationships`); an ``owner_id`` named in a body never widens
them — creating a goal for someone you do not manage is refused. For an org unit the
relationships are the token's organisation-wide ones plus ``unit_head`` for the heads of the unit
and of the units above it; for the company, the organisation-wide ones only (everyone else in the
tenant is a ``peer``).

Progress comments are conversation text (DESIGN: they never ride on events): a goal's history
shows them only to those who may read the goal privately; others see the history without them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from rhythm_goals.domain.model import Goal
from rhythm_shared.contracts.v1 import OwnerType, Visibility
from rhythm_shared.kit.access import (
    Policy,
    Relationship,
    acts_as_person,
    allowed,
    relationships,
    role_relationships,
)
from rhythm_shared.kit.audit import AuditAction, AuditEntry
from rhythm_shared.kit.auth import Principal
from rhythm_shared.kit.ports import Directory

R = Relationship

#: Those who answer for a person or unit: the person, their managers, heads of units above, HR.
_RESPONSIBLE = frozenset({R.SELF, R.MANAGER, R.MANAGER_CHAIN, R.UNIT_HEAD, R.HR_ADMIN})
#: Everyone the tenant's token speaks for.
_TENANT = frozenset(R)
#: Company goals are HR's and the executives'.
_COMPANY = frozenset({R.HR_ADMIN, R.EXECUTIVE})

READ_GOAL = "read_goal"
READ_PRIVATE_GOAL = "read_private_goal"
READ_PRIVATE_COMPANY_GOAL = "read_private_company_goal"
READ_PROGRESS_HISTORY = "read_progress_history"
READ_PROGRESS_COMMENTS = "read_progress_comments"
LIST_GOALS = "list_goals"
CREATE_GOAL_FOR_SELF = "create_goal_for_self"
CREATE_GOAL_FOR_REPORT = "create_goal_for_report"
CREATE_UNIT_GOAL = "create_unit_goal"
CREATE_COMPANY_GOAL = "create_company_goal"
UPDATE_GOAL = "update_goal"
RECORD_PROGRESS = "record_progress"
CHANGE_STATUS = "change_status"
ARCHIVE_GOAL = "archive_goal"
ALIGN_GOAL = "align_goal"
CHANGE_COMPANY_GOAL = "change_company_goal"
BULK_CREATE_GOALS = "bulk_create_goals"

POLICY: Policy = {
    # A tenant-visible goal is the tenant's: everyone its token speaks for reads it.
    READ_GOAL: _TENANT,
    READ_PRIVATE_GOAL: _RESPONSIBLE,
    READ_PRIVATE_COMPANY_GOAL: _COMPANY,
    # The history follows the goal (read_goal / read_private_goal); its comments are private.
    READ_PROGRESS_HISTORY: _TENANT,
    READ_PROGRESS_COMMENTS: _RESPONSIBLE,
    # Tenant-wide listings: each goal on a page is filtered by read_goal / read_private_goal.
    LIST_GOALS: _TENANT,
    CREATE_GOAL_FOR_SELF: frozenset({R.SELF}),
    CREATE_GOAL_FOR_REPORT: frozenset({R.MANAGER, R.MANAGER_CHAIN, R.UNIT_HEAD, R.HR_ADMIN}),
    CREATE_UNIT_GOAL: frozenset({R.UNIT_HEAD, R.HR_ADMIN}),
    CREATE_COMPANY_GOAL: _COMPANY,
    UPDATE_GOAL: _RESPONSIBLE,
    RECORD_PROGRESS: _RESPONSIBLE,
    CHANGE_STATUS: _RESPONSIBLE,
    ARCHIVE_GOAL: _RESPONSIBLE,
    ALIGN_GOAL: _RESPONSIBLE,
    # Every write above, when the goal is the company's.
    CHANGE_COMPANY_GOAL: _COMPANY,
    # The subject is the org unit the template is rolled out to.
    BULK_CREATE_GOALS: frozenset({R.UNIT_HEAD, R.HR_ADMIN}),
}

#: Every HTTP route -> the operation it performs; the matrix test fails for a route missing here.
#: A route on one goal names the operation for a private goal of a person; the use cases refine
#: it by the goal's owner and visibility (the functions below): a tenant-visible goal is
#: ``read_goal``, and ``POST /v1/goals`` is ``create_goal_for_self`` when the caller owns it.
ROUTES: Mapping[tuple[str, str], str] = {
    ("POST", "/v1/goals"): CREATE_GOAL_FOR_REPORT,
    ("POST", "/v1/goals/bulk"): BULK_CREATE_GOALS,
    ("GET", "/v1/goals"): LIST_GOALS,
    ("GET", "/v1/goals/mine"): LIST_GOALS,
    ("GET", "/v1/goals/reports"): LIST_GOALS,
    ("GET", "/v1/goals/org-units/{org_unit_id}"): LIST_GOALS,
    ("GET", "/v1/goals/{goal_id}"): READ_PRIVATE_GOAL,
    ("GET", "/v1/goals/{goal_id}/tree"): READ_PRIVATE_GOAL,
    ("GET", "/v1/goals/{goal_id}/history"): READ_PROGRESS_COMMENTS,
    ("PATCH", "/v1/goals/{goal_id}"): UPDATE_GOAL,
    ("POST", "/v1/goals/{goal_id}/key-results/{key_result_id}/progress"): RECORD_PROGRESS,
    ("POST", "/v1/goals/{goal_id}/status"): CHANGE_STATUS,
    ("POST", "/v1/goals/{goal_id}/archive"): ARCHIVE_GOAL,
    ("PUT", "/v1/goals/{goal_id}/parent"): ALIGN_GOAL,
}

_WRITES = frozenset({UPDATE_GOAL, RECORD_PROGRESS, CHANGE_STATUS, ARCHIVE_GOAL, ALIGN_GOAL})


def read_operation(owner_type: OwnerType, visibility: Visibility) -> str:
    """The operation reading a goal is."""
    if visibility == Visibility.TENANT:
        return READ_GOAL
    return READ_PRIVATE_COMPANY_GOAL if owner_type == OwnerType.COMPANY else READ_PRIVATE_GOAL


def comments_operation(owner_type: OwnerType) -> str:
    """The operation reading a goal's progress comments is."""
    return READ_PRIVATE_COMPANY_GOAL if owner_type == OwnerType.COMPANY else READ_PROGRESS_COMMENTS


def write_operation(operation: str, owner_type: OwnerType) -> str:
    """A write on a company goal is HR's and the executives'; on any other, ``operation``."""
    if operation not in _WRITES:
        raise ValueError(f"{operation} is not a write on a goal")
    return CHANGE_COMPANY_GOAL if owner_type == OwnerType.COMPANY else operation


def create_operation(owner_type: OwnerType, rels: frozenset[Relationship]) -> str:
    """Creating a goal: for oneself, for someone else (a report), a unit, or the company."""
    if owner_type == OwnerType.COMPANY:
        return CREATE_COMPANY_GOAL
    if owner_type == OwnerType.ORG_UNIT:
        return CREATE_UNIT_GOAL
    return CREATE_GOAL_FOR_SELF if R.SELF in rels else CREATE_GOAL_FOR_REPORT


@dataclass
class Access:
    """The caller's relationships to goal owners, for one unit of work (each owner asked once);
    what it lets the caller see goes on the audit trail through ``audit``."""

    principal: Principal
    people: Directory
    audit_sink: Callable[[AuditEntry], None]
    _known: dict[tuple[str, str], frozenset[Relationship]] = field(default_factory=dict)

    async def to_owner(self, owner_type: OwnerType, owner_id: str) -> frozenset[Relationship]:
        key = (owner_type.value, owner_id)
        if key not in self._known:
            self._known[key] = await self._relationships(owner_type, owner_id)
        return self._known[key]

    async def _relationships(self, owner_type: OwnerType, owner_id: str) -> frozenset[Relationship]:
        if owner_type == OwnerType.PERSON:
            return await relationships(self.people, self.principal, owner_id)
        rels = role_relationships(self.principal)
        if acts_as_person(self.principal):
            heads = (
                await self.people.unit_heads_upwards(owner_id)
                if owner_type == OwnerType.ORG_UNIT
                else []
            )
            rels.add(
                Relationship.UNIT_HEAD if self.principal.subject in heads else Relationship.PEER
            )
        return frozenset(rels)

    async def to_goal(self, goal: Goal) -> frozenset[Relationship]:
        return await self.to_owner(goal.owner_type, goal.owner_id)

    async def may_read(self, goal: Goal) -> bool:
        operation = read_operation(goal.owner_type, goal.visibility)
        return allowed(POLICY, operation, await self.to_goal(goal))

    async def may_read_comments(self, goal: Goal) -> bool:
        return allowed(POLICY, comments_operation(goal.owner_type), await self.to_goal(goal))

    def audit(self, goal: Goal, action: AuditAction, target: str, ok: bool) -> None:
        self.audit_sink(
            AuditEntry(
                tenant_id=self.principal.tenant,
                actor_id=self.principal.subject,
                subject_id=goal.owner_id,
                action=action,
                target=target,
                allowed=ok,
            )
        )

    async def read(self, goal: Goal, *, asked: bool = False) -> bool:
        """Whether the caller may read the goal. A private goal's read goes on the audit trail;
        a refusal too when the caller ``asked`` for this goal (not when a listing skips it)."""
        ok = await self.may_read(goal)
        if goal.visibility == Visibility.PRIVATE and (ok or asked):
            self.audit(goal, AuditAction.READ, f"goal/{goal.goal_id}", ok)
        return ok
