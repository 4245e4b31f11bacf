"""No hidden figure can be worked out from shown ones, by any endpoint, export or request.

An organisation built so that the headcount rule would leak: a team of two (hidden, but its
department shows its total and its other teams), a team of one last quarter and five today, a
month in which only three people of a team had a check-in due, a department head who is the
rest of their unit after their team. Every dashboard endpoint is asked, as JSON and as CSV, for
each unit and for months, quarters and the year; then, for every hidden cell of a small group,
every shown figure, every sum and difference of two shown figures (from one answer or two) and
every total less any set of its shown parts (units below it, months within it) is computed, and
none may equal the hidden one. The true hidden figures are computed from the events.
"""

from __future__ import annotations

import csv
import io
import itertools
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from reporting_harness import Reporting, StartReporting, publish_fast
from reporting_stream import Expected

from rhythm_reporting.domain.periods import Period
from rhythm_shared.contracts.base import Event
from rhythm_shared.contracts.v1 import (
    CheckinCompleted,
    CheckinDue,
    CheckinKind,
    CheckinMissed,
    EmployeeUpserted,
    FeedbackGiven,
    FeedbackKind,
    GoalCreated,
    GoalKind,
    GoalProgressRecorded,
    Initiator,
    OrgUnitUpserted,
    OwnerType,
    ReflectionSubmitted,
    Visibility,
)

pytestmark = pytest.mark.kafka

MINIMUM = 5
UNITS = ["*", "ou-root", "ou-big", "ou-mid", "ou-tiny", "ou-grown"]
PERIODS = ["2026-02", "2026-04", "2026-Q1", "2026-Q2", "2026"]
MONTHS = [f"2026-{m:02d}" for m in range(1, 7)]
T0 = datetime(2025, 12, 1, 8, tzinfo=UTC)
Vector = tuple[int, ...]
Cell = tuple[str, str, str]  # (family, unit or manager, period or month label)


# -- the organisation and its events ---------------------------------------------------------------


def _month_end(month: str) -> datetime:
    period = Period.parse(month)
    return datetime.combine(period.end, datetime.min.time(), UTC) + timedelta(hours=17)


