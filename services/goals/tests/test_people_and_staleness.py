"""People events consumed from real Kafka; the staleness job under a moved clock."""

from __future__ import annotations

from datetime import timedelta

import pytest
from goals_harness import GoalsService, StartGoals, decode
from sqlalchemy import select

from rhythm_goals.adapters.db import goals, people_tables
from rhythm_goals.entrypoints.jobs import leavers_job, staleness_job
from rhythm_goals.handlers import apply_person, mark_stale_goals, stale_event_id
from rhythm_goals.use_cases.common import directory
from rhythm_shared.contracts.envelope import Envelope
from rhythm_shared.contracts.v1 import EmployeeDeactivated, GoalArchived, GoalStale
from rhythm_shared.testing import publish_events, wait_for

pytestmark = pytest.mark.kafka


async def _manager_of(svc: GoalsService, employee_id: str) -> str | None:
    async with svc.runtime.uow() as uow:
        person = await directory(uow, svc.tenant).person(employee_id)
    return None if person is None else (person.manager_id or "")


async def test_people_events_are_consumed_and_a_replayed_one_has_no_second_effect(
    start_goals: StartGoals,
) -> None:
    async with start_goals(consumers=True) as svc:
        send = {"topic_prefix": svc.topic_prefix}
        ids = await publish_events(
            svc.bootstrap,
            [
                svc.unit("ou-platform", head_id="mia"),
                svc.employee("mia", org_unit_id="ou-platform"),
                svc.employee("ann", manager_id="mia", org_unit_id="ou-platform"),
            ],
            **send,
        )
        assert await wait_for(lambda: _manager_of(svc, "ann"), timeout_s=30) == "mia"

        # The same ce_id again, even with another body, is a duplicate: no second effect.
        svc.clock.advance(timedelta(minutes=1))
        await publish_events(
            svc.bootstrap,
            [svc.employee("ann", manager_id="sam", org_unit_id="ou-platform")],
            event_ids=[ids[2]],
            **send,
        )
        # A fresh event after it tells us the consumer has passed the duplicate.
        await publish_events(svc.bootstrap, [svc.employee("zed", manager_id="mia")], **send)
        assert await wait_for(lambda: _manager_of(svc, "zed"), timeout_s=30) == "mia"
        assert await _manager_of(svc, "ann") == "mia"

        # The slice is what authorises: mia, ann's manager, may now edit ann's goals.
        goal_id = (await svc.create("ann")).json()["goal_id"]
        response = await svc.client.patch(
            f"/v1/goals/{goal_id}", json={"title": "Set by mia"}, headers=svc.auth("mia")
        )
        assert response.status_code == 200
        async with svc.runtime.uow() as uow:
            unit = (
                await uow.session.execute(
                    select(people_tables.org_units).where(
                        people_tables.org_units.c.tenant_id == svc.tenant
                    )
                )
            ).one()
        assert unit.head_id == "mia"

        # Deactivation in effect: the person's open goals are archived.
        await publish_events(
            svc.bootstrap,
            [
                EmployeeDeactivated(
                    tenant_id=svc.tenant,
                    occurred_at=svc.clock.now(),
                    employee_id="ann",
                    effective_at=svc.clock.now(),
                )
            ],
            **send,
        )
        (archived,) = await svc.records("rhythm.goal.archived.v1")
        event = decode(archived).event
        assert isinstance(event, GoalArchived)
        assert event.goal_id == goal_id
        assert event.reason == "owner_deactivated"


async def test_a_deactivation_dated_ahead_archives_the_goals_when_it_takes_effect(
    start_goals: StartGoals,
) -> None:
    async with start_goals() as svc:
        await svc.seed_org()
        goal_id = (await svc.create("ann")).json()["goal_id"]
        # Later than the seed: at one instant, versions are ordered by random event ids.
        svc.clock.advance(timedelta(minutes=1))
        leaves_at = svc.clock.now() + timedelta(days=10)
        event = EmployeeDeactivated(
            tenant_id=svc.tenant,
            occurred_at=svc.clock.now(),
            employee_id="ann",
            effective_at=leaves_at,
        )
        envelope = Envelope(
            id="ev-ann-leaves",
            source="/rhythm/tests",
            type=event.type,
            time=event.occurred_at,
            subject=event.subject,
            tenant_id=svc.tenant,
            event=event,
        )
        async with svc.runtime.uow() as uow:
            await apply_person(uow, envelope)

        async def archived() -> str | None:
            response = await svc.client.get(f"/v1/goals/{goal_id}", headers=svc.auth("ann"))
            return response.json()["archived_at"] if response.status_code == 200 else "gone"

        job = leavers_job(svc.runtime)
        svc.clock.advance(timedelta(days=9, hours=23))
        assert await job.run() == 0
        assert await archived() is None  # still working here: the goal stays open
        svc.clock.advance(timedelta(hours=1))
        assert await job.run() == 1
        assert await job.run() == 0  # once
        assert await archived() is not None
        (record,) = await svc.records("rhythm.goal.archived.v1")
        archived_event = decode(record).event
        assert isinstance(archived_event, GoalArchived)
        assert (archived_event.goal_id, archived_event.reason) == (goal_id, "owner_deactivated")


