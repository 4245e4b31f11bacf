"""The dashboard's questions, answered from the read model (read-side use cases).

Each function returns a :class:`Report`: a headline ``summary`` and one table (``rows``, with
``columns`` described), which the HTTP layer renders as JSON or CSV. Definitions live in
:data:`DEFINITIONS` and are shown in the OpenAPI docs and in each report.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rhythm_reporting.adapters.db import OBLIGATION_COUNTS, UNIT_GOAL_COUNTS, UNIT_MONTH_COUNTS
from rhythm_reporting.adapters.queries import Queries, Row
from rhythm_reporting.domain import access
from rhythm_reporting.domain.metrics import adherence, change, pct, ratio, suppressed, total
from rhythm_reporting.domain.periods import Period
from rhythm_reporting.domain.projection import BASIS_POINTS, TENANT
from rhythm_shared.kit.access import (
    Relationship,
    acts_as_person,
    allowed,
    require,
    role_relationships,
)
from rhythm_shared.kit.auth import Principal
from rhythm_shared.kit.errors import Forbidden, InvalidInput, NotFound

DEFINITIONS = {
    "cadence-adherence": (
        "Cadence adherence: of the obligations (owed check-ins) due in the period (by due time, "
        "UTC month) that are resolved, the share completed on time (check-in held by the due "
        "time), late (held after it, even after a miss) and missed (declared missed, never "
        "held). Obligations neither held nor missed yet are 'open' and not in the shares. "
        "Change: percentage points against the previous period of the same length. Trend: the "
        "12 months ending with the period. An obligation counts against the unit the employee "
        "was in at its due time."
    ),
    "cadence-adherence-by-unit": (
        "Cadence adherence (as above) for each unit directly below the selected one (below its "
        "only child, when it has just one), each including its whole subtree."
    ),
    "manager-adherence": (
        "Manager adherence: for each manager in the selected unit's subtree (by the manager's "
        "own unit now), the obligations of their direct reports due in the period and the share "
        "missed, late and on time; sorted by the share missed, highest first: leadership sets "
        "the example. Managers with fewer than 5 direct reports are suppressed."
    ),
    "ownership": (
        "Ownership: the share of check-ins held in the period that the employee initiated "
        "(rather than the manager). Trend: the 12 months ending with the period."
    ),
    "feedback": (
        "Feedback frequency per person: feedback given (and received) by the people of each unit "
        "directly below the selected one (below its only child, when it has just one), divided "
        "by its current headcount and by the months in the period. Praise share: praise among "
        "the feedback given."
    ),
    "goals": (
        "Goal progress distribution: goals whose period overlaps the selected one (withdrawn, "
        "superseded or orphaned goals excluded), by their latest progress in 20 % buckets; "
        "with the average progress and confidence, and how many are at risk, off track or "
        "stale. A goal counts in the unit of its owner (a person's unit when it was created)."
    ),
    "goals-attention": (
        "At-risk and stale goals: goals visible to the tenant whose period overlaps the selected "
        "one and whose status is at_risk or off_track, or that went stale (no progress within "
        "their update interval, as the goals service reported with GoalStale, and none since)."
    ),
    "workload-pulse": (
        "Workload pulse: the 1-5 answers (1 far too little, 3 about right, 5 far too much) given "
        "in completed check-ins and in self-reflections, per month: the number of answers, the "
        "average and the share of 4-5 (too much) and 1-2 (too little). A month with fewer than "
        "5 answers is suppressed."
    ),
    "units": (
        "The org units the caller may look at (executives and HR: the whole tenant, '*'; "
        "unit heads: the units they head and everything below), with current headcounts."
    ),
}
SUPPRESSION = (
    "Any group of fewer than 5 people (headcount of a unit's subtree now, or a manager's direct "
    "reports) is suppressed: its values are null and suppressed is true."
)


#: Up to this many people, a list is built from the scope's units rather than by walking the
#: tenant-wide ranking index (which pays off only when most rows are in scope).
SMALL_SCOPE = 5_000


@dataclass
class Report:
    metric: str
    scope: dict[str, Any]
    period: dict[str, Any] | None
    summary: dict[str, Any]
    columns: dict[str, str]
    rows: list[dict[str, Any]]
    suppressed: bool = False
    previous_period: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def definition(self) -> str:
        return DEFINITIONS[self.metric]

    def as_json(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "definition": self.definition,
            "scope": self.scope,
            "period": self.period,
            "previous_period": self.previous_period,
            "suppressed": self.suppressed,
            "summary": self.summary,
            "columns": self.columns,
            "rows": self.rows,
            **self.extra,
        }


@dataclass(frozen=True)
class Scope:
    org_unit_id: str
    name: str
    people: int


def _period_json(period: Period) -> dict[str, Any]:
    return {"label": period.label, "start": period.start, "end": period.end}


async def unit_relationships(
    q: Queries, principal: Principal, unit: str
) -> frozenset[Relationship]:
    """The caller's relationships to an org unit: their organisation-wide roles, and
    ``unit_head`` when, as a person, they head the unit or one above it (in the directory)."""
    rels = set(role_relationships(principal))
    if (
        unit != TENANT
        and acts_as_person(principal)
        and principal.subject in await q.directory.unit_heads_upwards(unit)
    ):
        rels.add(Relationship.UNIT_HEAD)
    return frozenset(rels)


async def visible_roots(q: Queries, principal: Principal) -> list[str]:
    """The tops of what the caller may look at: '*' or the units they head."""
    if allowed(access.POLICY, access.WHOLE_ORGANISATION, frozenset(role_relationships(principal))):
        return [TENANT]
    if not acts_as_person(principal):
        return []
    return await q.directory.heads_units(principal.subject)


async def resolve_scope(q: Queries, principal: Principal, unit: str | None) -> Scope:
    """The unit a request looks at, if the caller may (domain/access.py): executives and HR the
    tenant, unit heads the subtrees of the units they head; anyone else is refused."""
    roots = await visible_roots(q, principal)
    if not roots:
        raise Forbidden("dashboards are for executives, HR and the heads of org units")
    unit = unit or roots[0]
    if unit == TENANT:
        require(
            access.POLICY,
            access.WHOLE_ORGANISATION,
            frozenset(role_relationships(principal)),
            "only executives and HR see the whole tenant",
        )
        name = "Whole organisation"
    else:
        row = await q.unit(unit)
        if row is None:
            raise NotFound(f"org unit {unit!r} not found")
        require(
            access.POLICY,
            "read_dashboard",
            await unit_relationships(q, principal, unit),
            "that org unit is outside your part of the organisation",
        )
        name = row["name"] or unit
    people = (await q.people([unit])).get(unit, 0)
    return Scope(unit, name, people)


def parse_period(label: str | None, default: Period) -> Period:
    if label is None:
        return default
    try:
        return Period.parse(label)
    except ValueError as exc:
        raise InvalidInput.field("period", msg=str(exc)) from exc


def _scope_json(scope: Scope, minimum: int) -> dict[str, Any]:
    return {
        "org_unit_id": scope.org_unit_id,
        "name": scope.name,
        "people": scope.people if not suppressed(scope.people, minimum) else None,
    }


def _sum_months(rows: Sequence[Row], unit: str, months: Sequence[str]) -> dict[str, int]:
    wanted = set(months)
    return total(
        (r for r in rows if r["org_unit_id"] == unit and r["month"] in wanted), UNIT_MONTH_COUNTS
    )


def _blank_summary(keys: Sequence[str]) -> dict[str, Any]:
    return dict.fromkeys(keys)


# -- cadence adherence -------------------------------------------------------------------------

ADHERENCE_COLUMNS = {
    "obligations": "Obligations due.",
    "on_time": "Completed by the due time.",
    "late": "Completed after the due time.",
    "missed": "Missed and never completed.",
    "open": "Neither completed nor missed yet.",
    "on_time_pct": "% of resolved obligations completed on time.",
    "late_pct": "% of resolved obligations completed late.",
    "missed_pct": "% of resolved obligations missed.",
}


def _adherence_row(counts: dict[str, int]) -> dict[str, Any]:
    return {**{c: counts[c] for c in OBLIGATION_COUNTS}, **adherence(counts)}


async def cadence_adherence(q: Queries, scope: Scope, period: Period, minimum: int) -> Report:
    previous = period.previous()
    trend_months = period.trend_months()
    months = sorted({*period.months, *previous.months, *trend_months})
    report = Report(
        "cadence-adherence",
        _scope_json(scope, minimum),
        _period_json(period),
        {},
        {"month": "YYYY-MM (UTC).", **ADHERENCE_COLUMNS},
        [],
        previous_period=_period_json(previous),
    )
    keys = [
        *ADHERENCE_COLUMNS,
        "previous_on_time_pct",
        "change_on_time_pp",
        "change_late_pp",
        "change_missed_pp",
    ]
    if suppressed(scope.people, minimum):
        report.suppressed = True
        report.summary = _blank_summary(keys)
        return report
    rows = await q.monthly([scope.org_unit_id], months)
    now = _adherence_row(_sum_months(rows, scope.org_unit_id, period.months))
    before = _adherence_row(_sum_months(rows, scope.org_unit_id, previous.months))
    report.summary = {
        **now,
        "previous_on_time_pct": before["on_time_pct"],
        "change_on_time_pp": change(now["on_time_pct"], before["on_time_pct"]),
        "change_late_pp": change(now["late_pct"], before["late_pct"]),
        "change_missed_pp": change(now["missed_pct"], before["missed_pct"]),
    }
    report.rows = [
        {"month": m, **_adherence_row(_sum_months(rows, scope.org_unit_id, [m]))}
        for m in trend_months
    ]
    return report


async def _breakdown(q: Queries, unit: str) -> list[dict[str, Any]]:
    """The units a table breaks the selection down into: those directly below it — or, while
    there is only one (a tenant with one top unit), the units below that one."""
    children = list(await q.children(unit))
    while len(children) == 1:
        below = list(await q.children(children[0]["org_unit_id"]))
        if not below:
            break
        children = below
    return children


async def cadence_adherence_by_unit(
    q: Queries, scope: Scope, period: Period, minimum: int
) -> Report:
    report = Report(
        "cadence-adherence-by-unit",
        _scope_json(scope, minimum),
        _period_json(period),
        {},
        {
            "org_unit_id": "The unit (its whole subtree).",
            "name": "Its name.",
            "people": "Current headcount of the subtree.",
            **ADHERENCE_COLUMNS,
            "suppressed": "True when the unit has fewer than 5 people.",
        },
        [],
    )
    if suppressed(scope.people, minimum):
        report.suppressed = True
        return report
    children = await _breakdown(q, scope.org_unit_id)
    ids = [c["org_unit_id"] for c in children]
    people = await q.people(ids)
    rows = await q.monthly(ids, period.months) if ids else []
    out = []
    for child in children:
        unit = child["org_unit_id"]
        size = people.get(unit, 0)
        hidden = suppressed(size, minimum)
        counts = _sum_months(rows, unit, period.months)
        values = _adherence_row(counts)
        out.append(
            {
                "org_unit_id": unit,
                "name": child["name"] or unit,
                "people": None if hidden else size,
                **({k: None for k in values} if hidden else values),
                "suppressed": hidden,
            }
        )
    out.sort(key=lambda r: (r["suppressed"], -(r["missed_pct"] or 0), r["name"]))
    report.rows = out
    return report


# -- manager adherence -------------------------------------------------------------------------


async def manager_adherence(
    q: Queries, scope: Scope, period: Period, minimum: int, limit: int | None
) -> Report:
    report = Report(
        "manager-adherence",
        _scope_json(scope, minimum),
        _period_json(period),
        {},
        {
            "manager_id": "The manager's employee id.",
            "manager": "The manager's name.",
            "team_size": "Active direct reports now.",
            **ADHERENCE_COLUMNS,
            "suppressed": "True when the team has fewer than 5 people.",
        },
        [],
    )
    if suppressed(scope.people, minimum):
        report.suppressed = True
        return report
    small = scope.people <= SMALL_SCOPE
    rows, hidden = await q.managers(scope.org_unit_id, period.label, minimum, limit, small=small)
    names = await q.names(r["manager_id"] for r in rows)
    report.rows = [
        {
            "manager_id": r["manager_id"],
            "manager": names.get(r["manager_id"], r["manager_id"]),
            "team_size": r["team_size"],
            **_adherence_row({c: int(r[c] or 0) for c in OBLIGATION_COUNTS}),
            "suppressed": False,
        }
        for r in rows
    ]
    report.summary = {"managers_shown": len(report.rows), "managers_suppressed": hidden}
    return report


# -- ownership ---------------------------------------------------------------------------------


def _ownership_row(counts: dict[str, int]) -> dict[str, Any]:
    return {
        "checkins": counts["checkins"],
        "employee_initiated": counts["checkins_employee_initiated"],
        "employee_initiated_pct": pct(counts["checkins_employee_initiated"], counts["checkins"]),
    }


async def ownership(q: Queries, scope: Scope, period: Period, minimum: int) -> Report:
    previous = period.previous()
    trend = period.trend_months()
    report = Report(
        "ownership",
        _scope_json(scope, minimum),
        _period_json(period),
        {},
        {
            "month": "YYYY-MM (UTC).",
            "checkins": "Check-ins held.",
            "employee_initiated": "Of which the employee initiated.",
            "employee_initiated_pct": "Share initiated by the employee, %.",
        },
        [],
        previous_period=_period_json(previous),
    )
    if suppressed(scope.people, minimum):
        report.suppressed = True
        report.summary = _blank_summary(
            ["checkins", "employee_initiated", "employee_initiated_pct", "change_pp"]
        )
        return report
    rows = await q.monthly([scope.org_unit_id], sorted({*period.months, *previous.months, *trend}))
    now = _ownership_row(_sum_months(rows, scope.org_unit_id, period.months))
    before = _ownership_row(_sum_months(rows, scope.org_unit_id, previous.months))
    report.summary = {
        **now,
        "previous_employee_initiated_pct": before["employee_initiated_pct"],
        "change_pp": change(now["employee_initiated_pct"], before["employee_initiated_pct"]),
    }
    report.rows = [
        {"month": m, **_ownership_row(_sum_months(rows, scope.org_unit_id, [m]))} for m in trend
    ]
    return report


# -- feedback ------------------------------------------------------------------------------------


def _feedback_row(counts: dict[str, int], people: int, months: int) -> dict[str, Any]:
    return {
        "feedback_given": counts["feedback_given"],
        "feedback_received": counts["feedback_received"],
        "given_per_person_per_month": ratio(counts["feedback_given"], people * months),
        "received_per_person_per_month": ratio(counts["feedback_received"], people * months),
        "praise_pct": pct(counts["feedback_praise"], counts["feedback_given"]),
        "requested_pct": pct(counts["feedback_requested"], counts["feedback_given"]),
    }


FEEDBACK_COLUMNS = {
    "feedback_given": "Feedback given by the unit's people in the period.",
    "feedback_received": "Feedback received by them.",
    "given_per_person_per_month": "Given / headcount / months.",
    "received_per_person_per_month": "Received / headcount / months.",
    "praise_pct": "Share of given feedback that was praise, %.",
    "requested_pct": "Share of given feedback that had been asked for, %.",
}


async def feedback(q: Queries, scope: Scope, period: Period, minimum: int) -> Report:
    report = Report(
        "feedback",
        _scope_json(scope, minimum),
        _period_json(period),
        {},
        {
            "org_unit_id": "The unit (its whole subtree).",
            "name": "Its name.",
            "people": "Current headcount.",
            **FEEDBACK_COLUMNS,
            "suppressed": "True when the unit has fewer than 5 people.",
        },
        [],
    )
    if suppressed(scope.people, minimum):
        report.suppressed = True
        report.summary = _blank_summary(list(FEEDBACK_COLUMNS))
        return report
    children = await _breakdown(q, scope.org_unit_id)
    ids = [c["org_unit_id"] for c in children]
    people = await q.people(ids)
    rows = await q.monthly([scope.org_unit_id, *ids], period.months)
    months = len(period.months)
    report.summary = _feedback_row(
        _sum_months(rows, scope.org_unit_id, period.months), scope.people, months
    )
    out = []
    for child in children:
        unit = child["org_unit_id"]
        size = people.get(unit, 0)
        hidden = suppressed(size, minimum)
        values = _feedback_row(_sum_months(rows, unit, period.months), size, months)
        out.append(
            {
                "org_unit_id": unit,
                "name": child["name"] or unit,
                "people": None if hidden else size,
                **({k: None for k in values} if hidden else values),
                "suppressed": hidden,
            }
        )
    out.sort(key=lambda r: (r["suppressed"], r["given_per_person_per_month"] or 0, r["name"]))
    report.rows = out
    return report


# -- goals ---------------------------------------------------------------------------------------

BUCKETS = ["progress_0_20", "progress_20_40", "progress_40_60", "progress_60_80", "progress_80_100"]


async def goals(q: Queries, scope: Scope, period: Period, minimum: int) -> Report:
    report = Report(
        "goals",
        _scope_json(scope, minimum),
        _period_json(period),
        {},
        {
            "bucket": "Progress range.",
            "goals": "Goals with progress in that range.",
            "share_pct": "Share of all counted goals, %.",
        },
        [],
    )
    summary_keys = [
        "goals",
        "average_progress_pct",
        "average_confidence_pct",
        "on_track",
        "at_risk",
        "off_track",
        "achieved",
        "abandoned",
        "stale",
        "at_risk_or_off_track_pct",
        "stale_pct",
    ]
    if suppressed(scope.people, minimum):
        report.suppressed = True
        report.summary = _blank_summary(summary_keys)
        return report
    rows = await q.goals([scope.org_unit_id], period.start, period.end)
    counts = total(rows, UNIT_GOAL_COUNTS)
    n = counts["goals"]
    report.summary = {
        "goals": n,
        "average_progress_pct": pct(counts["progress_bp_sum"], n * BASIS_POINTS),
        "average_confidence_pct": pct(
            counts["confidence_bp_sum"], counts["confidence_n"] * BASIS_POINTS
        ),
        **{
            s: counts[s]
            for s in ("on_track", "at_risk", "off_track", "achieved", "abandoned", "stale")
        },
        "at_risk_or_off_track_pct": pct(counts["at_risk"] + counts["off_track"], n),
        "stale_pct": pct(counts["stale"], n),
    }
    report.rows = [
        {
            "bucket": f"{b.split('_')[1]}-{b.split('_')[2]} %",
            "goals": counts[b],
            "share_pct": pct(counts[b], n),
        }
        for b in BUCKETS
    ]
    return report


async def goals_attention(
    q: Queries, scope: Scope, period: Period, minimum: int, limit: int | None
) -> Report:
    report = Report(
        "goals-attention",
        _scope_json(scope, minimum),
        _period_json(period),
        {},
        {
            "goal_id": "The goal.",
            "title": "Its title.",
            "owner": "Owner (person or unit).",
            "org_unit": "The unit it counts in.",
            "status": "on_track, at_risk, off_track, ...",
            "progress_pct": "Latest progress, %.",
            "confidence_pct": "Latest confidence, %.",
            "last_progress_at": "When progress was last recorded.",
            "stale": "True when the goal went stale.",
            "period_end": "End of the goal's period.",
        },
        [],
    )
    if suppressed(scope.people, minimum):
        report.suppressed = True
        return report
    rows = await q.goals_needing_attention(
        scope.org_unit_id,
        period.start,
        period.end,
        limit or 10_000,
        small=scope.people <= SMALL_SCOPE,
    )
    people = await q.names(r["owner_id"] for r in rows if r["owner_type"] == "person")
    units = await q.unit_names(
        [r["org_unit_id"] for r in rows]
        + [r["owner_id"] for r in rows if r["owner_type"] == "org_unit"]
    )
    report.rows = [
        {
            "goal_id": r["goal_id"],
            "title": r["title"],
            "owner": people.get(r["owner_id"]) or units.get(r["owner_id"]) or r["owner_id"],
            "org_unit": units.get(r["org_unit_id"], r["org_unit_id"]),
            "status": r["status"],
            "progress_pct": pct(r["progress_bp"] or 0, BASIS_POINTS),
            "confidence_pct": None
            if r["confidence_bp"] is None
            else pct(r["confidence_bp"], BASIS_POINTS),
            "last_progress_at": r["last_progress_at"],
            "stale": bool(r["is_stale"]),
            "period_end": r["period_end"],
        }
        for r in rows
    ]
    report.summary = {"goals": len(report.rows)}
    return report


# -- workload pulse -------------------------------------------------------------------------------


def _pulse_row(counts: dict[str, int], minimum: int) -> dict[str, Any]:
    n = counts["pulse_responses"]
    if n < minimum:
        return {
            "responses": n,
            "average": None,
            "too_much_pct": None,
            "too_little_pct": None,
            "suppressed": True,
        }
    return {
        "responses": n,
        "average": ratio(counts["pulse_sum"], n),
        "too_much_pct": pct(counts["pulse_4"] + counts["pulse_5"], n),
        "too_little_pct": pct(counts["pulse_1"] + counts["pulse_2"], n),
        "suppressed": False,
    }


async def workload_pulse(q: Queries, scope: Scope, period: Period, minimum: int) -> Report:
    previous = period.previous()
    trend = period.trend_months()
    report = Report(
        "workload-pulse",
        _scope_json(scope, minimum),
        _period_json(period),
        {},
        {
            "month": "YYYY-MM (UTC).",
            "responses": "Pulse answers.",
            "average": "Average answer (1-5; 3 is about right).",
            "too_much_pct": "Share of answers 4-5, %.",
            "too_little_pct": "Share of answers 1-2, %.",
            "suppressed": "True when the month has fewer than 5 answers.",
        },
        [],
        previous_period=_period_json(previous),
    )
    if suppressed(scope.people, minimum):
        report.suppressed = True
        report.summary = _blank_summary(["responses", "average", "too_much_pct", "too_little_pct"])
        return report
    rows = await q.monthly([scope.org_unit_id], sorted({*period.months, *previous.months, *trend}))
    now = _pulse_row(_sum_months(rows, scope.org_unit_id, period.months), minimum)
    before = _pulse_row(_sum_months(rows, scope.org_unit_id, previous.months), minimum)
    report.summary = {
        **now,
        "previous_average": before["average"],
        "change": change(now["average"], before["average"]),
    }
    report.rows = [
        {"month": m, **_pulse_row(_sum_months(rows, scope.org_unit_id, [m]), minimum)}
        for m in trend
    ]
    return report


# -- the unit picker ------------------------------------------------------------------------------


async def units(q: Queries, principal: Principal, minimum: int) -> Report:
    roots = await visible_roots(q, principal)
    if not roots:
        raise Forbidden("dashboards are for executives, HR and the heads of org units")
    all_units = await q.all_units()
    children: dict[str | None, list[Row]] = {}
    known = {u["org_unit_id"] for u in all_units}
    for u in all_units:
        parent = u["parent_id"] if u["parent_id"] in known else None
        children.setdefault(parent, []).append(u)
    for siblings in children.values():
        siblings.sort(key=lambda u: ((u["name"] or "").lower(), u["org_unit_id"]))
    by_id = {u["org_unit_id"]: u for u in all_units}
    ordered: list[tuple[Row, int]] = []

    def walk(unit: Row, depth: int, seen: set[str]) -> None:
        if unit["org_unit_id"] in seen:
            return
        seen.add(unit["org_unit_id"])
        ordered.append((unit, depth))
        for child in children.get(unit["org_unit_id"], []):
            walk(child, depth + 1, seen)

    seen: set[str] = set()
    starts = children.get(None, []) if TENANT in roots else [by_id[r] for r in roots if r in by_id]
    for start in starts:
        walk(start, 1 if TENANT in roots else 0, seen)
    people = await q.all_people()
    rows = []
    if TENANT in roots:
        rows.append(
            {
                "org_unit_id": TENANT,
                "name": "Whole organisation",
                "parent_id": None,
                "depth": 0,
                "people": _shown(people.get(TENANT, 0), minimum),
            }
        )
    for unit, depth in ordered:
        rows.append(
            {
                "org_unit_id": unit["org_unit_id"],
                "name": unit["name"] or unit["org_unit_id"],
                "parent_id": unit["parent_id"],
                "depth": depth,
                "people": _shown(people.get(unit["org_unit_id"], 0), minimum),
            }
        )
    return Report(
        "units",
        {"org_unit_id": roots[0], "name": "", "people": None},
        None,
        {"units": len(rows)},
        {
            "org_unit_id": "The unit ('*' is the whole organisation).",
            "name": "Its name.",
            "parent_id": "The enclosing unit.",
            "depth": "Depth in the tree shown (0: top).",
            "people": "Current headcount of its subtree (null below 5).",
        },
        rows,
    )


def _shown(people: int, minimum: int) -> int | None:
    return None if suppressed(people, minimum) else people