def organisation(tenant: str) -> list[Event]:
    ev: list[Event] = []

    def unit(uid: str, parent: str | None, head: str) -> None:
        ev.append(
            OrgUnitUpserted(
                tenant_id=tenant,
                occurred_at=T0,
                org_unit_id=uid,
                name=uid,
                parent_id=parent,
                head_id=head,
            )
        )

    def person(eid: str, uid: str, manager: str | None, at: datetime = T0) -> None:
        ev.append(
            EmployeeUpserted(
                tenant_id=tenant,
                occurred_at=at,
                employee_id=eid,
                email=f"{eid}@example.com",
                display_name=eid,
                manager_id=manager,
                org_unit_id=uid,
                time_zone="Europe/Amsterdam",
                locale="en",
                hired_on=date(2024, 1, 1),
                active=True,
            )
        )

    unit("ou-root", None, "ceo")
    person("ceo", "ou-root", None)
    teams = {"ou-big": ("a", 8), "ou-mid": ("b", 5), "ou-tiny": ("c", 1), "ou-grown": ("g", 4)}
    joined = datetime(2026, 4, 1, 8, tzinfo=UTC)
    for uid, (letter, members) in teams.items():
        unit(uid, "ou-root", f"{letter}0")
        person(f"{letter}0", uid, "ceo")
        for i in range(1, members + 1):
            # The grown team was its lead alone until April; four joined then.
            person(f"{letter}{i}", uid, f"{letter}0", joined if letter == "g" else T0)
    people = [e for e in ev if isinstance(e, EmployeeUpserted)]

    def active(e: EmployeeUpserted, month: str) -> bool:
        return e.manager_id is not None and _month_end(month) > e.occurred_at

    for mi, month in enumerate(MONTHS):
        due = _month_end(month)
        for pi, e in enumerate(people):
            if not active(e, month):
                continue
            if month == "2026-02" and e.employee_id in ("b3", "b4", "b5"):
                continue  # on leave: three people of the mid team owed a check-in in February
            oid = f"ob-{e.employee_id}-{month}"
            fate = (pi * 7 + mi * 3 + len(e.employee_id)) % 5
            owed = {
                "tenant_id": tenant,
                "obligation_id": oid,
                "employee_id": e.employee_id,
                "manager_id": e.manager_id,
                "kind": CheckinKind.MONTHLY,
                "period_start": Period.parse(month).start,
                "period_end": due.date(),
                "due_at": due,
            }
            ev.append(CheckinDue.model_validate({**owed, "occurred_at": due - timedelta(days=3)}))
            if fate in (3, 4):
                missed_at = due + timedelta(days=5)
                ev.append(
                    CheckinMissed.model_validate(
                        {**owed, "occurred_at": missed_at, "consecutive_misses": 1}
                    )
                )
            if fate in (0, 1, 2, 4):
                held = due - timedelta(days=2) if fate in (0, 1) else due + timedelta(days=2 + fate)
                ev.append(
                    CheckinCompleted(
                        tenant_id=tenant,
                        occurred_at=held + timedelta(hours=1),
                        checkin_id=f"ci-{oid}",
                        kind=CheckinKind.MONTHLY,
                        employee_id=e.employee_id,
                        manager_id=e.manager_id or "",
                        held_at=held,
                        initiated_by=Initiator.EMPLOYEE if fate % 2 else Initiator.MANAGER,
                        obligation_id=oid,
                        due_at=due,
                        goals_discussed=[],
                        open_action_items=0,
                        pulse=1 + (pi + mi) % 5 if (pi + mi) % 3 else None,
                    )
                )
            if (pi + mi) % 4 == 0:
                ev.append(
                    ReflectionSubmitted(
                        tenant_id=tenant,
                        occurred_at=due - timedelta(days=6, minutes=pi),
                        employee_id=e.employee_id,
                        pulse=1 + (pi * 2 + mi) % 5,
                    )
                )
            if (pi + 2 * mi) % 3 == 0:
                receiver = people[(pi * 5 + mi + 1) % len(people)]
                if receiver.employee_id != e.employee_id and active(receiver, month):
                    ev.append(
                        FeedbackGiven(
                            tenant_id=tenant,
                            occurred_at=due - timedelta(days=9, minutes=pi),
                            feedback_id=f"fb-{oid}",
                            giver_id=e.employee_id,
                            receiver_id=receiver.employee_id,
                            kind=FeedbackKind.PRAISE if pi % 2 else FeedbackKind.CONSTRUCTIVE,
                            requested=pi % 3 == 0,
                        )
                    )
    quarters = ((date(2026, 1, 1), date(2026, 3, 31)), (date(2026, 4, 1), date(2026, 6, 30)))
    for e in people:
        for start, end in quarters:
            first_day = datetime.combine(start, datetime.min.time(), UTC) + timedelta(days=1)
            created = max(first_day, e.occurred_at + timedelta(hours=1))
            gid = f"g-{e.employee_id}-{start.month}"
            ev.append(
                GoalCreated(
                    tenant_id=tenant,
                    occurred_at=created,
                    goal_id=gid,
                    owner_type=OwnerType.PERSON,
                    owner_id=e.employee_id,
                    kind=GoalKind.OKR,
                    title=None,
                    visibility=Visibility.PRIVATE,
                    period_start=start,
                    period_end=end,
                    update_interval_days=14,
                    key_results=[],
                )
            )
            ev.append(
                GoalProgressRecorded(
                    tenant_id=tenant,
                    occurred_at=created + timedelta(days=10),
                    goal_id=gid,
                    key_result_id="kr1",
                    value=1.0,
                    goal_progress=(len(e.employee_id) * 13 + start.month * 7) % 100 / 100,
                    confidence=0.5,
                    recorded_by=e.employee_id,
                )
            )
    return ev


