"""HTTP: the dashboard API under /v1/dashboards (JSON or CSV) and the dashboard page."""

from __future__ import annotations

import csv
import io
from collections.abc import Awaitable, Callable
from datetime import date, datetime
from importlib import resources
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from fastapi.encoders import jsonable_encoder
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from rhythm_reporting import queries
from rhythm_reporting.adapters.queries import Queries
from rhythm_reporting.domain.periods import Period, recent_periods
from rhythm_reporting.queries import DEFINITIONS, SUPPRESSION, Report, Scope
from rhythm_reporting.settings import Settings
from rhythm_shared.kit.auth import Principal
from rhythm_shared.kit.http import PrincipalDep, RuntimeDep
from rhythm_shared.kit.runtime import Runtime

#: What the dashboards read of the runtime: reporting's settings and read-only sessions.
DashboardRuntime = Runtime[Settings, Any, Any]

dashboards_router = APIRouter(prefix="/v1/dashboards", tags=["dashboards"])
dashboard_page_router = APIRouter(tags=["dashboard page"])

UnitQuery = Annotated[
    str | None,
    Query(
        max_length=128,
        description="Org unit whose subtree to show; '*' is the whole organisation. Default: "
        "the whole organisation for executives and HR, the first unit a manager heads.",
        examples=["ou-platform"],
    ),
]
PeriodQuery = Annotated[
    str | None,
    Query(
        max_length=7,
        description="A month (2026-03), quarter (2026-Q1) or year (2026), UTC. Default: the "
        "current quarter.",
        examples=["2026-Q1"],
    ),
]
FormatQuery = Annotated[
    Literal["json", "csv"],
    Query(alias="format", description="json (default) or csv (the table only)."),
]
LimitQuery = Annotated[
    int | None,
    Query(ge=1, le=10_000, description="At most this many rows (default 20; CSV: all)."),
]


class PeriodOut(BaseModel):
    label: str = Field(description="2026-03, 2026-Q1 or 2026.")
    start: date
    end: date


class ScopeOut(BaseModel):
    org_unit_id: str = Field(description="The unit; '*' is the whole organisation.")
    name: str
    people: int | None = Field(
        description="Current headcount; null when it is a small group (below MIN_GROUP_SIZE, "
        "5 by default) or would give one away."
    )


