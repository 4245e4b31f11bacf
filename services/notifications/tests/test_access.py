"""Who may see and change what in notifications: decided from the directory, never the request.

Every impersonation is refused (403), and the directory behind those decisions follows the kit's
one rule on the real broker: a late, older upsert and a duplicated event change nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from notifications_harness import Service, StartService, employee

from rhythm_notifications.adapters import db
from rhythm_notifications.domain.access import POLICY, ROUTES
from rhythm_shared.contracts.v1 import EmployeeDeactivated
from rhythm_shared.testing import wait_for

pytestmark = pytest.mark.kafka

E = db.directory.employees
PUSH = {
    "endpoint": "https://push.example.net/wpush/v2/abc",
    "keys": {
        "auth": "tBHItJI5svbpez7KI4CCXg",
        "p256dh": "BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-"
        "Ts1XbjhazAkj7I99e8QcYP7DkM",
    },
}
WEBHOOK = {"url": "https://hr.example.com/hooks/1"}


def test_every_route_names_an_operation_of_the_policy() -> None:
    assert set(ROUTES.values()) <= set(POLICY)


async def _team(svc: Service) -> None:
    await svc.add_people(
        employee(svc.tenant, "mgr"),
        employee(svc.tenant, "ana", manager_id="mgr"),
        employee(svc.tenant, "cat", manager_id="mgr"),
    )


async def test_nobody_but_the_person_and_hr_reads_or_sets_their_preferences(
    start_service: StartService,
) -> None:
    async with start_service() as svc:
        await _team(svc)
        for who, roles in (("mgr", ("employee", "manager")), ("cat", ("employee",))):
            headers = svc.token(who, *roles)
            read = await svc.client.get("/v1/preferences?employee_id=ana", headers=headers)
            write = await svc.client.put(
                "/v1/preferences?employee_id=ana", json={"digest_hour": 7}, headers=headers
            )
            assert (read.status_code, write.status_code) == (403, 403), (who, read.text)
        # An integration naming ana as its own subject does not act as a person.
        as_ana = svc.token("ana", "integration")
        assert (
            await svc.client.get("/v1/preferences?employee_id=ana", headers=as_ana)
        ).status_code == 403
        for headers in (svc.token("ana"), svc.token("hr-1", "hr_admin")):
            assert (
                await svc.client.get("/v1/preferences?employee_id=ana", headers=headers)
            ).status_code == 200


async def test_a_peer_or_manager_sees_no_one_elses_deliveries_and_only_people_hold_push(
    start_service: StartService,
) -> None:
    async with start_service() as svc:
        await _team(svc)
        for who in ("mgr", "cat"):
            response = await svc.client.get(
                "/v1/deliveries?recipient_id=ana", headers=svc.token(who, "employee", "manager")
            )
            assert response.status_code == 403, (who, response.text)
        integration = svc.token("ana", "integration")
        assert (
            await svc.client.get("/v1/deliveries?recipient_id=ana", headers=integration)
        ).status_code == 200
        pushed = await svc.client.post("/v1/push-subscriptions", json=PUSH, headers=integration)
        assert pushed.status_code == 403, pushed.text
        hooked = await svc.client.post(
            "/v1/webhook-endpoints", json=WEBHOOK, headers=svc.token("ana", "employee", "manager")
        )
        assert hooked.status_code == 403, hooked.text


async def test_a_late_older_upsert_and_a_duplicate_change_nobody_in_the_directory(
    start_service: StartService,
) -> None:
    async with start_service() as svc:
        t = svc.tenant
        new = employee(t, "ana", manager_id="mgr-2", occurred_at=datetime(2026, 3, 2, tzinfo=UTC))
        [new_id] = await svc.publish([new])
        left = EmployeeDeactivated(
            tenant_id=t,
            occurred_at=datetime(2026, 3, 3, tzinfo=UTC),
            employee_id="ana",
            effective_at=datetime(2026, 3, 31, tzinfo=UTC),
        )
        await svc.publish([left])
        # The broker redelivers the newer profile; the HR platform retries an older one.
        await svc.publish([new], event_ids=[new_id])
        old = employee(t, "ana", manager_id="mgr-1", occurred_at=datetime(2026, 3, 1, tzinfo=UTC))
        [old_id] = await svc.publish([old])
        inbox = svc.runtime.tables.inbox

        async def consumed() -> bool:  # one key, one partition: everything before it is in
            return bool(await svc.rows(inbox, inbox.c.event_id == old_id))

        await wait_for(consumed, timeout_s=30)
        [row] = await svc.rows(E, E.c.tenant_id == t, E.c.employee_id == "ana")
        assert row.manager_id == "mgr-2"
        assert row.deactivated_at == datetime(2026, 3, 31, tzinfo=UTC)
        assert row.profile_event_id == new_id