# -- the true figures, from the events ------------------------------------------------------------


class Truth:
    """The figures as reporting_stream.Expected computes them, and their contributors."""

    def __init__(self, events: list[Event]) -> None:
        self.expected = Expected(events)
        self.events = events

    def in_subtree(self, unit: str | None, scope: str) -> bool:
        return bool(self.expected.in_subtree(unit, scope))

    def unit_at(self, person: str, at: datetime) -> str | None:
        unit = self.expected.unit_at(person, at)
        return None if unit is None else str(unit)

    def contributors(self, family: str, scope: str, label: str) -> int:
        period = Period.parse(label)
        wanted = set(period.months)
        people: set[str] = set()

        def add(person: str, at: datetime) -> None:
            if f"{at.year:04d}-{at.month:02d}" in wanted and self.in_subtree(
                self.unit_at(person, at), scope
            ):
                people.add(person)

        for e in self.events:
            if family == "obl" and isinstance(e, CheckinDue):
                add(e.employee_id, e.due_at)
            elif isinstance(e, CheckinCompleted) and (
                family == "own" or (family == "pulse" and e.pulse)
            ):
                add(e.employee_id, e.held_at)
            elif family == "pulse" and isinstance(e, ReflectionSubmitted) and e.pulse:
                add(e.employee_id, e.occurred_at)
            elif family == "fb" and isinstance(e, FeedbackGiven):
                add(e.giver_id, e.occurred_at)
        if family == "fb":  # the smaller of givers and receivers
            givers, people = people, set()
            for e in self.events:
                if isinstance(e, FeedbackGiven):
                    add(e.receiver_id, e.occurred_at)
            return min(len(givers), len(people))
        if family == "goals":
            for e in self.events:
                if (
                    isinstance(e, GoalCreated)
                    and e.period_start <= period.end
                    and period.start <= e.period_end
                    and self.in_subtree(self.unit_at(e.owner_id, e.occurred_at), scope)
                ):
                    people.add(e.owner_id)
        return len(people)

    def vector(self, cell: Cell) -> Vector:
        family, scope, label = cell
        months = Period.parse(label).months
        if family == "obl":
            c = self.expected.obligations(scope, months)
            return tuple(c[k] for k in ("obligations", "on_time", "late", "missed", "open"))
        if family == "own":
            return tuple(int(x) for x in self.expected.ownership(scope, months))
        if family == "pulse":
            answers = self.expected.pulses(scope, months)
            too_much = sum(a >= 4 for a in answers)
            return (len(answers), sum(answers), too_much, sum(a <= 2 for a in answers))
        if family == "fb":
            return tuple(int(x) for x in self.expected.feedback(scope, months))
        goals = self.expected.goals(scope, Period.parse(label).start, Period.parse(label).end)
        return (goals["goals"], *goals["buckets"])


# -- reading the answers into cells ----------------------------------------------------------------


def _number(value: Any) -> Any:
    if value in ("", None):
        return None
    if isinstance(value, str):
        try:
            return float(value) if "." in value else int(value)
        except ValueError:
            return value
    return value


def _hidden_row(row: dict[str, Any]) -> bool:
    return row.get("suppressed") in (True, "true")


def _vector(family: str, row: dict[str, Any]) -> Vector | None:
    r = {k: _number(v) for k, v in row.items()}
    if family == "obl":
        keys = ("obligations", "on_time", "late", "missed", "open")
        return None if r.get("obligations") is None else tuple(int(r[k]) for k in keys)
    if family == "own":
        return None if r.get("checkins") is None else (r["checkins"], r["employee_initiated"])
    if family == "pulse":
        n = r.get("responses")
        if n is None or r.get("average") is None:
            return None
        # Back from the rounded average and shares to the counts (exact for these sizes).
        return (
            n,
            round(r["average"] * n),
            round(r["too_much_pct"] * n / 100),
            round(r["too_little_pct"] * n / 100),
        )
    if family == "fb":
        if r.get("feedback_given") is None:
            return None
        return (r["feedback_given"], r["feedback_received"])
    return None


