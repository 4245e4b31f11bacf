"""Check-ins and quarterly reviews: schedule, prepare, hold (GROW), follow up, complete."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, func, or_, select, update

from rhythm_checkins.adapters.db import (
    action_items,
    checkins,
    goal_progress,
    goals,
    tenant_settings,
)
from rhythm_checkins.domain.access import POLICY, text_operation, to_checkin
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
from rhythm_checkins.use_cases.cadence import close_obligation_for
from rhythm_checkins.use_cases.directory import people
from rhythm_checkins.use_cases.goals import unknown_goals
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
    Visibility,
)
from rhythm_shared.kit.access import Relationship, acts_as_person, allowed, relationships
from rhythm_shared.kit.audit import AuditAction, AuditEntry
from rhythm_shared.kit.auth import Principal
from rhythm_shared.kit.errors import Conflict, FieldError, Forbidden, InvalidInput, NotFound
from rhythm_shared.kit.people import PeopleDirectory
from rhythm_shared.kit.uow import UnitOfWork


@dataclass(frozen=True)
class ScheduleCheckin:
    employee_id: str
    scheduled_for: datetime
    kind: CheckinKind = CheckinKind.MONTHLY
    manager_id: str | None = None
    #: Zone of a scheduled_for given without an offset (default: the employee's zone).
    time_zone: str | None = None


@dataclass(frozen=True)
class RescheduleCheckin:
    scheduled_for: datetime
    #: Zone of a scheduled_for given without an offset, and the check-in's zone from now on
    #: (default: the zone it has).
    time_zone: str | None = None


@dataclass(frozen=True)
class SubmitReflection:
    wins: str | None = None
    challenges: str | None = None
    help_needed: str | None = None
    pulse: int | None = None


@dataclass(frozen=True)
class RecordNotes:
    goal: str | None = None
    reality: str | None = None
    options: str | None = None
    will: str | None = None
    notes: str | None = None
    goals_discussed: tuple[str, ...] | None = None


@dataclass(frozen=True)
class AddActionItem:
    owner_id: str
    text: str
    due_on: date | None = None


@dataclass(frozen=True)
class CompleteCheckin:
    held_at: datetime | None = None
    pulse: int | None = None
    goals_discussed: tuple[str, ...] | None = None


# --- reading -----------------------------------------------------------------------------------


async def _reviews_visible_to_chain(uow: UnitOfWork, tenant: str) -> bool:
    value = await uow.session.scalar(
        select(tenant_settings.c.reviews_visible_to_manager_chain).where(
            tenant_settings.c.tenant_id == tenant
        )
    )
    return bool(value)


async def _shares_individual_pulse(uow: UnitOfWork, tenant: str) -> bool:
    value = await uow.session.scalar(
        select(tenant_settings.c.share_individual_pulse).where(
            tenant_settings.c.tenant_id == tenant
        )
    )
    return bool(value)


async def _publish_pulse(
    uow: UnitOfWork, row: Any, now: datetime, pulse: int | None, source: PulseSource
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
    return pulse if await _shares_individual_pulse(uow, row.tenant_id) else None


async def _load(uow: UnitOfWork, tenant: str, checkin_id: str, *, lock: bool = False) -> Any:
    stmt = select(checkins).where(checkins.c.tenant_id == tenant, checkins.c.id == checkin_id)
    row = (await uow.session.execute(stmt.with_for_update() if lock else stmt)).first()
    if row is None:
        raise NotFound("no such check-in")
    return row


@dataclass(frozen=True)
class Access:
    #: The caller's relationships to the check-in (``MANAGER``: the manager of that conversation).
    rels: frozenset[Relationship]
    #: Whether its texts (reflection, pulse, GROW, notes, action items) are shown.
    texts: bool

    def may(self, operation: str) -> bool:
        return allowed(POLICY, operation, self.rels)


def _target(row: Any, part: str = "") -> str:
    kind = "review" if row.kind == CheckinKind.QUARTERLY_REVIEW.value else "checkin"
    return f"{kind}/{row.id}{':' + part if part else ''}"


def _audit(
    uow: UnitOfWork,
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


async def _access(
    uow: UnitOfWork, principal: Principal, row: Any, people_dir: PeopleDirectory | None = None
) -> Access:
    """From the caller's relationship to the check-in's employee (the directory) and the
    policy table; whoever may not even know it exists gets a 404 (and the refusal is on
    record)."""
    people_dir = people_dir or people(uow, principal.tenant)
    rels = to_checkin(
        await relationships(people_dir, principal, row.employee_id),
        principal.subject,
        as_person=acts_as_person(principal),
        checkin_manager_id=row.manager_id,
    )
    if not allowed(POLICY, "read_checkin", rels):
        _audit(uow, principal, row.employee_id, _target(row), False)
        raise NotFound("no such check-in")
    review = row.kind == CheckinKind.QUARTERLY_REVIEW.value
    shared = review and await _reviews_visible_to_chain(uow, principal.tenant)
    texts = allowed(POLICY, text_operation(review=review, shared_with_chain=shared), rels)
    return Access(rels=rels, texts=texts)


async def _open_action_items(uow: UnitOfWork, tenant: str, employee_id: str) -> list[Any]:
    rows = await uow.session.execute(
        select(action_items)
        .where(
            action_items.c.tenant_id == tenant,
            action_items.c.employee_id == employee_id,
            action_items.c.done_at.is_(None),
        )
        .order_by(action_items.c.created_at)
    )
    return list(rows)


def _item_view(row: Any, with_text: bool) -> dict[str, Any]:
    return {
        "action_item_id": row.id,
        "checkin_id": row.checkin_id,
        "owner_id": row.owner_id,
        "text": row.text if with_text else None,
        "due_on": row.due_on,
        "done": row.done_at is not None,
        "done_at": row.done_at,
    }


async def _view(uow: UnitOfWork, principal: Principal, row: Any, access: Access) -> dict[str, Any]:
    # Open items carry over into the check-ins still to be held (with the employee's manager
    # of now); one already held shows its own.
    mine = action_items.c.checkin_id == row.id
    carried = or_(mine, action_items.c.done_at.is_(None))
    items = await uow.session.execute(
        select(action_items)
        .where(
            action_items.c.tenant_id == row.tenant_id,
            action_items.c.employee_id == row.employee_id,
            carried if row.state == CheckinState.SCHEDULED.value else mine,
        )
        .order_by(action_items.c.created_at)
    )
    notes = access.texts
    _audit(uow, principal, row.employee_id, _target(row), notes)
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
        "action_items": [_item_view(i, notes) for i in items],
    }


async def get_checkin(uow: UnitOfWork, principal: Principal, checkin_id: str) -> dict[str, Any]:
    row = await _load(uow, principal.tenant, checkin_id)
    return await _view(uow, principal, row, await _access(uow, principal, row))


async def list_checkins(
    uow: UnitOfWork,
    principal: Principal,
    employee_id: str | None = None,
    state: CheckinState | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Check-ins the principal takes part in (or, for hr_admin/executives and the manager
    chain, an employee's), newest first; texts only where allowed."""
    tenant = principal.tenant
    people_dir = people(uow, tenant)
    where = [checkins.c.tenant_id == tenant]
    if employee_id is not None:
        where.append(checkins.c.employee_id == employee_id)
        rels = await relationships(people_dir, principal, employee_id)
        if not allowed(POLICY, "list_checkins", rels):
            # Anyone else: only the conversations they were in (a former manager's).
            where.append(checkins.c.manager_id == principal.subject)
    else:
        where.append(
            or_(
                checkins.c.employee_id == principal.subject,
                checkins.c.manager_id == principal.subject,
            )
        )
    if state is not None:
        where.append(checkins.c.state == state.value)
    rows = (
        await uow.session.execute(
            select(checkins)
            .where(and_(*where))
            .order_by(checkins.c.scheduled_for.desc())
            .limit(limit)
        )
    ).all()
    return [
        await _view(uow, principal, r, await _access(uow, principal, r, people_dir)) for r in rows
    ]


