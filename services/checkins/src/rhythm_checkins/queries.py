"""The read side: what the HTTP GETs answer, and the views the commands answer with.

Reads of check-ins and feedback texts are on the audit trail, so they run in a unit of work
(which writes it); the others read through :class:`~rhythm_checkins.domain.ports.CheckinsReader`,
which the HTTP layer opens on a read-only session (no writer's lock).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from rhythm_checkins.domain.access import POLICY, relationships, text_operation, to_checkin
from rhythm_checkins.domain.conversations import CheckinState
from rhythm_checkins.domain.policy import CadencePolicy
from rhythm_checkins.domain.ports import CheckinsReader, CheckinsUnitOfWork
from rhythm_checkins.domain.records import (
    ActionItem,
    Checkin,
    Feedback,
    FeedbackRequest,
    Obligation,
)
from rhythm_shared.contracts.v1 import CheckinKind
from rhythm_shared.kit.access import Relationship, acts_as_person, allowed, require
from rhythm_shared.kit.audit import AuditAction, AuditEntry
from rhythm_shared.kit.auth import Principal
from rhythm_shared.kit.errors import Forbidden, NotFound
from rhythm_shared.kit.ports import Directory

# --- check-ins ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Access:
    #: The caller's relationships to the check-in (``MANAGER``: the manager of that conversation).
    rels: frozenset[Relationship]
    #: Whether its texts (reflection, pulse, GROW, notes, action items) are shown.
    texts: bool

    def may(self, operation: str) -> bool:
        return allowed(POLICY, operation, self.rels)


def target(row: Checkin, part: str = "") -> str:
    kind = "review" if row.kind == CheckinKind.QUARTERLY_REVIEW.value else "checkin"
    return f"{kind}/{row.id}{':' + part if part else ''}"


def audit(
    uow: CheckinsUnitOfWork,
    principal: Principal,
    subject_id: str,
    target: str,
    ok: bool,
    action: AuditAction = AuditAction.READ,
) -> None:
    uow.audit(
        AuditEntry(
            tenant_id=principal.tenant,
            actor_id=principal.subject,
            subject_id=subject_id,
            action=action,
            target=target,
            allowed=ok,
        )
    )


async def load_checkin(
    uow: CheckinsReader, tenant_id: str, checkin_id: str, *, lock: bool = False
) -> Checkin:
    row = await uow.checkins.get(tenant_id, checkin_id, lock=lock)
    if row is None:
        raise NotFound("no such check-in")
    return row


async def checkin_access(
    uow: CheckinsUnitOfWork,
    principal: Principal,
    row: Checkin,
    people_dir: Directory | None = None,
) -> Access:
    """From the caller's relationship to the check-in's employee (the directory) and the
    policy table; whoever may not even know it exists gets a 404 (and the refusal is on
    record)."""
    people_dir = people_dir or uow.people.directory(principal.tenant)
    rels = to_checkin(
        await relationships(people_dir, principal, row.employee_id),
        principal.subject,
        as_person=acts_as_person(principal),
        checkin_manager_id=row.manager_id,
    )
    if not allowed(POLICY, "read_checkin", rels):
        audit(uow, principal, row.employee_id, target(row), False)
        raise NotFound("no such check-in")
    review = row.kind == CheckinKind.QUARTERLY_REVIEW.value
    shared = (
        review and (await uow.checkins.settings(principal.tenant)).reviews_visible_to_manager_chain
    )
    texts = allowed(POLICY, text_operation(review=review, shared_with_chain=shared), rels)
    return Access(rels=rels, texts=texts)


def item_view(row: ActionItem, with_text: bool) -> dict[str, Any]:
    return {
        "action_item_id": row.id,
        "checkin_id": row.checkin_id,
        "owner_id": row.owner_id,
        "text": row.text if with_text else None,
        "due_on": row.due_on,
        "done": row.done_at is not None,
        "done_at": row.done_at,
    }


async def checkin_view(
    uow: CheckinsUnitOfWork, principal: Principal, row: Checkin, access: Access
) -> dict[str, Any]:
    # Open items carry over into the check-ins still to be held (with the employee's manager
    # of now); one already held shows its own.
    items = await uow.checkins.action_items(
        row.tenant_id,
        row.employee_id,
        of_checkin=row.id,
        open_ones=row.state == CheckinState.SCHEDULED.value,
    )
    notes = access.texts
    audit(uow, principal, row.employee_id, target(row), notes)
    return {
        "checkin_id": row.id,
        "kind": row.kind,
        "employee_id": row.employee_id,
        "manager_id": row.manager_id,
        "scheduled_for": row.scheduled_for,
        "time_zone": row.time_zone,
        "initiated_by": row.initiated_by,
        "initiated_by_id": row.initiated_by_id,
        "state": row.state,
        "invite_sequence": row.invite_sequence,
        "held_at": row.held_at,
        "obligation_id": row.obligation_id,
        "goals_discussed": list(row.goals_discussed or []),
        "pulse": row.pulse if notes else None,
        "reflection": {
            "wins": row.reflection_wins,
            "challenges": row.reflection_challenges,
            "help_needed": row.reflection_help_needed,
            "submitted_at": row.reflected_at,
        }
        if notes
        else None,
        "grow": {
            "goal": row.grow_goal,
            "reality": row.grow_reality,
            "options": row.grow_options,
            "will": row.grow_will,
        }
        if notes
        else None,
        "notes": row.notes if notes else None,
        # This check-in's items and every open one carried over from earlier check-ins.
        "action_items": [item_view(i, notes) for i in items],
    }


async def get_checkin(
    uow: CheckinsUnitOfWork, principal: Principal, checkin_id: str
) -> dict[str, Any]:
    row = await load_checkin(uow, principal.tenant, checkin_id)
    return await checkin_view(uow, principal, row, await checkin_access(uow, principal, row))


async def list_checkins(
    uow: CheckinsUnitOfWork,
    principal: Principal,
    employee_id: str | None = None,
    state: CheckinState | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Check-ins the principal takes part in (or, for hr_admin/executives and the manager
    chain, an employee's), newest first; texts only where allowed."""
    tenant = principal.tenant
    people_dir = uow.people.directory(tenant)
    manager_id = participant = None
    if employee_id is not None:
        rels = await relationships(people_dir, principal, employee_id)
        if not allowed(POLICY, "list_checkins", rels):
            # Anyone else: only the conversations they were in (a former manager's).
            manager_id = principal.subject
    else:
        participant = principal.subject
    rows = await uow.checkins.listing(
        tenant,
        employee_id=employee_id,
        manager_id=manager_id,
        participant=participant,
        state=state.value if state is not None else None,
        limit=limit,
    )
    return [
        await checkin_view(uow, principal, r, await checkin_access(uow, principal, r, people_dir))
        for r in rows
    ]