class Seen:
    def __init__(self) -> None:
        self.shown: dict[Cell, set[Vector]] = defaultdict(set)
        self.hidden: set[Cell] = set()
        #: Hidden rows or headlines that still carried a number.
        self.leaky: list[tuple[Cell, dict[str, Any]]] = []

    def add(self, cell: Cell, row: dict[str, Any], hidden: bool) -> None:
        if hidden:
            self.hidden.add(cell)
            numbers = {
                k: v
                for k, v in row.items()
                if k not in ("suppressed", "month", "org_unit_id", "name", "manager_id")
                and _number(v) is not None
            }
            if numbers:
                self.leaky.append((cell, numbers))
            return
        vector = _vector(cell[0], row)
        if vector is not None:
            self.shown[cell].add(vector)


FAMILY = {
    "cadence-adherence": "obl",
    "ownership": "own",
    "workload-pulse": "pulse",
    "feedback": "fb",
    "cadence-adherence/by-unit": "obl",
}


def read_answer(seen: Seen, path: str, unit: str, label: str, answer: dict[str, Any]) -> None:
    """One JSON answer (``rows`` as the CSV gives them when ``summary`` is None)."""
    summary = answer.get("summary")
    family = FAMILY.get(path)
    if path in ("cadence-adherence", "ownership", "workload-pulse"):
        if summary is not None:
            seen.add((family or "", unit, label), summary, answer["suppressed"])
        for row in answer["rows"]:
            seen.add((family or "", unit, row["month"]), row, _hidden_row(row))
    elif path in ("cadence-adherence/by-unit", "feedback"):
        if summary is not None and path == "feedback":
            seen.add(("fb", unit, label), summary, answer["suppressed"])
        for row in answer["rows"]:
            seen.add((family or "", row["org_unit_id"], label), row, _hidden_row(row))
    elif path == "goals":
        if summary is not None:
            hidden = answer["suppressed"]
            cell = ("goals", unit, label)
            if hidden or summary.get("goals") is None:
                seen.add(cell, summary, True)
            else:
                buckets = [int(_number(r["goals"])) for r in answer["rows"]]
                seen.shown[cell].add((int(summary["goals"]), *buckets))
    elif path == "manager-adherence":
        for row in answer["rows"]:
            vector = _vector("obl", row)
            if vector is not None:
                seen.shown[("obl", f"manager:{row['manager_id']}", label)].add(vector)


def _csv(text: str) -> list[dict[str, Any]]:
    return list(csv.DictReader(io.StringIO(text)))


async def ask_everything(svc: Reporting) -> Seen:
    seen = Seen()
    headers = svc.token("ceo", "executive")
    for unit, label, path in itertools.product(
        UNITS,
        PERIODS,
        [
            "cadence-adherence",
            "cadence-adherence/by-unit",
            "ownership",
            "workload-pulse",
            "feedback",
            "goals",
            "manager-adherence",
            "goals/attention",
        ],
    ):
        params = {"unit": unit, "period": label, "limit": 100}
        answer = await svc.get(path, **params)
        read_answer(seen, path, unit, label, answer)
        exported = await svc.client.get(
            f"/v1/dashboards/{path}/export.csv", params=params, headers=headers
        )
        assert exported.status_code == 200, exported.text
        read_answer(
            seen, path, unit, label, {**answer, "summary": None, "rows": _csv(exported.text)}
        )
    return seen


# -- the arithmetic --------------------------------------------------------------------------------


def _sub(a: Vector, b: Vector) -> Vector:
    return tuple(x - y for x, y in zip(a, b, strict=True))


def _add(a: Vector, b: Vector) -> Vector:
    return tuple(x + y for x, y in zip(a, b, strict=True))


