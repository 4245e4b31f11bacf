"""Commands of the goals service: one function per command, each inside the caller's unit of work.

A use case checks access and rules, changes state, writes a revision and queues its events in the
outbox, all in the one transaction the entrypoint opened; it never commits. Rule violations are
raised as kit errors (404/403/409/422) before anything is written, so nothing is half-written.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import Row, select, update
from sqlalchemy.sql.elements import ColumnElement

from rhythm_goals import access, domain
from rhythm_goals.adapters.db import (
    goal_revisions,
    goals,
    key_results,
    leavers,
    load_goal,
    load_key_results,
    parent_of,
    people_tables,
    progress_records,
)
from rhythm_goals.commands import (
    AlignGoal,
    ArchiveGoal,
    BulkCreateGoals,
    ChangeStatus,
    CreateGoal,
    KeyResultInput,
    RecordProgress,
    TemplateTarget,
    UpdateGoal,
)
from rhythm_goals.views import BulkCreated, GoalView, goal_view
from rhythm_shared.contracts.envelope import Envelope
from rhythm_shared.contracts.v1 import (
    ArchiveReason,
    EmployeeDeactivated,
    EmployeeUpserted,
    GoalArchived,
    GoalCreated,
    GoalProgressRecorded,
    GoalStale,
    GoalStatus,
    GoalStatusChanged,
    GoalUpdated,
    KeyResultSpec,
    OrgUnitUpserted,
    OwnerType,
    PersonKeyDestroyed,
    PersonKeyIssued,
    Visibility,
)
from rhythm_shared.contracts.v2 import EmployeeUpsertedV2
from rhythm_shared.kit.access import (
    Relationship,
    acts_as_person,
    allowed,
    relationships,
    require,
    role_relationships,
)
from rhythm_shared.kit.audit import AuditAction, AuditEntry
from rhythm_shared.kit.auth import Principal
from rhythm_shared.kit.errors import Conflict, FieldError, InvalidInput, NotFound
from rhythm_shared.kit.people import DirectoryProjection, PeopleDirectory, PersonChange
from rhythm_shared.kit.uow import UnitOfWork

#: How many goals one bulk request may create (one transaction; larger units go in parts).
MAX_BULK = 5000


def directory(uow: UnitOfWork, tenant_id: str) -> PeopleDirectory:
    return PeopleDirectory(uow.session, people_tables, tenant_id)


def _invalid(
    problems: Sequence[domain.Problem], prefix: tuple[str | int, ...] = ()
) -> InvalidInput:
    return InvalidInput([FieldError(loc=("body", *prefix, *p.loc), msg=p.msg) for p in problems])


def _raise_if(problems: Sequence[domain.Problem], prefix: tuple[str | int, ...] = ()) -> None:
    if problems:
        raise _invalid(problems, prefix)


# --- access -----------------------------------------------------------------------------------


@dataclass
class Access:
    """The caller's relationships to goal owners, for one unit of work (each owner asked once)."""

    uow: UnitOfWork
    principal: Principal
    people: PeopleDirectory
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

    async def to_goal(self, row: Any) -> frozenset[Relationship]:
        return await self.to_owner(OwnerType(row.owner_type), row.owner_id)

    async def may_read(self, row: Any) -> bool:
        operation = access.read_operation(OwnerType(row.owner_type), Visibility(row.visibility))
        return allowed(access.POLICY, operation, await self.to_goal(row))

    async def may_read_comments(self, row: Any) -> bool:
        operation = access.comments_operation(OwnerType(row.owner_type))
        return allowed(access.POLICY, operation, await self.to_goal(row))

    def audit(self, row: Any, action: AuditAction, target: str, ok: bool) -> None:
        self.uow.audit(
            AuditEntry(
                tenant_id=self.principal.tenant,
                actor_id=self.principal.subject,
                subject_id=row.owner_id,
                action=action,
                target=target,
                allowed=ok,
            )
        )

    async def read(self, row: Any, *, asked: bool = False) -> bool:
        """Whether the caller may read the goal. A private goal's read goes on the audit trail;
        a refusal too when the caller ``asked`` for this goal (not when a listing skips it)."""
        ok = await self.may_read(row)
        if row.visibility == Visibility.PRIVATE and (ok or asked):
            self.audit(row, AuditAction.READ, f"goal/{row.goal_id}", ok)
        return ok


