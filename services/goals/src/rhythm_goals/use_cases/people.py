"""The people slice (consumed from ``rhythm.people.v1`` and ``rhythm.keys.v1``) and what it
changes for goals: who may read private goals, leavers' goals archived, erasure."""

from __future__ import annotations

from rhythm_goals.domain.model import Leaver
from rhythm_goals.domain.ports import GoalsUnitOfWork
from rhythm_goals.use_cases.common import archive
from rhythm_shared.contracts.envelope import Envelope
from rhythm_shared.contracts.v1 import (
    ArchiveReason,
    EmployeeDeactivated,
    EmployeeErased,
    EmployeeUpserted,
    OrgUnitUpserted,
    PersonKeyDestroyed,
    PersonKeyIssued,
    Visibility,
)
from rhythm_shared.contracts.v2 import EmployeeUpsertedV2
from rhythm_shared.kit.audit import AuditAction, AuditEntry
from rhythm_shared.kit.erasure import finish_erasure
from rhythm_shared.kit.ports import PersonChange

#: Who reports an erasure done (``PersonDataErased.service``).
SERVICE = "goals"


async def apply_person(
    uow: GoalsUnitOfWork,
    envelope: Envelope[EmployeeUpserted | EmployeeUpsertedV2 | EmployeeDeactivated],
) -> None:
    """Project an ``EmployeeUpserted`` (v1 or v2) or ``EmployeeDeactivated`` into the directory; a
    deactivation in force archives the person's open goals (now, or by
    :func:`archive_leavers_goals` when its date arrives). A late or repeated event changes
    nothing, so it archives nothing either."""
    event = envelope.event
    change = await uow.people.apply_employee(event, envelope.id)
    if change.changed:
        await _note_moves(uow, envelope, change)
        await _follow_leaver(uow, event.tenant_id, change)


async def apply_person_key(
    uow: GoalsUnitOfWork, envelope: Envelope[PersonKeyIssued | PersonKeyDestroyed]
) -> None:
    """Keep a person's data key as ``rhythm.keys.v1`` delivers it (issued, or destroyed)."""
    await uow.people.apply_key(envelope.event)


async def apply_org_unit(uow: GoalsUnitOfWork, envelope: Envelope[OrgUnitUpserted]) -> None:
    await uow.people.apply_org_unit(envelope.event, envelope.id)


async def _note_moves(
    uow: GoalsUnitOfWork,
    envelope: Envelope[EmployeeUpserted | EmployeeUpsertedV2 | EmployeeDeactivated],
    change: PersonChange,
) -> None:
    """A new manager or unit changes who may read the person's private goals: each such goal
    goes on the audit trail, with the HR feed (the event's source) as the one who changed it."""
    before, after = change.before, change.after
    if before is None or not before.known:
        return
    if (before.manager_id, before.org_unit_id) == (after.manager_id, after.org_unit_id):
        return
    for goal in await uow.goals.open_goals_of(envelope.tenant_id, after.employee_id):
        if goal.visibility != Visibility.PRIVATE:
            continue
        uow.audit(
            AuditEntry(
                tenant_id=envelope.tenant_id,
                actor_id=envelope.source[:128],
                subject_id=after.employee_id,
                action=AuditAction.CHANGE_ACCESS,
                target=f"goal/{goal.goal_id}:viewers",
                allowed=True,
            )
        )


async def _follow_leaver(uow: GoalsUnitOfWork, tenant_id: str, change: PersonChange) -> None:
    person = change.after
    at = person.deactivated_at
    before = change.before
    if before is not None and before.deactivated_at is not None:
        # Only a person who was leaving can have a pending archive to replace or withdraw.
        await uow.leavers.remove(tenant_id, person.employee_id)
    if at is None:
        return  # not leaving (any more): a rehire or HR taking it back keeps the goals
    if at > uow.clock.now():
        await uow.leavers.add(
            Leaver(tenant_id=tenant_id, employee_id=person.employee_id, archive_goals_at=at)
        )
        return
    await _archive_goals_of(uow, tenant_id, person.employee_id)


async def _archive_goals_of(uow: GoalsUnitOfWork, tenant_id: str, employee_id: str) -> None:
    for goal in await uow.goals.open_goals_of(tenant_id, employee_id):
        await archive(uow, goal, ArchiveReason.OWNER_DEACTIVATED, None)


async def archive_leavers_goals(uow: GoalsUnitOfWork, limit: int) -> int:
    """Archive the open goals of people whose deactivation, dated ahead, is now in effect.

    Claims only those people (several replicas share the work); each is handled once: the
    leaver goes with the archive. Returns how many leavers were handled."""
    due = await uow.leavers.claim_due(uow.clock.now(), limit)
    for leaver in due:
        await _archive_goals_of(uow, leaver.tenant_id, leaver.employee_id)
        await uow.leavers.remove(leaver.tenant_id, leaver.employee_id)
    return len(due)


async def erase_person(uow: GoalsUnitOfWork, envelope: Envelope[EmployeeErased]) -> None:
    """Erasure (GDPR Art. 17): what the goals service holds of a person goes.

    In the one transaction of the event's inbox row:

    * the person's own goals are deleted with their key results, progress history (comments
      included) and revisions: a person-owned goal is the person's (its title and description
      say what they work on), so no API answers for it any more (404). Other people's goals
      that were aligned to one of them lose that alignment (the parent no longer exists);
    * the comments they wrote on other people's and teams' goals are blanked (in the progress
      history and in the revision that recorded them); the values they recorded stay, under
      their id, as the goal's history;
    * the directory keeps the id as a tombstone and their data key is destroyed; a pending
      archive of their goals goes;
    * published outbox rows that name them (payload or key) and idempotent answers that mention
      them go; outbox rows of their deleted goals go whether published or not (a queued event
      would carry a title out after the erasure);
    * the audit trail stays: it holds ids, kinds and times, never texts, and it is the record of
      who read what (the person's id stays as an id there, as on the facts of other people's
      goals).

    ``PersonDataErased(service="goals")`` is queued in the same transaction; a repeated
    ``EmployeeErased`` is a duplicate for the inbox and reports nothing twice. A person the
    service never knew is erased all the same (nothing to delete) and reported done. On SQLite
    the write-ahead log is truncated after the commit, so no old page with the texts stays in it.
    """
    event = envelope.event
    tenant, person = event.tenant_id, event.employee_id
    await uow.people.apply_employee(event, envelope.id)
    await uow.leavers.remove(tenant, person)
    await uow.goals.delete(tenant, await uow.goals.goal_ids_owned_by(tenant, person))
    await uow.goals.blank_comments_by(tenant, person)
    await finish_erasure(uow, event, service=SERVICE)
