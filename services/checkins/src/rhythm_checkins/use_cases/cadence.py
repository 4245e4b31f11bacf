"""Cadence: policies, planning obligations ahead, and the sweep that reminds, misses, escalates."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from rhythm_checkins.commands import SetPolicy, SweepCadence
from rhythm_checkins.domain.access import POLICY, relationships
from rhythm_checkins.domain.obligations import (
    OUTSTANDING,
    Fact,
    ObligationState,
    consecutive_misses,
    escalation_target,
    next_action_at,
    obligation_id,
    should_escalate,
    sweep_step,
)
from rhythm_checkins.domain.periods import Period, local_date, previous_period, start_of_day
from rhythm_checkins.domain.policy import (
    CadencePolicy,
    EmployeeProfile,
    next_planning_day,
    plan,
    resolve_policy,
    validate_policy,
)
from rhythm_checkins.domain.ports import CheckinsUnitOfWork
from rhythm_checkins.domain.records import Decision, NewFact, Obligation
from rhythm_checkins.queries import policy_view
from rhythm_shared.contracts.envelope import new_event_id
from rhythm_shared.contracts.v1 import (
    CadenceEscalated,
    CadencePolicyChanged,
    CadenceRule,
    CheckinDue,
    CheckinKind,
    CheckinMissed,
    Frequency,
    PolicyScope,
)
from rhythm_shared.kit.access import require
from rhythm_shared.kit.errors import FieldError, InvalidInput
from rhythm_shared.kit.ports import Directory, Person

# --- policies ----------------------------------------------------------------------------------


def policy_id_for(tenant_id: str, scope: PolicyScope, scope_id: str) -> str:
    digest = hashlib.sha256(f"{tenant_id}\x1f{scope.value}\x1f{scope_id}".encode()).hexdigest()
    return f"pol-{digest[:24]}"


async def set_policy(uow: CheckinsUnitOfWork, cmd: SetPolicy) -> dict[str, object]:
    """Set the policy of a scope (hr_admin); the employees it covers are planned again."""
    principal = cmd.principal
    tenant = principal.tenant
    people_dir = uow.people.directory(tenant)
    rels = await relationships(people_dir, principal, None)
    require(POLICY, "set_cadence_policy", rels, "only hr_admin may set cadence policies")
    policy = CadencePolicy(
        policy_id=policy_id_for(tenant, cmd.scope, cmd.scope_id),
        scope=cmd.scope,
        scope_id=cmd.scope_id,
        rules=tuple(cmd.rules),
        escalate_after=cmd.escalate_after,
        escalate_to=cmd.escalate_to,
        ramp_up_days=cmd.ramp_up_days,
        hr_contact_id=cmd.hr_contact_id,
    )
    errors = validate_policy(policy)
    if cmd.scope == PolicyScope.TENANT and cmd.scope_id != tenant:
        errors.append(FieldError(("path", "scope_id"), "a tenant policy's scope_id is the tenant"))
    if cmd.scope == PolicyScope.EMPLOYEE and not await people_dir.person(cmd.scope_id):
        errors.append(FieldError(("path", "scope_id"), "not an employee of this tenant"))
    if cmd.hr_contact_id and not await people_dir.person(cmd.hr_contact_id):
        errors.append(FieldError(("body", "hr_contact_id"), "not an employee of this tenant"))
    if errors:
        raise InvalidInput(errors)
    now = uow.clock.now()
    await uow.cadence.save_policy(tenant, policy, now)
    await _replan_scope(uow, tenant, policy.scope, policy.scope_id)
    await uow.publish(
        CadencePolicyChanged(
            tenant_id=tenant,
            occurred_at=now,
            policy_id=policy.policy_id,
            scope=policy.scope,
            scope_id=policy.scope_id,
            rules=[
                CadenceRule(
                    kind=r.kind,
                    frequency=r.frequency,
                    grace_days=r.grace_days,
                    lead_time_days=r.lead_time_days,
                )
                for r in policy.rules
            ],
            escalate_after=policy.escalate_after,
            escalate_to=policy.escalate_to,
        )
    )
    return policy_view(policy)


async def _replan_scope(
    uow: CheckinsUnitOfWork, tenant: str, scope: PolicyScope, scope_id: str
) -> None:
    """Employees under the scope are planned by the sweeper's next round (a tenant of 200,000
    is not planned inside an HTTP request); one employee is planned at once."""
    if scope == PolicyScope.EMPLOYEE:
        await plan_employee(uow, tenant, scope_id)
        return
    units = (
        await uow.people.directory(tenant).subunits(scope_id)
        if scope == PolicyScope.ORG_UNIT
        else None
    )
    await uow.cadence.plan_covered(tenant, units, uow.clock.now())


# --- planning obligations ahead -----------------------------------------------------------------


async def employee_profile(
    people_dir: Directory,
    employee_id: str,
    *,
    person: Person | None = None,
    with_units: bool = True,
) -> EmployeeProfile | None:
    """What the cadence needs of an employee (``person``: as the caller already has them from
    the directory), with their unit's chain up to the root (``with_units``: only a policy of an
    org unit needs it)."""
    if person is None:
        person = await people_dir.person(employee_id)
    if person is None:
        return None
    units: tuple[str, ...] = ()
    if person.org_unit_id is not None and with_units:
        found = await people_dir.units_upwards(person.org_unit_id)
        units = tuple(u.org_unit_id for u in found) or (person.org_unit_id,)
    return EmployeeProfile(
        employee_id=person.employee_id,
        manager_id=person.manager_id,
        org_unit_id=person.org_unit_id or "",
        time_zone=person.time_zone,
        # Every upsert carries a hire date; only a row migrated without one lacks it.
        hired_on=person.hired_on or date.min,
        active=person.active,
        deactivated_at=person.deactivated_at,
        org_unit_chain=units,
    )


async def plan_employee(
    uow: CheckinsUnitOfWork,
    tenant: str,
    employee_id: str,
    policies: Sequence[CadencePolicy] | None = None,
    *,
    person: Person | None = None,
) -> int:
    """Create the obligations owed now and next period; cancel future ones no longer owed;
    note when to plan again. Returns how many obligations were created. ``person``: the
    employee as the caller just read them from the directory."""
    now = uow.clock.now()
    if policies is None:
        policies = await uow.cadence.policies(tenant)
    profile = await employee_profile(
        uow.people.directory(tenant),
        employee_id,
        person=person,
        with_units=any(p.scope == PolicyScope.ORG_UNIT for p in policies),
    )
    if profile is None:
        return 0
    policy = resolve_policy(policies, tenant, profile)
    today = local_date(now, profile.time_zone)
    planned = plan(profile, policy, today)
    created = 0
    if planned and policy is not None and profile.manager_id is not None:
        owed = [
            Obligation(
                id=obligation_id(tenant, employee_id, p.kind, p.period.start),
                tenant_id=tenant,
                employee_id=employee_id,
                manager_id=profile.manager_id,
                kind=p.kind.value,
                frequency=p.frequency.value,
                policy_id=policy.policy_id,
                period_start=p.period.start,
                period_end=p.period.end,
                due_at=p.due_at,
                remind_at=p.remind_at,
                miss_at=p.miss_at,
                state=ObligationState.OPEN.value,
                next_action_at=p.remind_at,
                consecutive_misses=0,
                created_at=now,
                updated_at=now,
            )
            for p in planned
        ]
        created = await uow.cadence.add_obligations(owed)
        # Obligations planned earlier keep their period but follow the employee's zone and the
        # policy's lead and grace days as they are now (a move abroad, a longer grace).
        await uow.cadence.follow_plan(owed, now)
    # Future periods that the current policy no longer owes (kind dropped, frequency changed).
    keep = [obligation_id(tenant, employee_id, p.kind, p.period.start) for p in planned]
    await uow.cadence.cancel_unplanned(tenant, employee_id, after=today, keep=keep, now=now)
    gone = profile.deactivated_at is not None and profile.deactivated_at <= now
    again = next_planning_day(policy, today) if profile.active and not gone else None
    await uow.cadence.set_plan_at(
        tenant, employee_id, start_of_day(again, profile.time_zone) if again else None
    )
    return created


async def plan_due_employees(uow: CheckinsUnitOfWork, batch_size: int) -> int:
    """Claim employees whose next planning time has come (SKIP LOCKED lets replicas share the
    work) and plan them."""
    claimed = await uow.cadence.claim_planning(uow.clock.now(), batch_size)
    cache: dict[str, list[CadencePolicy]] = {}
    for tenant, employee_id in claimed:
        if tenant not in cache:
            cache[tenant] = await uow.cadence.policies(tenant)
        await plan_employee(uow, tenant, employee_id, cache[tenant])
    return len(claimed)


# --- the sweep ---------------------------------------------------------------------------------


@dataclass
class SweepResult:
    planned: int = 0
    claimed: int = 0
    reminded: int = 0
    missed: int = 0
    escalated: int = 0
    deferred: int = 0
    events: list[str] = field(default_factory=list)

    @property
    def handled(self) -> int:
        return self.planned + self.claimed - self.deferred

    def add(self, other: SweepResult) -> None:
        for name in ("planned", "claimed", "reminded", "missed", "escalated", "deferred"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class _Decision:
    row: Obligation
    state: ObligationState
    next_action_at: datetime | None
    consecutive: int
    facts: list[Fact]


async def sweep_obligations(uow: CheckinsUnitOfWork, batch_size: int) -> SweepResult:
    """One batch: claim obligations whose next action is due, move each along its state
    machine and tell the world, each fact once (``cadence_facts`` is its natural key)."""
    now = uow.clock.now()
    result = SweepResult()
    rows = await uow.cadence.claim_due(now, batch_size)
    result.claimed = len(rows)
    if not rows:
        return result
    predecessors = await uow.cadence.by_ids(
        [_predecessor_id(r) for r in rows if r.state in OUTSTANDING and r.miss_at <= now]
    )
    decided: dict[str, _Decision] = {}
    policies: dict[tuple[str, str], CadencePolicy | None] = {}
    for row in rows:
        step = sweep_step(ObligationState(row.state), row.remind_at, row.miss_at, now)
        if step is None:  # nothing due after all: look again when something is
            state = ObligationState(row.state)
            later = next_action_at(state, row.remind_at, row.miss_at)
            decided[row.id] = _Decision(row, state, later, row.consecutive_misses, [])
            continue
        if step.fact != Fact.MISSED:
            decided[row.id] = _Decision(row, step.target, step.next_action_at, 0, [step.fact])
            continue
        prev_id = _predecessor_id(row)
        prev = decided.get(prev_id)
        prev_state: ObligationState | None
        if prev is not None:
            prev_state, prev_count = prev.state, prev.consecutive
        elif prev_id in predecessors:
            p = predecessors[prev_id]
            prev_state, prev_count = ObligationState(p.state), p.consecutive_misses
            if prev_state in OUTSTANDING and p.miss_at <= now:
                # Its predecessor's miss is not decided yet (another sweeper holds it): count
                # the run of misses only once it is, in a later round.
                result.deferred += 1
                continue
        else:
            prev_state, prev_count = None, 0
        count = consecutive_misses(prev_state, prev_count)
        facts = [Fact.MISSED]
        state = ObligationState.MISSED
        key = (row.tenant_id, row.policy_id)
        if key not in policies:
            policies[key] = await uow.cadence.policy(row.tenant_id, row.policy_id)
        policy = policies[key]
        if policy is not None and should_escalate(count, policy.escalate_after):
            facts.append(Fact.ESCALATED)
            state = ObligationState.ESCALATED
        decided[row.id] = _Decision(row, state, None, count, facts)

    fresh = await uow.cadence.record_facts(
        [
            NewFact(d.row.id, fact.value, d.row.tenant_id, new_event_id(), now)
            for d in decided.values()
            for fact in d.facts
        ]
    )
    await uow.cadence.save_decisions(
        [
            Decision(d.row.id, d.state.value, d.next_action_at, d.consecutive)
            for d in decided.values()
        ],
        now,
    )
    for decision in decided.values():
        for fact in decision.facts:
            event_id = fresh.get((decision.row.id, fact.value))
            if event_id is None:
                continue  # already told: the natural key says so
            await _publish_fact(uow, decision, fact, event_id, policies, result)
            result.events.append(event_id)
    return result


def _predecessor_id(row: Obligation) -> str:
    period = Period(row.period_start, row.period_end)
    before = previous_period(Frequency(row.frequency), period)
    return obligation_id(row.tenant_id, row.employee_id, CheckinKind(row.kind), before.start)


async def _publish_fact(
    uow: CheckinsUnitOfWork,
    decision: _Decision,
    fact: Fact,
    event_id: str,
    policies: dict[tuple[str, str], CadencePolicy | None],
    result: SweepResult,
) -> None:
    row = decision.row
    now = uow.clock.now()
    common = {
        "tenant_id": row.tenant_id,
        "occurred_at": now,
        "obligation_id": row.id,
        "employee_id": row.employee_id,
        "manager_id": row.manager_id,
    }
    period = {
        "kind": CheckinKind(row.kind),
        "period_start": row.period_start,
        "period_end": row.period_end,
        "due_at": row.due_at,
    }
    if fact == Fact.DUE:
        await uow.publish(CheckinDue(**common, **period), event_id=event_id)
        result.reminded += 1
    elif fact == Fact.MISSED:
        await uow.publish(
            CheckinMissed(**common, **period, consecutive_misses=decision.consecutive),
            event_id=event_id,
        )
        result.missed += 1
    else:
        policy = policies[(row.tenant_id, row.policy_id)]
        if policy is None:  # an escalation is only decided with its policy
            raise RuntimeError(f"obligation {row.id} escalated without its policy")
        chain = await uow.people.directory(row.tenant_id).manager_chain(row.manager_id)
        target = escalation_target(
            policy.escalate_to, row.manager_id, chain[0] if chain else None, policy.hr_contact_id
        )
        await uow.publish(
            CadenceEscalated(
                **common,
                escalated_to_id=target.to_id,
                level=target.level,
                consecutive_misses=decision.consecutive,
            ),
            event_id=event_id,
        )
        result.escalated += 1


async def sweep_cadence(uow: CheckinsUnitOfWork, cmd: SweepCadence) -> SweepResult:
    """One round of the cadence job: plan employees due for planning, then sweep obligations."""
    result = SweepResult(planned=await plan_due_employees(uow, cmd.batch_size))
    result.add(await sweep_obligations(uow, cmd.batch_size))
    return result


# --- obligations and check-ins ------------------------------------------------------------------


async def cancel_outstanding(
    uow: CheckinsUnitOfWork, tenant_id: str, employee_id: str, *, due_from: datetime | None = None
) -> int:
    """Nothing more is owed: outstanding obligations (due from ``due_from``) are cancelled."""
    return await uow.cadence.cancel_outstanding(
        tenant_id, employee_id, due_from=due_from, now=uow.clock.now()
    )


async def close_obligation_for(
    uow: CheckinsUnitOfWork,
    tenant: str,
    employee_id: str,
    kind: CheckinKind,
    held_on: date,
    checkin_id: str,
) -> tuple[str, datetime] | None:
    """The obligation a completed check-in fulfils: an earlier one still within its grace
    (late), else the outstanding one whose period holds the day it was held, else the oldest
    outstanding one before it; a missed one of that period is still linked (so reporting counts
    it late). Returns (id, due_at)."""
    rows = await uow.cadence.fulfillable(tenant, employee_id, kind.value, held_on)
    outstanding = [r for r in rows if r.state in OUTSTANDING]
    # A conversation just after a period ended, within that period's grace, is the late
    # check-in of the period it was owed for (what the people involved mean by it), not an early
    # one for the new period; otherwise it fulfils the period that holds the day it was held.
    late = next(
        (r for r in outstanding if r.period_end < held_on and r.miss_at.date() >= held_on), None
    )
    target = late or next((r for r in outstanding if r.period_end >= held_on), None)
    if target is None and outstanding:
        target = outstanding[0]
    if target is not None:
        await uow.cadence.close(target.id, checkin_id, uow.clock.now())
        return target.id, target.due_at
    same_period = next((r for r in rows if r.period_end >= held_on), None)
    return (same_period.id, same_period.due_at) if same_period else None