def access_for(uow: UnitOfWork, principal: Principal) -> Access:
    return Access(uow, principal, directory(uow, principal.tenant))


async def _goal_for_write(
    uow: UnitOfWork,
    principal: Principal,
    goal_id: str,
    operation: str,
    *,
    allow_archived: bool = False,
) -> tuple[Row[Any], Access]:
    """The goal, locked for this transaction, if the principal may perform ``operation`` on it.

    Not in the tenant or not visible: 404 (existence is not confirmed). Visible but not the
    principal's to change: 403. Archived: 409.
    """
    row = await load_goal(uow.session, principal.tenant, goal_id, for_update=True)
    if row is None:
        raise NotFound(f"goal {goal_id} not found")
    acc = access_for(uow, principal)
    if not await acc.may_read(row):
        await acc.read(row, asked=True)  # the refusal, on the audit trail if private
        raise NotFound(f"goal {goal_id} not found")
    require(
        access.POLICY,
        access.write_operation(operation, OwnerType(row.owner_type)),
        await acc.to_goal(row),
        "only the owner, their managers or hr_admin may change this goal",
    )
    if row.archived_at is not None and not allow_archived:
        raise Conflict(f"goal {goal_id} is archived")
    return row, acc


async def _view(uow: UnitOfWork, tenant_id: str, goal_id: str) -> GoalView:
    row = await load_goal(uow.session, tenant_id, goal_id)
    assert row is not None
    krs = await load_key_results(uow.session, [goal_id])
    return goal_view(row, krs[goal_id], uow.clock.now())


async def _revise(
    uow: UnitOfWork,
    tenant_id: str,
    goal_id: str,
    revision: int,
    action: str,
    changes: dict[str, Any],
    by: str | None,
) -> None:
    await uow.session.execute(
        goal_revisions.insert().values(
            tenant_id=tenant_id,
            goal_id=goal_id,
            revision=revision,
            action=action,
            changes=changes,
            changed_by=by,
            changed_at=uow.clock.now(),
        )
    )


def _jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date | datetime) else value


# --- key results ------------------------------------------------------------------------------


def _check_key_results(inputs: Sequence[KeyResultInput]) -> list[domain.Problem]:
    problems: list[domain.Problem] = []
    seen: set[str] = set()
    for i, kr in enumerate(inputs):
        problems += domain.check_key_result(i, kr.start, kr.target, kr.direction, kr.weight)
        if kr.key_result_id is not None:
            if kr.key_result_id in seen:
                problems.append(
                    domain.Problem(("key_results", i, "key_result_id"), "duplicate key_result_id")
                )
            seen.add(kr.key_result_id)
    return problems


def _key_result_ids(inputs: Sequence[KeyResultInput], taken: set[str]) -> list[str]:
    """Given ids, and kr-N for the rest (N after the highest in use)."""
    used = set(taken) | {kr.key_result_id for kr in inputs if kr.key_result_id}
    ids: list[str] = []
    n = 1
    for kr in inputs:
        if kr.key_result_id:
            ids.append(kr.key_result_id)
            continue
        while f"kr-{n}" in used:
            n += 1
        used.add(f"kr-{n}")
        ids.append(f"kr-{n}")
    return ids


def _kr_spec(kr_id: str, kr: Any) -> KeyResultSpec:
    return KeyResultSpec(
        key_result_id=kr_id,
        unit=kr.unit,
        start=kr.start,
        target=kr.target,
        direction=kr.direction,
        weight=kr.weight,
    )


# --- create -----------------------------------------------------------------------------------


async def _resolve_owner(
    people: PeopleDirectory, principal: Principal, cmd: CreateGoal
) -> domain.Owner:
    if cmd.owner_type == OwnerType.COMPANY:
        owner_id = cmd.owner_id or principal.tenant
        if owner_id != principal.tenant:
            raise InvalidInput.field("owner_id", msg="a company goal is owned by the tenant itself")
        return domain.Owner(OwnerType.COMPANY, owner_id)
    if cmd.owner_type == OwnerType.ORG_UNIT:
        if cmd.owner_id is None:
            raise InvalidInput.field("owner_id", msg="an org unit goal names its org unit")
        if await people.org_unit(cmd.owner_id) is None:
            raise InvalidInput.field("owner_id", msg="no such org unit in this tenant")
        return domain.Owner(OwnerType.ORG_UNIT, cmd.owner_id)
    owner_id = cmd.owner_id or principal.subject
    # The caller is in the tenant by their token, even before the HR feed has told us of them.
    if owner_id != principal.subject and await people.person(owner_id) is None:
        raise InvalidInput.field("owner_id", msg="no such person in this tenant")
    return domain.Owner(OwnerType.PERSON, owner_id)


