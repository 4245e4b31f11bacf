"""Commands on goals: create (one, or one per person or team from a template), revise, record
progress, change status, archive, align. Each returns the id of the goal it wrote (the entrypoint
answers with the goal as it now reads)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

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
from rhythm_goals.domain import access, model
from rhythm_goals.domain.access import Access
from rhythm_goals.domain.model import Goal, KeyResult, ProgressRecord
from rhythm_goals.domain.ports import GoalsUnitOfWork
from rhythm_goals.use_cases.common import (
    access_for,
    archive,
    goal_for_write,
    jsonable,
    raise_if,
    revise,
)
from rhythm_shared.contracts.v1 import (
    GoalCreated,
    GoalProgressRecorded,
    GoalStatus,
    GoalStatusChanged,
    GoalUpdated,
    KeyResultSpec,
    OwnerType,
    Visibility,
)
from rhythm_shared.kit.access import require
from rhythm_shared.kit.audit import AuditAction
from rhythm_shared.kit.auth import Principal
from rhythm_shared.kit.errors import InvalidInput, NotFound
from rhythm_shared.kit.ports import Directory

#: How many goals one bulk request may create (one transaction; larger units go in parts).
MAX_BULK = 5000


# --- key results ------------------------------------------------------------------------------


def _check_key_results(inputs: Sequence[KeyResultInput]) -> list[model.Problem]:
    problems: list[model.Problem] = []
    seen: set[str] = set()
    for i, kr in enumerate(inputs):
        problems += model.check_key_result(i, kr.start, kr.target, kr.direction, kr.weight)
        if kr.key_result_id is not None:
            if kr.key_result_id in seen:
                problems.append(
                    model.Problem(("key_results", i, "key_result_id"), "duplicate key_result_id")
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


def _kr_spec(kr: KeyResult) -> KeyResultSpec:
    return KeyResultSpec(
        key_result_id=kr.key_result_id,
        unit=kr.unit,
        start=kr.start,
        target=kr.target,
        direction=kr.direction,
        weight=kr.weight,
    )


# --- create -----------------------------------------------------------------------------------


async def _resolve_owner(people: Directory, principal: Principal, cmd: CreateGoal) -> model.Owner:
    if cmd.owner_type == OwnerType.COMPANY:
        owner_id = cmd.owner_id or principal.tenant
        if owner_id != principal.tenant:
            raise InvalidInput.field("owner_id", msg="a company goal is owned by the tenant itself")
        return model.Owner(OwnerType.COMPANY, owner_id)
    if cmd.owner_type == OwnerType.ORG_UNIT:
        if cmd.owner_id is None:
            raise InvalidInput.field("owner_id", msg="an org unit goal names its org unit")
        if await people.org_unit(cmd.owner_id) is None:
            raise InvalidInput.field("owner_id", msg="no such org unit in this tenant")
        return model.Owner(OwnerType.ORG_UNIT, cmd.owner_id)
    owner_id = cmd.owner_id or principal.subject
    # The caller is in the tenant by their token, even before the HR feed has told us of them.
    if owner_id != principal.subject and await people.person(owner_id) is None:
        raise InvalidInput.field("owner_id", msg="no such person in this tenant")
    return model.Owner(OwnerType.PERSON, owner_id)


async def _check_parent(
    uow: GoalsUnitOfWork,
    acc: Access,
    parent_goal_id: str | None,
    prefix: tuple[str | int, ...] = (),
) -> None:
    if parent_goal_id is None:
        return
    parent = await uow.goals.get(acc.principal.tenant, parent_goal_id)
    if parent is None or not await acc.may_read(parent):
        raise InvalidInput.field(*prefix, "parent_goal_id", msg="unknown parent goal")
    if parent.archived_at is not None:
        raise InvalidInput.field(*prefix, "parent_goal_id", msg="the parent goal is archived")


async def _insert_goal(uow: GoalsUnitOfWork, owner: model.Owner, cmd: CreateGoal) -> str:
    """Insert a validated goal, its key results, revision 1 and GoalCreated."""
    principal = cmd.by
    now = uow.clock.now()
    status = GoalStatus.ON_TRACK
    goal = Goal(
        goal_id=str(uuid.uuid4()),
        tenant_id=principal.tenant,
        owner_type=owner.owner_type,
        owner_id=owner.owner_id,
        parent_goal_id=cmd.parent_goal_id,
        kind=cmd.kind,
        title=cmd.title,
        description=cmd.description,
        visibility=cmd.visibility,
        period_start=cmd.period_start,
        period_end=cmd.period_end,
        update_interval_days=cmd.update_interval_days,
        status=status,
        status_overridden=False,
        progress=0.0,
        confidence=None,
        revision=1,
        created_at=now,
        created_by=principal.subject,
        updated_at=now,
        last_progress_at=None,
        next_stale_check_at=model.next_stale_check(now, cmd.update_interval_days, status),
        stale_since=None,
    )
    kr_ids = _key_result_ids(cmd.key_results, set())
    krs = [
        KeyResult(
            goal_id=goal.goal_id,
            key_result_id=kr_id,
            tenant_id=principal.tenant,
            position=i,
            title=kr.title,
            unit=kr.unit,
            start=kr.start,
            target=kr.target,
            current=kr.start,
            direction=kr.direction,
            weight=kr.weight,
            confidence=None,
            updated_at=now,
        )
        for i, (kr_id, kr) in enumerate(zip(kr_ids, cmd.key_results, strict=True))
    ]
    await uow.goals.add(goal, krs)
    snapshot = cmd.model_dump(mode="json", exclude={"by", "key_results", "owner_id"})
    snapshot["owner_id"] = owner.owner_id
    snapshot["key_results"] = [
        {"key_result_id": kr_id, **kr.model_dump(mode="json", exclude={"key_result_id"})}
        for kr_id, kr in zip(kr_ids, cmd.key_results, strict=True)
    ]
    await revise(uow, goal, 1, "created", snapshot, principal.subject)
    await uow.publish(
        GoalCreated(
            tenant_id=principal.tenant,
            occurred_at=now,
            goal_id=goal.goal_id,
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
            key_results=[_kr_spec(kr) for kr in krs],
        )
    )
    return goal.goal_id


async def create_goal(uow: GoalsUnitOfWork, cmd: CreateGoal) -> str:
    acc = access_for(uow, cmd.by)
    owner = await _resolve_owner(acc.people, cmd.by, cmd)
    rels = await acc.to_owner(owner.owner_type, owner.owner_id)
    require(
        access.POLICY,
        access.create_operation(owner.owner_type, rels),
        rels,
        "you may set goals for yourself, your reports and units you head",
    )
    raise_if(
        model.check_period(cmd.period_start, cmd.period_end) + _check_key_results(cmd.key_results)
    )
    await _check_parent(uow, acc, cmd.parent_goal_id)
    return await _insert_goal(uow, owner, cmd)


async def bulk_create_goals(uow: GoalsUnitOfWork, cmd: BulkCreateGoals) -> list[str]:
    acc = access_for(uow, cmd.by)
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
    raise_if(
        model.check_period(template.period_start, template.period_end)
        + _check_key_results(template.key_results),
        ("template",),
    )
    await _check_parent(uow, acc, template.parent_goal_id, ("template",))
    owners: list[tuple[model.Owner, str]]
    if cmd.target == TemplateTarget.PEOPLE:
        units = (
            await people.subunits(unit.org_unit_id) if cmd.include_subunits else [unit.org_unit_id]
        )
        now = uow.clock.now()
        owners = [
            (model.Owner(OwnerType.PERSON, e.employee_id), e.display_name or e.employee_id)
            for e in await people.members(units)
            if e.active_at(now)
        ]
    else:
        owners = [
            (model.Owner(OwnerType.ORG_UNIT, u.org_unit_id), u.name)
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
            by=cmd.by,
            owner_type=owner.owner_type,
            owner_id=owner.owner_id,
            title=model.render_title(template.title, name),
            **fields,
        )
        created.append(await _insert_goal(uow, owner, one))
    return created


# --- update -----------------------------------------------------------------------------------


async def update_goal(uow: GoalsUnitOfWork, cmd: UpdateGoal) -> str:
    principal, goal_id = cmd.by, cmd.goal_id
    goal, acc = await goal_for_write(uow, principal, goal_id, access.UPDATE_GOAL)
    now = uow.clock.now()
    asked = cmd.model_fields_set - {"by", "goal_id", "key_results"}
    changes: dict[str, Any] = {}
    values: dict[str, Any] = {}
    for name in sorted(asked, key=list(type(cmd).model_fields).index):
        new = getattr(cmd, name)
        if new is None and name != "description":
            raise InvalidInput.field(name, msg="must not be null")
        old = getattr(goal, name)
        if jsonable(new) != jsonable(old):
            changes[name] = {"from": jsonable(old), "to": jsonable(new)}
            values[name] = new
    start = values.get("period_start", goal.period_start)
    end = values.get("period_end", goal.period_end)
    raise_if(model.check_period(start, end))

    old_krs = (await uow.goals.key_results([goal_id]))[goal_id]
    new_krs: list[KeyResult] | None = None
    if cmd.key_results is not None:
        raise_if(_check_key_results(cmd.key_results))
        by_id = {kr.key_result_id: kr for kr in old_krs}
        ids = _key_result_ids(cmd.key_results, set(by_id))
        new_krs = []
        for i, (kr_id, kr) in enumerate(zip(ids, cmd.key_results, strict=True)):
            old_kr = by_id.get(kr_id)
            new_krs.append(
                KeyResult(
                    goal_id=goal_id,
                    key_result_id=kr_id,
                    tenant_id=principal.tenant,
                    position=i,
                    title=kr.title,
                    unit=kr.unit,
                    start=kr.start,
                    target=kr.target,
                    current=old_kr.current if old_kr is not None else kr.start,
                    direction=kr.direction,
                    weight=kr.weight,
                    confidence=old_kr.confidence if old_kr is not None else None,
                    updated_at=now,
                )
            )
        before = [kr.definition() for kr in old_krs]
        after = [kr.definition() for kr in new_krs]
        if before != after:
            changes["key_results"] = {"from": before, "to": after}
        else:
            new_krs = None
    if not changes:
        return goal_id

    revision = goal.revision + 1
    values.update(revision=revision, updated_at=now)
    if new_krs is not None:
        await uow.goals.replace_key_results(goal_id, new_krs)
        values["progress"] = model.goal_progress(
            model.Measure(kr.start, kr.target, kr.current, kr.weight) for kr in new_krs
        )
    if goal.stale_since is None:
        # Not stale: the next check follows the (possibly new) interval and period.
        interval = values.get("update_interval_days", goal.update_interval_days)
        values["next_stale_check_at"] = model.next_stale_check(
            goal.last_progress_at or goal.created_at, interval, goal.status
        )
    await uow.goals.change(goal_id, **values)
    if "visibility" in changes:
        # Who may see the goal (and its progress comments) changes: on the audit trail.
        acc.audit(goal, AuditAction.CHANGE_ACCESS, f"goal/{goal_id}:visibility", True)
    await revise(uow, goal, revision, "updated", changes, principal.subject)
    await uow.publish(
        GoalUpdated(
            tenant_id=principal.tenant,
            occurred_at=now,
            goal_id=goal_id,
            changed_fields=sorted(changes),
            revision=revision,
        )
    )
    return goal_id


# --- progress ---------------------------------------------------------------------------------


async def record_progress(uow: GoalsUnitOfWork, cmd: RecordProgress) -> str:
    principal, goal_id, key_result_id = cmd.by, cmd.goal_id, cmd.key_result_id
    goal, _ = await goal_for_write(uow, principal, goal_id, access.RECORD_PROGRESS)
    krs = (await uow.goals.key_results([goal_id]))[goal_id]
    kr = next((k for k in krs if k.key_result_id == key_result_id), None)
    if kr is None:
        raise NotFound(f"key result {key_result_id} not found on goal {goal_id}")
    raise_if(
        model.check_progress_value(cmd.value, kr.start, kr.target)
        + model.check_confidence(cmd.confidence)
    )
    now = uow.clock.now()
    progress = model.goal_progress(
        model.Measure(
            k.start,
            k.target,
            cmd.value if k.key_result_id == key_result_id else k.current,
            k.weight,
        )
        for k in krs
    )
    await uow.goals.measure(
        goal_id, key_result_id, current=cmd.value, confidence=cmd.confidence, at=now
    )
    await uow.goals.add_progress(
        ProgressRecord(
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
    status = goal.status
    suggestion = model.next_suggested_status(
        status,
        goal.status_overridden,
        progress,
        model.elapsed_fraction(goal.period_start, goal.period_end, now),
        cmd.confidence,
    )
    new_status = suggestion or status
    revision = goal.revision + 1
    await uow.goals.change(
        goal_id,
        progress=progress,
        confidence=cmd.confidence,
        last_progress_at=now,
        # Progress ends a stale spell and restarts the clock.
        stale_since=None,
        next_stale_check_at=model.next_stale_check(now, goal.update_interval_days, new_status),
        status=new_status,
        revision=revision + (1 if suggestion else 0),
        updated_at=now,
    )
    await revise(
        uow,
        goal,
        revision,
        "progress_recorded",
        {
            "key_result_id": key_result_id,
            "value": {"from": kr.current, "to": cmd.value},
            "confidence": cmd.confidence,
            "comment": cmd.comment,
            "goal_progress": {"from": goal.progress, "to": progress},
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
        await revise(
            uow,
            goal,
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
                owner_id=goal.owner_id,
                from_status=status,
                to_status=suggestion,
                suggested=True,
                changed_by=None,
            )
        )
    return goal_id


# --- status, archive, alignment ---------------------------------------------------------------


async def change_status(uow: GoalsUnitOfWork, cmd: ChangeStatus) -> str:
    principal, goal_id = cmd.by, cmd.goal_id
    goal, _ = await goal_for_write(uow, principal, goal_id, access.CHANGE_STATUS)
    now = uow.clock.now()
    old = goal.status
    if cmd.status is None:
        overridden = False
        new = model.suggest_status(
            goal.progress,
            model.elapsed_fraction(goal.period_start, goal.period_end, now),
            goal.confidence,
        )
    else:
        overridden = True
        new = cmd.status
    if new == old and overridden == goal.status_overridden:
        return goal_id
    revision = goal.revision + 1
    values: dict[str, Any] = {
        "status": new,
        "status_overridden": overridden,
        "revision": revision,
        "updated_at": now,
    }
    if goal.stale_since is None:
        values["next_stale_check_at"] = model.next_stale_check(
            goal.last_progress_at or goal.created_at, goal.update_interval_days, new
        )
    await uow.goals.change(goal_id, **values)
    await revise(
        uow,
        goal,
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
                owner_id=goal.owner_id,
                from_status=old,
                to_status=new,
                suggested=not overridden,
                changed_by=principal.subject if overridden else None,
            )
        )
    return goal_id


async def archive_goal(uow: GoalsUnitOfWork, cmd: ArchiveGoal) -> str:
    goal, _ = await goal_for_write(uow, cmd.by, cmd.goal_id, access.ARCHIVE_GOAL)
    await archive(uow, goal, cmd.reason, cmd.by.subject)
    return goal.goal_id


async def align_goal(uow: GoalsUnitOfWork, cmd: AlignGoal) -> str:
    principal, goal_id = cmd.by, cmd.goal_id
    goal, acc = await goal_for_write(uow, principal, goal_id, access.ALIGN_GOAL)
    new_parent = cmd.parent_goal_id
    if new_parent == goal.parent_goal_id:
        return goal_id
    if new_parent == goal_id:
        raise InvalidInput.field("parent_goal_id", msg="a goal cannot be its own parent")
    await _check_parent(uow, acc, new_parent)
    # Walk up from the new parent once, then let the pure rule decide.
    parents: dict[str, str | None] = {}
    node = new_parent
    while node is not None and node not in parents and len(parents) <= model.MAX_ALIGNMENT_DEPTH:
        parents[node] = await uow.goals.parent_of(principal.tenant, node)
        node = parents[node]
    if model.creates_cycle(goal_id, new_parent, lambda g: parents.get(g)):
        raise InvalidInput.field(
            "parent_goal_id", msg="aligning under this goal would create a cycle"
        )
    now = uow.clock.now()
    revision = goal.revision + 1
    await uow.goals.change(goal_id, parent_goal_id=new_parent, revision=revision, updated_at=now)
    await revise(
        uow,
        goal,
        revision,
        "realigned",
        {"parent_goal_id": {"from": goal.parent_goal_id, "to": new_parent}},
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
    return goal_id
