"""HR writes race: a sync that arrives late with an older state never overwrites a newer one.

Two syncs of the same person can arrive out of order (a retry delayed behind an outage). Each
inbound route takes the source's version (``source_updated_at`` on HTTP and CSV; ETags on
SCIM, see test_scim.py), and a write older than the state stored is a no-op answered with the
current state. Real Kafka, SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_http import events_on_people, outbox_drained, state

from rhythm_people import cli
from rhythm_people.adapters import csv_file
from rhythm_people.main import Settings, build
from rhythm_shared.contracts.v1.people import EmployeeUpserted
from rhythm_shared.kit.app import running
from rhythm_shared.kit.clock import ManualClock
from rhythm_shared.testing import wait_for

pytestmark = pytest.mark.kafka

Auth = Callable[..., dict[str, str]]


def client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


async def test_an_older_http_write_is_a_no_op_answered_with_the_current_state(
    settings: Settings, tenant: str, clock: ManualClock, auth: Auth
) -> None:
    app = build(settings, clock=clock)
    async with running(app) as runtime, client(app) as http:
        h = auth(tenant)
        await http.put("/v1/people/org-units/ou-platform", json={"name": "Platform"}, headers=h)
        newer = state(display_name="Ana Jansen", source_updated_at="2026-03-02T10:00:00Z")
        first = await http.put("/v1/people/employees/e-1", json=newer, headers=h)
        assert first.status_code == 201, first.text

        # The retry of an earlier change, delayed behind an outage, arrives second.
        older = state(display_name="Ana de Vries", source_updated_at="2026-03-01T10:00:00+01:00")
        late = await http.put("/v1/people/employees/e-1", json=older, headers=h)
        assert late.status_code == 200, late.text
        assert late.json()["outcome"] == "stale"
        assert late.json()["employee"]["display_name"] == "Ana Jansen"
        assert late.json()["employee"]["source_updated_at"].startswith("2026-03-02T10:00:00")

        # In a batch as well; a write without a version is taken as the newest.
        batch = await http.post(
            "/v1/people/employees:batch",
            json={"employees": [{"employee_id": "e-1", **older}]},
            headers=h,
        )
        assert (batch.json()["stale"], batch.json()["items"][0]["outcome"]) == (1, "stale")
        unversioned = await http.put(
            "/v1/people/employees/e-1", json=state(display_name="Ana J."), headers=h
        )
        assert unversioned.json()["outcome"] == "updated"
        assert unversioned.json()["employee"]["source_updated_at"].startswith("2026-03-02")
        await wait_for(lambda: outbox_drained(runtime))
        found = await events_on_people(settings, min_count=3, settle_s=1.0)

    names = [e.event.display_name for _, e in found if isinstance(e.event, EmployeeUpserted)]
    assert names == ["Ana Jansen", "Ana J."]


async def test_a_newer_version_of_an_unchanged_state_still_fences_off_older_writes(
    settings: Settings, tenant: str, clock: ManualClock, auth: Auth
) -> None:
    app = build(settings, clock=clock)
    async with running(app), client(app) as http:
        h = auth(tenant)
        await http.put("/v1/people/org-units/ou-platform", json={"name": "Platform"}, headers=h)
        v1 = state(source_updated_at="2026-03-01T00:00:00Z")
        v3 = state(source_updated_at="2026-03-03T00:00:00Z")
        v2 = state(display_name="Ana Old", source_updated_at="2026-03-02T00:00:00Z")
        assert (await http.put("/v1/people/employees/e-1", json=v1, headers=h)).status_code == 201
        again = await http.put("/v1/people/employees/e-1", json=v3, headers=h)
        assert again.json()["outcome"] == "unchanged"
        late = await http.put("/v1/people/employees/e-1", json=v2, headers=h)
        assert late.json()["outcome"] == "stale"
        assert late.json()["employee"]["display_name"] == "Ana de Vries"


HEADER = ",".join(csv_file.ACCEPTED_COLUMNS)
UNIT = ",,,,ou-0,Acme,,,,,,"


def write(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "people.csv"
    path.write_text("\n".join([HEADER, *lines]) + "\n", encoding="utf-8")
    return path


def row(name: str, version: str) -> str:
    return f"e-1,ana@acme.example.com,{name},,ou-0,,,Europe/Amsterdam,nl,2020-01-01,,{version}"


async def test_an_older_csv_row_is_skipped_as_stale_and_a_newer_one_applies(
    settings: Settings, tenant: str, tmp_path: Path, clock: ManualClock
) -> None:
    first = await cli.run_import(
        write(tmp_path, [UNIT, row("Ana Jansen", "2026-03-02T10:00:00Z")]),
        tenant,
        settings=settings,
        clock=clock,
    )
    assert first.result is not None
    assert first.result.created == 2

    late = await cli.run_import(
        write(tmp_path, [UNIT, row("Ana de Vries", "2026-03-01T10:00:00Z")]),
        tenant,
        settings=settings,
        clock=clock,
    )
    assert late.result is not None
    assert (late.result.stale, late.result.updated, late.result.events) == (1, 0, 0)

    newer = await cli.run_import(
        write(tmp_path, [UNIT, row("Ana Smit", "2026-03-03T10:00:00Z")]),
        tenant,
        settings=settings,
        clock=clock,
    )
    assert newer.result is not None
    assert newer.result.updated == 1

    found = await events_on_people(settings, min_count=3, settle_s=1.0)
    names = [e.event.display_name for _, e in found if isinstance(e.event, EmployeeUpserted)]
    assert names == ["Ana Jansen", "Ana Smit"]


def test_a_csv_version_without_an_offset_is_refused_with_its_line(tmp_path: Path) -> None:
    parsed = csv_file.parse(write(tmp_path, [UNIT, row("Ana", "2026-03-02 10:00")]))
    assert [(e.line, e.column) for e in parsed.errors] == [(3, "source_updated_at")]