async def _check_parent(
    uow: UnitOfWork,
    acc: Access,
    parent_goal_id: str | None,
    prefix: tuple[str | int, ...] = (),
) -> None:
    if parent_goal_id is None:
        return
    parent = await load_goal(uow.session, acc.principal.tenant, parent_goal_id)
    if parent is None or not await acc.may_read(parent):
        raise InvalidInput.field(*prefix, "parent_goal_id", msg="unknown parent goal")
    if parent.archived_at is not None:
        raise InvalidInput.field(*prefix, "parent_goal_id", msg="the parent goal is archived")


async def _insert_goal(
    uow: UnitOfWork,
    principal: Principal,
    owner: domain.Owner,
    cmd: CreateGoal,
) -> str:
    """Insert a validated goal, its key results, revision 1 and GoalCreated."""
    now = uow.clock.now()
    goal_id = str(uuid.uuid4())
    kr_ids = _key_result_ids(cmd.key_results, set())
    status = GoalStatus.ON_TRACK
    await uow.session.execute(
        goals.insert().values(
            goal_id=goal_id,
            tenant_id=principal.tenant,
            owner_type=owner.owner_type.value,
            owner_id=owner.owner_id,
            parent_goal_id=cmd.parent_goal_id,
            kind=cmd.kind.value,
            title=cmd.title,
            description=cmd.description,
            visibility=cmd.visibility.value,
            period_start=cmd.period_start,
            period_end=cmd.period_end,
            update_interval_days=cmd.update_interval_days,
            status=status.value,
            status_overridden=False,
            progress=0.0,
            confidence=None,
            revision=1,
            created_at=now,
            created_by=principal.subject,
            updated_at=now,
            last_progress_at=None,
            next_stale_check_at=domain.next_stale_check(now, cmd.update_interval_days, status),
            stale_since=None,
        )
    )
    if cmd.key_results:
        await uow.session.execute(
            key_results.insert(),
            [
                {
                    "goal_id": goal_id,
                    "key_result_id": kr_id,
                    "tenant_id": principal.tenant,
                    "position": i,
                    "title": kr.title,
                    "unit": kr.unit,
                    "start": kr.start,
                    "target": kr.target,
                    "current": kr.start,
                    "direction": kr.direction.value,
                    "weight": kr.weight,
                    "confidence": None,
                    "updated_at": now,
                }
                for i, (kr_id, kr) in enumerate(zip(kr_ids, cmd.key_results, strict=True))
            ],
        )
    snapshot = {
        k: _jsonable(v)
        for k, v in cmd.model_dump(mode="json", exclude={"key_results", "owner_id"}).items()
    }
    snapshot["owner_id"] = owner.owner_id
    snapshot["key_results"] = [
        {"key_result_id": kr_id, **kr.model_dump(mode="json", exclude={"key_result_id"})}
        for kr_id, kr in zip(kr_ids, cmd.key_results, strict=True)
    ]
    await _revise(uow, principal.tenant, goal_id, 1, "created", snapshot, principal.subject)
    await uow.publish(
        GoalCreated(
            tenant_id=principal.tenant,
            occurred_at=now,
            goal_id=goal_id,
            owner_type=owner.owner_type,
            owner_id=owner.owner_id,
            parent_goal_id=cmd.parent_goal_id,
            kind=cmd.kind,
            # Privacy: a private goal's title stays in this service.
            title=cmd.title if cmd.visibility == Visibility.TENANT else None,
            visibility=cmd.visibility,
            period_start=cmd.period_start,
            period_end=cmd.period_end,
            update_interval_days=cmd.update_interval_days,
            key_results=[
                _kr_spec(kr_id, kr) for kr_id, kr in zip(kr_ids, cmd.key_results, strict=True)
            ],
        )
    )
    return goal_id


async def create_goal(uow: UnitOfWork, cmd: CreateGoal, principal: Principal) -> GoalView:
    acc = access_for(uow, principal)
    owner = await _resolve_owner(acc.people, principal, cmd)
    rels = await acc.to_owner(owner.owner_type, owner.owner_id)
    require(
        access.POLICY,
        access.create_operation(owner.owner_type, rels),
        rels,
        "you may set goals for yourself, your reports and units you head",
    )
    _raise_if(
        domain.check_period(cmd.period_start, cmd.period_end) + _check_key_results(cmd.key_results)
    )
    await _check_parent(uow, acc, cmd.parent_goal_id)
    goal_id = await _insert_goal(uow, principal, owner, cmd)
    return await _view(uow, principal.tenant, goal_id)


