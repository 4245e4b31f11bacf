"""A chunk of events decides what the same events decide one transaction each.

The consumer applies a chunk in one unit of work: ``prepare`` reads ahead what deciding the
chunk asks (the people its events name and their managers, their choices, the idempotency keys
they can use, closed obligations, daily permits), and the deliveries repository holds what
deciding writes until flush. A generated story (missed check-ins, reminders and the check-ins
that close them, goal events, feedback, the same fact again under another event id, people
joining, moving and leaving, preference and quiet-hour changes between chunks, recipients the
directory does not know) applied in random chunks must leave the same deliveries, digest
items, permits, overdue and closed obligations and outbox events as applied event by event,
on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from rhythm_notifications.adapters import db
from rhythm_notifications.adapters.unit_of_work import SqlNotificationsUnitOfWork
from rhythm_notifications.domain.preferences import CategoryPreference, RecipientSettings
from rhythm_notifications.domain.routing import Category, ChannelChoice
from rhythm_notifications.domain.schedule import DeliveryMode
from rhythm_notifications.entrypoints.consumers import GROUP
from rhythm_notifications.handlers import EVENT_HANDLERS
from rhythm_shared.contracts.base import Event
from rhythm_shared.contracts.envelope import Envelope
from rhythm_shared.contracts.v1 import (
    CheckinCompleted,
    CheckinDue,
    CheckinKind,
    CheckinMissed,
    EmployeeDeactivated,
    EmployeeUpserted,
    FeedbackGiven,
    FeedbackKind,
    GoalStale,
    GoalStatus,
    GoalStatusChanged,
    Initiator,
)
from rhythm_shared.kit.clock import ManualClock
from rhythm_shared.kit.db import create_engine, session_factory
from rhythm_shared.kit.uow import UnitOfWorkFactory

Uows = UnitOfWorkFactory[SqlNotificationsUnitOfWork]

#: A Monday morning in UTC: working hours in Europe, night in New York and Auckland.
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
PEOPLE = ("ana", "ben", "cem", "dia", "eve")
#: Who the events name: the people, their manager, and one the directory never hears of.
NAMED = (*PEOPLE, "boss", "zed")
MANAGERS = ("boss", "ana", "zed", None)
ZONES = ("Europe/Amsterdam", "America/New_York", "Pacific/Auckland")
CATEGORIES = (
    Category.CHECKIN_MISSED,
    Category.CHECKIN_DUE,
    Category.GOAL_STALE,
    Category.FEEDBACK_RECEIVED,
)


@dataclass(frozen=True)
class Step:
    """One step of the story, with the hours the clock moves on before it."""

    hours_later: int
    kind: str
    person: str
    other: str | None = None
    #: Which obligation of the person (reminders, misses and the check-ins closing them).
    number: int = 0
    zone: str = ZONES[0]
    active: bool = True
    category: Category = Category.CHECKIN_MISSED
    channel: ChannelChoice = ChannelChoice.EMAIL
    mode: DeliveryMode = DeliveryMode.IMMEDIATE
    quiet: tuple[str, str] | None = None
    #: For "again": which earlier step's fact arrives again, under a new event id.
    earlier: int = 0


hours = st.sampled_from((0, 0, 1, 3, 14, 40))
numbers = st.integers(0, 2)
steps = st.one_of(
    st.builds(
        Step,
        hours_later=hours,
        kind=st.sampled_from(("missed", "due", "completed")),
        person=st.sampled_from(NAMED),
        other=st.sampled_from(MANAGERS),
        number=numbers,
    ),
    st.builds(
        Step,
        hours_later=hours,
        kind=st.sampled_from(("stale", "at_risk")),
        person=st.sampled_from(NAMED),
        number=numbers,
    ),
    st.builds(
        Step,
        hours_later=hours,
        kind=st.just("feedback"),
        person=st.sampled_from(NAMED),
        other=st.sampled_from(NAMED),
        number=numbers,
    ),
    st.builds(Step, hours_later=hours, kind=st.just("again"), person=st.just(""), earlier=numbers),
    st.builds(
        Step,
        hours_later=hours,
        kind=st.just("upsert"),
        person=st.sampled_from(PEOPLE),
        other=st.sampled_from(MANAGERS),
        zone=st.sampled_from(ZONES),
        active=st.sampled_from((True, True, False)),
    ),
    st.builds(Step, hours_later=hours, kind=st.just("deactivate"), person=st.sampled_from(PEOPLE)),
    st.builds(
        Step,
        hours_later=hours,
        kind=st.just("prefer"),
        person=st.sampled_from(PEOPLE),
        category=st.sampled_from(CATEGORIES),
        channel=st.sampled_from(tuple(ChannelChoice)),
        mode=st.sampled_from(tuple(DeliveryMode)),
    ),
    st.builds(
        Step,
        hours_later=hours,
        kind=st.just("quiet"),
        person=st.sampled_from(PEOPLE),
        quiet=st.sampled_from((None, ("07:00", "23:00"), ("12:00", "11:00"))),
    ),
)

#: Steps that are commands in their own transaction (the preferences page), not events.
COMMANDS = ("prefer", "quiet")


def _person(tag: str, pid: str | None) -> str | None:
    return None if pid is None else f"{pid}.{tag}"


def event_of(step: Step, tag: str, at: datetime) -> Event:
    """The step's event; ids carry the tenant's ``tag`` (idempotency keys are global)."""
    person = _person(tag, step.person)
    assert person is not None
    other = _person(tag, step.other)
    obligation = f"ob.{person}.{step.number}"
    due_at = START - timedelta(days=1)
    common: dict[str, Any] = {"tenant_id": tag, "occurred_at": at}
    if step.kind in ("missed", "due"):
        fields = {
            **common,
            "obligation_id": obligation,
            "employee_id": person,
            "manager_id": other or _person(tag, "boss"),
            "kind": CheckinKind.MONTHLY,
            "period_start": date(2026, 2, 1),
            "period_end": date(2026, 2, 28),
            "due_at": due_at,
        }
        if step.kind == "due":
            return CheckinDue(**fields)
        return CheckinMissed(**fields, consecutive_misses=1 + step.number)
    if step.kind == "completed":
        return CheckinCompleted(
            **common,
            checkin_id=f"ck.{obligation}",
            kind=CheckinKind.MONTHLY,
            employee_id=person,
            manager_id=other or _person(tag, "boss"),
            held_at=at,
            initiated_by=Initiator.EMPLOYEE,
            obligation_id=obligation,
            due_at=due_at,
            goals_discussed=[],
            open_action_items=0,
        )
    if step.kind == "stale":
        return GoalStale(
            **common,
            goal_id=f"g.{person}.{step.number}",
            owner_id=person,
            last_progress_at=START - timedelta(days=20 + step.number),
            update_interval_days=14,
        )
    if step.kind == "at_risk":
        return GoalStatusChanged(
            **common,
            goal_id=f"g.{person}.{step.number}",
            owner_id=person,
            from_status=GoalStatus.ON_TRACK,
            to_status=GoalStatus.AT_RISK,
            suggested=True,
        )
    if step.kind == "feedback":
        giver = step.other if step.other not in (None, step.person) else "boss"
        return FeedbackGiven(
            **common,
            feedback_id=f"f.{person}.{step.number}",
            giver_id=_person(tag, giver if giver != step.person else "ana"),
            receiver_id=person,
            kind=FeedbackKind.PRAISE,
            requested=False,
        )
    if step.kind == "upsert":
        return EmployeeUpserted(
            **common,
            employee_id=person,
            email=f"{step.person}@example.com",
            display_name=step.person.upper(),
            manager_id=other if other != person else None,
            org_unit_id="ou-1",
            time_zone=step.zone,
            locale="en-GB",
            hired_on=date(2020, 1, 6),
            active=step.active,
        )
    assert step.kind == "deactivate"
    return EmployeeDeactivated(**common, employee_id=person, effective_at=at)


def envelope(event: Event, event_id: str) -> Envelope[Event]:
    return Envelope(
        id=event_id,
        source="/rhythm/test",
        type=event.type,
        time=event.occurred_at,
        subject=event.subject,
        tenant_id=event.tenant_id,
        event=event,
    )


async def setup_tenant(uows: Uows, clock: ManualClock, tag: str) -> None:
    """Everyone but eve active, under boss (cem under ana); eve inactive; dia wants missed
    check-ins in a daily digest; ben has quiet hours."""
    clock.travel_to(START - timedelta(days=30))
    zones = dict(zip(PEOPLE, (*ZONES, ZONES[0], ZONES[1]), strict=True))
    async with uows() as uow:
        for pid in (*PEOPLE, "boss"):
            manager = {"boss": None, "cem": "ana"}.get(pid, "boss")
            step = Step(0, "upsert", pid, manager, zone=zones.get(pid, ZONES[0]))
            event = event_of(step, tag, clock.now())
            if pid == "eve":
                event = event.model_copy(update={"active": False})
            await EVENT_HANDLERS[type(event)](uow, envelope(event, f"setup.{pid}.{tag}"))
        now = clock.now()
        daily = CategoryPreference(ChannelChoice.EMAIL, DeliveryMode.DAILY)
        await uow.preferences.save_category(tag, f"dia.{tag}", "checkin_missed", daily, now)
        ben = RecipientSettings("18:00", "10:00", [1, 2, 3, 4, 5], 9)
        await uow.preferences.save_settings(tag, f"ben.{tag}", ben, now)


async def apply_command(uow: SqlNotificationsUnitOfWork, step: Step, tag: str) -> None:
    person = _person(tag, step.person)
    assert person is not None
    now = uow.clock.now()
    if step.kind == "prefer":
        chosen = CategoryPreference(step.channel, step.mode)
        await uow.preferences.save_category(tag, person, step.category.value, chosen, now)
        return
    quiet = step.quiet or (None, None)
    settings = RecipientSettings(quiet[0], quiet[1], [1, 2, 3, 4, 5], 9)
    await uow.preferences.save_settings(tag, person, settings, now)


async def apply_story(
    uows: Uows, clock: ManualClock, tag: str, story: list[Step], chunks: list[int]
) -> None:
    """The story in chunks of the sizes given (1: one event per transaction), as the consumer
    applies a chunk: inbox rows, ``prepare``, the handlers in order. A command step ends the
    chunk and runs in its own transaction."""
    clock.travel_to(START)
    timed: list[tuple[datetime, Step, Envelope[Event] | None]] = []
    facts: list[Event] = []
    for i, step in enumerate(story):
        clock.advance(timedelta(hours=step.hours_later))
        if step.kind in COMMANDS:
            timed.append((clock.now(), step, None))
            continue
        if step.kind == "again":
            if not facts:
                continue
            event = facts[step.earlier % len(facts)]
        else:
            event = event_of(step, tag, clock.now())
            facts.append(event)
        timed.append((clock.now(), step, envelope(event, f"ev.{i}.{tag}")))
    position, sizes = 0, iter(chunks)
    while position < len(timed):
        arrives, step, first = timed[position]
        if first is None:
            clock.travel_to(arrives)
            async with uows() as uow:
                await apply_command(uow, step, tag)
            position += 1
            continue
        end = position + 1
        size = max(1, next(sizes, 1))
        while end < len(timed) and end - position < size and timed[end][2] is not None:
            end += 1
        chunk = [(at, e) for at, _, e in timed[position:end] if e is not None]
        async with uows() as uow:
            fresh = await uow.first_times(GROUP, [e.id for _, e in chunk])
            assert fresh == {e.id for _, e in chunk}
            clock.travel_to(chunk[0][0])
            await uow.prepare([e for _, e in chunk])
            for at, e in chunk:
                clock.travel_to(at)
                await EVENT_HANDLERS[type(e.event)](uow, e)
        position = end


def _plain(value: dict[str, Any], tag: str) -> dict[str, Any]:
    """The rows as JSON values with the tenant's tag taken out (so tenants compare)."""
    plain: dict[str, Any] = json.loads(json.dumps(value, default=str).replace(tag, "T"))
    return plain


