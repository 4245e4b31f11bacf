"""A generated, realistic event stream for one tenant, and the numbers it should produce,
computed here independently of the service (naively, straight from the events).

The org: a root unit with three departments of two teams each (one team of three people, to
exercise small-group suppression). During the stream a team moves to another department and
some people change team, so attribution "to the unit the person was in at the time" matters.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from rhythm_reporting.domain.periods import Period
from rhythm_shared.contracts.base import Event
from rhythm_shared.contracts.v1 import (
    CheckinCompleted,
    CheckinDue,
    CheckinKind,
    CheckinMissed,
    CheckinScheduled,
    EmployeeDeactivated,
    EmployeeUpserted,
    FeedbackGiven,
    FeedbackKind,
    GoalArchived,
    GoalCreated,
    GoalKind,
    GoalProgressRecorded,
    GoalStale,
    GoalStatus,
    GoalStatusChanged,
    Initiator,
    OrgUnitUpserted,
    OwnerType,
    ReflectionSubmitted,
    Visibility,
)
from rhythm_shared.contracts.v1.values import ArchiveReason

T0 = datetime(2025, 12, 1, 8, 0, tzinfo=UTC)
MONTHS = [(2026, m) for m in range(1, 7)]  # January to June 2026


@dataclass
class Stream:
    tenant: str
    events: list[Event] = field(default_factory=list)
    #: Roles for tokens: unit id -> head employee id.
    heads: dict[str, str] = field(default_factory=dict)
    small_unit: str = ""
    moved_unit: str = ""

    def by_time(self) -> list[Event]:
        return sorted(self.events, key=lambda e: e.occurred_at)


def _month_end(year: int, month: int) -> datetime:
    nxt = date(year + (month == 12), month % 12 + 1, 1)
    return datetime(nxt.year, nxt.month, nxt.day, 17, 0, tzinfo=UTC) - timedelta(days=1)


def generate(tenant: str, *, seed: int = 7) -> Stream:
    rnd = random.Random(seed)
    s = Stream(tenant)
    ev = s.events

    def unit(uid: str, name: str, parent: str | None, head: str | None, at: datetime) -> None:
        ev.append(
            OrgUnitUpserted(
                tenant_id=tenant,
                occurred_at=at,
                org_unit_id=uid,
                name=name,
                parent_id=parent,
                head_id=head,
            )
        )

    def person(eid: str, uid: str, manager: str | None, at: datetime, active: bool = True) -> None:
        ev.append(
            EmployeeUpserted(
                tenant_id=tenant,
                occurred_at=at,
                employee_id=eid,
                email=f"{eid}@example.com",
                display_name=f"Person {eid}",
                manager_id=manager,
                org_unit_id=uid,
                time_zone="Europe/Amsterdam",
                locale="en",
                hired_on=date(2024, 1, 1),
                active=active,
            )
        )

    # The org: root (ceo), 3 departments (heads d1..d3), 2 teams each (leads), members.
    unit("ou-root", "Acme", None, "ceo", T0)
    person("ceo", "ou-root", None, T0)
    s.heads["ou-root"] = "ceo"
    team_sizes = {"t11": 6, "t12": 5, "t21": 7, "t22": 3, "t31": 6, "t32": 5}
    members: dict[str, list[str]] = {}
    for d in (1, 2, 3):
        dept = f"ou-d{d}"
        unit(dept, f"Department {d}", "ou-root", f"dh{d}", T0)
        person(f"dh{d}", dept, "ceo", T0)
        s.heads[dept] = f"dh{d}"
        for t in (1, 2):
            team = f"ou-t{d}{t}"
            lead = f"tl{d}{t}"
            unit(team, f"Team {d}.{t}", dept, lead, T0)
            person(lead, team, f"dh{d}", T0)
            s.heads[team] = lead
            members[team] = [f"e{d}{t}{i}" for i in range(team_sizes[f"t{d}{t}"] - 1)]
            for m in members[team]:
                person(m, team, lead, T0 + timedelta(minutes=1))
    s.small_unit = "ou-t22"
    # A team moves from department 3 to department 1 in April; two people change team in March.
    s.moved_unit = "ou-t32"
    unit("ou-t32", "Team 3.2", "ou-d1", "tl32", datetime(2026, 4, 10, 9, tzinfo=UTC))
    mover, mover2 = members["ou-t11"][0], members["ou-t21"][1]
    person(mover, "ou-t31", "tl31", datetime(2026, 3, 15, 9, tzinfo=UTC))
    person(mover2, "ou-t12", "tl12", datetime(2026, 2, 20, 9, tzinfo=UTC))
    # Someone leaves in May.
    leaver = members["ou-t31"][1]
    ev.append(
        EmployeeDeactivated(
            tenant_id=tenant,
            occurred_at=datetime(2026, 5, 3, tzinfo=UTC),
            employee_id=leaver,
            effective_at=datetime(2026, 5, 3, tzinfo=UTC),
        )
    )

    everyone = [e.employee_id for e in ev if isinstance(e, EmployeeUpserted)]
    everyone = sorted(set(everyone))
    manager_now: dict[str, str | None] = {}
    for e in ev:
        if isinstance(e, EmployeeUpserted):
            manager_now[e.employee_id] = e.manager_id

    # Obligations: a monthly check-in per person with a manager, January to June.
    for year, month in MONTHS:
        due = _month_end(year, month)
        for emp in everyone:
            mgr = manager_now[emp]
            if mgr is None or (emp == leaver and month >= 5):
                continue
            oid = f"ob-{emp}-{year}-{month:02d}"
            ps, pe = date(year, month, 1), due.date()
            ev.append(
                CheckinDue(
                    tenant_id=tenant,
                    occurred_at=due - timedelta(days=3),
                    obligation_id=oid,
                    employee_id=emp,
                    manager_id=mgr,
                    kind=CheckinKind.MONTHLY,
                    period_start=ps,
                    period_end=pe,
                    due_at=due,
                )
            )
            fate = rnd.choices(
                ["on_time", "late", "missed", "missed_then_late", "open"], [55, 15, 18, 4, 8]
            )[0]
            if month < 6 and fate == "open":
                fate = "missed"
            if fate in ("missed", "missed_then_late"):
                ev.append(
                    CheckinMissed(
                        tenant_id=tenant,
                        occurred_at=due + timedelta(days=5),
                        obligation_id=oid,
                        employee_id=emp,
                        manager_id=mgr,
                        kind=CheckinKind.MONTHLY,
                        period_start=ps,
                        period_end=pe,
                        due_at=due,
                        consecutive_misses=1,
                    )
                )
            if fate in ("on_time", "late", "missed_then_late"):
                held = (
                    due - timedelta(days=rnd.randint(1, 10), hours=2)
                    if fate == "on_time"
                    else (due + timedelta(days=rnd.randint(1, 4) if fate == "late" else 8))
                )
                cid = f"ci-{oid}"
                initiator = rnd.choice([Initiator.EMPLOYEE, Initiator.MANAGER])
                ev.append(
                    CheckinScheduled(
                        tenant_id=tenant,
                        occurred_at=held - timedelta(days=2),
                        checkin_id=cid,
                        kind=CheckinKind.MONTHLY,
                        employee_id=emp,
                        manager_id=mgr,
                        scheduled_for=held,
                        initiated_by=initiator,
                    )
                )
                ev.append(
                    CheckinCompleted(
                        tenant_id=tenant,
                        occurred_at=held + timedelta(hours=1),
                        checkin_id=cid,
                        kind=CheckinKind.MONTHLY,
                        employee_id=emp,
                        manager_id=mgr,
                        held_at=held,
                        initiated_by=initiator,
                        obligation_id=oid,
                        due_at=due,
                        goals_discussed=[],
                        open_action_items=rnd.randint(0, 3),
                        pulse=rnd.choice([None, 1, 2, 3, 3, 4, 5]),
                    )
                )
        # Informal check-ins and reflections, feedback.
        for i in range(12):
            emp = rnd.choice(everyone)
            if manager_now[emp] is None:
                continue
            held = datetime(year, month, rnd.randint(1, 27), 10, i, tzinfo=UTC)
            initiator = rnd.choice([Initiator.EMPLOYEE, Initiator.EMPLOYEE, Initiator.MANAGER])
            ev.append(
                CheckinCompleted(
                    tenant_id=tenant,
                    occurred_at=held,
                    checkin_id=f"adhoc-{year}-{month}-{i}",
                    kind=CheckinKind.MONTHLY,
                    employee_id=emp,
                    manager_id=manager_now[emp] or "",
                    held_at=held,
                    initiated_by=initiator,
                    pulse=rnd.choice([None, 2, 3, 4]),
                )
            )
            ev.append(
                ReflectionSubmitted(
                    tenant_id=tenant,
                    occurred_at=held - timedelta(hours=3),
                    employee_id=emp,
                    pulse=rnd.choice([1, 3, 4, 5, None]),
                )
            )
        for i in range(25):
            giver, receiver = rnd.sample(everyone, 2)
            ev.append(
                FeedbackGiven(
                    tenant_id=tenant,
                    occurred_at=datetime(year, month, rnd.randint(1, 28), 14, tzinfo=UTC),
                    feedback_id=f"fb-{year}-{month}-{i}",
                    giver_id=giver,
                    receiver_id=receiver,
                    kind=rnd.choice([FeedbackKind.PRAISE, FeedbackKind.CONSTRUCTIVE]),
                    requested=rnd.random() < 0.3,
                )
            )

    # Goals: one per person per quarter; progress, status changes, staleness, archives.
    for q_start, q_end in (
        (date(2026, 1, 1), date(2026, 3, 31)),
        (date(2026, 4, 1), date(2026, 6, 30)),
    ):
        created = datetime(q_start.year, q_start.month, 2, 9, tzinfo=UTC)
        for emp in everyone:
            gid = f"g-{emp}-{q_start.month}"
            visibility = rnd.choice([Visibility.TENANT] * 3 + [Visibility.PRIVATE])
            ev.append(
                GoalCreated(
                    tenant_id=tenant,
                    occurred_at=created,
                    goal_id=gid,
                    owner_type=OwnerType.PERSON,
                    owner_id=emp,
                    kind=GoalKind.OKR,
                    title=f"Goal of {emp}" if visibility == Visibility.TENANT else None,
                    visibility=visibility,
                    period_start=q_start,
                    period_end=q_end,
                    update_interval_days=14,
                    key_results=[],
                )
            )
            at = created
            for _ in range(rnd.randint(0, 4)):
                at += timedelta(days=rnd.randint(3, 20))
                ev.append(
                    GoalProgressRecorded(
                        tenant_id=tenant,
                        occurred_at=at,
                        goal_id=gid,
                        key_result_id="kr1",
                        value=1.0,
                        goal_progress=round(rnd.random(), 3),
                        confidence=round(rnd.random(), 2),
                        recorded_by=emp,
                    )
                )
            roll = rnd.random()
            if roll < 0.25:
                ev.append(
                    GoalStatusChanged(
                        tenant_id=tenant,
                        occurred_at=at + timedelta(hours=1),
                        goal_id=gid,
                        owner_id=emp,
                        from_status=GoalStatus.ON_TRACK,
                        to_status=rnd.choice([GoalStatus.AT_RISK, GoalStatus.OFF_TRACK]),
                        suggested=False,
                        changed_by=emp,
                    )
                )
            elif roll < 0.4:
                ev.append(
                    GoalStale(
                        tenant_id=tenant,
                        occurred_at=at + timedelta(days=15),
                        goal_id=gid,
                        owner_id=emp,
                        last_progress_at=at,
                        update_interval_days=14,
                    )
                )
            elif roll < 0.45:
                ev.append(
                    GoalArchived(
                        tenant_id=tenant,
                        occurred_at=at + timedelta(days=1),
                        goal_id=gid,
                        reason=ArchiveReason.WITHDRAWN,
                    )
                )
    # Unit-owned goal.
    ev.append(
        GoalCreated(
            tenant_id=tenant,
            occurred_at=datetime(2026, 1, 3, tzinfo=UTC),
            goal_id="g-unit-d2",
            owner_type=OwnerType.ORG_UNIT,
            owner_id="ou-d2",
            kind=GoalKind.KPI,
            title="Dept 2 KPI",
            visibility=Visibility.TENANT,
            period_start=date(2026, 1, 1),
            period_end=date(2026, 6, 30),
            update_interval_days=30,
            key_results=[],
        )
    )
    return s


# ------------------------------------------------------------------------------------------------
# Independent expectations
# ------------------------------------------------------------------------------------------------


def _month(at: datetime) -> str:
    return f"{at.year:04d}-{at.month:02d}"


class Expected:
    """Dashboard numbers computed straight from the events (no read model)."""

    def __init__(self, events: Sequence[Event]) -> None:
        self.events = list(events)
        self.parent: dict[str, str | None] = {}
        self.history: dict[str, list[tuple[datetime, str, str | None, bool]]] = defaultdict(list)
        self.deactivated: dict[str, datetime] = {}
        for e in sorted(self.events, key=lambda e: e.occurred_at):
            if isinstance(e, OrgUnitUpserted):
                self.parent[e.org_unit_id] = e.parent_id
            elif isinstance(e, EmployeeUpserted):
                self.history[e.employee_id].append(
                    (e.occurred_at, e.org_unit_id, e.manager_id, e.active)
                )
            elif isinstance(e, EmployeeDeactivated):
                self.deactivated[e.employee_id] = e.effective_at

    def unit_at(self, emp: str, at: datetime) -> str | None:
        versions = sorted(self.history.get(emp, []))
        if not versions:
            return None
        chosen = versions[0]
        for v in versions:
            if v[0] <= at:
                chosen = v
        return chosen[1]

    def in_subtree(self, unit: str | None, scope: str) -> bool:
        if scope == "*":
            return True
        seen = set()
        while unit is not None and unit not in seen:
            if unit == scope:
                return True
            seen.add(unit)
            unit = self.parent.get(unit)
        return False

    def people(self, scope: str) -> int:
        n = 0
        for emp, versions in self.history.items():
            at, unit, _, active = sorted(versions)[-1]
            gone = emp in self.deactivated and self.deactivated[emp] >= at
            if active and not gone and self.in_subtree(unit, scope):
                n += 1
        return n

    def obligations(self, scope: str, months: Iterable[str]) -> dict[str, int]:
        wanted = set(months)
        info: dict[str, dict[str, Any]] = defaultdict(dict)
        for e in self.events:
            if isinstance(e, CheckinDue | CheckinMissed):
                info[e.obligation_id].update(emp=e.employee_id, due=e.due_at)
                if isinstance(e, CheckinMissed):
                    info[e.obligation_id]["missed"] = True
            elif isinstance(e, CheckinCompleted) and e.obligation_id:
                o = info[e.obligation_id]
                o.setdefault("emp", e.employee_id)
                o.setdefault("due", e.due_at)
                o["held"] = min(o.get("held", e.held_at), e.held_at)
        out = dict.fromkeys(("obligations", "on_time", "late", "missed", "open"), 0)
        for o in info.values():
            if _month(o["due"]) not in wanted or not self.in_subtree(
                self.unit_at(o["emp"], o["due"]), scope
            ):
                continue
            out["obligations"] += 1
            if "held" in o:
                out["on_time" if o["held"] <= o["due"] else "late"] += 1
            elif o.get("missed"):
                out["missed"] += 1
            else:
                out["open"] += 1
        return out

    def adherence(self, scope: str, months: Iterable[str]) -> dict[str, float | None]:
        c = self.obligations(scope, months)
        resolved = c["on_time"] + c["late"] + c["missed"]
        return {
            k: (round(100.0 * c[k] / resolved, 1) if resolved else None)
            for k in ("on_time", "late", "missed")
        }

    def _checkins(self) -> dict[str, CheckinCompleted]:
        out: dict[str, CheckinCompleted] = {}
        for e in self.events:
            if isinstance(e, CheckinCompleted):
                out[e.checkin_id] = e
        return out

    def ownership(self, scope: str, months: Iterable[str]) -> tuple[int, int]:
        wanted = set(months)
        total = by_employee = 0
        for c in self._checkins().values():
            if _month(c.held_at) in wanted and self.in_subtree(
                self.unit_at(c.employee_id, c.held_at), scope
            ):
                total += 1
                by_employee += c.initiated_by == Initiator.EMPLOYEE
        return total, by_employee

    def pulses(self, scope: str, months: Iterable[str]) -> list[int]:
        wanted = set(months)
        out = []
        for c in self._checkins().values():
            if (
                c.pulse
                and _month(c.held_at) in wanted
                and self.in_subtree(self.unit_at(c.employee_id, c.held_at), scope)
            ):
                out.append(c.pulse)
        for e in self.events:
            if (
                isinstance(e, ReflectionSubmitted)
                and e.pulse
                and _month(e.occurred_at) in wanted
                and self.in_subtree(self.unit_at(e.employee_id, e.occurred_at), scope)
            ):
                out.append(e.pulse)
        return out

    def feedback(self, scope: str, months: Iterable[str]) -> tuple[int, int]:
        wanted = set(months)
        given = received = 0
        seen = set()
        for e in self.events:
            if (
                isinstance(e, FeedbackGiven)
                and e.feedback_id not in seen
                and _month(e.occurred_at) in wanted
            ):
                seen.add(e.feedback_id)
                given += self.in_subtree(self.unit_at(e.giver_id, e.occurred_at), scope)
                received += self.in_subtree(self.unit_at(e.receiver_id, e.occurred_at), scope)
        return given, received

    def goals(self, scope: str, start: date, end: date) -> dict[str, Any]:
        goals: dict[str, dict[str, Any]] = defaultdict(dict)
        for e in sorted(self.events, key=lambda e: e.occurred_at):
            if isinstance(e, GoalCreated):
                goals[e.goal_id].update(created=e, status="on_track")
            elif isinstance(e, GoalProgressRecorded):
                goals[e.goal_id].update(
                    progress=e.goal_progress, confidence=e.confidence, last=e.occurred_at
                )
            elif isinstance(e, GoalStatusChanged):
                goals[e.goal_id]["status"] = str(e.to_status)
            elif isinstance(e, GoalStale):
                goals[e.goal_id]["stale_marker"] = e.last_progress_at
            elif isinstance(e, GoalArchived):
                goals[e.goal_id]["archived"] = str(e.reason)
        buckets = [0] * 5
        n = at_risk = stale = 0
        for g in goals.values():
            c: GoalCreated = g["created"]
            if g.get("archived") in ("withdrawn", "superseded", "owner_deactivated"):
                continue
            if not (c.period_start <= end and start <= c.period_end):
                continue
            unit = (
                self.unit_at(c.owner_id, c.occurred_at)
                if c.owner_type == OwnerType.PERSON
                else c.owner_id
            )
            if not self.in_subtree(unit, scope):
                continue
            n += 1
            p = round(g.get("progress", 0.0) * 10_000)
            buckets[min(p * 5 // 10_000, 4)] += 1
            at_risk += g["status"] in ("at_risk", "off_track")
            marker = g.get("stale_marker")
            if marker is not None and g["status"] in ("on_track", "at_risk", "off_track"):
                stale += g.get("last") is None or g["last"] <= marker
        return {"goals": n, "buckets": buckets, "at_risk_or_off_track": at_risk, "stale": stale}


# ------------------------------------------------------------------------------------------------
# The check every integration test uses
# ------------------------------------------------------------------------------------------------

SCOPES = ["*", "ou-d1", "ou-d3", "ou-t32"]


def _hidden(report: dict[str, Any]) -> bool:
    """A hidden figure carries nothing: every headline value is null."""
    if report["suppressed"]:
        assert all(v is None for v in report["summary"].values()), report["summary"]
    return bool(report["suppressed"])


async def assert_numbers_match(svc: Any, expected: Expected) -> list[tuple[str, str, str]]:
    """Every shown figure equals the one computed from the events; returns the hidden ones
    (metric, scope, period): those the small-group rule leaves out."""
    hidden: list[tuple[str, str, str]] = []
    for scope in SCOPES:
        for label in ("2026-Q1", "2026-Q2", "2026-04", "2026"):
            period = Period.parse(label)
            adherence = await svc.get("cadence-adherence", unit=scope, period=label)
            want = expected.adherence(scope, period.months)
            got = adherence["summary"]
            trend = {row["month"]: row for row in adherence["rows"]}
            for month in period.months:
                if not trend[month]["suppressed"]:
                    assert (
                        trend[month]["obligations"]
                        == expected.obligations(scope, [month])["obligations"]
                    )
            if _hidden(adherence):
                hidden.append(("cadence-adherence", scope, label))
            else:
                assert (got["on_time_pct"], got["late_pct"], got["missed_pct"]) == (
                    want["on_time"],
                    want["late"],
                    want["missed"],
                ), (scope, label)
                assert (
                    got["obligations"] == expected.obligations(scope, period.months)["obligations"]
                )
                if got["previous_on_time_pct"] is not None:
                    previous = expected.adherence(scope, period.previous().months)["on_time"]
                    assert got["previous_on_time_pct"] == previous

            own = await svc.get("ownership", unit=scope, period=label)
            if _hidden(own):
                hidden.append(("ownership", scope, label))
            else:
                assert (
                    own["summary"]["checkins"],
                    own["summary"]["employee_initiated"],
                ) == expected.ownership(scope, period.months)

            pulse = await svc.get("workload-pulse", unit=scope, period=label)
            answers = expected.pulses(scope, period.months)
            if _hidden(pulse):
                hidden.append(("workload-pulse", scope, label))
            else:
                assert pulse["summary"]["responses"] == len(answers)
                assert pulse["summary"]["average"] == round(sum(answers) / len(answers), 2)

            fb = await svc.get("feedback", unit=scope, period=label)
            if _hidden(fb):
                hidden.append(("feedback", scope, label))
            else:
                assert (
                    fb["summary"]["feedback_given"],
                    fb["summary"]["feedback_received"],
                ) == expected.feedback(scope, period.months)

            goals = await svc.get("goals", unit=scope, period=label)
            want_goals = expected.goals(scope, period.start, period.end)
            if _hidden(goals):
                hidden.append(("goals", scope, label))
            else:
                assert goals["summary"]["goals"] == want_goals["goals"]
                assert [r["goals"] for r in goals["rows"]] == want_goals["buckets"]
                assert (
                    goals["summary"]["at_risk"] + goals["summary"]["off_track"]
                    == want_goals["at_risk_or_off_track"]
                )
                assert goals["summary"]["stale"] == want_goals["stale"]
        people = (await svc.get("cadence-adherence", unit=scope))["scope"]["people"]
        assert people in (None, expected.people(scope))
    return hidden