async def prepare_view(uow: UnitOfWork, principal: Principal, checkin_id: str) -> dict[str, Any]:
    """What substantiates the conversation: both people's goals with their progress since the
    last completed check-in of the pair, and the action items still open."""
    row = await _load(uow, principal.tenant, checkin_id)
    access = await _access(uow, principal, row)
    ok = access.may("prepare_checkin")
    _audit(uow, principal, row.employee_id, _target(row, "preparation"), ok)
    if not ok:
        raise Forbidden("only the participants prepare a check-in")
    tenant = row.tenant_id
    last_held = await uow.session.scalar(
        select(func.max(checkins.c.held_at)).where(
            checkins.c.tenant_id == tenant,
            checkins.c.employee_id == row.employee_id,
            checkins.c.state == CheckinState.COMPLETED.value,
            checkins.c.id != row.id,
        )
    )
    # The employee's goals (both may see them: self and manager); the manager's private goals
    # are the manager's own.
    owners = goals.c.owner_id == row.employee_id
    if principal.subject == row.manager_id:
        owners = or_(owners, goals.c.owner_id == row.manager_id)
    else:
        owners = or_(
            owners,
            and_(
                goals.c.owner_id == row.manager_id,
                goals.c.visibility != Visibility.PRIVATE.value,
            ),
        )
    goal_rows = (
        await uow.session.execute(
            select(goals)
            .where(goals.c.tenant_id == tenant, owners, goals.c.archived.is_(False))
            .order_by(goals.c.owner_id, goals.c.goal_id)
        )
    ).all()
    views = []
    for g in goal_rows:
        before = 0.0
        if last_held is not None:
            value = await uow.session.scalar(
                select(goal_progress.c.progress)
                .where(
                    goal_progress.c.tenant_id == tenant,
                    goal_progress.c.goal_id == g.goal_id,
                    goal_progress.c.recorded_at <= last_held,
                )
                .order_by(goal_progress.c.recorded_at.desc())
                .limit(1)
            )
            before = float(value) if value is not None else 0.0
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
    items = await _open_action_items(uow, tenant, row.employee_id)
    if row.state != CheckinState.SCHEDULED.value:
        items = [i for i in items if i.checkin_id == row.id]
    return {
        "checkin_id": row.id,
        "last_checkin_held_at": last_held,
        "goals": views,
        "open_action_items": [_item_view(i, True) for i in items],
    }