class ReportOut(BaseModel):
    """One dashboard metric: a headline summary and one table."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "metric": "cadence-adherence",
                    "definition": "Cadence adherence: ...",
                    "scope": {"org_unit_id": "ou-platform", "name": "Platform", "people": 48},
                    "period": {"label": "2026-Q1", "start": "2026-01-01", "end": "2026-03-31"},
                    "previous_period": {
                        "label": "2025-Q4",
                        "start": "2025-10-01",
                        "end": "2025-12-31",
                    },
                    "suppressed": False,
                    "summary": {"on_time_pct": 72.5, "change_on_time_pp": 4.1},
                    "columns": {"month": "YYYY-MM (UTC).", "on_time_pct": "% on time."},
                    "rows": [{"month": "2026-01", "on_time_pct": 70.0}],
                }
            ]
        }
    )

    metric: str
    definition: str = Field(description="What the numbers mean, in words.")
    scope: ScopeOut
    period: PeriodOut | None
    previous_period: PeriodOut | None = None
    suppressed: bool = Field(
        description="True when the scope's headline for the period is hidden: a small group "
        "(fewer than MIN_GROUP_SIZE people contributed) or one that would give a small group "
        "away. Rows say so each with their own suppressed."
    )
    summary: dict[str, Any] = Field(description="Headline numbers for the scope and period.")
    columns: dict[str, str] = Field(description="The table's columns and what each means.")
    rows: list[dict[str, Any]] = Field(description="The table (also as CSV: ?format=csv).")


class UnitsOut(ReportOut):
    periods: list[str] = Field(description="Periods the picker offers, most recent first.")
    default_period: str = Field(description="The current quarter.")


Compute = Callable[[Queries, Scope, Period, int, int | None], Awaitable[Report]]


#: What makes a spreadsheet read a cell as a formula (OWASP, "CSV Injection").
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, str):
        # Names come from HR feeds and users: a leading quote makes a would-be formula text.
        # Only text is touched, so a negative number stays a number.
        return f"'{value}" if value.startswith(_FORMULA_START) else value
    return str(value)


def render_csv(report: Report) -> Response:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    columns = list(report.columns)
    writer.writerow(columns)
    for row in report.rows:
        writer.writerow([_cell(row.get(c)) for c in columns])
    scope = report.scope.get("org_unit_id", "all").replace("*", "all")
    period = (report.period or {}).get("label", "now")
    return Response(
        buffer.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{report.metric}-{scope}-{period}.csv"'
        },
    )


async def _report(
    runtime: DashboardRuntime,
    principal: Principal,
    unit: str | None,
    period: str | None,
    compute: Compute,
    limit: int | None,
) -> Report:
    minimum = runtime.settings.min_group_size
    async with runtime.uow.read() as session:
        q = await Queries.open(await session.connection(), principal.tenant)
        scope = await queries.resolve_scope(q, principal, unit)
        chosen = queries.parse_period(period, Period.quarter_of(runtime.clock.now()))
        return await compute(q, scope, chosen, minimum, limit)


def _register(path: str, metric: str, summary: str, compute: Compute, *, limited: bool) -> None:
    description = (
        f"{DEFINITIONS[metric]}\n\n{SUPPRESSION}\n\nCSV: `?format=csv` or `{path}/export.csv`."
    )

    async def as_json_or_csv(
        principal: PrincipalDep,
        runtime: RuntimeDep,
        unit: UnitQuery = None,
        period: PeriodQuery = None,
        fmt: FormatQuery = "json",
        limit: LimitQuery = None,
    ) -> Response:
        rows = None if fmt == "csv" and limit is None else (limit or 20)
        report = await _report(runtime, principal, unit, period, compute, rows if limited else None)
        if fmt == "csv":
            return render_csv(report)
        return JSONResponse(jsonable_encoder(report.as_json()))

    async def as_csv(
        principal: PrincipalDep,
        runtime: RuntimeDep,
        unit: UnitQuery = None,
        period: PeriodQuery = None,
        limit: LimitQuery = None,
    ) -> Response:
        return render_csv(await _report(runtime, principal, unit, period, compute, limit))

    csv_response: dict[int | str, dict[str, Any]] = {
        200: {"content": {"text/csv": {}}, "description": "The table as CSV."}
    }
    dashboards_router.add_api_route(
        path,
        as_json_or_csv,
        methods=["GET"],
        summary=summary,
        description=description,
        response_model=ReportOut,
        responses={**csv_response, 403: {"description": "Not your part of the organisation."}},
        name=f"{metric}",
    )
    dashboards_router.add_api_route(
        f"{path}/export.csv",
        as_csv,
        methods=["GET"],
        summary=f"{summary} (CSV)",
        description=description,
        response_class=Response,
        responses=csv_response,
        name=f"{metric}-csv",
    )


def _unlimited(
    fn: Callable[[Queries, Scope, Period, int], Awaitable[Report]],
) -> Compute:
    async def compute(
        q: Queries, scope: Scope, period: Period, minimum: int, _: int | None
    ) -> Report:
        return await fn(q, scope, period, minimum)

    return compute


_register(
    "/cadence-adherence",
    "cadence-adherence",
    "Cadence adherence: % on time, late, missed; change; monthly trend",
    _unlimited(queries.cadence_adherence),
    limited=False,
)
_register(
    "/cadence-adherence/by-unit",
    "cadence-adherence-by-unit",
    "Cadence adherence of each unit below the selected one",
    _unlimited(queries.cadence_adherence_by_unit),
    limited=False,
)
_register(
    "/manager-adherence",
    "manager-adherence",
    "Managers whose teams miss most",
    queries.manager_adherence,
    limited=True,
)
_register(
    "/ownership",
    "ownership",
    "Ownership: share of check-ins initiated by employees",
    _unlimited(queries.ownership),
    limited=False,
)
_register(
    "/feedback",
    "feedback",
    "Feedback frequency per person, by unit",
    _unlimited(queries.feedback),
    limited=False,
)
_register(
    "/goals",
    "goals",
    "Goal progress distribution",
    _unlimited(queries.goals),
    limited=False,
)
_register(
    "/goals/attention",
    "goals-attention",
    "At-risk and stale goals",
    queries.goals_attention,
    limited=True,
)
_register(
    "/workload-pulse",
    "workload-pulse",
    "Workload pulse trend",
    _unlimited(queries.workload_pulse),
    limited=False,
)


async def _units(runtime: DashboardRuntime, principal: Principal) -> Report:
    minimum = runtime.settings.min_group_size
    async with runtime.uow.read() as session:
        q = await Queries.open(await session.connection(), principal.tenant)
        report = await queries.units(q, principal, minimum)
    now = runtime.clock.now()
    report.extra = {"periods": recent_periods(now), "default_period": Period.quarter_of(now).label}
    return report


@dashboards_router.get(
    "/units",
    summary="The org units you may look at (the unit picker)",
    description=f"{DEFINITIONS['units']}\n\nCSV: `?format=csv` or `/units/export.csv`.",
    response_model=UnitsOut,
    responses={200: {"content": {"text/csv": {}}}},
)
async def list_units(
    principal: PrincipalDep, runtime: RuntimeDep, fmt: FormatQuery = "json"
) -> Response:
    report = await _units(runtime, principal)
    if fmt == "csv":
        return render_csv(report)
    # Plain strings and numbers only (thousands of units): no need for jsonable_encoder's walk.
    return JSONResponse(report.as_json())


@dashboards_router.get(
    "/units/export.csv", summary="The org units you may look at (CSV)", response_class=Response
)
async def export_units(principal: PrincipalDep, runtime: RuntimeDep) -> Response:
    return render_csv(await _units(runtime, principal))


# -- the page -------------------------------------------------------------------------------------

_STATIC = resources.files("rhythm_reporting") / "static"
_TYPES = {"app.js": "text/javascript; charset=utf-8", "app.css": "text/css; charset=utf-8"}


@dashboard_page_router.get(
    "/dashboard",
    response_class=HTMLResponse,
    summary="The executive dashboard (HTML; sign in with /dashboard#token=... or paste a token)",
)
async def dashboard_page() -> HTMLResponse:
    return HTMLResponse((_STATIC / "dashboard.html").read_text(encoding="utf-8"))


@dashboard_page_router.get("/dashboard/{name}", include_in_schema=False)
async def dashboard_asset(name: Literal["app.js", "app.css"]) -> Response:
    return Response((_STATIC / name).read_text(encoding="utf-8"), media_type=_TYPES[name])
