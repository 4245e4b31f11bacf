"""Reading an HR export (CSV) into org units and employees, with every bad cell located.

The format (UTF-8, comma-separated, a header row naming the columns in any order):

==================== ======== =========================================================
column               required meaning
==================== ======== =========================================================
employee_id          yes*     the employee's stable id (letters, digits, ``._:@-``)
email                yes*     work email address
display_name         yes*     name to address them by
manager_id           no       the direct manager's employee_id; empty at the top
org_unit_id          yes      the employee's org unit
org_unit_name        no       when given, the row also defines the unit: its name ...
parent_org_unit_id   no       ... and its parent unit (empty: a root unit)
time_zone            yes*     IANA zone, e.g. ``Europe/Amsterdam``
locale               yes*     BCP 47 tag, e.g. ``nl``, ``en-GB``
hired_on             yes*     first working day, ``YYYY-MM-DD``
active               no       true/false (also 1/0, yes/no); default true
source_updated_at    no       when HR last changed the person (ISO 8601 with offset, e.g.
                              ``2026-03-01T09:30:00Z``): a row older than the state the
                              service holds is skipped as stale
==================== ======== =========================================================

(*) A row with an empty ``employee_id`` defines only an org unit (a unit with no direct
members, such as a division): it needs ``org_unit_id`` and ``org_unit_name``; the employee
columns must then be empty. Every row that names a unit must name it the same way. References
(managers, units, parents) may point to rows anywhere in the file or to people and units the
service already holds. A unit's head is not a CSV column: the head set over HTTP is kept.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from pydantic import AwareDatetime, BaseModel, TypeAdapter, ValidationError

from rhythm_people.domain.model import Employee, OrgUnit, Problem

M = TypeVar("M", bound=BaseModel)

COLUMNS = (
    "employee_id",
    "email",
    "display_name",
    "manager_id",
    "org_unit_id",
    "org_unit_name",
    "parent_org_unit_id",
    "time_zone",
    "locale",
    "hired_on",
    "active",
)
#: An optional column beyond the HR export's own: the source's version of the row.
VERSION_COLUMN = "source_updated_at"
ACCEPTED_COLUMNS = (*COLUMNS, VERSION_COLUMN)
REQUIRED_COLUMNS = (
    "employee_id",
    "email",
    "display_name",
    "org_unit_id",
    "time_zone",
    "locale",
    "hired_on",
)
_EMPLOYEE_ONLY = (
    "email",
    "display_name",
    "manager_id",
    "time_zone",
    "locale",
    "hired_on",
    "active",
    "source_updated_at",
)
_OPTIONAL_EMPTY_IS_NONE = ("manager_id",)

#: Which CSV column a domain field comes from.
EMPLOYEE_COLUMN = {f: f for f in Employee.model_fields}
UNIT_COLUMN = {
    "org_unit_id": "org_unit_id",
    "name": "org_unit_name",
    "parent_id": "parent_org_unit_id",
}


_ID_HINT = "must start with a letter or digit and contain only letters, digits and ._:@-"
_PATTERN_HINTS = {
    "locale": "must be a BCP 47 language tag such as nl, en-GB or pt-BR",
    "time_zone": "must be an IANA time zone such as Europe/Amsterdam",
    **{name: _ID_HINT for name in ("employee_id", "manager_id", "org_unit_id", "parent_id")},
}


@dataclass(frozen=True)
class RowError:
    line: int
    column: str
    message: str


@dataclass
class ParsedFile:
    units: list[OrgUnit] = field(default_factory=list)
    unit_lines: list[int] = field(default_factory=list)
    employees: list[Employee] = field(default_factory=list)
    employee_lines: list[int] = field(default_factory=list)
    #: employee_id -> the row's source_updated_at, for rows that carry one.
    versions: dict[str, datetime] = field(default_factory=dict)
    errors: list[RowError] = field(default_factory=list)
    rows: int = 0

    def locate(self, problems: Iterable[Problem]) -> list[RowError]:
        """Where in the file each cross-row problem (reference, cycle, duplicate) is."""
        out = []
        for p in problems:
            if p.kind == "org_unit":
                line, column = self.unit_lines[p.index], UNIT_COLUMN.get(p.field or "", "")
            else:
                line, column = self.employee_lines[p.index], EMPLOYEE_COLUMN.get(p.field or "", "")
            out.append(RowError(line, column, p.msg))
        return sorted(out, key=lambda e: e.line)


def read_rows(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The header and every data row with the line it starts on (quoted newlines allowed)."""
    text = path.read_text(encoding="utf-8-sig")
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] = []
    rows: list[tuple[int, list[str]]] = []
    line = 1
    for record in reader:
        if not header:
            header = [h.strip() for h in record]
        elif any(cell.strip() for cell in record):
            rows.append((line, record))
        line = reader.line_num + 1
    return header, rows