# --- update -----------------------------------------------------------------------------------


async def update_goal(
    uow: UnitOfWork, goal_id: str, cmd: UpdateGoal, principal: Principal
) -> GoalView:
    row, acc = await _goal_for_write(uow, principal, goal_id, access.UPDATE_GOAL)
    now = uow.clock.now()
    given = cmd.model_dump(exclude_unset=True, exclude={"key_results"})
    changes: dict[str, Any] = {}
    values: dict[str, Any] = {}
    for name, new in given.items():
        if new is None and name != "description":
            raise InvalidInput.field(name, msg="must not be null")
        new = getattr(new, "value", new)
        old = getattr(row, name)
        if new != old:
            changes[name] = {"from": _jsonable(old), "to": _jsonable(new)}
            values[name] = new
    start = values.get("period_start", row.period_start)
    end = values.get("period_end", row.period_end)
    _raise_if(domain.check_period(start, end))

    old_krs = (await load_key_results(uow.session, [goal_id]))[goal_id]
    new_krs: list[dict[str, Any]] | None = None
    if cmd.key_results is not None:
        _raise_if(_check_key_results(cmd.key_results))
        by_id = {kr.key_result_id: kr for kr in old_krs}
        ids = _key_result_ids(cmd.key_results, set(by_id))
        new_krs = []
        for i, (kr_id, kr) in enumerate(zip(ids, cmd.key_results, strict=True)):
            old = by_id.get(kr_id)
            new_krs.append(
                {
                    "goal_id": goal_id,
                    "key_result_id": kr_id,
                    "tenant_id": principal.tenant,
                    "position": i,
                    "title": kr.title,
                    "unit": kr.unit,
                    "start": kr.start,
                    "target": kr.target,
                    "current": old.current if old is not None else kr.start,
                    "direction": kr.direction.value,
                    "weight": kr.weight,
                    "confidence": old.confidence if old is not None else None,
                    "updated_at": now,
                }
            )
        before = [_kr_definition(r._mapping) for r in old_krs]
        after = [_kr_definition(r) for r in new_krs]
        if before != after:
            changes["key_results"] = {"from": before, "to": after}
        else:
            new_krs = None
    if not changes:
        return await _view(uow, principal.tenant, goal_id)

    revision = row.revision + 1
    values.update(revision=revision, updated_at=now)
    if new_krs is not None:
        await uow.session.execute(key_results.delete().where(key_results.c.goal_id == goal_id))
        if new_krs:
            await uow.session.execute(key_results.insert(), new_krs)
        values["progress"] = domain.goal_progress(
            domain.Measure(kr["start"], kr["target"], kr["current"], kr["weight"]) for kr in new_krs
        )
    if row.stale_since is None:
        # Not stale: the next check follows the (possibly new) interval and period.
        interval = values.get("update_interval_days", row.update_interval_days)
        values["next_stale_check_at"] = domain.next_stale_check(
            row.last_progress_at or row.created_at, interval, GoalStatus(row.status)
        )
    await uow.session.execute(update(goals).where(goals.c.goal_id == goal_id).values(**values))
    if "visibility" in changes:
        # Who may see the goal (and its progress comments) changes: on the audit trail.
        acc.audit(row, AuditAction.CHANGE_ACCESS, f"goal/{goal_id}:visibility", True)
    await _revise(uow, principal.tenant, goal_id, revision, "updated", changes, principal.subject)
    await uow.publish(
        GoalUpdated(
            tenant_id=principal.tenant,
            occurred_at=now,
            goal_id=goal_id,
            changed_fields=sorted(changes),
            revision=revision,
        )
    )
    return await _view(uow, principal.tenant, goal_id)


def _kr_definition(kr: Any) -> dict[str, Any]:
    return {
        name: kr[name]
        for name in ("key_result_id", "title", "unit", "start", "target", "direction", "weight")
    }


# --- progress ---------------------------------------------------------------------------------


