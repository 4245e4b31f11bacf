"""The rules of a people sync, without I/O."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from rhythm_people.adapters import csv_file
from rhythm_people.domain.model import (
    Employee,
    OrgUnit,
    StoredEmployee,
    check_sync,
    find_cycles,
    plan_sync,
)


def employee(eid: str, manager: str | None = None, unit: str = "ou-1", **kw: Any) -> Employee:
    fields: dict[str, Any] = {
        "employee_id": eid,
        "email": f"{eid}@acme.example.com",
        "display_name": f"Person {eid}",
        "manager_id": manager,
        "org_unit_id": unit,
        "time_zone": "Europe/Amsterdam",
        "locale": "nl",
        "hired_on": date(2024, 1, 1),
    }
    return Employee(**{**fields, **kw})


def unit(uid: str, parent: str | None = None) -> OrgUnit:
    return OrgUnit(org_unit_id=uid, name=f"Unit {uid}", parent_id=parent)


def problems(units: list[OrgUnit], people: list[Employee], **stored: Any) -> list[tuple[Any, ...]]:
    found = check_sync(
        units,
        people,
        unit_parents=stored.get("unit_parents", {}),
        employee_managers=stored.get("managers", {}),
    )
    return [(p.kind, p.index, p.field, p.msg) for p in found]


def test_a_consistent_sync_has_no_problems() -> None:
    assert problems([unit("ou-1")], [employee("e-1"), employee("e-2", "e-1")]) == []


def test_a_manager_may_be_known_from_stored_state() -> None:
    assert (
        problems([], [employee("e-2", "e-1")], unit_parents={"ou-1": None}, managers={"e-1": None})
        == []
    )


def test_an_unknown_manager_is_reported_on_its_item() -> None:
    assert problems([unit("ou-1")], [employee("e-1"), employee("e-2", "e-9")]) == [
        ("employee", 1, "manager_id", "unknown manager 'e-9'")
    ]


def test_an_unknown_org_unit_and_parent_are_reported() -> None:
    found = problems([unit("ou-2", "ou-x")], [employee("e-1", unit="ou-3")])
    assert ("org_unit", 0, "parent_id", "unknown org unit 'ou-x'") in found
    assert ("employee", 0, "org_unit_id", "unknown org unit 'ou-3'") in found


def test_a_manager_cycle_is_reported_on_every_member_in_the_sync() -> None:
    found = problems(
        [unit("ou-1")], [employee("e-1", "e-3"), employee("e-2", "e-1"), employee("e-3", "e-2")]
    )
    assert [(k, i, f) for k, i, f, _ in found] == [
        ("employee", 0, "manager_id"),
        ("employee", 1, "manager_id"),
        ("employee", 2, "manager_id"),
    ]
    assert "manager cycle: e-1 → e-3 → e-2 → e-1" in found[0][3]


def test_a_cycle_through_stored_state_is_found() -> None:
    # Stored: e-2 reports to e-1. The sync makes e-1 report to e-2.
    found = problems(
        [], [employee("e-1", "e-2")], unit_parents={"ou-1": None}, managers={"e-2": "e-1"}
    )
    assert found == [("employee", 0, "manager_id", "manager cycle: e-1 → e-2 → e-1")]


def test_own_manager_and_own_parent_are_refused() -> None:
    found = problems([unit("ou-1", "ou-1")], [employee("e-1", "e-1")])
    assert ("org_unit", 0, "parent_id", "an org unit cannot be its own parent") in found
    assert ("employee", 0, "manager_id", "an employee cannot be their own manager") in found


def test_a_unit_tree_cycle_is_refused() -> None:
    found = problems([unit("ou-1", "ou-2"), unit("ou-2", "ou-1")], [])
    assert {(k, i) for k, i, _, _ in found} == {("org_unit", 0), ("org_unit", 1)}


def test_an_id_twice_in_one_sync_is_refused() -> None:
    found = problems([unit("ou-1")], [employee("e-1"), employee("e-1")])
    assert found == [("employee", 1, "employee_id", "'e-1' appears more than once")]


def test_find_cycles_is_linear_on_a_long_chain() -> None:
    chain = {f"e-{i}": f"e-{i - 1}" if i else None for i in range(100_000)}
    assert find_cycles(chain, chain) == []


def test_unchanged_people_are_not_planned() -> None:
    stored = {"e-1": StoredEmployee(employee("e-1")), "e-2": StoredEmployee(employee("e-2"))}
    plan = plan_sync(
        [unit("ou-1")],
        [employee("e-1"), employee("e-2", display_name="Renamed"), employee("e-3")],
        stored_units={"ou-1": unit("ou-1")},
        stored_employees=stored,
    )
    assert [e.employee_id for e in plan.employees] == ["e-2", "e-3"]
    assert plan.units == []
    assert plan.unchanged_employees == 1
    assert plan.outcome("employee", "e-3", True) == "created"
    assert plan.outcome("employee", "e-2", True) == "updated"


def test_a_time_zone_must_be_iana() -> None:
    with pytest.raises(ValidationError, match="time_zone"):
        employee("e-1", time_zone="Mars/Olympus")


HEADER = ",".join(csv_file.COLUMNS)


def write(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "people.csv"
    path.write_text("\n".join([HEADER, *lines]) + "\n", encoding="utf-8")
    return path


def test_csv_rows_define_units_and_employees(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        ",,,,ou-0,Acme,,,,,",
        "e-1,ana@acme.example.com,Ana,,ou-1,Platform,ou-0,Europe/Amsterdam,nl,2020-01-01,",
        "e-2,bo@acme.example.com,Bo,e-1,ou-1,,,Europe/Amsterdam,en-GB,2021-02-03,false",
    )
    parsed = csv_file.parse(path)
    assert parsed.errors == []
    assert [(u.org_unit_id, u.parent_id) for u in parsed.units] == [
        ("ou-0", None),
        ("ou-1", "ou-0"),
    ]
    assert [(e.employee_id, e.manager_id, e.active) for e in parsed.employees] == [
        ("e-1", None, True),
        ("e-2", "e-1", False),
    ]
    assert parsed.unit_lines == [2, 3]
    assert parsed.employee_lines == [3, 4]


def test_csv_errors_carry_line_and_column(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "e-1,ana@acme.example.com,Ana,,ou-1,Platform,,Europe/Amsterdam,nl,2020-01-01,",
        "e-2,not-an-email,Bo,e-1,ou-1,,,Mars/Olympus,nl,2021-02-30,maybe",
        "e-3,cy@acme.example.com,,e-1,ou-1,Other name,,Europe/Amsterdam,nl,2021-02-03,",
    )
    errors = {(e.line, e.column) for e in csv_file.parse(path).errors}
    assert errors == {
        (3, "email"),
        (3, "time_zone"),
        (3, "hired_on"),
        (3, "active"),
        (4, "display_name"),
        (4, "org_unit_name"),
    }


def test_csv_with_unknown_columns_is_refused_before_any_row(tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    path.write_text("employee_id,emial\ne-1,x@y.com\n")
    errors = csv_file.parse(path).errors
    assert [e.line for e in errors] == [1, 1]
    assert "emial" in errors[0].column


def test_cross_row_problems_are_located_in_the_file(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "e-1,ana@acme.example.com,Ana,e-2,ou-1,Platform,,Europe/Amsterdam,nl,2020-01-01,",
        "e-2,bo@acme.example.com,Bo,e-1,ou-1,,,Europe/Amsterdam,nl,2021-02-03,",
        "e-3,cy@acme.example.com,Cy,e-9,ou-1,,,Europe/Amsterdam,nl,2021-02-03,",
    )
    parsed = csv_file.parse(path)
    found = check_sync(parsed.units, parsed.employees, unit_parents={}, employee_managers={})
    located = [(e.line, e.column) for e in parsed.locate(found)]
    assert located == [(2, "manager_id"), (3, "manager_id"), (4, "manager_id")]