async def prepare_view(
    uow: CheckinsUnitOfWork, principal: Principal, checkin_id: str
) -> dict[str, Any]:
    """What substantiates the conversation: both people's goals with their progress since the
    last completed check-in of the pair, and the action items still open."""
    row = await load_checkin(uow, principal.tenant, checkin_id)
    access = await checkin_access(uow, principal, row)
    ok = access.may("prepare_checkin")
    audit(uow, principal, row.employee_id, target(row, "preparation"), ok)
    if not ok:
        raise Forbidden("only the participants prepare a check-in")
    tenant = row.tenant_id
    last_held = await uow.checkins.last_held(tenant, row.employee_id, other_than=row.id)
    # The employee's goals (both may see them: self and manager); the manager's private goals
    # are the manager's own.
    goal_rows = await uow.goals.of_owners(
        tenant, row.employee_id, row.manager_id, other_private=principal.subject == row.manager_id
    )
    views = []
    for g in goal_rows:
        before = 0.0
        if last_held is not None:
            value = await uow.goals.progress_at(tenant, g.goal_id, last_held)
            before = value if value is not None else 0.0
        views.append(
            {
                "goal_id": g.goal_id,
                "owner_id": g.owner_id,
                "title": g.title,
                "progress": g.progress,
                "progress_at_last_checkin": before if last_held is not None else None,
                "progress_since_last_checkin": round(g.progress - before, 4),
            }
        )
    # What is still open carries over into a check-in to be held; a held one shows its own.
    items = await uow.checkins.action_items(
        tenant, row.employee_id, of_checkin=None, open_ones=True
    )
    if row.state != CheckinState.SCHEDULED.value:
        items = [i for i in items if i.checkin_id == row.id]
    return {
        "checkin_id": row.id,
        "last_checkin_held_at": last_held,
        "goals": views,
        "open_action_items": [item_view(i, True) for i in items],
    }


# --- feedback ----------------------------------------------------------------------------------


class Direction(StrEnum):
    RECEIVED = "received"
    GIVEN = "given"


def feedback_view(row: Feedback) -> dict[str, Any]:
    return {
        "feedback_id": row.id,
        "giver_id": row.giver_id,
        "receiver_id": row.receiver_id,
        "kind": row.kind,
        "text": row.text,
        "requested": row.requested,
        "request_id": row.request_id,
        "created_at": row.created_at,
    }


def request_view(row: FeedbackRequest) -> dict[str, Any]:
    return {
        "request_id": row.id,
        "requester_id": row.requester_id,
        "from_id": row.from_id,
        "prompt": row.prompt,
        "feedback_id": row.feedback_id,
        "created_at": row.created_at,
    }


