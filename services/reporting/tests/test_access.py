"""Who sees which dashboards: decided from the people directory, by its one rule.

The directory is fed by reporting's own ingest in the batch's transaction, so a late, older
``OrgUnitUpserted`` (an HR platform retrying) cannot hand a unit's figures to its former head.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from reporting_harness import StartReporting, publish_fast

from rhythm_reporting.domain.access import POLICY, ROUTES
from rhythm_shared.contracts.v1 import EmployeeUpserted, OrgUnitUpserted

pytestmark = pytest.mark.kafka

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def unit(
    tenant: str, unit_id: str, head: str | None, at: datetime, parent: str | None = None
) -> OrgUnitUpserted:
    return OrgUnitUpserted(
        tenant_id=tenant,
        occurred_at=at,
        org_unit_id=unit_id,
        name=unit_id.title(),
        parent_id=parent,
        head_id=head,
    )


def person(tenant: str, employee_id: str, manager: str | None, org_unit: str) -> EmployeeUpserted:
    return EmployeeUpserted(
        tenant_id=tenant,
        occurred_at=T0,
        employee_id=employee_id,
        email=f"{employee_id}@acme.example.com",
        display_name=employee_id.title(),
        manager_id=manager,
        org_unit_id=org_unit,
        time_zone="Europe/Amsterdam",
        locale="en",
        hired_on=datetime(2024, 1, 1).date(),
        active=True,
    )


def test_every_route_names_an_operation_of_the_policy() -> None:
    assert set(ROUTES.values()) <= set(POLICY)


async def test_a_unit_head_sees_their_unit_and_a_manager_or_role_alone_sees_nothing(
    start_reporting: StartReporting, kafka_bootstrap: str, topic_prefix: str, tenant: str
) -> None:
    later = T0 + timedelta(days=1)
    events = [
        unit(tenant, "root", None, T0),
        unit(tenant, "team", "lead", later, parent="root"),
        person(tenant, "boss", None, "root"),
        person(tenant, "lead", "boss", "team"),
        # mgr manages ana but heads no unit: that grants no unit's figures.
        person(tenant, "mgr", "boss", "team"),
        person(tenant, "ana", "mgr", "team"),
    ]
    async with start_reporting() as svc:
        count = await publish_fast(kafka_bootstrap, events, topic_prefix=topic_prefix)
        # The HR platform retries an older version of the team naming its former head.
        count += await publish_fast(
            kafka_bootstrap,
            [unit(tenant, "team", "mgr", T0, parent="root")],
            topic_prefix=topic_prefix,
        )
        await svc.wait_consumed(count)

        async def status(subject: str, *roles: str, unit_id: str = "team") -> int:
            response = await svc.client.get(
                "/v1/dashboards/cadence-adherence",
                params={"unit": unit_id},
                headers=svc.token(subject, *roles),
            )
            return int(response.status_code)

        assert await status("lead", "employee") == 200  # the directory, not the role, decides
        assert await status("lead", "employee", "manager", unit_id="root") == 403
        assert await status("lead", "employee", unit_id="*") == 403
        assert await status("mgr", "employee", "manager") == 403
        assert await status("boss", "employee", "manager") == 403  # manages, heads nothing
        assert await status("ana", "employee") == 403
        assert await status("lead", "integration") == 403  # an integration is not a person
        assert await status("hr", "hr_admin", unit_id="*") == 200
        assert await status("ceo", "executive") == 200
