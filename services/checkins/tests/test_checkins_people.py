"""People events through the real broker: late and repeated ones change nothing, and any order of
the same events leaves the same people and the same obligations owed."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from checkins_harness import MONTHLY_POLICY, CheckinsService, StartCheckins, employee
from sqlalchemy import select

from rhythm_checkins.adapters.db import directory, kit, obligations, planning
from rhythm_checkins.entrypoints.consumers import GROUP
from rhythm_shared.contracts.base import Event
from rhythm_shared.contracts.v1 import EmployeeDeactivated
from rhythm_shared.testing import publish_events, wait_for

pytestmark = pytest.mark.kafka


def at(day: int, hour: int = 8) -> datetime:
    return datetime(2026, 3, day, hour, tzinfo=UTC)


async def handled(svc: CheckinsService, event_ids: list[str]) -> bool:
    async with svc.runtime.uow() as uow:
        done = (
            await uow.session.scalars(
                select(kit.inbox.c.event_id).where(
                    kit.inbox.c.consumer == GROUP, kit.inbox.c.event_id.in_(event_ids)
                )
            )
        ).all()
    return set(done) == set(event_ids)


async def publish_and_wait(svc: CheckinsService, events: list[Event], ids: list[str]) -> None:
    await publish_events(svc.bootstrap, events, topic_prefix=svc.topic_prefix, event_ids=ids)
    await wait_for(lambda: handled(svc, ids))


async def state(svc: CheckinsService, tenant: str) -> dict[str, Any]:
    """What a person is to this service: the directory row, what is owed, when to plan."""
    e = directory.employees
    async with svc.runtime.uow() as uow:
        ana = (
            await uow.session.execute(
                select(
                    e.c.manager_id, e.c.time_zone, e.c.active, e.c.deactivated_at, e.c.profile_at
                ).where(e.c.tenant_id == tenant, e.c.employee_id == "ana")
            )
        ).one()
        owed = (
            await uow.session.execute(
                select(obligations.c.kind, obligations.c.period_start, obligations.c.manager_id)
                .where(
                    obligations.c.tenant_id == tenant,
                    obligations.c.employee_id == "ana",
                    obligations.c.state == "open",
                )
                .order_by(obligations.c.period_start)
            )
        ).all()
        plan_at = await uow.session.scalar(
            select(planning.c.plan_at).where(
                planning.c.tenant_id == tenant, planning.c.employee_id == "ana"
            )
        )
    return {"ana": tuple(ana), "owed": [tuple(o) for o in owed], "plan_at": plan_at}


async def test_a_late_older_upsert_and_a_redelivered_one_change_nothing(
    start_checkins: StartCheckins,
) -> None:
    async with start_checkins(consumers=True) as svc:
        t = svc.tenant
        await svc.set_policy()
        base = [employee(t, p, "boss", at=at(1)) for p in ("mia", "max")]
        await publish_and_wait(svc, base, ["p-mia", "p-max"])
        await publish_and_wait(svc, [employee(t, "ana", "mia", at=at(1))], ["ana-1"])
        moved = employee(t, "ana", "max", at=at(2))
        await publish_and_wait(svc, [moved], ["ana-2"])
        after_move = await state(svc, t)
        assert after_move["ana"][0] == "max"
        assert {o[2] for o in after_move["owed"]} == {"max"}
        # An HR platform retries an older write; the broker redelivers the newer one.
        late = employee(t, "ana", "mia", time_zone="America/New_York", at=at(1, 12))
        await publish_events(
            svc.bootstrap, [moved], topic_prefix=svc.topic_prefix, event_ids=["ana-2"]
        )
        await publish_and_wait(svc, [late], ["ana-late"])  # same key: after the redelivery
        assert await state(svc, t) == after_move


async def test_any_order_of_the_same_people_events_leaves_the_same_obligations(
    start_checkins: StartCheckins,
) -> None:
    async with start_checkins(consumers=True) as svc:
        first, second = svc.tenant, f"{svc.tenant}-b"
        for tenant in (first, second):
            policy = await svc.client.put(
                f"/v1/cadence/policies/tenant/{tenant}",
                json=MONTHLY_POLICY,
                headers=svc.auth("hr-1", "hr_admin", tenant=tenant),
            )
            assert policy.status_code == 200, policy.text

        def story(tenant: str) -> list[Event]:
            return [
                employee(tenant, "ana", "mia", at=at(1)),
                employee(tenant, "ana", "max", time_zone="Europe/London", at=at(2)),
                # She leaves mid-April: March is still owed, April is not.
                EmployeeDeactivated(
                    tenant_id=tenant,
                    occurred_at=at(3),
                    employee_id="ana",
                    effective_at=datetime(2026, 4, 15, tzinfo=UTC),
                ),
                # An older write arriving late, after the deactivation, does not undo it.
                employee(tenant, "ana", "mia", at=at(2, 6)),
            ]

        events = story(first)
        ids = [f"a-{i}" for i in range(len(events))]
        await publish_and_wait(svc, events, ids)
        # The other tenant gets them backwards, each twice.
        shuffled = list(reversed(story(second)))
        ids_b = [f"b-{i}" for i in reversed(range(len(shuffled)))]
        await publish_and_wait(svc, shuffled + shuffled, ids_b + ids_b)

        one, other = await state(svc, first), await state(svc, second)
        assert one == other
        assert one["ana"][:4] == ("max", "Europe/London", True, datetime(2026, 4, 15, tzinfo=UTC))
        assert one["owed"] == [("monthly", date(2026, 3, 1), "max")]