async def state(uows: Uows, tag: str) -> dict[str, Any]:
    d, di, o = db.deliveries, db.digest_items, db.kit.outbox
    async with uows.read() as session:
        deliveries = [
            dict(r._mapping)
            for r in await session.execute(
                select(d).where(d.c.tenant_id == tag).order_by(d.c.idempotency_key)
            )
        ]
        keys = {r["id"]: r["idempotency_key"] for r in deliveries}
        items = [
            {k: v for k, v in r._mapping.items() if k != "id"}
            for r in await session.execute(
                select(di)
                .where(di.c.tenant_id == tag)
                .order_by(di.c.recipient_id, di.c.category, di.c.source_event_id)
            )
        ]
        outbox = []
        for r in await session.execute(select(o).order_by(o.c.seq)):
            payload = json.loads(r.payload)
            if payload.get("tenant_id") != tag:
                continue
            # The delivery's id is random: name it by its idempotency key.
            payload["notification_id"] = keys.get(payload.get("notification_id"), "unwritten")
            outbox.append((r.topic, r.key, r.event_type, payload))
        others = {}
        for table, order in (
            (db.daily_caps, ("recipient_id", "category", "day")),
            (db.overdue_checkins, ("obligation_id",)),
            (db.closed_obligations, ("obligation_id",)),
        ):
            rows = await session.execute(
                select(table).where(table.c.tenant_id == tag).order_by(*(table.c[c] for c in order))
            )
            others[table.name] = [dict(r._mapping) for r in rows]
    for row in deliveries:
        del row["id"]
    return _plain(
        {"deliveries": deliveries, "digest_items": items, "outbox": outbox, **others}, tag
    )


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.Runner]:
    """Hypothesis drives a plain function: each example runs its coroutine on this loop."""
    with asyncio.Runner() as runner:
        yield runner


@settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    story=st.lists(steps, min_size=4, max_size=24),
    chunks=st.lists(st.integers(1, 12), min_size=1, max_size=8),
)
def test_events_decided_in_chunks_leave_what_they_leave_one_at_a_time(
    loop: asyncio.Runner, database_url: str, story: list[Step], chunks: list[int]
) -> None:
    loop.run(check_equivalence(database_url, story, chunks))


async def check_equivalence(database_url: str, story: list[Step], chunks: list[int]) -> None:
    engine = create_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(db.metadata.create_all)
        clock = ManualClock(START)
        uows = UnitOfWorkFactory(
            session_factory(engine),
            db.kit,
            clock,
            "/rhythm/notifications",
            unit_of_work=SqlNotificationsUnitOfWork,
        )
        one, many = f"one{uuid.uuid4().hex[:8]}", f"many{uuid.uuid4().hex[:8]}"
        for tag in (one, many):
            await setup_tenant(uows, clock, tag)
        await apply_story(uows, clock, one, story, [1])
        await apply_story(uows, clock, many, story, chunks)
        alone, together = await state(uows, one), await state(uows, many)
        assert together == alone
    finally:
        await engine.dispose()