# --- writing -----------------------------------------------------------------------------------


def _scheduled_instant(command: ScheduleCheckin, employee_zone: str) -> tuple[datetime, str]:
    name = command.time_zone or employee_zone
    try:
        tz = zone(name)
    except UnknownTimeZone as exc:
        raise InvalidInput.field("time_zone", msg=str(exc)) from exc
    when = command.scheduled_for
    if when.tzinfo is None:
        when = when.replace(tzinfo=tz)
    return when, name


async def schedule_checkin(
    uow: UnitOfWork, principal: Principal, command: ScheduleCheckin
) -> dict[str, Any]:
    """Either side may put a check-in in the calendar; who did is recorded."""
    tenant = principal.tenant
    people_dir = people(uow, tenant)
    employee = await people_dir.person(command.employee_id)
    errors: list[FieldError] = []
    if employee is None:
        errors.append(FieldError(("body", "employee_id"), "not an employee of this tenant"))
    # The manager is the employee's manager in the directory: a body may only repeat it.
    manager_id = employee.manager_id if employee else None
    if employee is not None and manager_id is None:
        errors.append(
            FieldError(("body", "manager_id"), "the employee has no manager in the directory")
        )
    elif command.manager_id is not None and command.manager_id != manager_id:
        errors.append(
            FieldError(("body", "manager_id"), "not the employee's manager in the directory")
        )
    if command.time_zone is not None:
        try:
            zone(command.time_zone)
        except UnknownTimeZone as exc:
            errors.append(FieldError(("body", "time_zone"), str(exc)))
    if errors:
        raise InvalidInput(errors)
    assert employee is not None
    assert manager_id is not None
    rels = await relationships(people_dir, principal, employee.employee_id)
    if not allowed(POLICY, "schedule_checkin", rels):
        raise Forbidden("only the employee or their manager schedules a check-in")
    scheduled_for, tz_name = _scheduled_instant(command, employee.time_zone)
    now = uow.clock.now()
    checkin_id = new_id("c")
    who = initiator(principal.subject, employee.employee_id)
    await uow.session.execute(
        checkins.insert().values(
            id=checkin_id,
            tenant_id=tenant,
            kind=command.kind.value,
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
    _audit(
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
            kind=command.kind,
            employee_id=employee.employee_id,
            manager_id=manager_id,
            scheduled_for=scheduled_for,
            initiated_by=who,
        )
    )
    return await get_checkin(uow, principal, checkin_id)


async def _writable(
    uow: UnitOfWork,
    principal: Principal,
    checkin_id: str,
    operation: str,
    message: str = "only the participants change a check-in",
) -> Any:
    row = await _load(uow, principal.tenant, checkin_id, lock=True)
    if not (await _access(uow, principal, row)).may(operation):
        raise Forbidden(message)
    if row.state != CheckinState.SCHEDULED.value:
        raise Conflict(f"the check-in is {row.state}")
    return row


async def reschedule_checkin(
    uow: UnitOfWork, principal: Principal, checkin_id: str, command: RescheduleCheckin
) -> dict[str, Any]:
    """Either participant moves a check-in still to be held; the invitation's revision goes up
    by one and calendars get the new time. The same time again changes nothing."""
    row = await _writable(
        uow, principal, checkin_id, "reschedule_checkin", "only the participants move a check-in"
    )
    name = command.time_zone or row.time_zone
    try:
        tz = zone(name)
    except UnknownTimeZone as exc:
        raise InvalidInput.field("time_zone", msg=str(exc)) from exc
    when = command.scheduled_for
    if when.tzinfo is None:
        when = when.replace(tzinfo=tz)
    if when == row.scheduled_for:
        return await get_checkin(uow, principal, checkin_id)
    now = uow.clock.now()
    sequence = row.invite_sequence + 1
    await uow.session.execute(
        update(checkins)
        .where(checkins.c.id == row.id)
        .values(scheduled_for=when, time_zone=name, invite_sequence=sequence, updated_at=now)
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
    return await get_checkin(uow, principal, checkin_id)


async def cancel_checkin(uow: UnitOfWork, principal: Principal, checkin_id: str) -> dict[str, Any]:
    """Either participant calls off a check-in still to be held: it fulfils no obligation (only
    a completed one does) and calendars drop it. Cancelling again answers the cancelled
    check-in and changes nothing; a completed one cannot be cancelled (409)."""
    row = await _load(uow, principal.tenant, checkin_id, lock=True)
    if not (await _access(uow, principal, row)).may("cancel_checkin"):
        raise Forbidden("only the participants cancel a check-in")
    if row.state == CheckinState.CANCELLED.value:
        return await get_checkin(uow, principal, checkin_id)
    if row.state != CheckinState.SCHEDULED.value:
        raise Conflict(f"the check-in is {row.state}")
    now = uow.clock.now()
    sequence = row.invite_sequence + 1
    await uow.session.execute(
        update(checkins)
        .where(checkins.c.id == row.id)
        .values(state=CheckinState.CANCELLED.value, invite_sequence=sequence, updated_at=now)
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
    return await get_checkin(uow, principal, checkin_id)


async def submit_reflection(
    uow: UnitOfWork, principal: Principal, checkin_id: str, command: SubmitReflection
) -> dict[str, Any]:
    """The employee prepares: wins, challenges, where they need help, a workload pulse."""
    row = await _writable(
        uow, principal, checkin_id, "submit_reflection", "the self-reflection is the employee's own"
    )
    if (error := pulse_error(command.pulse, "pulse")) is not None:
        raise InvalidInput([error])
    now = uow.clock.now()
    await uow.session.execute(
        update(checkins)
        .where(checkins.c.id == row.id)
        .values(
            reflection_wins=command.wins,
            reflection_challenges=command.challenges,
            reflection_help_needed=command.help_needed,
            pulse=command.pulse,
            reflected_at=now,
            updated_at=now,
        )
    )
    shared_pulse = await _publish_pulse(uow, row, now, command.pulse, PulseSource.REFLECTION)
    await uow.publish(
        ReflectionSubmitted(
            tenant_id=row.tenant_id,
            occurred_at=now,
            employee_id=row.employee_id,
            checkin_id=row.id,
            pulse=shared_pulse,
        )
    )
    return await get_checkin(uow, principal, checkin_id)


async def _check_goals(uow: UnitOfWork, tenant: str, goal_ids: tuple[str, ...]) -> None:
    unknown = await unknown_goals(uow, tenant, goal_ids)
    if unknown:
        raise InvalidInput(
            [
                FieldError(("body", "goals_discussed", i), "not a live goal of this tenant")
                for i, g in enumerate(goal_ids)
                if g in unknown
            ]
        )


async def record_notes(
    uow: UnitOfWork, principal: Principal, checkin_id: str, command: RecordNotes
) -> dict[str, Any]:
    """The GROW agenda (each part optional), free notes and the goals discussed."""
    row = await _writable(uow, principal, checkin_id, "record_notes")
    values: dict[str, Any] = {
        "grow_goal": command.goal,
        "grow_reality": command.reality,
        "grow_options": command.options,
        "grow_will": command.will,
        "notes": command.notes,
        "updated_at": uow.clock.now(),
    }
    if command.goals_discussed is not None:
        await _check_goals(uow, row.tenant_id, command.goals_discussed)
        values["goals_discussed"] = list(dict.fromkeys(command.goals_discussed))
    await uow.session.execute(update(checkins).where(checkins.c.id == row.id).values(**values))
    return await get_checkin(uow, principal, checkin_id)


async def add_action_item(
    uow: UnitOfWork, principal: Principal, checkin_id: str, command: AddActionItem
) -> dict[str, Any]:
    row = await _writable(uow, principal, checkin_id, "add_action_item")
    if command.owner_id not in participants(row.employee_id, row.manager_id):
        raise InvalidInput.field("owner_id", msg="an action item belongs to one of the two people")
    item_id = new_id("ai")
    await uow.session.execute(
        action_items.insert().values(
            id=item_id,
            tenant_id=row.tenant_id,
            employee_id=row.employee_id,
            checkin_id=row.id,
            owner_id=command.owner_id,
            text=command.text,
            due_on=command.due_on,
            created_at=uow.clock.now(),
        )
    )
    item = (
        await uow.session.execute(select(action_items).where(action_items.c.id == item_id))
    ).one()
    return _item_view(item, True)


async def set_action_item_done(
    uow: UnitOfWork, principal: Principal, item_id: str, done: bool
) -> dict[str, Any]:
    tenant = principal.tenant
    item = (
        await uow.session.execute(
            select(action_items).where(
                action_items.c.tenant_id == tenant, action_items.c.id == item_id
            )
        )
    ).first()
    if item is None:
        raise NotFound("no such action item")
    row = await _load(uow, tenant, item.checkin_id)
    try:
        ok = (await _access(uow, principal, row)).may("set_action_item_done")
    except NotFound:
        ok = False
    _audit(uow, principal, row.employee_id, f"action_item/{item_id}", ok)
    if not ok:
        raise NotFound("no such action item")
    await uow.session.execute(
        update(action_items)
        .where(action_items.c.id == item_id)
        .values(done_at=(item.done_at or uow.clock.now()) if done else None)
    )
    updated = (
        await uow.session.execute(select(action_items).where(action_items.c.id == item_id))
    ).one()
    return _item_view(updated, True)


async def complete_checkin(
    uow: UnitOfWork, principal: Principal, checkin_id: str, command: CompleteCheckin
) -> dict[str, Any]:
    """The conversation took place: it closes the obligation it fulfils; a review also
    concludes its quarter."""
    row = await _writable(uow, principal, checkin_id, "complete_checkin")
    now = uow.clock.now()
    held_at = command.held_at or now
    errors = [
        e
        for e in (
            pulse_error(command.pulse, "pulse"),
            completion_error(row.scheduled_for, held_at, row.time_zone),
        )
        if e is not None
    ]
    if held_at > now:
        errors.append(FieldError(("body", "held_at"), "a check-in is completed once it was held"))
    if errors:
        raise InvalidInput(errors)
    goals_discussed = (
        list(dict.fromkeys(command.goals_discussed))
        if command.goals_discussed is not None
        else list(row.goals_discussed or [])
    )
    if command.goals_discussed is not None:
        await _check_goals(uow, row.tenant_id, tuple(goals_discussed))
    pulse = command.pulse if command.pulse is not None else row.pulse
    employee = await people(uow, row.tenant_id).person(row.employee_id)
    employee_zone = employee.time_zone if employee else row.time_zone
    held_on = local_date(held_at, employee_zone)
    kind = CheckinKind(row.kind)
    fulfilled = await close_obligation_for(
        uow, row.tenant_id, row.employee_id, kind, held_on, row.id
    )
    await uow.session.execute(
        update(checkins)
        .where(checkins.c.id == row.id)
        .values(
            state=CheckinState.COMPLETED.value,
            held_at=held_at,
            pulse=pulse,
            goals_discussed=goals_discussed,
            obligation_id=fulfilled[0] if fulfilled else None,
            obligation_due_at=fulfilled[1] if fulfilled else None,
            updated_at=now,
        )
    )
    open_items = len(await _open_action_items(uow, row.tenant_id, row.employee_id))
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
    return await get_checkin(uow, principal, checkin_id)


#: Tenant settings of this service, each a change of who may see what (audited when changed).
TENANT_SETTINGS = ("reviews_visible_to_manager_chain", "share_individual_pulse")


async def set_tenant_settings(
    uow: UnitOfWork, principal: Principal, changes: dict[str, bool]
) -> dict[str, bool]:
    """Change the given settings (the others keep their value); answers all of them."""
    rels = await relationships(people(uow, principal.tenant), principal, None)
    if not allowed(POLICY, "set_tenant_settings", rels):
        raise Forbidden("only hr_admin changes the tenant's settings")
    if not changes or not set(changes) <= set(TENANT_SETTINGS):
        raise InvalidInput([FieldError(("body",), f"give one of {', '.join(TENANT_SETTINGS)}")])
    columns = [tenant_settings.c[name] for name in TENANT_SETTINGS]
    row = (
        await uow.session.execute(
            select(*columns).where(tenant_settings.c.tenant_id == principal.tenant)
        )
    ).first()
    current = {name: bool(row and row._mapping[name]) for name in TENANT_SETTINGS}
    for name, value in changes.items():
        # Who may read reviews, or whether integrators receive each person's pulse, changes
        # with it: on record, with the tenant as the subject.
        _audit(
            uow,
            principal,
            principal.tenant,
            f"tenant/{principal.tenant}:{name}={'on' if value else 'off'}",
            True,
            AuditAction.CHANGE_ACCESS,
        )
        current[name] = value
    values: dict[str, Any] = {**current, "updated_at": uow.clock.now()}
    stmt = uow.insert(tenant_settings).values(tenant_id=principal.tenant, **values)
    await uow.session.execute(stmt.on_conflict_do_update(index_elements=["tenant_id"], set_=values))
    return current
