"""Cadence end to end: obligations, the sweeper's facts on real Kafka, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime

import pytest
from checkins_harness import MONTHLY_POLICY, StartCheckins, employee
from sqlalchemy import func, select

from rhythm_checkins.adapters.db import kit
from rhythm_checkins.adapters.unit_of_work import SqlCheckinsUnitOfWork
from rhythm_checkins.entrypoints.jobs import sweep_until_done
from rhythm_shared.contracts import topics
from rhythm_shared.contracts.v1 import (
    CadenceEscalated,
    CheckinCompleted,
    CheckinDue,
    CheckinMissed,
    EmployeeDeactivated,
)
from rhythm_shared.kit.db import create_engine, session_factory
from rhythm_shared.kit.uow import UnitOfWorkFactory
from rhythm_shared.testing import publish_events, wait_for

pytestmark = pytest.mark.kafka

DUE, MISSED, ESCALATED = CheckinDue.type, CheckinMissed.type, CadenceEscalated.type
MARCH_DUE = datetime(2026, 3, 31, 15, 0, tzinfo=UTC)  # 17:00 in Amsterdam (summer time)


def of(envelopes: list, employee_id: str) -> list:  # type: ignore[type-arg]
    return [e for e in envelopes if e.event.employee_id == employee_id]


async def test_a_completed_checkin_closes_its_obligation_and_no_miss_follows(
    start_checkins: StartCheckins,
) -> None:
    async with start_checkins() as svc:
        assert (await svc.set_policy()).status_code == 200
        await svc.team()
        march = (await svc.obligations("ana"))[0]
        assert (march.period_start, march.due_at, march.state) == (
            date(2026, 3, 1),
            MARCH_DUE,
            "open",
        )
        created = await svc.client.post(
            "/v1/checkins",
            json={"employee_id": "ana", "scheduled_for": "2026-03-20T10:00:00+01:00"},
            headers=svc.auth("ana"),
        )
        assert created.status_code == 201, created.text
        svc.clock.travel_to(datetime(2026, 3, 20, 10, 30, tzinfo=UTC))
        done = await svc.client.post(
            f"/v1/checkins/{created.json()['checkin_id']}/complete",
            json={},
            headers=svc.auth("mia"),
        )
        assert done.status_code == 200, done.text
        assert done.json()["obligation_id"] == march.id

        await svc.sweep(datetime(2026, 3, 29, 12, tzinfo=UTC))
        await svc.sweep(datetime(2026, 4, 7, 12, tzinfo=UTC))

        assert (await svc.obligations("ana"))[0].state == "closed"
        completed = await svc.events(topics.CHECKINS, types=(CheckinCompleted.type,))
        assert completed[0].event.obligation_id == march.id
        assert completed[0].event.due_at == MARCH_DUE
        facts = of(await svc.cadence_events(DUE, MISSED, min_count=2), "ana")
        assert [f.event.obligation_id for f in facts] == []
        # ben kept no check-in: the same sweeps did report him.
        assert {f.type for f in of(await svc.cadence_events(DUE, MISSED), "ben")} == {DUE, MISSED}


async def test_a_checkin_just_after_the_period_within_its_grace_closes_it_late(
    start_checkins: StartCheckins,
) -> None:
    async with start_checkins() as svc:
        assert (await svc.set_policy()).status_code == 200
        await svc.team()
        march = (await svc.obligations("ana"))[0]
        svc.clock.travel_to(datetime(2026, 4, 1, 9, 0, tzinfo=UTC))
        created = await svc.client.post(
            "/v1/checkins",
            json={"employee_id": "ana", "scheduled_for": "2026-04-01T10:00:00+02:00"},
            headers=svc.auth("ana"),
        )
        assert created.status_code == 201, created.text
        svc.clock.travel_to(datetime(2026, 4, 1, 10, 30, tzinfo=UTC))
        done = await svc.client.post(
            f"/v1/checkins/{created.json()['checkin_id']}/complete",
            json={},
            headers=svc.auth("mia"),
        )
        assert done.status_code == 200, done.text
        assert done.json()["obligation_id"] == march.id  # March's, held late: not April's

        await svc.sweep(datetime(2026, 4, 9, 12, tzinfo=UTC))
        states = {o.period_start: o.state for o in await svc.obligations("ana")}
        assert states[date(2026, 3, 1)] == "closed"
        assert states[date(2026, 4, 1)] != "closed"
        completed = await svc.events(topics.CHECKINS, types=(CheckinCompleted.type,))
        assert completed[0].event.due_at == MARCH_DUE
        assert completed[0].event.held_at > MARCH_DUE
        missed = [e for e in await svc.cadence_events(MISSED) if e.event.obligation_id == march.id]
        assert missed == []


async def test_without_a_checkin_exactly_one_due_then_exactly_one_missed_is_reported(
    start_checkins: StartCheckins,
) -> None:
    async with start_checkins() as svc:
        await svc.set_policy()
        await svc.team()
        march = (await svc.obligations("ana"))[0]
        before = await svc.sweep(datetime(2026, 3, 28, 14, 59, tzinfo=UTC))
        assert before.reminded == 0
        for hour in (15, 16, 23):
            await svc.sweep(datetime(2026, 3, 28, hour, 0, tzinfo=UTC))
        assert (await svc.obligations("ana"))[0].state == "due_notified"
        for day in (5, 6, 9):
            await svc.sweep(datetime(2026, 4, day, 15, 0, tzinfo=UTC))

        facts = [
            e
            for e in await svc.cadence_events(DUE, MISSED, min_count=2)
            if e.event.obligation_id == march.id
        ]
        assert [f.type for f in facts] == [DUE, MISSED]
        due, missed = facts[0].event, facts[1].event
        assert isinstance(due, CheckinDue)
        assert isinstance(missed, CheckinMissed)
        assert (due.manager_id, due.due_at, due.period_end) == ("mia", MARCH_DUE, date(2026, 3, 31))
        assert missed.consecutive_misses == 1
        assert facts[0].subject == "employee/ana"
        assert (await svc.obligations("ana"))[0].state == "missed"


async def test_a_move_to_another_time_zone_moves_the_outstanding_due_times(
    start_checkins: StartCheckins,
) -> None:
    async with start_checkins() as svc:
        await svc.set_policy()
        await svc.team()
        march = (await svc.obligations("ana"))[0]
        assert march.due_at == MARCH_DUE
        moved_on = datetime(2026, 3, 2, 12, tzinfo=UTC)
        await svc.apply(
            employee(svc.tenant, "ana", "mia", time_zone="America/New_York", at=moved_on)
        )
        after = (await svc.obligations("ana"))[0]
        new_york_due = datetime(2026, 3, 31, 21, 0, tzinfo=UTC)  # 17:00 in New York (EDT)
        assert (after.id, after.state, after.due_at) == (march.id, "open", new_york_due)
        assert after.due_at - after.remind_at == march.due_at - march.remind_at
        assert after.miss_at - after.due_at == march.miss_at - march.due_at
        assert after.next_action_at == after.remind_at
        # The reminder follows her: not at Amsterdam's time, but at New York's.
        await svc.sweep(march.remind_at)
        assert (await svc.obligations("ana"))[0].state == "open"
        await svc.sweep(after.remind_at)
        assert (await svc.obligations("ana"))[0].state == "due_notified"
        # Reminded, she moves back: the miss follows her too, and nothing is reminded twice.
        await svc.apply(employee(svc.tenant, "ana", "mia", at=moved_on.replace(hour=13)))
        back = (await svc.obligations("ana"))[0]
        assert (back.state, back.due_at, back.next_action_at) == (
            "due_notified",
            MARCH_DUE,
            back.miss_at,
        )
        dues = of(await svc.cadence_events(DUE), "ana")
        assert [d.event.obligation_id for d in dues] == [march.id]


async def test_missing_twice_in_a_row_escalates_to_the_skip_level_once(
    start_checkins: StartCheckins,
) -> None:
    async with start_checkins() as svc:
        await svc.set_policy({**MONTHLY_POLICY, "escalate_after": 2})
        await svc.team()
        first = await svc.sweep(datetime(2026, 4, 6, 12, tzinfo=UTC))
        assert first.escalated == 0
        second = await svc.sweep(datetime(2026, 5, 6, 12, tzinfo=UTC))
        assert second.missed == 3  # ana, ben and mia (whose manager is boss), April
        assert second.escalated == 3
        await svc.sweep(datetime(2026, 5, 7, 12, tzinfo=UTC))

        escalations = of(await svc.cadence_events(ESCALATED, min_count=2), "ana")
        assert len(escalations) == 1
        event = escalations[0].event
        assert isinstance(event, CadenceEscalated)
        assert (event.escalated_to_id, event.level.value, event.consecutive_misses) == (
            "boss",
            "skip_level",
            2,
        )
        states = [o.state for o in await svc.obligations("ana")]
        assert states[:2] == ["missed", "escalated"]


async def test_a_kept_checkin_resets_the_run_of_misses(start_checkins: StartCheckins) -> None:
    async with start_checkins() as svc:
        await svc.set_policy({**MONTHLY_POLICY, "escalate_after": 2})
        await svc.team()
        await svc.sweep(datetime(2026, 4, 6, 12, tzinfo=UTC))  # March missed
        svc.clock.travel_to(datetime(2026, 4, 20, 9, tzinfo=UTC))
        created = await svc.client.post(
            "/v1/checkins",
            json={"employee_id": "ana", "scheduled_for": "2026-04-20T11:00:00+02:00"},
            headers=svc.auth("mia"),
        )
        assert created.json()["initiated_by"] == "manager"
        svc.clock.travel_to(datetime(2026, 4, 20, 10, tzinfo=UTC))
        await svc.client.post(
            f"/v1/checkins/{created.json()['checkin_id']}/complete",
            json={},
            headers=svc.auth("ana"),
        )
        await svc.sweep(datetime(2026, 6, 6, 12, tzinfo=UTC))  # May missed
        states = [
            (o.period_start.month, o.state, o.consecutive_misses)
            for o in await svc.obligations("ana")
        ]
        assert states[:3] == [(3, "missed", 1), (4, "closed", 0), (5, "missed", 1)]


async def test_two_sweepers_at_once_report_each_fact_exactly_once(
    start_checkins: StartCheckins, database_url: str
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("SKIP LOCKED concurrency is PostgreSQL's; SQLite serialises writers")
    async with start_checkins() as svc:
        await svc.set_policy()
        people = [f"e{i:03d}" for i in range(60)]
        await svc.apply(
            employee(svc.tenant, "boss", None),
            employee(svc.tenant, "mia", "boss"),
            *(employee(svc.tenant, p, "mia") for p in people),
        )
        other_engine = create_engine(database_url)
        other = UnitOfWorkFactory(
            session_factory(other_engine),
            kit,
            svc.clock,
            source="/rhythm/checkins",
            unit_of_work=SqlCheckinsUnitOfWork,
        )
        try:
            # The second sweeper's connection is opened before the race, not in it: on a busy
            # machine connecting took longer than the first sweeper's whole run.
            async with other_engine.connect() as connection:
                await connection.execute(select(1))
            svc.clock.travel_to(datetime(2026, 3, 29, 12, tzinfo=UTC))
            a, b = await asyncio.gather(
                sweep_until_done(svc.runtime.uow, 7), sweep_until_done(other, 7)
            )
            assert a.reminded + b.reminded == 61  # 60 people and mia
            assert a.reminded > 0
            assert b.reminded > 0
            svc.clock.travel_to(datetime(2026, 4, 7, 12, tzinfo=UTC))
            a, b = await asyncio.gather(
                sweep_until_done(svc.runtime.uow, 7), sweep_until_done(other, 7)
            )
            assert a.missed + b.missed == 61
        finally:
            await other_engine.dispose()
        async with svc.runtime.uow() as uow:
            outbox = kit.outbox
            counts = dict(
                (
                    await uow.session.execute(
                        select(outbox.c.event_type, func.count()).group_by(outbox.c.event_type)
                    )
                ).all()
            )
        assert counts[DUE] == 61
        assert counts[MISSED] == 61
        seen = await svc.cadence_events(DUE, MISSED, min_count=122)
        assert len(seen) == 122
        assert len({(e.type, e.event.obligation_id) for e in seen}) == 122


async def test_people_events_from_kafka_move_and_cancel_obligations_once(
    start_checkins: StartCheckins,
) -> None:
    async with start_checkins(consumers=True) as svc:
        await svc.set_policy()
        t = svc.tenant
        first = employee(t, "ana", "mia")
        base = [employee(t, "boss", None), employee(t, "mia", "boss"), employee(t, "max", "boss")]
        await publish_events(svc.bootstrap, base, topic_prefix=svc.topic_prefix)
        [first_id] = await publish_events(svc.bootstrap, [first], topic_prefix=svc.topic_prefix)

        async def ana_owes() -> list:  # type: ignore[type-arg]
            return [o for o in await svc.obligations("ana") if o.state == "open"]

        assert [o.manager_id for o in await wait_for(ana_owes)] == ["mia", "mia"]
        # A new manager takes over what is open.
        await publish_events(
            svc.bootstrap,
            [employee(t, "ana", "max", at=datetime(2026, 3, 1, 12, tzinfo=UTC))],
            topic_prefix=svc.topic_prefix,
        )

        async def moved() -> bool:
            return all(o.manager_id == "max" for o in await svc.obligations("ana"))

        await wait_for(moved)
        # The old event, delivered again (same id), has no second effect.
        await publish_events(
            svc.bootstrap, [first], topic_prefix=svc.topic_prefix, event_ids=[first_id]
        )
        # A new hire during ramp-up owes nothing yet; a leaver's open obligations are cancelled.
        leaver = EmployeeDeactivated(
            tenant_id=t,
            occurred_at=datetime(2026, 3, 2, 8, tzinfo=UTC),
            employee_id="ana",
            effective_at=datetime(2026, 3, 2, 8, tzinfo=UTC),
        )
        await publish_events(
            svc.bootstrap,
            [employee(t, "nia", "mia", hired_on=date(2026, 2, 20)), leaver],
            topic_prefix=svc.topic_prefix,
        )

        async def cancelled() -> bool:
            return {o.state for o in await svc.obligations("ana")} == {"cancelled"}

        await wait_for(cancelled)
        assert all(o.manager_id == "max" for o in await svc.obligations("ana"))
        nia = await wait_for(lambda: svc.obligations("nia"))
        assert [o.period_start for o in nia] == [date(2026, 4, 1)]
        # A leaver is never reminded.
        result = await svc.sweep(datetime(2026, 3, 30, tzinfo=UTC))
        assert "ana" not in {e.event.employee_id for e in await svc.cadence_events(DUE)}
        assert result.reminded == 2  # mia and max


async def test_a_tenant_policy_is_planned_by_the_sweeper_in_batches(
    start_checkins: StartCheckins,
) -> None:
    async with start_checkins() as svc:
        await svc.team()  # no policy yet: nothing owed
        assert await svc.obligations("ana") == []
        await svc.set_policy()
        result = await svc.sweep(batch_size=2)
        assert result.planned == 4
        assert len(await svc.obligations("ana")) == 2
        assert (await svc.planning_row("ana")).plan_at == datetime(2026, 3, 31, 22, tzinfo=UTC)
        # A quarterly review added later is owed too; dropping the kind cancels future ones.
        both = {
            **MONTHLY_POLICY,
            "rules": [
                *MONTHLY_POLICY["rules"],
                {
                    "kind": "quarterly_review",
                    "frequency": "quarterly",
                    "grace_days": 10,
                    "lead_time_days": 7,
                },
            ],
        }
        await svc.set_policy(both)
        await svc.sweep()
        kinds = sorted({o.kind for o in await svc.obligations("ana")})
        assert kinds == ["monthly", "quarterly_review"]
        await svc.set_policy()
        await svc.sweep()
        q = [o for o in await svc.obligations("ana") if o.kind == "quarterly_review"]
        assert [o.state for o in q] == ["open", "cancelled"]  # this quarter stays owed
