"""A name with control characters (CR/LF, TAB, ...) is refused at the people service's doors.

Names ride on ``EmployeeUpserted``/``OrgUnitUpserted`` into email headers, push titles and
filenames downstream; a CR/LF there once aborted a whole dispatch round of the notifications
service. So the HTTP API and the CSV import refuse such names, field by field, and write nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from rhythm_people import cli
from rhythm_people.adapters import csv_file
from rhythm_people.main import Settings, build
from rhythm_shared.kit.app import running
from rhythm_shared.kit.clock import ManualClock

pytestmark = pytest.mark.kafka

Auth = Callable[..., dict[str, str]]

HEADER = ",".join(csv_file.COLUMNS)
#: A display name that would add a header to an email built with it (header injection).
INJECTED = "Ana de Vries\r\nBcc: everyone@acme.example.com"


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


async def outbox_rows(runtime: Any) -> int:
    async with runtime.engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(runtime.tables.outbox)) or 0)


async def test_a_display_name_with_cr_lf_is_refused_by_the_api_and_nothing_is_written(
    settings: Settings, tenant: str, clock: ManualClock, auth: Auth
) -> None:
    app = build(settings, clock=clock)
    async with running(app) as runtime, client(app) as http:
        h = auth(tenant)
        unit = await http.put(
            "/v1/people/org-units/ou-platform", json={"name": "Platform"}, headers=h
        )
        assert unit.status_code == 201, unit.text
        before = await outbox_rows(runtime)

        put = await http.put(
            "/v1/people/employees/e-1", json=state(display_name=INJECTED), headers=h
        )
        assert put.status_code == 422, put.text
        [error] = put.json()["detail"]
        assert error["loc"] == ["body", "display_name"]
        assert "control character" in error["msg"]

        renamed = await http.put(
            "/v1/people/org-units/ou-platform", json={"name": "Plat\nform"}, headers=h
        )
        assert renamed.status_code == 422
        assert [d["loc"] for d in renamed.json()["detail"]] == [["body", "name"]]

        batch = await http.post(
            "/v1/people/employees:batch",
            json={
                "employees": [
                    {"employee_id": "e-1", **state()},
                    {"employee_id": "e-2", **state(display_name="Bo\tBerg")},
                ]
            },
            headers=h,
        )
        assert batch.status_code == 422
        assert [d["loc"] for d in batch.json()["detail"]] == [
            ["body", "employees", 1, "display_name"]
        ]
        assert await outbox_rows(runtime) == before


async def test_a_csv_row_with_a_control_character_in_a_name_imports_nothing(
    settings: Settings, tenant: str, tmp_path: Path, clock: ManualClock
) -> None:
    # A quoted cell may hold a newline in CSV; in a name it is refused, with its line.
    lines = [
        ",,,,ou-0,Acme,,,,,",
        "e-1,ceo@acme.example.com,Cleo,,ou-0,,,Europe/Amsterdam,nl,2015-01-01,",
        'e-2,ana@acme.example.com,"Ana\r\nBcc: x@evil.example.com",e-1,ou-0,,,'
        "Europe/Amsterdam,nl,2020-01-01,",
        'e-3,bo@acme.example.com,Bo,e-1,ou-1,"Sales\x00",ou-0,Europe/London,en-GB,2021-02-03,',
    ]
    path = tmp_path / "people.csv"
    path.write_text("\n".join([HEADER, *lines]) + "\n", encoding="utf-8", newline="")

    report = await cli.run_import(path, tenant, settings=settings, clock=clock)

    located = [(e.line, e.column) for e in report.errors]
    assert located == [(4, "display_name"), (6, "org_unit_name")]
    assert all("control character" in e.message for e in report.errors)
    assert report.published == 0
    app = build(settings.model_copy(update={"run_relay": False, "run_consumers": False}))
    async with running(app) as runtime:
        assert await outbox_rows(runtime) == 0
