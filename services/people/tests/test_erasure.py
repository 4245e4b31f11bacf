"""Data keys and erasure in the people service, on the real broker and both databases.

The other services' parts of an erasure are played here by publishing their ``PersonDataErased``
reports on the real privacy topic (tests/privacy/test_erasure.py runs the real services).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from people_sealed import data_keys, key_events, opened
from sqlalchemy import func, select
from test_http import client, outbox_drained, state
from typer.testing import CliRunner

from rhythm_people import cli
from rhythm_people.adapters.db import employees, kit, person_keys
from rhythm_people.domain.erasure import SERVICES
from rhythm_people.main import Settings, build
from rhythm_shared.contracts import topics
from rhythm_shared.contracts.envelope import from_record
from rhythm_shared.contracts.v1 import (
    EmployeeErased,
    EmployeeUpserted,
    PersonDataErased,
    PersonKeyDestroyed,
    PersonKeyIssued,
)
from rhythm_shared.contracts.v2 import EmployeeUpsertedV2
from rhythm_shared.kit import crypto
from rhythm_shared.kit.app import Runtime, running
from rhythm_shared.kit.clock import ManualClock
from rhythm_shared.testing import publish_events, read_records, wait_for

pytestmark = pytest.mark.kafka

Auth = Callable[..., dict[str, str]]

NAME, EMAIL = "Zelda Marker-Q7", "zelda.marker-q7@acme.example.com"


async def _setup(http: Any, h: dict[str, str]) -> None:
    await http.put("/v1/people/org-units/ou-platform", json={"name": "Platform"}, headers=h)
    put = await http.put(
        "/v1/people/employees/e-1", json=state(display_name=NAME, email=EMAIL), headers=h
    )
    assert put.status_code == 201, put.text


async def _people_records(settings: Settings, min_count: int) -> list[Any]:
    return await read_records(
        settings.kafka_bootstrap_servers,
        settings.topic(topics.PEOPLE),
        min_count=min_count,
        timeout_s=40,
        settle_s=0.5,
    )


async def _report(settings: Settings, tenant: str, erasure_id: str, *services: str) -> None:
    """The other services report their part done, as each would on rhythm.privacy.v1."""
    await publish_events(
        settings.kafka_bootstrap_servers,
        [
            PersonDataErased(
                tenant_id=tenant,
                occurred_at=datetime.now(UTC),
                employee_id="e-1",
                erasure_id=erasure_id,
                service=s,
            )
            for s in services
        ],
        topic_prefix=settings.kafka_topic_prefix,
    )


async def test_a_person_gets_one_data_key_whatever_the_route_and_however_often(
    settings: Settings, tenant: str, clock: ManualClock, auth: Auth
) -> None:
    app = build(settings, clock=clock)
    async with running(app) as runtime, client(app) as http:
        h = auth(tenant)
        await _setup(http, h)
        await http.put("/v1/people/employees/e-1", json=state(display_name="Zelda B"), headers=h)
        batch = await http.post(
            "/v1/people/employees:batch",
            json={"employees": [{"employee_id": "e-1", **state(display_name="Zelda C")}]},
            headers=h,
        )
        assert batch.status_code == 200, batch.text
        await wait_for(lambda: outbox_drained(runtime))
        keys = await key_events(settings, min_count=1)
        async with runtime.engine.connect() as conn:
            stored = await conn.scalar(select(func.count()).select_from(person_keys))

    issued = [e.event for e in keys if isinstance(e.event, PersonKeyIssued)]
    assert [k.employee_id for k in issued] == ["e-1"]
    assert stored == 1
    assert issued[0].wrapped_key.startswith("rkw1.")


async def test_upserts_go_out_as_v2_with_the_name_and_address_sealed(
    settings: Settings, tenant: str, clock: ManualClock, auth: Auth
) -> None:
    app = build(settings, clock=clock)
    async with running(app) as runtime, client(app) as http:
        await _setup(http, auth(tenant))
        await wait_for(lambda: outbox_drained(runtime))
        records = await _people_records(settings, min_count=2)
        keys = await data_keys(settings)

    people = [r for r in records if r.key == f"{tenant}/e-1".encode()]
    assert len(people) == 1
    raw = people[0].value + b"".join(v for _, v in people[0].headers)
    for plain in (NAME.encode(), EMAIL.encode(), b"Zelda", b"marker-q7"):
        assert plain.lower() not in raw.lower()
    envelope = from_record(people[0].headers, people[0].value)
    assert envelope.type == EmployeeUpsertedV2.type
    event = envelope.event
    assert isinstance(event, EmployeeUpsertedV2)
    # With the key from rhythm.keys.v1 (unwrapped with the key-encryption key) they open...
    clear = opened(event, keys[(tenant, "e-1")])
    assert (clear.display_name, str(clear.email)) == (NAME, EMAIL)
    # ...and a value moved to another field does not (the associated data names the field).
    with pytest.raises(crypto.Unreadable):
        crypto.unseal(
            keys[(tenant, "e-1")],
            event.sealed.email,
            tenant_id=tenant,
            employee_id="e-1",
            field="display_name",
        )


async def _rows_naming(runtime: Runtime, marker: str) -> dict[str, int]:
    like = f"%{marker}%"
    async with runtime.engine.connect() as conn:
        return {
            "employees": int(
                await conn.scalar(
                    select(func.count())
                    .select_from(employees)
                    .where(employees.c.display_name.like(like) | employees.c.email.like(like))
                )
                or 0
            ),
            "outbox": int(
                await conn.scalar(
                    select(func.count())
                    .select_from(kit.outbox)
                    .where(kit.outbox.c.payload.like(like) | kit.outbox.c.key.like(f"%/{marker}"))
                )
                or 0
            ),
            "idempotency": int(
                await conn.scalar(
                    select(func.count())
                    .select_from(kit.idempotency)
                    .where(kit.idempotency.c.response.like(like))
                )
                or 0
            ),
        }


async def test_an_erasure_destroys_the_key_deletes_the_person_and_completes_with_every_service(
    settings: Settings, tenant: str, clock: ManualClock, auth: Auth
) -> None:
    app = build(settings, clock=clock)
    async with running(app) as runtime, client(app) as http:
        h = auth(tenant, "hr_admin")
        await http.put("/v1/people/org-units/ou-platform", json={"name": "Platform"}, headers=h)
        put = await http.put(
            "/v1/people/employees/e-1",
            json=state(display_name=NAME, email=EMAIL),
            headers={**h, "Idempotency-Key": "k-1"},
        )
        assert put.status_code == 201
        report = await http.put(
            "/v1/people/employees/e-2",
            json=state(email="bo@acme.example.com", manager_id="e-1"),
            headers=h,
        )
        assert report.status_code == 201
        await wait_for(lambda: outbox_drained(runtime))
        assert (await _rows_naming(runtime, "Marker-Q7"))["employees"] == 1
        assert (await _rows_naming(runtime, "Marker-Q7"))["idempotency"] == 1

        started = await http.post("/v1/people/employees/e-1:erase", headers=h)
        assert started.status_code == 202, started.text
        erasure_id = started.json()["erasure_id"]
        assert started.headers["location"] == f"/v1/people/erasures/{erasure_id}"

        # What the people service held of her is gone in that transaction.
        assert await _rows_naming(runtime, "Marker-Q7") == {
            "employees": 0,
            "outbox": 0,
            "idempotency": 0,
        }
        async with runtime.engine.connect() as conn:
            key_row = (await conn.execute(select(person_keys))).all()
        [her_key] = [k for k in key_row if k.employee_id == "e-1"]
        assert her_key.wrapped_key is None
        assert her_key.destroyed_at is not None
        gone = await http.get("/v1/people/employees/e-1", headers=h)
        assert gone.status_code == 404

        first = (await http.get(f"/v1/people/erasures/{erasure_id}", headers=h)).json()
        assert first["state"] == "in_progress"
        assert first["services"]["people"]["state"] == "erased"
        assert {s for s, p in first["services"].items() if p["state"] == "pending"} == {
            "goals",
            "checkins",
            "notifications",
            "reporting",
        }

        # A second request follows the first erasure.
        again = await http.post("/v1/people/employees/e-1:erase", headers=h)
        assert again.status_code == 202
        assert again.json() == {"erasure_id": erasure_id}

        await _report(settings, tenant, erasure_id, "goals", "checkins", "notifications")

        async def three_more() -> bool:
            got = (await http.get(f"/v1/people/erasures/{erasure_id}", headers=h)).json()
            return bool(sum(p["state"] == "erased" for p in got["services"].values()) == 4)

        await wait_for(three_more, timeout_s=30)
        assert (await http.get(f"/v1/people/erasures/{erasure_id}", headers=h)).json()[
            "state"
        ] == "in_progress"
        await _report(settings, tenant, erasure_id, "reporting", "reporting")

        async def completed() -> bool:
            got = (await http.get(f"/v1/people/erasures/{erasure_id}", headers=h)).json()
            return bool(got["state"] == "completed")

        await wait_for(completed, timeout_s=30)
        done = (await http.get(f"/v1/people/erasures/{erasure_id}", headers=h)).json()
        assert set(done["services"]) == set(SERVICES)
        assert done["completed_at"] is not None

        # An erased id is never used again; her report may still name her as manager.
        back = await http.put(
            "/v1/people/employees/e-1", json=state(display_name=NAME, email=EMAIL), headers=h
        )
        assert back.status_code == 409
        assert "'e-1' was erased" in back.json()["detail"]
        moved = await http.put(
            "/v1/people/employees/e-2",
            json=state(email="bo@acme.example.com", manager_id="e-1", locale="en"),
            headers=h,
        )
        assert moved.status_code == 200, moved.text
        await wait_for(lambda: outbox_drained(runtime))
        keys = await key_events(settings, min_count=3)
        people = [from_record(r.headers, r.value) for r in await _people_records(settings, 4)]

    hers = [e.event for e in keys if getattr(e.event, "employee_id", None) == "e-1"]
    assert isinstance(hers[-1], PersonKeyDestroyed)
    erased = [e.event for e in people if isinstance(e.event, EmployeeErased)]
    assert [(e.employee_id, e.erasure_id) for e in erased] == [("e-1", erasure_id)]
    assert not any(isinstance(e.event, EmployeeUpserted) for e in people)


async def test_erasure_is_for_hr_and_the_integration_and_needs_a_known_person(
    settings: Settings, tenant: str, clock: ManualClock, auth: Auth
) -> None:
    app = build(settings, clock=clock)
    async with running(app), client(app) as http:
        await _setup(http, auth(tenant))
        refused = await http.post(
            "/v1/people/employees/e-1:erase", headers=auth(tenant, "employee", "manager")
        )
        assert refused.status_code == 403
        unknown = await http.post("/v1/people/employees/e-404:erase", headers=auth(tenant))
        assert unknown.status_code == 404
        elsewhere = await http.post("/v1/people/employees/e-1:erase", headers=auth("other-t"))
        assert elsewhere.status_code == 404
        started = await http.post("/v1/people/employees/e-1:erase", headers=auth(tenant))
        erasure_id = started.json()["erasure_id"]
        assert (
            await http.get(f"/v1/people/erasures/{erasure_id}", headers=auth("other-t"))
        ).status_code == 404


async def test_the_command_follows_the_erasure_until_every_service_reported(
    settings: Settings, tenant: str, clock: ManualClock, auth: Auth
) -> None:
    app = build(settings, clock=clock)
    lines: list[str] = []
    async with running(app) as runtime, client(app) as http:
        await _setup(http, auth(tenant))
        await wait_for(lambda: outbox_drained(runtime))
        # The running service records the reports; the command only waits for them.
        reported: list[bool] = []

        def say(line: str) -> None:
            lines.append(line)
            if "1/5" in line and not reported:
                reported.append(True)
                erasure_id = line.split()[1].rstrip(":")
                asyncio.get_running_loop().create_task(
                    _report(settings, tenant, erasure_id, *SERVICES[1:])
                )

        final = await cli.run_erase(
            "e-1", tenant, settings=settings, say=say, timeout_s=60, poll_s=0.2, clock=clock
        )
    assert final.state == "completed"
    assert lines[0].startswith(f"erasure {final.erasure_id} of e-1 started")
    assert (
        lines[1] == f"erasure {final.erasure_id}: 1/5 services done (people); "
        "waiting for goals, checkins, notifications, reporting"
    )
    assert lines[-1] == f"erasure {final.erasure_id}: 5/5 services done ({', '.join(SERVICES)})"


def test_the_command_says_what_is_missing_without_a_traceback(
    database_url: str,
    topic_prefix: str,
    kafka_bootstrap: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("KAFKA_TOPIC_PREFIX", topic_prefix)
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    monkeypatch.setenv("ENVIRONMENT", "development")
    unknown = CliRunner().invoke(cli.app, ["erase", "e-404", "--tenant", "acme"])
    assert unknown.exit_code == 1
    assert "Traceback" not in unknown.output
    assert "'e-404' not found" in unknown.output
    bad = CliRunner().invoke(cli.app, ["erase", "e/1", "--tenant", "acme"])
    assert bad.exit_code == 2
    assert "not a valid id" in bad.output