async def test_an_upsert_after_a_deactivation_dated_ahead_keeps_the_goals(
    start_goals: StartGoals,
) -> None:
    async with start_goals() as svc:
        await svc.seed_org()
        goal_id = (await svc.create("ann")).json()["goal_id"]
        # Later than the seed: at one instant, versions are ordered by random event ids.
        svc.clock.advance(timedelta(minutes=1))
        event = EmployeeDeactivated(
            tenant_id=svc.tenant,
            occurred_at=svc.clock.now(),
            employee_id="ann",
            effective_at=svc.clock.now() + timedelta(days=10),
        )
        envelope = Envelope(
            id="ev-ann-leaves",
            source="/rhythm/tests",
            type=event.type,
            time=event.occurred_at,
            subject=event.subject,
            tenant_id=svc.tenant,
            event=event,
        )
        async with svc.runtime.uow() as uow:
            await apply_person(uow, envelope)
        svc.clock.advance(timedelta(days=1))  # she stays after all: HR sends her again
        await svc.seed_people(svc.employee("ann", manager_id="mia", org_unit_id="ou-platform"))
        svc.clock.advance(timedelta(days=30))
        assert await leavers_job(svc.runtime).run() == 0
        response = await svc.client.get(f"/v1/goals/{goal_id}", headers=svc.auth("ann"))
        assert response.json()["archived_at"] is None


async def _run_staleness(svc: GoalsService) -> int:
    return await staleness_job(svc.runtime).run()


async def test_the_staleness_job_reports_exactly_one_goal_stale_per_spell(
    start_goals: StartGoals,
) -> None:
    async with start_goals() as svc:
        goal_id = (
            await svc.create("ann", period_start="2026-03-01", period_end="2026-06-30")
        ).json()["goal_id"]
        other = (await svc.create("ann", update_interval_days=60, period_end="2026-06-30")).json()[
            "goal_id"
        ]
        created_at = svc.clock.now()

        svc.clock.advance(timedelta(days=13, hours=23))
        assert await _run_staleness(svc) == 0  # not yet due

        svc.clock.advance(timedelta(hours=2))
        assert await _run_staleness(svc) == 1
        svc.clock.advance(timedelta(days=3))
        assert await _run_staleness(svc) == 0  # still stale, already reported
        goal = (await svc.client.get(f"/v1/goals/{goal_id}", headers=svc.auth("ann"))).json()
        assert goal["stale"] is True

        (record,) = await svc.records("rhythm.goal.stale.v1")
        event = decode(record).event
        assert isinstance(event, GoalStale)
        assert record.key == f"{svc.tenant}/{goal_id}".encode()
        assert event.goal_id == goal_id
        assert event.owner_id == "ann"
        assert event.last_progress_at == created_at
        assert event.update_interval_days == 14

        # Progress ends the spell; the next spell is reported once more, from that progress.
        response = await svc.client.post(
            f"/v1/goals/{goal_id}/key-results/kr-1/progress",
            json={"value": 700, "confidence": 0.6},
            headers=svc.auth("ann"),
        )
        assert response.json()["stale"] is False
        progress_at = svc.clock.now()
        svc.clock.advance(timedelta(days=14, minutes=1))
        assert await _run_staleness(svc) == 1  # the first goal's new spell; other is not due
        assert await _run_staleness(svc) == 0

        stale = await svc.records("rhythm.goal.stale.v1", min_count=2)
        assert len(stale) == 2
        spells = sorted(decode(r).event.last_progress_at for r in stale)
        assert spells == [created_at, progress_at]
        # Each spell's ce_id is its natural key, so a re-report would be a visible duplicate.
        ids = {dict(r.headers)["ce_id"].decode() for r in stale}
        assert ids == {
            stale_event_id(svc.tenant, goal_id, created_at),
            stale_event_id(svc.tenant, goal_id, progress_at),
        }
        assert {decode(r).event.goal_id for r in stale} == {goal_id}
        other_goal = (await svc.client.get(f"/v1/goals/{other}", headers=svc.auth("ann"))).json()
        assert other_goal["stale"] is False