async def record_progress(
    uow: UnitOfWork, goal_id: str, key_result_id: str, cmd: RecordProgress, principal: Principal
) -> GoalView:
    row, _ = await _goal_for_write(uow, principal, goal_id, access.RECORD_PROGRESS)
    krs = (await load_key_results(uow.session, [goal_id]))[goal_id]
    kr = next((k for k in krs if k.key_result_id == key_result_id), None)
    if kr is None:
        raise NotFound(f"key result {key_result_id} not found on goal {goal_id}")
    _raise_if(
        domain.check_progress_value(cmd.value, kr.start, kr.target)
        + domain.check_confidence(cmd.confidence)
    )
    now = uow.clock.now()
    progress = domain.goal_progress(
        domain.Measure(
            k.start,
            k.target,
            cmd.value if k.key_result_id == key_result_id else k.current,
            k.weight,
        )
        for k in krs
    )
    await uow.session.execute(
        update(key_results)
        .where(key_results.c.goal_id == goal_id, key_results.c.key_result_id == key_result_id)
        .values(current=cmd.value, confidence=cmd.confidence, updated_at=now)
    )
    await uow.session.execute(
        progress_records.insert().values(
            tenant_id=principal.tenant,
            goal_id=goal_id,
            key_result_id=key_result_id,
            value=cmd.value,
            confidence=cmd.confidence,
            comment=cmd.comment,
            goal_progress=progress,
            recorded_by=principal.subject,
            recorded_at=now,
        )
    )
    status = GoalStatus(row.status)
    suggestion = domain.next_suggested_status(
        status,
        row.status_overridden,
        progress,
        domain.elapsed_fraction(row.period_start, row.period_end, now),
        cmd.confidence,
    )
    new_status = suggestion or status
    revision = row.revision + 1
    await uow.session.execute(
        update(goals)
        .where(goals.c.goal_id == goal_id)
        .values(
            progress=progress,
            confidence=cmd.confidence,
            last_progress_at=now,
            # Progress ends a stale spell and restarts the clock.
            stale_since=None,
            next_stale_check_at=domain.next_stale_check(now, row.update_interval_days, new_status),
            status=new_status.value,
            revision=revision + (1 if suggestion else 0),
            updated_at=now,
        )
    )
    await _revise(
        uow,
        principal.tenant,
        goal_id,
        revision,
        "progress_recorded",
        {
            "key_result_id": key_result_id,
            "value": {"from": kr.current, "to": cmd.value},
            "confidence": cmd.confidence,
            "comment": cmd.comment,
            "goal_progress": {"from": row.progress, "to": progress},
        },
        principal.subject,
    )
    await uow.publish(
        GoalProgressRecorded(
            tenant_id=principal.tenant,
            occurred_at=now,
            goal_id=goal_id,
            key_result_id=key_result_id,
            value=cmd.value,
            goal_progress=progress,
            confidence=cmd.confidence,
            recorded_by=principal.subject,
        )
    )
    if suggestion is not None:
        await _revise(
            uow,
            principal.tenant,
            goal_id,
            revision + 1,
            "status_changed",
            {"status": {"from": status.value, "to": suggestion.value}, "suggested": True},
            None,
        )
        await uow.publish(
            GoalStatusChanged(
                tenant_id=principal.tenant,
                occurred_at=now,
                goal_id=goal_id,
                owner_id=row.owner_id,
                from_status=status,
                to_status=suggestion,
                suggested=True,
                changed_by=None,
            )
        )
    return await _view(uow, principal.tenant, goal_id)


# --- status, archive, alignment ---------------------------------------------------------------


async def change_status(
    uow: UnitOfWork, goal_id: str, cmd: ChangeStatus, principal: Principal
) -> GoalView:
    row, _ = await _goal_for_write(uow, principal, goal_id, access.CHANGE_STATUS)
    now = uow.clock.now()
    old = GoalStatus(row.status)
    if cmd.status is None:
        overridden = False
        new = domain.suggest_status(
            row.progress,
            domain.elapsed_fraction(row.period_start, row.period_end, now),
            row.confidence,
        )
    else:
        overridden = True
        new = cmd.status
    if new == old and overridden == row.status_overridden:
        return await _view(uow, principal.tenant, goal_id)
    revision = row.revision + 1
    values: dict[str, Any] = {
        "status": new.value,
        "status_overridden": overridden,
        "revision": revision,
        "updated_at": now,
    }
    if row.stale_since is None:
        values["next_stale_check_at"] = domain.next_stale_check(
            row.last_progress_at or row.created_at, row.update_interval_days, new
        )
    await uow.session.execute(update(goals).where(goals.c.goal_id == goal_id).values(**values))
    await _revise(
        uow,
        principal.tenant,
        goal_id,
        revision,
        "status_changed",
        {
            "status": {"from": old.value, "to": new.value},
            "suggested": not overridden,
            "status_overridden": overridden,
        },
        principal.subject,
    )
    if new != old:
        await uow.publish(
            GoalStatusChanged(
                tenant_id=principal.tenant,
                occurred_at=now,
                goal_id=goal_id,
                owner_id=row.owner_id,
                from_status=old,
                to_status=new,
                suggested=not overridden,
                changed_by=principal.subject if overridden else None,
            )
        )
    return await _view(uow, principal.tenant, goal_id)