def _audit_feedback_read(
    uow: CheckinsUnitOfWork, principal: Principal, row: Feedback, ok: bool
) -> None:
    """A feedback text is about its receiver: the read is on their record."""
    audit(uow, principal, row.receiver_id, f"feedback/{row.id}", ok)


async def list_feedback(
    uow: CheckinsUnitOfWork, principal: Principal, direction: Direction, limit: int = 100
) -> list[dict[str, Any]]:
    """Only giver and receiver ever read a feedback text."""
    require(
        POLICY,
        "list_feedback",
        await relationships(uow.people.directory(principal.tenant), principal, principal.subject),
        "feedback is read by a person",
    )
    me = principal.subject
    found = await uow.feedback.listing(
        principal.tenant,
        receiver_id=me if direction == Direction.RECEIVED else None,
        giver_id=me if direction == Direction.GIVEN else None,
        limit=limit,
    )
    for r in found:
        _audit_feedback_read(uow, principal, r, True)
    return [feedback_view(r) for r in found]


async def get_feedback(
    uow: CheckinsUnitOfWork, principal: Principal, feedback_id: str
) -> dict[str, Any]:
    row = await uow.feedback.get(principal.tenant, feedback_id)
    if row is None:
        raise NotFound("no such feedback")
    people_dir = uow.people.directory(principal.tenant)
    # Its two people: the caller is one of them (SELF to the giver or to the receiver).
    rels = await relationships(people_dir, principal, row.receiver_id) | await relationships(
        people_dir, principal, row.giver_id
    )
    ok = allowed(POLICY, "read_feedback", rels)
    _audit_feedback_read(uow, principal, row, ok)
    if not ok:
        raise NotFound("no such feedback")
    return feedback_view(row)


async def list_feedback_requests(
    reader: CheckinsReader, principal: Principal
) -> list[dict[str, Any]]:
    """Open requests addressed to the principal."""
    require(
        POLICY,
        "list_feedback_requests",
        await relationships(
            reader.people.directory(principal.tenant), principal, principal.subject
        ),
        "requests for feedback are for a person",
    )
    rows = await reader.feedback.open_requests(principal.tenant, principal.subject)
    return [request_view(r) for r in rows]


# --- cadence -----------------------------------------------------------------------------------


def policy_view(policy: CadencePolicy) -> dict[str, Any]:
    return {
        "policy_id": policy.policy_id,
        "scope": policy.scope.value,
        "scope_id": policy.scope_id,
        "rules": [
            {
                "kind": r.kind.value,
                "frequency": r.frequency.value,
                "grace_days": r.grace_days,
                "lead_time_days": r.lead_time_days,
            }
            for r in policy.rules
        ],
        "escalate_after": policy.escalate_after,
        "escalate_to": policy.escalate_to.value,
        "ramp_up_days": policy.ramp_up_days,
        "hr_contact_id": policy.hr_contact_id,
    }


async def list_policies(reader: CheckinsReader, principal: Principal) -> list[dict[str, Any]]:
    """For hr_admin, executives, and people who manage someone in the directory (a ``manager``
    role alone is no reason)."""
    people_dir = reader.people.directory(principal.tenant)
    rels = set(await relationships(people_dir, principal, None))
    if acts_as_person(principal) and await people_dir.direct_reports(principal.subject):
        rels.add(Relationship.MANAGER)
    require(
        POLICY,
        "list_cadence_policies",
        frozenset(rels),
        "cadence policies are for managers, executives and hr_admin",
    )
    return [policy_view(p) for p in await reader.cadence.policies(principal.tenant)]


def obligation_view(row: Obligation) -> dict[str, Any]:
    return {
        "obligation_id": row.id,
        "employee_id": row.employee_id,
        "manager_id": row.manager_id,
        "kind": row.kind,
        "frequency": row.frequency,
        "period_start": row.period_start,
        "period_end": row.period_end,
        "due_at": row.due_at,
        "remind_at": row.remind_at,
        "miss_at": row.miss_at,
        "state": row.state,
        "consecutive_misses": row.consecutive_misses,
        "checkin_id": row.checkin_id,
    }


async def list_obligations(
    reader: CheckinsReader, principal: Principal, employee_id: str, state: str | None = None
) -> list[dict[str, Any]]:
    """An employee's obligations: for themselves, their manager chain and hr_admin."""
    people_dir = reader.people.directory(principal.tenant)
    if await people_dir.person(employee_id) is None:
        raise NotFound("no such employee")
    require(
        POLICY,
        "list_obligations",
        await relationships(people_dir, principal, employee_id),
        "only the employee, their manager chain or hr_admin may see this",
    )
    rows = await reader.cadence.listing(principal.tenant, employee_id, state)
    return [obligation_view(r) for r in rows]
