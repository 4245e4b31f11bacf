"""`rhythm people import`: all rows or none, then every change on rhythm.people.v1, units first."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from rhythm_people import cli
from rhythm_people.adapters import csv_file
from rhythm_people.adapters.db import employees, org_units
from rhythm_people.main import Settings, build
from rhythm_shared.contracts import topics
from rhythm_shared.contracts.envelope import from_record
from rhythm_shared.contracts.v1.people import OrgUnitUpserted
from rhythm_shared.contracts.v2 import EmployeeUpsertedV2
from rhythm_shared.kit.app import running
from rhythm_shared.kit.clock import ManualClock
from rhythm_shared.testing import read_records

pytestmark = pytest.mark.kafka

HEADER = ",".join(csv_file.COLUMNS)
GOOD = [
    ",,,,ou-0,Acme,,,,,",
    "e-1,ceo@acme.example.com,Cleo,,ou-0,,,Europe/Amsterdam,nl,2015-01-01,",
    "e-2,ana@acme.example.com,Ana,e-1,ou-1,Platform,ou-0,Europe/Amsterdam,nl,2020-01-01,",
    "e-3,bo@acme.example.com,Bo,e-2,ou-1,,,Europe/London,en-GB,2021-02-03,true",
    "e-4,cy@acme.example.com,Cy,e-2,ou-2,Sales,ou-0,America/New_York,en-US,2022-03-04,",
    "e-5,di@acme.example.com,Di,e-4,ou-2,,,America/New_York,en-US,2022-03-05,false",
]


def write(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "people.csv"
    path.write_text("\n".join([HEADER, *lines]) + "\n", encoding="utf-8")
    return path


async def counts(settings: Settings) -> tuple[int, int, int]:
    app = build(settings.model_copy(update={"run_relay": False, "run_consumers": False}))
    async with running(app) as runtime, runtime.engine.connect() as conn:
        return (
            await conn.scalar(select(func.count()).select_from(employees)) or 0,
            await conn.scalar(select(func.count()).select_from(org_units)) or 0,
            await conn.scalar(select(func.count()).select_from(runtime.tables.outbox)) or 0,
        )


async def test_a_file_with_a_bad_row_writes_nothing_and_names_the_lines(
    settings: Settings, tenant: str, tmp_path: Path, clock: ManualClock
) -> None:
    lines = [
        *GOOD,
        "e-6,not-an-email,Ed,e-2,ou-1,,,Europe/Amsterdam,nl,2023-01-01,",
        "e-7,ed@acme.example.com,Ed,e-99,ou-1,,,Europe/Amsterdam,nl,2023-01-01,",
    ]
    report = await cli.run_import(write(tmp_path, lines), tenant, settings=settings, clock=clock)
    assert [(e.line, e.column) for e in report.errors] == [(8, "email")]
    assert await counts(settings) == (0, 0, 0)

    # Field errors first; once the fields are right, the references are checked.
    lines[-2] = "e-6,ed6@acme.example.com,Ed,e-2,ou-1,,,Europe/Amsterdam,nl,2023-01-01,"
    report = await cli.run_import(write(tmp_path, lines), tenant, settings=settings, clock=clock)
    assert [(e.line, e.column, e.message) for e in report.errors] == [
        (9, "manager_id", "unknown manager 'e-99'")
    ]
    assert await counts(settings) == (0, 0, 0)


async def test_a_good_file_publishes_every_change_org_units_first(
    settings: Settings, tenant: str, tmp_path: Path, clock: ManualClock
) -> None:
    report = await cli.run_import(write(tmp_path, GOOD), tenant, settings=settings, clock=clock)
    assert report.errors == []
    # 3 units and 5 people, and each new person's data key on rhythm.keys.v1.
    assert report.published == 8 + 5
    assert report.result is not None
    assert report.result.created == 8

    records = await read_records(
        settings.kafka_bootstrap_servers, settings.topic(topics.PEOPLE), min_count=8, settle_s=0.5
    )
    envelopes = [(r, from_record(r.headers, r.value)) for r in records]
    assert len(envelopes) == 8
    unit_times = [r.timestamp for r, e in envelopes if isinstance(e.event, OrgUnitUpserted)]
    people = [(r, e.event) for r, e in envelopes if isinstance(e.event, EmployeeUpsertedV2)]
    assert len(unit_times) == 3
    assert len(people) == 5
    assert max(unit_times) <= min(r.timestamp for r, _ in people)
    assert {r.key.decode() for r, _ in people} == {f"{tenant}/e-{i}" for i in range(1, 6)}
    assert {e.employee_id: e.active for _, e in people}["e-5"] is False

    # The same file again (an HR full sync with no changes) publishes nothing.
    again = await cli.run_import(write(tmp_path, GOOD), tenant, settings=settings, clock=clock)
    assert again.published == 0
    assert again.result is not None
    assert again.result.unchanged == 8


def test_the_command_prints_a_table_and_exits_1_on_bad_rows(
    database_url: str,
    topic_prefix: str,
    kafka_bootstrap: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("KAFKA_TOPIC_PREFIX", topic_prefix)
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    bad = write(tmp_path, [*GOOD, "e-6,ed@acme.example.com,Ed,e-6,ou-1,,,Europe/Amsterdam,nl,x,"])
    result = CliRunner().invoke(cli.app, ["import", str(bad), "--tenant", "acme"])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "nothing was imported" in result.output
    assert "hired_on" in result.output

    good = write(tmp_path, GOOD)
    result = CliRunner().invoke(cli.app, ["import", str(good), "--tenant", "acme"])
    assert result.exit_code == 0, result.output
    assert "Imported" in result.output