def parse(
    path: Path,
    progress: Callable[[int], None] | None = None,
    total: Callable[[int], None] | None = None,
) -> ParsedFile:
    """Validate every row of ``path``; ``errors`` holds each bad cell with its line number."""
    out = ParsedFile()
    try:
        header, rows = read_rows(path)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        out.errors.append(RowError(0, "", f"cannot read {path}: {exc}"))
        return out
    out.rows = len(rows)
    if total:
        total(len(rows))
    unknown = [h for h in header if h not in ACCEPTED_COLUMNS]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if unknown:
        out.errors.append(
            RowError(
                1, ", ".join(unknown), f"unknown column(s); expected {', '.join(ACCEPTED_COLUMNS)}"
            )
        )
    if missing:
        out.errors.append(RowError(1, ", ".join(missing), "missing required column(s)"))
    if out.errors:
        return out
    index = {name: i for i, name in enumerate(header)}
    width = len(header)
    unit_defs: dict[str, tuple[int, OrgUnit]] = {}
    done = 0
    for line, record in rows:
        done += 1
        if progress and done % 5_000 == 0:
            progress(5_000)
        if len(record) != width:
            out.errors.append(RowError(line, "", f"{len(record)} cells, the header has {width}"))
            continue
        cells = {name: record[i].strip() for name, i in index.items()}
        unit = _unit(cells, line, out.errors)
        if unit is not None:
            seen = unit_defs.get(unit.org_unit_id)
            if seen is None:
                unit_defs[unit.org_unit_id] = (line, unit)
                out.units.append(unit)
                out.unit_lines.append(line)
            elif seen[1] != unit:
                out.errors.append(
                    RowError(
                        line,
                        "org_unit_name",
                        f"org unit {unit.org_unit_id!r} is defined differently on line {seen[0]}",
                    )
                )
        if not cells.get("employee_id"):
            if not cells.get("org_unit_name"):
                out.errors.append(
                    RowError(
                        line, "employee_id", "required (or org_unit_name, for a unit-only row)"
                    )
                )
            for name in _EMPLOYEE_ONLY:
                if cells.get(name):
                    out.errors.append(RowError(line, name, "must be empty on a unit-only row"))
            continue
        employee = _employee(cells, line, out.errors)
        version = _version(cells, line, out.errors)
        if employee is not None:
            out.employees.append(employee)
            out.employee_lines.append(line)
            if version is not None:
                out.versions[employee.employee_id] = version
    if progress:
        progress(done % 5_000)
    return out


def _unit(cells: dict[str, str], line: int, errors: list[RowError]) -> OrgUnit | None:
    if not cells.get("org_unit_name"):
        if cells.get("parent_org_unit_id"):
            errors.append(
                RowError(
                    line, "parent_org_unit_id", "only with org_unit_name (it defines the unit)"
                )
            )
        return None
    data = {
        "org_unit_id": cells.get("org_unit_id", ""),
        "name": cells["org_unit_name"],
        "parent_id": cells.get("parent_org_unit_id") or None,
    }
    return _validated(OrgUnit, data, line, UNIT_COLUMN, errors)


_INSTANT = TypeAdapter(AwareDatetime)


def _version(cells: dict[str, str], line: int, errors: list[RowError]) -> datetime | None:
    value = cells.get("source_updated_at")
    if not value:
        return None
    try:
        return _INSTANT.validate_python(value)
    except ValidationError:
        errors.append(
            RowError(
                line,
                "source_updated_at",
                f"must be a time with its offset such as 2026-03-01T09:30:00Z (got {value!r})",
            )
        )
        return None


def _employee(cells: dict[str, str], line: int, errors: list[RowError]) -> Employee | None:
    data: dict[str, Any] = {f: cells.get(f, "") for f in Employee.model_fields}
    for name in _OPTIONAL_EMPTY_IS_NONE:
        data[name] = data[name] or None
    if not data["active"]:
        del data["active"]
    return _validated(Employee, data, line, EMPLOYEE_COLUMN, errors)


def _validated(
    model: type[M],
    data: dict[str, Any],
    line: int,
    columns: dict[str, str],
    errors: list[RowError],
) -> M | None:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        for e in exc.errors(include_url=False):
            name = str(e["loc"][0]) if e["loc"] else ""
            value = data.get(name)
            if value in ("", None):
                msg = "required"
            elif e["type"] == "string_pattern_mismatch":
                msg = f"{_PATTERN_HINTS.get(name, e['msg'])} (got {value!r})"
            else:
                msg = f"{e['msg'].removeprefix('Value error, ')} (got {value!r})"
            errors.append(RowError(line, columns.get(name, name), msg))
        return None
