"""People data comes in and goes out only through the integration and hr_admin roles."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from rhythm_people.domain.access import POLICY, ROUTES
from rhythm_people.main import Settings, build
from rhythm_shared.kit.access import Relationship
from rhythm_shared.kit.app import running
from rhythm_shared.kit.clock import ManualClock

pytestmark = pytest.mark.kafka

Auth = Callable[..., dict[str, str]]


def client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


def state(**overrides: Any) -> dict[str, Any]:
    return {
        "email": "ana@acme.example.com",
        "display_name": "Ana",
        "org_unit_id": "ou-platform",
        "hired_on": "2023-09-01",
        "time_zone": "Europe/Amsterdam",
        "locale": "nl",
        **overrides,
    }


def test_every_operation_is_for_the_integration_and_hr_admin_only() -> None:
    assert set(ROUTES.values()) == set(POLICY)
    people_data = {op: roles for op, roles in POLICY.items() if op != "provision_over_scim"}
    assert set(people_data.values()) == {
        frozenset({Relationship.INTEGRATION, Relationship.HR_ADMIN})
    }
    # SCIM is the identity provider's door alone (test_scim.py checks hr_admin is refused).
    assert POLICY["provision_over_scim"] == frozenset({Relationship.INTEGRATION})


async def test_a_person_or_an_executive_is_refused_every_read_and_write_even_about_themselves(
    settings: Settings, tenant: str, clock: ManualClock, auth: Auth
) -> None:
    app = build(settings, clock=clock)
    async with running(app), client(app) as http:
        hr = auth(tenant)
        await http.put("/v1/people/org-units/ou-platform", json={"name": "Platform"}, headers=hr)
        assert (
            await http.put("/v1/people/employees/e-1", json=state(), headers=hr)
        ).status_code == 201
        for roles in (("employee",), ("employee", "manager"), ("executive",)):
            h = auth(tenant, *roles, subject="e-1")
            calls = [
                http.get("/v1/people/employees/e-1", headers=h),
                http.get("/v1/people/employees", headers=h),
                http.get("/v1/people/org-units", headers=h),
                http.get("/v1/people/org-units/ou-platform", headers=h),
                http.put("/v1/people/employees/e-1", json=state(manager_id="e-1"), headers=h),
                http.put("/v1/people/org-units/ou-platform", json={"name": "Mine"}, headers=h),
                http.post("/v1/people/employees/e-1:deactivate", headers=h),
                http.post("/v1/people/employees:batch", json={"employees": []}, headers=h),
            ]
            for call in calls:
                response = await call
                assert response.status_code == 403, (roles, response.request.url, response.text)
        for role in ("integration", "hr_admin"):
            h = auth(tenant, role)
            assert (await http.get("/v1/people/employees/e-1", headers=h)).status_code == 200
