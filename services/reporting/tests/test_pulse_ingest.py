"""Workload pulse from the internal topic: the public check-in events carry ``pulse: null`` unless
a tenant opts in, so reporting counts the scores from ``PulseRecorded`` (either order, never twice)
and still counts old public ones. Real Kafka, SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from reporting_harness import Reporting, StartReporting, publish_fast

from rhythm_shared.contracts.base import Event
from rhythm_shared.contracts.v1 import (
    CheckinCompleted,
    CheckinKind,
    EmployeeUpserted,
    Initiator,
    OrgUnitUpserted,
    PulseRecorded,
    PulseSource,
    ReflectionSubmitted,
)

pytestmark = pytest.mark.kafka

PEOPLE = [f"e{i}" for i in range(8)]
HELD = datetime(2026, 3, 10, 14, tzinfo=UTC)


def _org(tenant: str) -> list[Event]:
    at = datetime(2026, 1, 2, tzinfo=UTC)
    unit = OrgUnitUpserted(tenant_id=tenant, occurred_at=at, org_unit_id="ou-eng", name="Eng")
    return [
        unit,
        *(
            EmployeeUpserted(
                tenant_id=tenant,
                occurred_at=at,
                employee_id=p,
                email=f"{p}@example.com",
                display_name=p.upper(),
                manager_id="boss" if p != "boss" else None,
                org_unit_id="ou-eng",
                time_zone="UTC",
                locale="en",
                hired_on=date(2020, 1, 6),
                active=True,
            )
            for p in ["boss", *PEOPLE]
        ),
    ]


def _completed(tenant: str, person: str, pulse: int | None) -> CheckinCompleted:
    return CheckinCompleted(
        tenant_id=tenant,
        occurred_at=HELD + timedelta(minutes=30),
        checkin_id=f"c-{person}",
        kind=CheckinKind.MONTHLY,
        employee_id=person,
        manager_id="boss",
        held_at=HELD,
        initiated_by=Initiator.EMPLOYEE,
        pulse=pulse,
    )


def _pulse(tenant: str, person: str, pulse: int, source: PulseSource, at: datetime) -> Event:
    return PulseRecorded(
        tenant_id=tenant,
        occurred_at=at,
        employee_id=person,
        checkin_id=f"c-{person}",
        pulse=pulse,
        source=source,
    )


async def _publish(svc: Reporting, bootstrap: str, prefix: str, events: list[Event]) -> None:
    before = await svc.consumed()
    await svc.wait_consumed(before + await publish_fast(bootstrap, events, topic_prefix=prefix))


async def test_the_workload_dashboard_counts_pulses_from_the_internal_topic(
    start_reporting: StartReporting, kafka_bootstrap: str, topic_prefix: str, tenant: str
) -> None:
    t = tenant
    scores = {"e0": 1, "e1": 2, "e2": 2, "e3": 4, "e4": 5, "e5": 3}
    checkin = PulseSource.CHECKIN
    async with start_reporting() as svc:
        await _publish(svc, kafka_bootstrap, topic_prefix, _org(t))
        # Half the scores arrive before their check-in's public event, half after.
        early = [_pulse(t, p, s, checkin, HELD) for p, s in scores.items() if p < "e3"]
        await _publish(svc, kafka_bootstrap, topic_prefix, early)
        await _publish(
            svc,
            kafka_bootstrap,
            topic_prefix,
            [
                *(_completed(t, p, None) for p in scores),
                # A tenant that shares pulses: public and internal say the same; counted once.
                _completed(t, "e6", 4),
                _pulse(t, "e6", 4, checkin, HELD),
                # A record from before the internal topic: the public pulse alone.
                _completed(t, "e7", 3),
            ],
        )
        late = [_pulse(t, p, s, checkin, HELD) for p, s in scores.items() if p >= "e3"]
        reflected_at = HELD - timedelta(days=1)
        reflection = ReflectionSubmitted(
            tenant_id=t, occurred_at=reflected_at, employee_id="e0", checkin_id="c-e0", pulse=None
        )
        reflection_pulse = _pulse(t, "e0", 5, PulseSource.REFLECTION, reflected_at)
        await _publish(svc, kafka_bootstrap, topic_prefix, [*late, reflection, reflection_pulse])

        summary = (await svc.get("workload-pulse", unit="*", period="2026-03"))["summary"]
        answers = [*scores.values(), 4, 3, 5]
        assert summary["responses"] == len(answers)
        assert summary["average"] == round(sum(answers) / len(answers), 2)
