"""Identity providers provision people over SCIM 2.0 (RFC 7643/7644) at /scim/v2.

The outside check is scim2-tester, run as its CLI (`scim2 --url … test`) against the people
service served by uvicorn on a free loopback port; the rest read the way Entra ID and Okta
write. Real Kafka, SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from test_http import events_on_people, state

from rhythm_people.main import Settings, build
from rhythm_shared.contracts.v1.people import (
    EmployeeDeactivated,
    EmployeeUpserted,
    OrgUnitUpserted,
)
from rhythm_shared.kit.app import running
from rhythm_shared.kit.clock import ManualClock

pytestmark = pytest.mark.kafka

Auth = Callable[..., dict[str, str]]
SCIM = "application/scim+json"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


def okta_user(user_name: str, **extra: Any) -> dict[str, Any]:
    """A User as Okta sends it: a name but no displayName, a primary email, extras."""
    return {
        "schemas": [USER, ENTERPRISE],
        "userName": user_name,
        "name": {"givenName": "Ana", "familyName": "de Vries"},
        "emails": [{"value": user_name, "type": "work", "primary": True}],
        "phoneNumbers": [{"value": "+31 20 000 0000", "type": "work"}],
        "timezone": "Europe/Amsterdam",
        "locale": "nl_NL",
        "active": True,
        "externalId": "00u1a2b3c4",
        ENTERPRISE: {"department": "Platform", "organization": "Acme", "costCenter": "42"},
        **extra,
    }


@contextlib.asynccontextmanager
async def serving(app: Any) -> AsyncIterator[str]:
    """The app on uvicorn on a free loopback port, as `rhythm serve` runs it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False)
    )
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:  # noqa: ASYNC110 (uvicorn offers no event)
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()