async def _archive(uow: UnitOfWork, row: Any, reason: ArchiveReason, by: str | None) -> None:
    now = uow.clock.now()
    revision = row.revision + 1
    await uow.session.execute(
        update(goals)
        .where(goals.c.goal_id == row.goal_id)
        .values(
            archived_at=now,
            archive_reason=reason.value,
            next_stale_check_at=None,
            revision=revision,
            updated_at=now,
        )
    )
    await _revise(
        uow, row.tenant_id, row.goal_id, revision, "archived", {"reason": reason.value}, by
    )
    await uow.publish(
        GoalArchived(tenant_id=row.tenant_id, occurred_at=now, goal_id=row.goal_id, reason=reason)
    )


async def archive_goal(
    uow: UnitOfWork, goal_id: str, cmd: ArchiveGoal, principal: Principal
) -> GoalView:
    row, _ = await _goal_for_write(uow, principal, goal_id, access.ARCHIVE_GOAL)
    await _archive(uow, row, cmd.reason, principal.subject)
    return await _view(uow, principal.tenant, goal_id)


async def align_goal(
    uow: UnitOfWork, goal_id: str, cmd: AlignGoal, principal: Principal
) -> GoalView:
    row, acc = await _goal_for_write(uow, principal, goal_id, access.ALIGN_GOAL)
    new_parent = cmd.parent_goal_id
    if new_parent == row.parent_goal_id:
        return await _view(uow, principal.tenant, goal_id)
    if new_parent == goal_id:
        raise InvalidInput.field("parent_goal_id", msg="a goal cannot be its own parent")
    await _check_parent(uow, acc, new_parent)
    # Walk up from the new parent once, then let the pure rule decide.
    parents: dict[str, str | None] = {}
    node = new_parent
    while node is not None and node not in parents and len(parents) <= domain.MAX_ALIGNMENT_DEPTH:
        parents[node] = await parent_of(uow.session, principal.tenant, node)
        node = parents[node]
    if domain.creates_cycle(goal_id, new_parent, lambda g: parents.get(g)):
        raise InvalidInput.field(
            "parent_goal_id", msg="aligning under this goal would create a cycle"
        )
    now = uow.clock.now()
    revision = row.revision + 1
    await uow.session.execute(
        update(goals)
        .where(goals.c.goal_id == goal_id)
        .values(parent_goal_id=new_parent, revision=revision, updated_at=now)
    )
    await _revise(
        uow,
        principal.tenant,
        goal_id,
        revision,
        "realigned",
        {"parent_goal_id": {"from": row.parent_goal_id, "to": new_parent}},
        principal.subject,
    )
    await uow.publish(
        GoalUpdated(
            tenant_id=principal.tenant,
            occurred_at=now,
            goal_id=goal_id,
            changed_fields=["parent_goal_id"],
            revision=revision,
        )
    )
    return await _view(uow, principal.tenant, goal_id)


# --- bulk from a template ---------------------------------------------------------------------


