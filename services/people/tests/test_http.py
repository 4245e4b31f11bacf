"""HR systems push people over HTTP; what changed reaches rhythm.people.v1 (Kafka, both DBs)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from people_sealed import open_people

from rhythm_people.main import Settings, build
from rhythm_shared.contracts import topics
from rhythm_shared.contracts.envelope import from_record
from rhythm_shared.contracts.v1.people import (
    EmployeeDeactivated,
    EmployeeUpserted,
    OrgUnitUpserted,
)
from rhythm_shared.kit.app import running
from rhythm_shared.kit.clock import ManualClock
from rhythm_shared.testing import read_records, wait_for

pytestmark = pytest.mark.kafka

Auth = Callable[..., dict[str, str]]


def state(**overrides: Any) -> dict[str, Any]:
    return {
        "email": "ana.devries@acme.example.com",
        "display_name": "Ana de Vries",
        "org_unit_id": "ou-platform",
        "time_zone": "Europe/Amsterdam",
        "locale": "nl",
        "hired_on": "2023-09-01",
        **overrides,
    }


def client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


async def events_on_people(
    settings: Settings, min_count: int = 1, settle_s: float = 0.5
) -> list[Any]:
    records = await read_records(
        settings.kafka_bootstrap_servers,
        settings.topic(topics.PEOPLE),
        min_count=min_count,
        timeout_s=40,
        settle_s=settle_s,
    )
    # v2 upserts carry the name sealed: open them as an integrator with the key would.
    opened: list[Any] = await open_people(
        settings, [(r, from_record(r.headers, r.value)) for r in records]
    )
    return opened


async def outbox_drained(runtime: Any) -> bool:
    from sqlalchemy import func, select

    outbox = runtime.tables.outbox
    async with runtime.engine.connect() as conn:
        left = await conn.scalar(
            select(func.count()).where(outbox.c.published_at.is_(None)).select_from(outbox)
        )
    return bool(left == 0)


async def test_put_employee_publishes_one_event_keyed_by_tenant_and_employee(
    settings: Settings, tenant: str, clock: ManualClock, auth: Auth
) -> None:
    app = build(settings, clock=clock)
    async with running(app), client(app) as http:
        h = auth(tenant)
        unit = await http.put(
            "/v1/people/org-units/ou-platform", json={"name": "Platform"}, headers=h
        )
        assert unit.status_code == 201, unit.text
        created = await http.put("/v1/people/employees/e-1042", json=state(), headers=h)
        assert created.status_code == 201, created.text
        assert created.json()["outcome"] == "created"
        found = await events_on_people(settings, min_count=2)

    employees = [(r, e) for r, e in found if isinstance(e.event, EmployeeUpserted)]
    assert len(employees) == 1
    record, envelope = employees[0]
    assert record.key == f"{tenant}/e-1042".encode()
    assert envelope.type == "rhythm.employee.upserted.v2"
    assert envelope.source == "/rhythm/people"
    assert envelope.subject == "employee/e-1042"
    assert envelope.tenant_id == tenant
    assert envelope.time == clock.now()
    assert envelope.event.email == "ana.devries@acme.example.com"
    # Different keys may sit on different partitions: compare when they were produced.
    [unit_record] = [r for r, e in found if isinstance(e.event, OrgUnitUpserted)]
    assert unit_record.timestamp <= record.timestamp


async def test_an_unchanged_put_publishes_nothing(
    settings: Settings, tenant: str, clock: ManualClock, auth: Auth
) -> None:
    app = build(settings, clock=clock)
    async with running(app) as runtime, client(app) as http:
        h = auth(tenant)
        await http.put("/v1/people/org-units/ou-platform", json={"name": "Platform"}, headers=h)
        await http.put("/v1/people/employees/e-1", json=state(), headers=h)
        again = await http.put("/v1/people/employees/e-1", json=state(), headers=h)
        assert again.status_code == 200
        assert again.json()["outcome"] == "unchanged"
        moved = await http.put(
            "/v1/people/employees/e-1", json=state(display_name="Ana Jansen"), headers=h
        )
        assert moved.json()["outcome"] == "updated"
        await wait_for(lambda: outbox_drained(runtime))
        found = await events_on_people(settings, min_count=3, settle_s=1.0)

    names = [e.event.display_name for _, e in found if isinstance(e.event, EmployeeUpserted)]
    assert names == ["Ana de Vries", "Ana Jansen"]


async def test_bad_input_gets_field_level_422s_and_writes_nothing(
    settings: Settings, tenant: str, clock: ManualClock, auth: Auth
) -> None:
    app = build(settings, clock=clock)
    async with running(app) as runtime, client(app) as http:
        h = auth(tenant)
        bad = await http.put(
            "/v1/people/employees/e-1",
            json=state(email="nope", time_zone="Mars/Olympus"),
            headers=h,
        )
        assert bad.status_code == 422
        assert {tuple(d["loc"]) for d in bad.json()["detail"]} == {
            ("body", "email"),
            ("body", "time_zone"),
        }
        unknown = await http.put(
            "/v1/people/employees/e-1", json=state(manager_id="e-404"), headers=h
        )
        assert unknown.status_code == 422
        locs = [tuple(d["loc"]) for d in unknown.json()["detail"]]
        assert ("body", "manager_id") in locs
        assert ("body", "org_unit_id") in locs
        wrong_tenant = await http.put(
            "/v1/people/employees/e-1", json=state(tenant_id="someone-else"), headers=h
        )
        assert wrong_tenant.status_code == 422
        assert wrong_tenant.json()["detail"][0]["loc"] == ["body", "tenant_id"]
        assert await outbox_drained(runtime)
        async with runtime.engine.connect() as conn:
            from sqlalchemy import func, select

            assert await conn.scalar(select(func.count()).select_from(runtime.tables.outbox)) == 0


async def test_a_batch_is_all_or_nothing_with_per_item_errors(
    settings: Settings, tenant: str, clock: ManualClock, auth: Auth
) -> None:
    app = build(settings, clock=clock)
    async with running(app) as runtime, client(app) as http:
        h = auth(tenant)
        units = [{"org_unit_id": "ou-1", "name": "Company"}]
        people = [
            {"employee_id": "e-1", **state(org_unit_id="ou-1")},
            {"employee_id": "e-2", **state(org_unit_id="ou-1", manager_id="e-3")},
            {"employee_id": "e-3", **state(org_unit_id="ou-1", manager_id="e-2")},
            {"employee_id": "e-4", **state(org_unit_id="ou-1", manager_id="e-1", email="x")},
        ]
        refused = await http.post(
            "/v1/people/employees:batch", json={"org_units": units, "employees": people}, headers=h
        )
        assert refused.status_code == 422
        assert {tuple(d["loc"]) for d in refused.json()["detail"]} == {
            ("body", "employees", 3, "email"),
        }
        people[3] = {"employee_id": "e-4", **state(org_unit_id="ou-1", manager_id="e-1")}
        cycle = await http.post(
            "/v1/people/employees:batch", json={"org_units": units, "employees": people}, headers=h
        )
        assert cycle.status_code == 422
        assert {tuple(d["loc"]) for d in cycle.json()["detail"]} == {
            ("body", "employees", 1, "manager_id"),
            ("body", "employees", 2, "manager_id"),
        }
        async with runtime.uow() as uow:
            from sqlalchemy import func, select

            count = await uow.session.scalar(
                select(func.count()).select_from(runtime.tables.outbox)
            )
        assert count == 0

        people[2] = {"employee_id": "e-3", **state(org_unit_id="ou-1", manager_id="e-1")}
        ok = await http.post(
            "/v1/people/employees:batch",
            json={"org_units": units, "employees": people},
            headers={**h, "Idempotency-Key": "sync-1"},
        )
        assert ok.status_code == 200, ok.text
        assert ok.json()["created"] == 5
        assert ok.json()["events"] == 5
        replay = await http.post(
            "/v1/people/employees:batch",
            json={"org_units": units, "employees": people},
            headers={**h, "Idempotency-Key": "sync-1"},
        )
        assert replay.headers.get("Idempotent-Replayed") == "true"
        resync = await http.post(
            "/v1/people/employees:batch", json={"org_units": units, "employees": people}, headers=h
        )
        assert resync.json()["unchanged"] == 5
        assert resync.json()["events"] == 0
        found = await events_on_people(settings, min_count=5, settle_s=1.0)
    assert len(found) == 5


async def test_deactivation_is_published_once_and_reads_back(
    settings: Settings, tenant: str, clock: ManualClock, auth: Auth
) -> None:
    app = build(settings, clock=clock)
    async with running(app), client(app) as http:
        h = auth(tenant, "hr_admin", subject="hr-1")
        await http.put("/v1/people/org-units/ou-platform", json={"name": "Platform"}, headers=h)
        await http.put("/v1/people/employees/e-1", json=state(), headers=h)
        first = await http.post("/v1/people/employees/e-1:deactivate", headers=h)
        second = await http.post("/v1/people/employees/e-1:deactivate", headers=h)
        assert (first.json()["outcome"], second.json()["outcome"]) == ("updated", "unchanged")
        read = await http.get("/v1/people/employees/e-1", headers=h)
        assert read.json()["active"] is False
        assert read.json()["deactivated_at"] is not None
        renamed = await http.put(
            "/v1/people/employees/e-1", json=state(active=False, display_name="A"), headers=h
        )
        assert renamed.json()["employee"]["deactivated_at"] is not None
        back = await http.put("/v1/people/employees/e-1", json=state(), headers=h)
        assert back.json()["outcome"] == "updated"
        assert back.json()["employee"]["active"] is True
        assert back.json()["employee"]["deactivated_at"] is None
        found = await events_on_people(settings, min_count=5, settle_s=1.0)
    types = [type(e.event) for _, e in found]
    assert types.count(EmployeeDeactivated) == 1
    assert types.count(EmployeeUpserted) == 3


async def test_other_tenants_and_other_roles_are_kept_out(
    settings: Settings, tenant: str, clock: ManualClock, auth: Auth
) -> None:
    app = build(settings, clock=clock)
    async with running(app), client(app) as http:
        h = auth(tenant)
        await http.put("/v1/people/org-units/ou-platform", json={"name": "Platform"}, headers=h)
        await http.put("/v1/people/employees/e-1", json=state(), headers=h)
        other = auth("another-tenant")
        assert (await http.get("/v1/people/employees/e-1", headers=other)).status_code == 404
        assert (
            await http.post("/v1/people/employees/e-1:deactivate", headers=other)
        ).status_code == 404
        employee = auth(tenant, "employee", subject="e-1")
        assert (await http.get("/v1/people/employees/e-1", headers=employee)).status_code == 403
        assert (await http.get("/v1/people/employees/e-1")).status_code == 401
        page = await http.get("/v1/people/employees", headers=h, params={"limit": 10})
        assert [i["employee_id"] for i in page.json()["items"]] == ["e-1"]
        units = await http.get("/v1/people/org-units", headers=h)
        assert units.json()["items"][0]["name"] == "Platform"