async def test_scim2_tester_passes_every_check_against_the_served_service(
    settings: Settings, tenant: str, auth: Auth
) -> None:
    app = build(settings)
    async with running(app), serving(app) as url:
        # The token rides in the environment: other users of a machine can read command lines.
        env = {**os.environ, "SCIM_CLI_HEADERS": f"Authorization: {auth(tenant)['Authorization']}"}
        scim2 = Path(sys.executable).parent / "scim2"
        process = await asyncio.create_subprocess_exec(
            str(scim2),
            "--url",
            f"{url}/scim/v2",
            "test",
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await asyncio.wait_for(process.communicate(), timeout=300)
    report = out.decode()
    outcomes = [line.split(" ", 1)[0] for line in report.splitlines() if line[:1].isupper()]
    failed = [line for line in report.splitlines() if line.startswith(("ERROR", "SKIPPED"))]
    assert failed == [], report
    assert outcomes.count("SUCCESS") >= 60, report
    assert process.returncode == 0, report


async def test_a_scim_created_user_is_an_employee_every_service_hears_of(
    settings: Settings, tenant: str, clock: ManualClock, auth: Auth
) -> None:
    app = build(settings, clock=clock)
    async with running(app), client(app) as http:
        h = {**auth(tenant), "Content-Type": SCIM}
        boss = await http.post("/scim/v2/Users", json=okta_user("cleo@acme.example.com"), headers=h)
        assert boss.status_code == 201, boss.text
        assert boss.headers["content-type"].startswith(SCIM)
        boss_id = boss.json()["id"]
        body = okta_user("ana@acme.example.com")
        body[ENTERPRISE]["manager"] = {"value": boss_id}
        created = await http.post("/scim/v2/Users", json=body, headers=h)
        assert created.status_code == 201, created.text
        ana = created.json()
        assert created.headers["location"].endswith(f"/scim/v2/Users/{ana['id']}")
        assert created.headers["etag"] == ana["meta"]["version"]
        assert ana["displayName"] == "Ana de Vries"  # from name: Okta sends no displayName
        assert ana["locale"] == "nl-NL"
        assert ana["externalId"] == "00u1a2b3c4"
        assert ana[ENTERPRISE]["manager"]["value"] == boss_id
        assert "phoneNumbers" not in ana  # not kept, so not served

        # The User's id is the employee id: the HR API knows the same person.
        hr = await http.get(f"/v1/people/employees/{ana['id']}", headers=auth(tenant))
        assert hr.status_code == 200, hr.text
        assert hr.json()["manager_id"] == boss_id
        found = await events_on_people(settings, min_count=4)

    upserted = [e.event for _, e in found if isinstance(e.event, EmployeeUpserted)]
    units = [e.event for _, e in found if isinstance(e.event, OrgUnitUpserted)]
    [event] = [e for e in upserted if e.employee_id == ana["id"]]
    assert (event.email, event.display_name, event.manager_id) == (
        "ana@acme.example.com",
        "Ana de Vries",
        boss_id,
    )
    assert (event.time_zone, event.locale, event.active) == ("Europe/Amsterdam", "nl-NL", True)
    # department → its unit, under the organization's unit (created once, on first mention).
    by_id = {u.org_unit_id: u for u in units}
    assert by_id[event.org_unit_id].name == "Platform"
    assert by_id[by_id[event.org_unit_id].parent_id or ""].name == "Acme"
    assert len(units) == 2


async def test_a_person_hr_created_is_found_by_email_and_served_under_their_employee_id(
    settings: Settings, tenant: str, clock: ManualClock, auth: Auth
) -> None:
    app = build(settings, clock=clock)
    async with running(app), client(app) as http:
        hr = auth(tenant)
        await http.put("/v1/people/org-units/ou-platform", json={"name": "Platform"}, headers=hr)
        await http.put("/v1/people/employees/e-1042", json=state(), headers=hr)
        match = await http.get(
            "/scim/v2/Users",
            params={"filter": 'userName eq "ana.devries@acme.example.com"'},
            headers=hr,
        )
        assert match.status_code == 200, match.text
        assert match.json()["totalResults"] == 1
        assert match.json()["Resources"][0]["id"] == "e-1042"

        # A directory that creates the person with their HR id links them, it does not copy.
        body = okta_user("ana@acme.example.com")
        body[ENTERPRISE] = {"employeeNumber": "e-1042", "department": "ou-platform"}
        linked = await http.post("/scim/v2/Users", json=body, headers=hr)
        assert linked.status_code == 201, linked.text
        assert linked.json()["id"] == "e-1042"
        again = await http.post("/scim/v2/Users", json=body, headers=hr)
        assert (again.status_code, again.json()["scimType"]) == (409, "uniqueness")
        hr_view = await http.get("/v1/people/employees/e-1042", headers=hr)
        assert hr_view.json()["org_unit_id"] == "ou-platform"  # department named it by id

        moved = await http.patch(
            "/scim/v2/Users/e-1042",
            json={
                "schemas": [PATCH],
                "Operations": [{"op": "replace", "path": "externalId", "value": "x-9"}],
            },
            headers=hr,
        )
        assert moved.status_code == 200, moved.text
        by_external = await http.get(
            "/scim/v2/Users", params={"filter": 'externalId eq "x-9"'}, headers=hr
        )
        assert [u["id"] for u in by_external.json()["Resources"]] == ["e-1042"]
        # The HR feed's next sync keeps the directory's names.
        await http.put("/v1/people/employees/e-1042", json=state(display_name="Ana J."), headers=hr)
        served = await http.get("/scim/v2/Users/e-1042", headers=hr)
        assert (served.json()["externalId"], served.json()["userName"]) == (
            "x-9",
            "ana@acme.example.com",
        )
        assert served.json()["displayName"] == "Ana J."


async def test_entra_style_patches_deactivate_and_a_delete_keeps_the_history(
    settings: Settings, tenant: str, clock: ManualClock, auth: Auth
) -> None:
    app = build(settings, clock=clock)
    async with running(app), client(app) as http:
        h = auth(tenant)
        created = await http.post(
            "/scim/v2/Users", json=okta_user("bo@acme.example.com"), headers=h
        )
        user_id = created.json()["id"]
        # Entra ID: capitalised ops, a filtered email path, attributes Rhythm does not keep.
        entra = {
            "schemas": [PATCH],
            "Operations": [
                {
                    "op": "Replace",
                    "path": 'emails[type eq "work"].value',
                    "value": "bo@acme.example.org",
                },
                {"op": "Replace", "path": "title", "value": "Engineer"},
                {"op": "Replace", "path": "active", "value": "False"},
            ],
        }
        patched = await http.patch(f"/scim/v2/Users/{user_id}", json=entra, headers=h)
        assert patched.status_code == 200, patched.text
        assert patched.json()["active"] is False
        assert patched.json()["emails"] == [{"value": "bo@acme.example.org", "type": "work"}]

        deleted = await http.delete(f"/scim/v2/Users/{user_id}", headers=h)
        assert deleted.status_code == 204, deleted.text
        gone = await http.get(f"/scim/v2/Users/{user_id}", headers=h)
        assert gone.status_code == 404
        assert gone.json()["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
        kept = await http.get(f"/v1/people/employees/{user_id}", headers=h)
        assert kept.status_code == 200
        assert kept.json()["active"] is False
        assert kept.json()["deactivated_at"] is not None
        found = await events_on_people(settings, min_count=4, settle_s=1.0)

    mine = [e.event for _, e in found if getattr(e.event, "employee_id", None) == user_id]
    assert [type(e).__name__ for e in mine] == [
        "EmployeeUpserted",
        "EmployeeUpserted",
        "EmployeeDeactivated",
    ]
    assert isinstance(mine[2], EmployeeDeactivated)


async def test_a_write_naming_a_stale_version_is_refused_with_412_and_changes_nothing(
    settings: Settings, tenant: str, clock: ManualClock, auth: Auth
) -> None:
    app = build(settings, clock=clock)
    async with running(app), client(app) as http:
        h = auth(tenant)
        created = await http.post(
            "/scim/v2/Users", json=okta_user("cy@acme.example.com"), headers=h
        )
        user_id, first = created.json()["id"], created.headers["etag"]
        operation = {"op": "replace", "path": "displayName", "value": "Cy Two"}
        rename = {"schemas": [PATCH], "Operations": [operation]}
        newer = await http.patch(
            f"/scim/v2/Users/{user_id}", json=rename, headers={**h, "If-Match": first}
        )
        assert newer.status_code == 200, newer.text
        assert newer.headers["etag"] != first

        # A delayed retry that read the first version: refused, the newer state stays.
        operation["value"] = "Cy Old"
        stale = await http.patch(
            f"/scim/v2/Users/{user_id}", json=rename, headers={**h, "If-Match": first}
        )
        assert stale.status_code == 412, stale.text
        assert stale.headers["content-type"].startswith(SCIM)
        put = await http.put(
            f"/scim/v2/Users/{user_id}",
            json=okta_user("cy@acme.example.com", displayName="Cy Old"),
            headers={**h, "If-Match": first},
        )
        assert put.status_code == 412
        assert (
            await http.delete(f"/scim/v2/Users/{user_id}", headers={**h, "If-Match": first})
        ).status_code == 412
        now = await http.get(f"/scim/v2/Users/{user_id}", headers=h)
        assert now.json()["displayName"] == "Cy Two"
        assert now.headers["etag"] == newer.headers["etag"]


async def test_scim_answers_its_own_errors_and_is_for_the_integration_role_only(
    settings: Settings, tenant: str, clock: ManualClock, auth: Auth
) -> None:
    app = build(settings, clock=clock)
    async with running(app), client(app) as http:
        anonymous = await http.get("/scim/v2/Users")
        assert anonymous.status_code == 401
        assert anonymous.headers["content-type"].startswith(SCIM)
        assert anonymous.json()["status"] == "401"
        for roles in (("hr_admin",), ("employee",)):
            refused = await http.get("/scim/v2/Users", headers=auth(tenant, *roles))
            assert refused.status_code == 403, roles
        h = auth(tenant)
        bad_filter = await http.get("/scim/v2/Users", params={"filter": 'title co "x"'}, headers=h)
        assert (bad_filter.status_code, bad_filter.json()["scimType"]) == (400, "invalidFilter")
        no_zone = okta_user("di@acme.example.com")
        del no_zone["timezone"]
        refused_user = await http.post("/scim/v2/Users", json=no_zone, headers=h)
        assert refused_user.status_code == 400, refused_user.text
        assert "timezone" in refused_user.json()["detail"]
        hostile = await http.post(
            "/scim/v2/Users",
            json=okta_user("eve@acme.example.com", displayName="Eve\r\nBcc: all@acme"),
            headers=h,
        )
        assert (hostile.status_code, hostile.json()["scimType"]) == (400, "invalidValue")
        taken = await http.post("/scim/v2/Users", json=okta_user("ed@acme.example.com"), headers=h)
        assert taken.status_code == 201
        twice = await http.post("/scim/v2/Users", json=okta_user("ed@acme.example.com"), headers=h)
        assert (twice.status_code, twice.json()["scimType"]) == (409, "uniqueness")
        # Another tenant's User is a 404, never a hint that it exists.
        other = await http.get(f"/scim/v2/Users/{taken.json()['id']}", headers=auth("other-co"))
        assert other.status_code == 404


async def test_users_page_by_start_index_and_count(
    settings: Settings, tenant: str, clock: ManualClock, auth: Auth
) -> None:
    app = build(settings, clock=clock)
    async with running(app), client(app) as http:
        h = auth(tenant)
        for i in range(5):
            body = okta_user(f"p{i}@acme.example.com")
            body[ENTERPRISE] = {"employeeNumber": f"e-{i}"}  # the HR id becomes the employee id
            assert (await http.post("/scim/v2/Users", json=body, headers=h)).status_code == 201
        page = await http.get("/scim/v2/Users", params={"startIndex": 2, "count": 2}, headers=h)
        assert page.json()["totalResults"] == 5
        assert (page.json()["startIndex"], page.json()["itemsPerPage"]) == (2, 2)
        assert [u["id"] for u in page.json()["Resources"]] == ["e-1", "e-2"]
        one = await http.get("/scim/v2/Users", params={"filter": 'id eq "e-3"'}, headers=h)
        assert [u["userName"] for u in one.json()["Resources"]] == ["p3@acme.example.com"]
