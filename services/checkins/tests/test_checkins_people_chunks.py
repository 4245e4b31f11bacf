"""A chunk of people events leaves what the same events leave one transaction each.

The consumer applies a chunk in one unit of work: ``prepare`` reads the chunk's obligations,
departures and check-ins ahead, the repositories hold what planning, hand-over and retention
change, and write it before commit or before any statement that must see it (an erasure's
deletes, a sweep's reads). A generated story of people events (new hires, manager and zone
changes, deactivations now and ahead, late upserts, erasures) applied in random chunks must
leave the same obligations, plans, departures and check-in managers as applied event by event,
on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from rhythm_checkins.adapters.db import checkins, departures, metadata, obligations, planning
from rhythm_checkins.adapters.db import kit as kit_tables
from rhythm_checkins.adapters.unit_of_work import SqlCheckinsUnitOfWork
from rhythm_checkins.commands import SweepCadence
from rhythm_checkins.domain.conversations import CheckinState
from rhythm_checkins.domain.policy import CadencePolicy, Rule
from rhythm_checkins.domain.records import Checkin
from rhythm_checkins.entrypoints.consumers import GROUP
from rhythm_checkins.handlers import EVENT_HANDLERS
from rhythm_checkins.use_cases.cadence import policy_id_for, sweep_cadence
from rhythm_shared.contracts.base import Event
from rhythm_shared.contracts.envelope import Envelope
from rhythm_shared.contracts.v1 import (
    CheckinKind,
    EmployeeDeactivated,
    EmployeeErased,
    EmployeeUpserted,
    Frequency,
    OrgUnitUpserted,
    PolicyScope,
)
from rhythm_shared.kit.clock import ManualClock
from rhythm_shared.kit.db import create_engine, session_factory
from rhythm_shared.kit.uow import UnitOfWorkFactory

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
PEOPLE = ("ana", "ben", "cem", "dia")
MANAGERS = (None, "boss", "mia", "ana")
ZONES = ("Europe/Amsterdam", "America/New_York", "Pacific/Auckland")


@dataclass(frozen=True)
class Step:
    """One people event of the story, with the days the clock moves on before it arrives."""

    days_later: int
    kind: str
    employee: str
    manager: str | None = None
    unit: str = "ou-eng"
    zone: str = ZONES[0]
    hired_on: date = date(2020, 1, 6)
    active: bool = True
    #: Hours before the arrival that the event happened (a late event is older than the last).
    hours_before: int = 0
    #: A deactivation's effective date, in days from the arrival (ahead or past).
    effective_in: int = 0


steps = st.one_of(
    st.builds(
        Step,
        days_later=st.integers(0, 20),
        kind=st.just("upsert"),
        employee=st.sampled_from(PEOPLE),
        manager=st.sampled_from(MANAGERS),
        unit=st.sampled_from(("ou-eng", "ou-ops")),
        zone=st.sampled_from(ZONES),
        hired_on=st.sampled_from((date(2020, 1, 6), date(2026, 2, 20))),
        active=st.booleans(),
        hours_before=st.sampled_from((0, 0, 0, 600)),
    ),
    st.builds(
        Step,
        days_later=st.integers(0, 20),
        kind=st.just("deactivate"),
        employee=st.sampled_from(PEOPLE),
        effective_in=st.integers(-5, 40),
        hours_before=st.sampled_from((0, 0, 600)),
    ),
    st.builds(
        Step, days_later=st.integers(0, 5), kind=st.just("erase"), employee=st.sampled_from(PEOPLE)
    ),
)


def event_of(step: Step, tenant: str, arrives: datetime) -> Event:
    at = arrives - timedelta(hours=step.hours_before)
    if step.kind == "upsert":
        return EmployeeUpserted(
            tenant_id=tenant,
            occurred_at=at,
            employee_id=step.employee,
            email=f"{step.employee}@example.com",
            display_name=step.employee.upper(),
            manager_id=step.manager if step.manager != step.employee else None,
            org_unit_id=step.unit,
            time_zone=step.zone,
            locale="en-GB",
            hired_on=step.hired_on,
            active=step.active,
        )
    if step.kind == "deactivate":
        return EmployeeDeactivated(
            tenant_id=tenant,
            occurred_at=at,
            employee_id=step.employee,
            effective_at=arrives + timedelta(days=step.effective_in),
        )
    return EmployeeErased(
        tenant_id=tenant, occurred_at=at, employee_id=step.employee, erasure_id="er-1"
    )


def envelope(event: Event) -> Envelope[Event]:
    return Envelope(
        id=str(uuid.uuid4()),
        source="/rhythm/people",
        type=event.type,
        time=event.occurred_at,
        subject=event.subject,
        tenant_id=event.tenant_id,
        event=event,
    )


async def setup_tenant(uows: UnitOfWorkFactory[SqlCheckinsUnitOfWork], tenant: str) -> None:
    """Units ou-eng and ou-ops under ou-root; monthly and quarterly for the tenant, weekly for
    ou-ops (so planning walks the unit chain)."""
    async with uows() as uow:
        for unit, parent in (("ou-root", None), ("ou-eng", "ou-root"), ("ou-ops", "ou-root")):
            event = OrgUnitUpserted(
                tenant_id=tenant,
                occurred_at=START - timedelta(days=30),
                org_unit_id=unit,
                name=unit,
                parent_id=parent,
            )
            await EVENT_HANDLERS[OrgUnitUpserted](uow, envelope(event))
        now = uow.clock.now()
        for scope, scope_id, rules in (
            (
                PolicyScope.TENANT,
                tenant,
                (
                    Rule(CheckinKind.MONTHLY, Frequency.MONTHLY),
                    Rule(CheckinKind.QUARTERLY_REVIEW, Frequency.QUARTERLY, grace_days=10),
                ),
            ),
            (PolicyScope.ORG_UNIT, "ou-ops", (Rule(CheckinKind.MONTHLY, Frequency.WEEKLY, 2, 1),)),
        ):
            policy = CadencePolicy(policy_id_for(tenant, scope, scope_id), scope, scope_id, rules)
            await uow.cadence.save_policy(tenant, policy, now)
        for person in ("ana", "cem"):  # check-ins still to be held follow a new manager
            await uow.checkins.add(
                Checkin(
                    id=f"ck-{tenant}-{person}",
                    tenant_id=tenant,
                    kind=CheckinKind.MONTHLY.value,
                    employee_id=person,
                    manager_id="boss",
                    scheduled_for=START + timedelta(days=60),
                    time_zone=ZONES[0],
                    initiated_by="manager",
                    initiated_by_id="boss",
                    state=CheckinState.SCHEDULED.value,
                    created_at=now,
                    updated_at=now,
                )
            )


async def apply_story(
    uows: UnitOfWorkFactory[SqlCheckinsUnitOfWork],
    clock: ManualClock,
    tenant: str,
    story: list[Step],
    chunks: list[int],
) -> None:
    """The story in chunks of the sizes given (1: one event per transaction), as the consumer
    applies a chunk: inbox rows, ``prepare``, the handlers in order; a sweep halfway."""
    clock.travel_to(START)
    timed = []
    for step in story:
        clock.advance(timedelta(days=step.days_later))
        timed.append((clock.now(), envelope(event_of(step, tenant, clock.now()))))
    clock.travel_to(START)
    halfway = len(timed) // 2
    position, sizes = 0, iter(chunks)
    while position < len(timed):
        size = max(1, next(sizes, 1))
        end = min(len(timed), position + size, halfway if position < halfway else len(timed))
        chunk = timed[position:end]
        async with uows() as uow:
            fresh = await uow.first_times(GROUP, [e.id for _, e in chunk])
            assert fresh == {e.id for _, e in chunk}
            clock.travel_to(chunk[0][0])
            await uow.prepare([e for _, e in chunk])
            for arrives, e in chunk:
                clock.travel_to(arrives)
                await EVENT_HANDLERS[type(e.event)](uow, e)
        position = end
        if position == halfway < len(timed):
            # A sweep in its own transaction, as the next event arrives: it must see every write
            # of the chunks before it.
            clock.travel_to(timed[position][0])
            async with uows() as uow:
                await sweep_cadence(uow, SweepCadence(batch_size=500))


async def state(uows: UnitOfWorkFactory[SqlCheckinsUnitOfWork], tenant: str) -> dict[str, Any]:
    o = obligations.c
    async with uows.read() as session:
        owed = (
            await session.execute(
                select(
                    o.employee_id,
                    o.kind,
                    o.period_start,
                    o.period_end,
                    o.manager_id,
                    o.frequency,
                    o.due_at,
                    o.remind_at,
                    o.miss_at,
                    o.state,
                    o.next_action_at,
                    o.consecutive_misses,
                    o.created_at,
                    o.updated_at,
                )
                .where(o.tenant_id == tenant)
                .order_by(o.employee_id, o.kind, o.period_start)
            )
        ).all()
        plans = (
            await session.execute(
                select(planning.c.employee_id, planning.c.plan_at)
                .where(planning.c.tenant_id == tenant)
                .order_by(planning.c.employee_id)
            )
        ).all()
        held = (
            await session.execute(
                select(checkins.c.employee_id, checkins.c.manager_id, checkins.c.updated_at)
                .where(checkins.c.tenant_id == tenant)
                .order_by(checkins.c.employee_id)
            )
        ).all()
        left = (
            await session.execute(
                select(departures.c.employee_id, departures.c.left_at)
                .where(departures.c.tenant_id == tenant)
                .order_by(departures.c.employee_id)
            )
        ).all()
    return {"obligations": owed, "planning": plans, "departures": left, "checkins": held}


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
    story=st.lists(steps, min_size=4, max_size=16),
    chunks=st.lists(st.integers(1, 8), min_size=1, max_size=8),
)
def test_people_events_in_chunks_leave_what_they_leave_one_at_a_time(
    loop: asyncio.Runner, database_url: str, story: list[Step], chunks: list[int]
) -> None:
    loop.run(check_equivalence(database_url, story, chunks))


async def check_equivalence(database_url: str, story: list[Step], chunks: list[int]) -> None:
    engine = create_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
        clock = ManualClock(START)
        uows = UnitOfWorkFactory(
            session_factory(engine),
            kit_tables,
            clock,
            "/rhythm/checkins",
            unit_of_work=SqlCheckinsUnitOfWork,
        )
        one, many = f"one-{uuid.uuid4().hex[:8]}", f"many-{uuid.uuid4().hex[:8]}"
        for tenant in (one, many):
            clock.travel_to(START)
            await setup_tenant(uows, tenant)
        await apply_story(uows, clock, one, story, [1])
        await apply_story(uows, clock, many, story, chunks)
        alone, together = await state(uows, one), await state(uows, many)
        assert together == alone
    finally:
        await engine.dispose()