async def bulk_create_goals(
    uow: UnitOfWork, cmd: BulkCreateGoals, principal: Principal
) -> BulkCreated:
    acc = access_for(uow, principal)
    people = acc.people
    unit = await people.org_unit(cmd.org_unit_id)
    if unit is None:
        raise InvalidInput.field("org_unit_id", msg="no such org unit in this tenant")
    require(
        access.POLICY,
        access.BULK_CREATE_GOALS,
        await acc.to_owner(OwnerType.ORG_UNIT, unit.org_unit_id),
        "only the unit's heads or hr_admin may set goals for the whole unit",
    )
    template = cmd.template
    _raise_if(
        domain.check_period(template.period_start, template.period_end)
        + _check_key_results(template.key_results),
        ("template",),
    )
    await _check_parent(uow, acc, template.parent_goal_id, ("template",))
    owners: list[tuple[domain.Owner, str]]
    if cmd.target == TemplateTarget.PEOPLE:
        units = (
            await people.subunits(unit.org_unit_id) if cmd.include_subunits else [unit.org_unit_id]
        )
        now = uow.clock.now()
        owners = [
            (domain.Owner(OwnerType.PERSON, e.employee_id), e.display_name or e.employee_id)
            for e in await people.members(units)
            if e.active_at(now)
        ]
    else:
        owners = [
            (domain.Owner(OwnerType.ORG_UNIT, u.org_unit_id), u.name)
            for u in await people.child_units(unit.org_unit_id)
        ]
    if len(owners) > MAX_BULK:
        raise InvalidInput.field(
            "org_unit_id", msg=f"{len(owners)} goals at once; at most {MAX_BULK} per request"
        )
    created: list[str] = []
    fields = template.model_dump(exclude={"title"})
    for owner, name in owners:
        one = CreateGoal(
            owner_type=owner.owner_type,
            owner_id=owner.owner_id,
            title=domain.render_title(template.title, name),
            **fields,
        )
        created.append(await _insert_goal(uow, principal, owner, one))
    return BulkCreated(count=len(created), goal_ids=created)


# --- people (consumed from rhythm.people.v1) ------------------------------------------------

PEOPLE = DirectoryProjection(people_tables)


async def apply_person(uow: UnitOfWork, envelope: Envelope) -> None:
    """Project an ``EmployeeUpserted`` (v1 or v2) or ``EmployeeDeactivated`` into the directory; a
    deactivation in force archives the person's open goals (now, or by
    :func:`archive_leavers_goals` when its date arrives). A late or repeated event changes
    nothing, so it archives nothing either."""
    event = envelope.event
    assert isinstance(event, EmployeeUpserted | EmployeeUpsertedV2 | EmployeeDeactivated)
    change = await PEOPLE.apply_employee(uow.session, event, envelope.id)
    if change.changed:
        await _note_moves(uow, envelope, change)
        await _follow_leaver(uow, event.tenant_id, change)


async def apply_person_key(uow: UnitOfWork, envelope: Envelope) -> None:
    """Keep a person's data key as ``rhythm.keys.v1`` delivers it (issued, or destroyed)."""
    event = envelope.event
    assert isinstance(event, PersonKeyIssued | PersonKeyDestroyed)
    await PEOPLE.keys.apply(uow.session, event)


async def apply_org_unit(uow: UnitOfWork, envelope: Envelope) -> None:
    event = envelope.event
    assert isinstance(event, OrgUnitUpserted)
    await PEOPLE.apply_org_unit(uow.session, event, envelope.id)


async def _note_moves(uow: UnitOfWork, envelope: Envelope, change: PersonChange) -> None:
    """A new manager or unit changes who may read the person's private goals: each such goal
    goes on the audit trail, with the HR feed (the event's source) as the one who changed it."""
    before, after = change.before, change.after
    if before is None or not before.known:
        return
    if (before.manager_id, before.org_unit_id) == (after.manager_id, after.org_unit_id):
        return
    private = await uow.session.execute(
        select(goals.c.goal_id).where(
            goals.c.tenant_id == envelope.tenant_id,
            goals.c.owner_type == OwnerType.PERSON.value,
            goals.c.owner_id == after.employee_id,
            goals.c.visibility == Visibility.PRIVATE.value,
            goals.c.archived_at.is_(None),
        )
    )
    for row in private:
        uow.audit(
            AuditEntry(
                tenant_id=envelope.tenant_id,
                actor_id=envelope.source[:128],
                subject_id=after.employee_id,
                action=AuditAction.CHANGE_ACCESS,
                target=f"goal/{row.goal_id}:viewers",
                allowed=True,
            )
        )


async def _follow_leaver(uow: UnitOfWork, tenant_id: str, change: PersonChange) -> None:
    person = change.after
    at = person.deactivated_at
    where = (leavers.c.tenant_id == tenant_id, leavers.c.employee_id == person.employee_id)
    await uow.session.execute(leavers.delete().where(*where))
    if at is None:
        return  # not leaving (any more): a rehire or HR taking it back keeps the goals
    if at > uow.clock.now():
        await uow.session.execute(
            leavers.insert().values(
                tenant_id=tenant_id, employee_id=person.employee_id, archive_goals_at=at
            )
        )
        return
    await _archive_goals_of(uow, tenant_id, person.employee_id)


