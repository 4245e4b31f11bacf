"""Cadence policies: what is owed, how often, and which policy applies to an employee."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from rhythm_checkins.domain.periods import Period, due_at, next_period, period_containing
from rhythm_shared.contracts.v1.values import (
    CheckinKind,
    EscalationTarget,
    Frequency,
    PolicyScope,
)
from rhythm_shared.kit.errors import FieldError

#: Shortest period of each frequency, in days: a reminder cannot come before its period starts.
SHORTEST_PERIOD_DAYS = {
    Frequency.WEEKLY: 7,
    Frequency.BIWEEKLY: 14,
    Frequency.MONTHLY: 28,
    Frequency.QUARTERLY: 90,
}
SPECIFICITY = {PolicyScope.EMPLOYEE: 3, PolicyScope.ORG_UNIT: 2, PolicyScope.TENANT: 1}


@dataclass(frozen=True)
class Rule:
    kind: CheckinKind
    frequency: Frequency
    grace_days: int = 5
    lead_time_days: int = 3


@dataclass(frozen=True)
class CadencePolicy:
    policy_id: str
    scope: PolicyScope
    scope_id: str
    rules: tuple[Rule, ...]
    escalate_after: int = 2
    escalate_to: EscalationTarget = EscalationTarget.SKIP_LEVEL
    ramp_up_days: int = 30
    hr_contact_id: str | None = None

    def rule_for(self, kind: CheckinKind) -> Rule | None:
        return next((r for r in self.rules if r.kind == kind), None)


@dataclass(frozen=True)
class EmployeeProfile:
    """What the cadence needs to know of an employee (from ``rhythm.people.v1``)."""

    employee_id: str
    manager_id: str | None
    org_unit_id: str
    time_zone: str
    hired_on: date
    active: bool = True
    #: From when they are gone (may lie ahead): nothing falling due from then on is owed.
    deactivated_at: datetime | None = None
    #: The employee's org unit first, then its parents up to the root.
    org_unit_chain: tuple[str, ...] = field(default_factory=tuple)


def resolve_policy(
    policies: Iterable[CadencePolicy], tenant_id: str, employee: EmployeeProfile
) -> CadencePolicy | None:
    """The most specific policy: the employee's own, else the nearest org unit's (the
    employee's unit, then its parents), else the tenant's."""
    units = employee.org_unit_chain or (employee.org_unit_id,)
    best: tuple[int, int, CadencePolicy] | None = None
    for policy in policies:
        rank: tuple[int, int] | None = None
        if policy.scope == PolicyScope.EMPLOYEE and policy.scope_id == employee.employee_id:
            rank = (SPECIFICITY[policy.scope], 0)
        elif policy.scope == PolicyScope.ORG_UNIT and policy.scope_id in units:
            rank = (SPECIFICITY[policy.scope], -units.index(policy.scope_id))
        elif policy.scope == PolicyScope.TENANT and policy.scope_id == tenant_id:
            rank = (SPECIFICITY[policy.scope], 0)
        if rank is not None and (best is None or rank > best[:2]):
            best = (*rank, policy)
    return best[2] if best else None


def validate_policy(policy: CadencePolicy) -> list[FieldError]:
    """Field-level problems with a policy (empty when it is sound)."""
    errors: list[FieldError] = []
    seen: set[CheckinKind] = set()
    for i, rule in enumerate(policy.rules):
        loc = ("body", "rules", i)
        if rule.frequency not in SHORTEST_PERIOD_DAYS:
            errors.append(
                FieldError(
                    (*loc, "frequency"),
                    "a cadence needs a frequency: weekly, biweekly, monthly or quarterly",
                )
            )
            continue
        if rule.kind in seen:
            errors.append(FieldError((*loc, "kind"), "at most one rule per check-in kind"))
        seen.add(rule.kind)
        if not 0 <= rule.grace_days <= 90:
            errors.append(FieldError((*loc, "grace_days"), "grace is 0 to 90 days"))
        if not 0 <= rule.lead_time_days < SHORTEST_PERIOD_DAYS[rule.frequency]:
            errors.append(
                FieldError(
                    (*loc, "lead_time_days"),
                    f"the reminder lead time must be shorter than a {rule.frequency.value} period",
                )
            )
    if not 1 <= policy.escalate_after <= 12:
        errors.append(FieldError(("body", "escalate_after"), "escalate after 1 to 12 misses"))
    if not 0 <= policy.ramp_up_days <= 366:
        errors.append(FieldError(("body", "ramp_up_days"), "ramp-up is 0 to 366 days"))
    return errors


@dataclass(frozen=True)
class PlannedObligation:
    kind: CheckinKind
    frequency: Frequency
    period: Period
    due_at: datetime
    remind_at: datetime
    miss_at: datetime


def first_owed_day(employee: EmployeeProfile, policy: CadencePolicy) -> date:
    """A new hire owes nothing for periods that start before the ramp-up ends."""
    return employee.hired_on + timedelta(days=policy.ramp_up_days)


def plan(
    employee: EmployeeProfile,
    policy: CadencePolicy | None,
    today: date,
    *,
    periods_ahead: int = 1,
) -> list[PlannedObligation]:
    """The obligations owed for the period containing ``today`` (local) and the next ones.

    Nothing for an inactive employee or one without a manager (nobody to hold the check-in).
    """
    if policy is None or not employee.active or employee.manager_id is None:
        return []
    owed_from = first_owed_day(employee, policy)
    planned: list[PlannedObligation] = []
    for rule in policy.rules:
        period = period_containing(rule.frequency, today)
        for _ in range(periods_ahead + 1):
            if period.start >= owed_from:
                due = due_at(period, employee.time_zone)
                if employee.deactivated_at is not None and due >= employee.deactivated_at:
                    break
                planned.append(
                    PlannedObligation(
                        kind=rule.kind,
                        frequency=rule.frequency,
                        period=period,
                        due_at=due,
                        remind_at=due - timedelta(days=rule.lead_time_days),
                        miss_at=due + timedelta(days=rule.grace_days),
                    )
                )
            period = next_period(rule.frequency, period)
    return planned


def next_planning_day(policy: CadencePolicy | None, today: date) -> date | None:
    """When to plan again: the day the soonest current period rolls over."""
    if policy is None or not policy.rules:
        return None
    return min(period_containing(r.frequency, today).end for r in policy.rules) + timedelta(days=1)


def rules_by_kind(rules: Sequence[Rule]) -> dict[CheckinKind, Rule]:
    return {r.kind: r for r in rules}