async def test_archived_closed_and_finished_goals_are_not_reported_stale(
    start_goals: StartGoals,
) -> None:
    async with start_goals() as svc:
        auth = svc.auth("ann")
        archived = (await svc.create("ann")).json()["goal_id"]
        achieved = (await svc.create("ann")).json()["goal_id"]
        await svc.create("ann", period_end="2026-03-10")  # over before it could go stale
        await svc.client.post(f"/v1/goals/{archived}/archive", headers=auth)
        await svc.client.post(
            f"/v1/goals/{achieved}/status", json={"status": "achieved"}, headers=auth
        )

        svc.clock.advance(timedelta(days=15))
        assert await _run_staleness(svc) == 1  # the finished one is claimed, not reported
        assert await _run_staleness(svc) == 0
        assert await svc.records("rhythm.goal.stale.v1", min_count=0, settle_s=1.0) == []
        async with svc.runtime.uow() as uow:
            due = (
                await uow.session.execute(
                    select(goals.c.goal_id).where(goals.c.next_stale_check_at.is_not(None))
                )
            ).all()
        assert due == []


async def test_two_replicas_running_the_staleness_job_at_once_never_report_a_goal_twice(
    start_goals: StartGoals, database_url: str
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite serialises writers; SKIP LOCKED sharing is PostgreSQL's")
    async with start_goals() as svc:
        first = (await svc.create("ann")).json()["goal_id"]
        svc.clock.advance(timedelta(seconds=1))
        second = (await svc.create("ann")).json()["goal_id"]
        svc.clock.advance(timedelta(days=15))
        async with svc.runtime.uow() as replica_a:
            assert await mark_stale_goals(replica_a, 1) == 1  # claims the older, holds the lock
            async with svc.runtime.uow() as replica_b:
                assert await mark_stale_goals(replica_b, 10) == 1  # skips it, takes the other
        assert await _run_staleness(svc) == 0
        stale = await svc.records("rhythm.goal.stale.v1", min_count=2)
        assert sorted(decode(r).event.goal_id for r in stale) == sorted([first, second])


async def test_late_and_repeated_people_events_change_nothing(start_goals: StartGoals) -> None:
    async with start_goals(consumers=True) as svc:
        send = {"topic_prefix": svc.topic_prefix}
        await publish_events(
            svc.bootstrap,
            [
                svc.unit("ou-platform", head_id="ceo"),
                svc.employee("ceo", org_unit_id="ou-platform"),
                svc.employee("mia", manager_id="ceo", org_unit_id="ou-platform"),
                svc.employee("sam", manager_id="ceo", org_unit_id="ou-platform"),
            ],
            **send,
        )
        older = svc.employee("ann", manager_id="mia", org_unit_id="ou-platform")
        svc.clock.advance(timedelta(hours=1))
        newer = svc.employee("ann", manager_id="sam", org_unit_id="ou-platform")
        (newer_id,) = await publish_events(svc.bootstrap, [newer], **send)
        assert await wait_for(lambda: _manager_of(svc, "ann"), timeout_s=30) == "sam"
        goal_id = (await svc.create("ann")).json()["goal_id"]

        # The HR platform retries the older upsert; and the newer one arrives twice.
        await publish_events(svc.bootstrap, [older], **send)
        await publish_events(svc.bootstrap, [newer], event_ids=[newer_id], **send)
        # A deactivation dated before ann's latest upsert is older than it: it does not hold.
        stale_leave = EmployeeDeactivated(
            tenant_id=svc.tenant,
            occurred_at=older.occurred_at,
            employee_id="ann",
            effective_at=older.occurred_at,
        )
        await publish_events(svc.bootstrap, [stale_leave], **send)
        # A fresh event after them tells us the consumer has passed them.
        await publish_events(svc.bootstrap, [svc.employee("zed", manager_id="mia")], **send)
        assert await wait_for(lambda: _manager_of(svc, "zed"), timeout_s=30) == "mia"

        assert await _manager_of(svc, "ann") == "sam"
        # Access follows the directory: the late event's manager gained nothing.
        for subject, expected in (("mia", 403), ("sam", 200)):
            response = await svc.client.patch(
                f"/v1/goals/{goal_id}", json={"title": f"by {subject}"}, headers=svc.auth(subject)
            )
            assert response.status_code == expected, subject
        goal = (await svc.client.get(f"/v1/goals/{goal_id}", headers=svc.auth("ann"))).json()
        assert goal["archived_at"] is None

        # A real deactivation archives the goal once, however often it arrives.
        svc.clock.advance(timedelta(minutes=1))
        leaves = EmployeeDeactivated(
            tenant_id=svc.tenant,
            occurred_at=svc.clock.now(),
            employee_id="ann",
            effective_at=svc.clock.now(),
        )
        (leave_id,) = await publish_events(svc.bootstrap, [leaves], **send)
        await publish_events(svc.bootstrap, [leaves], event_ids=[leave_id], **send)
        await publish_events(svc.bootstrap, [older], **send)  # older than the leave: it holds
        (archived,) = await svc.records("rhythm.goal.archived.v1", settle_s=3.0)
        assert decode(archived).event.goal_id == goal_id
        async with svc.runtime.uow() as uow:
            ann = await directory(uow, svc.tenant).person("ann")
        assert ann is not None
        assert not ann.active_at(svc.clock.now())