async def _archive_goals_of(uow: UnitOfWork, tenant_id: str, employee_id: str) -> None:
    open_goals = await uow.session.execute(
        select(goals).where(
            goals.c.tenant_id == tenant_id,
            goals.c.owner_type == OwnerType.PERSON.value,
            goals.c.owner_id == employee_id,
            goals.c.archived_at.is_(None),
        )
    )
    for row in open_goals.all():
        await _archive(uow, row, ArchiveReason.OWNER_DEACTIVATED, None)


async def archive_leavers_goals(uow: UnitOfWork, limit: int) -> int:
    """Archive the open goals of people whose deactivation, dated ahead, is now in effect.

    Reads only those people through ``ix_leavers_archive_goals_at`` (SKIP LOCKED on
    PostgreSQL); each is handled once: the row goes with the archive."""
    now = uow.clock.now()
    due = (
        await uow.session.execute(
            select(leavers.c.tenant_id, leavers.c.employee_id)
            .where(leavers.c.archive_goals_at <= now)
            .order_by(leavers.c.archive_goals_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    ).all()
    for person in due:
        await _archive_goals_of(uow, person.tenant_id, person.employee_id)
        await uow.session.execute(
            leavers.delete().where(
                leavers.c.tenant_id == person.tenant_id,
                leavers.c.employee_id == person.employee_id,
            )
        )
    return len(due)


# --- staleness --------------------------------------------------------------------------------


async def mark_stale_goals(uow: UnitOfWork, limit: int) -> int:
    """Claim up to ``limit`` goals whose stale check is due and report each stale once.

    Reads only due rows, oldest first, through ``ix_goals_next_stale_check_at``; on PostgreSQL
    ``FOR UPDATE SKIP LOCKED`` lets several replicas share the work without waiting. A reported
    goal leaves the index (next check NULL) until progress is recorded again, so a stale spell
    is reported exactly once. Returns how many due goals were handled.
    """
    now = uow.clock.now()
    due = (
        await uow.session.execute(
            select(
                goals.c.goal_id,
                goals.c.tenant_id,
                goals.c.owner_id,
                goals.c.created_at,
                goals.c.last_progress_at,
                goals.c.update_interval_days,
                goals.c.period_end,
            )
            .where(goals.c.next_stale_check_at <= now)
            .order_by(goals.c.next_stale_check_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    ).all()
    if not due:
        return 0
    stale: list[str] = []
    over: list[str] = []
    for row in due:
        if not domain.goes_stale(row.period_end, now):
            over.append(row.goal_id)
            continue
        stale.append(row.goal_id)
        last_progress_at = row.last_progress_at or row.created_at
        await uow.publish(
            GoalStale(
                tenant_id=row.tenant_id,
                occurred_at=now,
                goal_id=row.goal_id,
                owner_id=row.owner_id,
                last_progress_at=last_progress_at,
                update_interval_days=row.update_interval_days,
            ),
            # The spell's natural key as the CloudEvents id: the outbox (unique event_id) and
            # every consumer's inbox see a second report of the same spell as a duplicate.
            event_id=stale_event_id(row.tenant_id, row.goal_id, last_progress_at),
        )
    for ids, values in ((stale, {"stale_since": now}), (over, {})):
        for chunk in _chunks(ids, 1000):
            await uow.session.execute(
                update(goals)
                .where(_in(goals.c.goal_id, chunk))
                .values(next_stale_check_at=None, **values)
            )
    return len(due)


def stale_event_id(tenant_id: str, goal_id: str, last_progress_at: datetime) -> str:
    """``stale:<tenant>:<goal>:<last progress>`` as a name-based UUID (RFC 9562, version 5)."""
    name = f"stale:{tenant_id}:{goal_id}:{last_progress_at.isoformat()}"
    return str(uuid.uuid5(_STALE_NAMESPACE, name))


_STALE_NAMESPACE = uuid.UUID("5b3c1f0e-7a42-4f7e-9d64-2f0c8b1e6a11")


def _chunks(items: Sequence[str], size: int) -> list[Sequence[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _in(column: Any, values: Sequence[str]) -> ColumnElement[bool]:
    return column.in_(list(values))  # type: ignore[no-any-return]