def _inside(inner: Cell, outer: Cell, truth: Truth) -> bool:
    """The facts of ``inner`` are among those of ``outer`` (same family)."""
    return (
        inner[0] == outer[0]
        and not inner[1].startswith("manager:")
        and not outer[1].startswith("manager:")
        and truth.in_subtree(inner[1] if inner[1] != "*" else None, outer[1])
        and (outer[1] == "*" or inner[1] != "*")
        and set(Period.parse(inner[2]).months) <= set(Period.parse(outer[2]).months)
    )


def derivable(hidden: Cell, shown: dict[Cell, set[Vector]], truth: Truth) -> set[Vector]:
    """What arithmetic on shown figures can say about ``hidden``: the same cell shown elsewhere;
    any figure containing it less any one figure inside that one (a manager's row of the same
    period included) or less any set of the units below it, its months or its quarters; any
    sum of two figures inside it."""
    family = hidden[0]
    cells = [c for c in shown if c[0] == family]
    out = set(shown.get(hidden, set()))
    inside_hidden = [c for c in cells if c != hidden and _inside(c, hidden, truth)]
    for x, y in itertools.combinations(inside_hidden, 2):
        for a, b in itertools.product(shown[x], shown[y]):
            out.add(_add(a, b))
    for total in (c for c in cells if c != hidden and _inside(hidden, c, truth)):
        unit, label = total[1], total[2]
        period = Period.parse(label)
        within = [
            c
            for c in cells
            if c != total
            and (_inside(c, total, truth) or (c[1].startswith("manager:") and c[2] == label))
        ]
        for part in within:
            for a, b in itertools.product(shown[total], shown[part]):
                out.add(_sub(a, b))
        groups = [
            [c for c in within if c[2] == label and not c[1].startswith("manager:")],
            [c for c in within if c[1] == unit and Period.parse(c[2]).length == 1],
            [c for c in within if c[1] == unit and 1 < Period.parse(c[2]).length < period.length],
        ]
        for group in groups:
            parts = [v for c in group for v in shown[c]]
            for size in range(2, len(parts) + 1):
                for subset in itertools.combinations(parts, size):
                    for value in shown[total]:
                        rest = value
                        for part_value in subset:
                            rest = _sub(rest, part_value)
                        out.add(rest)
    return out


async def test_no_hidden_figure_equals_any_sum_or_difference_of_shown_ones(
    start_reporting: StartReporting, kafka_bootstrap: str, topic_prefix: str, tenant: str
) -> None:
    events = organisation(tenant)
    truth = Truth(events)
    async with start_reporting(min_group_size=MINIMUM) as svc:
        count = await publish_fast(
            kafka_bootstrap, sorted(events, key=lambda e: e.occurred_at), topic_prefix=topic_prefix
        )
        await svc.wait_consumed(count)
        seen = await ask_everything(svc)

    # Hidden cells carry no numbers: no counts, no people, no values.
    assert seen.leaky == []
    # Every shown figure was made by nobody or by at least MINIMUM people in its period.
    for family, unit, label in seen.shown:
        if unit.startswith("manager:"):
            continue
        people = truth.contributors(family, unit, label)
        assert people == 0 or people >= MINIMUM, (family, unit, label, people)
    # The organisation is built so that some cells are hidden: the team of two, the grown team's
    # first quarter, the mid team's February.
    assert ("obl", "ou-tiny", "2026-Q1") in seen.hidden
    assert ("obl", "ou-grown", "2026-Q1") in seen.hidden
    assert ("obl", "ou-mid", "2026-02") in seen.hidden
    # No small group's hidden figure can be computed from the shown ones.
    leaks = []
    for cell in sorted(seen.hidden):
        people = truth.contributors(*cell)
        if 0 < people < MINIMUM and truth.vector(cell) in derivable(cell, seen.shown, truth):
            leaks.append((cell, people, truth.vector(cell)))
    assert leaks == []
