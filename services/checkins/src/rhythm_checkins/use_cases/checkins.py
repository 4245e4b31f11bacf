"""Check-ins and quarterly reviews: schedule, prepare, hold (GROW), follow up, complete."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rhythm_checkins.commands import (
    AddActionItem,
    CancelCheckin,
    CompleteCheckin,
    RecordNotes,
    RescheduleCheckin,
    ScheduleCheckin,
    SetActionItemDone,
    SetTenantSettings,
    SubmitReflection,
)
from rhythm_checkins.domain.access import POLICY, relationships
from rhythm_checkins.domain.conversations import (
    CheckinState,
    completion_error,
    initiator,
    participants,
    pulse_error,
    review_period,
)
from rhythm_checkins.domain.obligations import new_id
from rhythm_checkins.domain.periods import UnknownTimeZone, local_date, zone
from rhythm_checkins.domain.ports import CheckinsUnitOfWork
from rhythm_checkins.domain.records import ActionItem, Checkin, TenantSettings
from rhythm_checkins.queries import (
    audit,
    checkin_access,
    get_checkin,
    item_view,
    load_checkin,
)
from rhythm_checkins.use_cases.cadence import close_obligation_for
from rhythm_shared.contracts.v1 import (
    CheckinCancelled,
    CheckinCompleted,
    CheckinKind,
    CheckinRescheduled,
    CheckinScheduled,
    Initiator,
    PulseRecorded,
    PulseSource,
    ReflectionSubmitted,
    ReviewCompleted,
)
from rhythm_shared.kit.access import allowed
from rhythm_shared.kit.audit import AuditAction
from rhythm_shared.kit.auth import Principal
from rhythm_shared.kit.errors import Conflict, FieldError, Forbidden, InvalidInput, NotFound

#: Tenant settings of this service, each a change of who may see what (audited when changed).
TENANT_SETTINGS = ("reviews_visible_to_manager_chain", "share_individual_pulse")


async def _publish_pulse(
    uow: CheckinsUnitOfWork, row: Checkin, now: datetime, pulse: int | None, source: PulseSource
) -> int | None:
    """A pulse goes to reporting on the internal topic; the public event gets it only where
    the tenant opted in (docs/privacy.md). Returns what the public event carries."""
    if pulse is None:
        return None
    await uow.publish(
        PulseRecorded(
            tenant_id=row.tenant_id,
            occurred_at=now,
            employee_id=row.employee_id,
            checkin_id=row.id,
            pulse=pulse,
            source=source,
        )
    )
    shared = (await uow.checkins.settings(row.tenant_id)).share_individual_pulse
    return pulse if shared else None


def _instant(when: datetime, name: str) -> datetime:
    """``when`` as given, or read in the zone ``name`` when it has no offset."""
    try:
        tz = zone(name)
    except UnknownTimeZone as exc:
        raise InvalidInput.field("time_zone", msg=str(exc)) from exc
    return when if when.tzinfo is not None else when.replace(tzinfo=tz)


async def schedule_checkin(uow: CheckinsUnitOfWork, cmd: ScheduleCheckin) -> dict[str, Any]:
    """Either side may put a check-in in the calendar; who did is recorded."""
    principal = cmd.principal
    tenant = principal.tenant
    people_dir = uow.people.directory(tenant)
    employee = await people_dir.person(cmd.employee_id)
    errors: list[FieldError] = []
    if employee is None:
        errors.append(FieldError(("body", "employee_id"), "not an employee of this tenant"))
    # The manager is the employee's manager in the directory: a body may only repeat it.
    manager_id = employee.manager_id if employee else None
    if employee is not None and manager_id is None:
        errors.append(
            FieldError(("body", "manager_id"), "the employee has no manager in the directory")
        )
    elif cmd.manager_id is not None and cmd.manager_id != manager_id:
        errors.append(
            FieldError(("body", "manager_id"), "not the employee's manager in the directory")
        )
    if cmd.time_zone is not None:
        try:
            zone(cmd.time_zone)
        except UnknownTimeZone as exc:
            errors.append(FieldError(("body", "time_zone"), str(exc)))
    if errors or employee is None or manager_id is None:
        raise InvalidInput(errors)
    rels = await relationships(people_dir, principal, employee.employee_id)
    if not allowed(POLICY, "schedule_checkin", rels):
        raise Forbidden("only the employee or their manager schedules a check-in")
    tz_name = cmd.time_zone or employee.time_zone
    scheduled_for = _instant(cmd.scheduled_for, tz_name)
    now = uow.clock.now()
    checkin_id = new_id("c")
    who = initiator(principal.subject, employee.employee_id)
    await uow.checkins.add(
        Checkin(
            id=checkin_id,
            tenant_id=tenant,
            kind=cmd.kind.value,
            employee_id=employee.employee_id,
            manager_id=manager_id,
            scheduled_for=scheduled_for,
            time_zone=tz_name,
            initiated_by=who.value,
            initiated_by_id=principal.subject,
            state=CheckinState.SCHEDULED.value,
            goals_discussed=[],
            created_at=now,
            updated_at=now,
        )
    )
    # Two people may now read what is written in it.
    audit(
        uow,
        principal,
        employee.employee_id,
        f"checkin/{checkin_id}:participants",
        True,
        AuditAction.CHANGE_ACCESS,
    )
    await uow.publish(
        CheckinScheduled(
            tenant_id=tenant,
            occurred_at=now,
            checkin_id=checkin_id,
            kind=cmd.kind,
            employee_id=employee.employee_id,
            manager_id=manager_id,
            scheduled_for=scheduled_for,
            initiated_by=who,
        )
    )
    return await get_checkin(uow, principal, checkin_id)


async def _writable(
    uow: CheckinsUnitOfWork,
    principal: Principal,
    checkin_id: str,
    operation: str,
    message: str = "only the participants change a check-in",
) -> Checkin:
    row = await load_checkin(uow, principal.tenant, checkin_id, lock=True)
    if not (await checkin_access(uow, principal, row)).may(operation):
        raise Forbidden(message)
    if row.state != CheckinState.SCHEDULED.value:
        raise Conflict(f"the check-in is {row.state}")
    return row


async def reschedule_checkin(uow: CheckinsUnitOfWork, cmd: RescheduleCheckin) -> dict[str, Any]:
    """Either participant moves a check-in still to be held; the invitation's revision goes up
    by one and calendars get the new time. The same time again changes nothing."""
    principal = cmd.principal
    row = await _writable(
        uow,
        principal,
        cmd.checkin_id,
        "reschedule_checkin",
        "only the participants move a check-in",
    )
    name = cmd.time_zone or row.time_zone
    when = _instant(cmd.scheduled_for, name)
    if when == row.scheduled_for:
        return await get_checkin(uow, principal, row.id)
    now = uow.clock.now()
    sequence = row.invite_sequence + 1
    await uow.checkins.update(
        row.id, scheduled_for=when, time_zone=name, invite_sequence=sequence, updated_at=now
    )
    await uow.publish(
        CheckinRescheduled(
            tenant_id=row.tenant_id,
            occurred_at=now,
            checkin_id=row.id,
            kind=CheckinKind(row.kind),
            employee_id=row.employee_id,
            manager_id=row.manager_id,
            scheduled_for=when,
            previous_scheduled_for=row.scheduled_for,
            initiated_by=Initiator(row.initiated_by),
            changed_by=initiator(principal.subject, row.employee_id),
            sequence=sequence,
        )
    )
    return await get_checkin(uow, principal, row.id)


async def cancel_checkin(uow: CheckinsUnitOfWork, cmd: CancelCheckin) -> dict[str, Any]:
    """Either participant calls off a check-in still to be held: it fulfils no obligation (only
    a completed one does) and calendars drop it. Cancelling again answers the cancelled
    check-in and changes nothing; a completed one cannot be cancelled (409)."""
    principal = cmd.principal
    row = await load_checkin(uow, principal.tenant, cmd.checkin_id, lock=True)
    if not (await checkin_access(uow, principal, row)).may("cancel_checkin"):
        raise Forbidden("only the participants cancel a check-in")
    if row.state == CheckinState.CANCELLED.value:
        return await get_checkin(uow, principal, row.id)
    if row.state != CheckinState.SCHEDULED.value:
        raise Conflict(f"the check-in is {row.state}")
    now = uow.clock.now()
    sequence = row.invite_sequence + 1
    await uow.checkins.update(
        row.id, state=CheckinState.CANCELLED.value, invite_sequence=sequence, updated_at=now
    )
    await uow.publish(
        CheckinCancelled(
            tenant_id=row.tenant_id,
            occurred_at=now,
            checkin_id=row.id,
            kind=CheckinKind(row.kind),
            employee_id=row.employee_id,
            manager_id=row.manager_id,
            scheduled_for=row.scheduled_for,
            initiated_by=Initiator(row.initiated_by),
            changed_by=initiator(principal.subject, row.employee_id),
            sequence=sequence,
        )
    )
    return await get_checkin(uow, principal, row.id)


async def submit_reflection(uow: CheckinsUnitOfWork, cmd: SubmitReflection) -> dict[str, Any]:
    """The employee prepares: wins, challenges, where they need help, a workload pulse."""
    principal = cmd.principal
    row = await _writable(
        uow,
        principal,
        cmd.checkin_id,
        "submit_reflection",
        "the self-reflection is the employee's own",
    )
    if (error := pulse_error(cmd.pulse, "pulse")) is not None:
        raise InvalidInput([error])
    now = uow.clock.now()
    await uow.checkins.update(
        row.id,
        reflection_wins=cmd.wins,
        reflection_challenges=cmd.challenges,
        reflection_help_needed=cmd.help_needed,
        pulse=cmd.pulse,
        reflected_at=now,
        updated_at=now,
    )
    shared_pulse = await _publish_pulse(uow, row, now, cmd.pulse, PulseSource.REFLECTION)
    await uow.publish(
        ReflectionSubmitted(
            tenant_id=row.tenant_id,
            occurred_at=now,
            employee_id=row.employee_id,
            checkin_id=row.id,
            pulse=shared_pulse,
        )
    )
    return await get_checkin(uow, principal, row.id)


async def _check_goals(uow: CheckinsUnitOfWork, tenant: str, goal_ids: tuple[str, ...]) -> None:
    unknown = await uow.goals.unknown(tenant, goal_ids)
    if unknown:
        raise InvalidInput(
            [
                FieldError(("body", "goals_discussed", i), "not a live goal of this tenant")
                for i, g in enumerate(goal_ids)
                if g in unknown
            ]
        )


async def record_notes(uow: CheckinsUnitOfWork, cmd: RecordNotes) -> dict[str, Any]:
    """The GROW agenda (each part optional), free notes and the goals discussed."""
    row = await _writable(uow, cmd.principal, cmd.checkin_id, "record_notes")
    values: dict[str, Any] = {
        "grow_goal": cmd.goal,
        "grow_reality": cmd.reality,
        "grow_options": cmd.options,
        "grow_will": cmd.will,
        "notes": cmd.notes,
        "updated_at": uow.clock.now(),
    }
    if cmd.goals_discussed is not None:
        await _check_goals(uow, row.tenant_id, cmd.goals_discussed)
        values["goals_discussed"] = list(dict.fromkeys(cmd.goals_discussed))
    await uow.checkins.update(row.id, **values)
    return await get_checkin(uow, cmd.principal, row.id)


async def add_action_item(uow: CheckinsUnitOfWork, cmd: AddActionItem) -> dict[str, Any]:
    row = await _writable(uow, cmd.principal, cmd.checkin_id, "add_action_item")
    if cmd.owner_id not in participants(row.employee_id, row.manager_id):
        raise InvalidInput.field("owner_id", msg="an action item belongs to one of the two people")
    item = ActionItem(
        id=new_id("ai"),
        tenant_id=row.tenant_id,
        employee_id=row.employee_id,
        checkin_id=row.id,
        owner_id=cmd.owner_id,
        text=cmd.text,
        due_on=cmd.due_on,
        created_at=uow.clock.now(),
    )
    await uow.checkins.add_action_item(item)
    return item_view(item, True)


async def set_action_item_done(uow: CheckinsUnitOfWork, cmd: SetActionItemDone) -> dict[str, Any]:
    principal = cmd.principal
    tenant = principal.tenant
    item = await uow.checkins.action_item(tenant, cmd.item_id)
    if item is None:
        raise NotFound("no such action item")
    row = await load_checkin(uow, tenant, item.checkin_id)
    try:
        ok = (await checkin_access(uow, principal, row)).may("set_action_item_done")
    except NotFound:
        ok = False
    audit(uow, principal, row.employee_id, f"action_item/{item.id}", ok)
    if not ok:
        raise NotFound("no such action item")
    done_at = (item.done_at or uow.clock.now()) if cmd.done else None
    await uow.checkins.set_action_item_done(item.id, done_at)
    updated = await uow.checkins.action_item(tenant, item.id)
    assert updated is not None  # it was there a moment ago, in this transaction
    return item_view(updated, True)


async def complete_checkin(uow: CheckinsUnitOfWork, cmd: CompleteCheckin) -> dict[str, Any]:
    """The conversation took place: it closes the obligation it fulfils; a review also
    concludes its quarter."""
    row = await _writable(uow, cmd.principal, cmd.checkin_id, "complete_checkin")
    now = uow.clock.now()
    held_at = cmd.held_at or now
    errors = [
        e
        for e in (
            pulse_error(cmd.pulse, "pulse"),
            completion_error(row.scheduled_for, held_at, row.time_zone),
        )
        if e is not None
    ]
    if held_at > now:
        errors.append(FieldError(("body", "held_at"), "a check-in is completed once it was held"))
    if errors:
        raise InvalidInput(errors)
    goals_discussed = (
        list(dict.fromkeys(cmd.goals_discussed))
        if cmd.goals_discussed is not None
        else list(row.goals_discussed or [])
    )
    if cmd.goals_discussed is not None:
        await _check_goals(uow, row.tenant_id, tuple(goals_discussed))
    pulse = cmd.pulse if cmd.pulse is not None else row.pulse
    employee = await uow.people.directory(row.tenant_id).person(row.employee_id)
    employee_zone = employee.time_zone if employee else row.time_zone
    held_on = local_date(held_at, employee_zone)
    kind = CheckinKind(row.kind)
    fulfilled = await close_obligation_for(
        uow, row.tenant_id, row.employee_id, kind, held_on, row.id
    )
    await uow.checkins.update(
        row.id,
        state=CheckinState.COMPLETED.value,
        held_at=held_at,
        pulse=pulse,
        goals_discussed=goals_discussed,
        obligation_id=fulfilled[0] if fulfilled else None,
        obligation_due_at=fulfilled[1] if fulfilled else None,
        updated_at=now,
    )
    open_items = len(
        await uow.checkins.action_items(
            row.tenant_id, row.employee_id, of_checkin=None, open_ones=True
        )
    )
    shared_pulse = await _publish_pulse(uow, row, now, pulse, PulseSource.CHECKIN)
    await uow.publish(
        CheckinCompleted(
            tenant_id=row.tenant_id,
            occurred_at=now,
            checkin_id=row.id,
            kind=kind,
            employee_id=row.employee_id,
            manager_id=row.manager_id,
            held_at=held_at,
            initiated_by=Initiator(row.initiated_by),
            obligation_id=fulfilled[0] if fulfilled else None,
            due_at=fulfilled[1] if fulfilled else None,
            goals_discussed=goals_discussed,
            open_action_items=open_items,
            pulse=shared_pulse,
        )
    )
    if kind == CheckinKind.QUARTERLY_REVIEW:
        quarter = review_period(held_on)
        await uow.publish(
            ReviewCompleted(
                tenant_id=row.tenant_id,
                occurred_at=now,
                checkin_id=row.id,
                employee_id=row.employee_id,
                manager_id=row.manager_id,
                period_start=quarter.start,
                period_end=quarter.end,
                goals_reviewed=goals_discussed,
            )
        )
    return await get_checkin(uow, cmd.principal, row.id)


async def set_tenant_settings(uow: CheckinsUnitOfWork, cmd: SetTenantSettings) -> dict[str, bool]:
    """Change the given settings (the others keep their value); answers all of them."""
    principal, changes = cmd.principal, cmd.changes
    rels = await relationships(uow.people.directory(principal.tenant), principal, None)
    if not allowed(POLICY, "set_tenant_settings", rels):
        raise Forbidden("only hr_admin changes the tenant's settings")
    if not changes or not set(changes) <= set(TENANT_SETTINGS):
        raise InvalidInput([FieldError(("body",), f"give one of {', '.join(TENANT_SETTINGS)}")])
    current = dict(vars(await uow.checkins.settings(principal.tenant)))
    for name, value in changes.items():
        # Who may read reviews, or whether integrators receive each person's pulse, changes
        # with it: on record, with the tenant as the subject.
        audit(
            uow,
            principal,
            principal.tenant,
            f"tenant/{principal.tenant}:{name}={'on' if value else 'off'}",
            True,
            AuditAction.CHANGE_ACCESS,
        )
        current[name] = value
    await uow.checkins.save_settings(principal.tenant, TenantSettings(**current), uow.clock.now())
    return current
